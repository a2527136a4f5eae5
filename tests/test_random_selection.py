"""The minimum random inspection rate: rates per office and regime met within the binomial
bound over 100,000 demo declarations, reproducible with the key, different with another key,
the key never shown, the lane raised; the CLI's --random-config."""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from riskengine.cli import cli
from riskengine.decisionlog import DecisionLog
from riskengine.demo.generate import generate
from riskengine.evaluator import Engine, Lane, RandomSelection, RandomSelectionError
from riskengine.evaluator.random_selection import KEY_ENV, KEY_FILE_ENV, RandomRate
from riskengine.store import migrate

ROOT = Path(__file__).resolve().parent.parent
KEY = b"test-key-4f1c9a7e2b5d8c3f"
OTHER_KEY = b"test-key-0a9b8c7d6e5f4a3b"

CONFIG = """
[random]
lane = "red"
rate = 0.01

[[random.rates]]
office = "UA100110"
rate = 0.05

[[random.rates]]
office = "UA100110"
regime = "10"
rate = 0.2

[[random.rates]]
regime = "80"
rate = 0.1
"""

#: The README's declaration: one profile fires, lane yellow.
README_DECLARATION = {
    "id": "UA100110-2025-000042", "date": "2025-03-01", "office": "UA100110",
    "declarant": {"id": "31234567"},
    "items": [{"hs_code": "6403990000", "description": "men's boots", "origin": "CN",
               "customs_value": 30000, "net_mass": 100, "valuation_method": "1"}],
}  # fmt: skip


@pytest.fixture(scope="module")
def demo() -> list[tuple[str, str, str]]:
    """(id, office, regime) of 100,000 demo declarations."""
    out = []
    for r in generate(100_000, seed=11):
        h = r.declaration.header
        out.append((r.declaration.id or "", h["office"], h["regime"]))
    return out


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "random.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def test_rates_met_within_the_binomial_bound_per_office_and_regime(
    demo: list[tuple[str, str, str]], config: Path
) -> None:
    selection = RandomSelection.from_toml(config, key=KEY)
    seen: Counter[float] = Counter()
    chosen: Counter[float] = Counter()
    for ident, office, regime in demo:
        rate = selection.rate_for(office, regime)
        seen[rate] += 1
        chosen[rate] += selection.chosen(ident, office, regime)
    assert set(seen) == {0.01, 0.05, 0.2, 0.1}  # every rule applies to some declarations
    for rate, n in seen.items():
        # 4.42 standard deviations: a two-sided 99.999 % bound of Binomial(n, rate)
        bound = 4.42 * math.sqrt(n * rate * (1 - rate))
        assert abs(chosen[rate] - n * rate) <= bound, (rate, n, chosen[rate])
    overall = sum(chosen.values())
    assert overall == sum(selection.chosen(i, o, r) for i, o, r in demo)


def test_most_specific_rate_wins(config: Path) -> None:
    selection = RandomSelection.from_toml(config, key=KEY)
    assert selection.rate_for("UA100110", "10") == 0.2
    assert selection.rate_for("UA100110", "80") == 0.05  # the office before the regime
    assert selection.rate_for("UA500110", "80") == 0.1
    assert selection.rate_for("UA500110", "40") == 0.01
    assert selection.rate_for(None, None) == 0.01


def test_same_key_same_choice_other_key_other_choice(
    demo: list[tuple[str, str, str]], config: Path, tmp_path: Path
) -> None:
    key_file = tmp_path / "key"
    key_file.write_bytes(KEY + b"\n")
    one = RandomSelection.from_toml(config, key_file=key_file)
    again = RandomSelection.from_toml(config, environ={KEY_ENV: KEY.decode()})
    other = RandomSelection.from_toml(config, key=OTHER_KEY)
    first = {i for i, o, r in demo if one.chosen(i, o, r)}
    assert first == {i for i, o, r in demo if again.chosen(i, o, r)}
    assert one.key_id == again.key_id != other.key_id
    second = {i for i, o, r in demo if other.chosen(i, o, r)}
    assert abs(len(second) - len(first)) < 0.1 * len(first)
    # independent draws: the overlap is about rate² of the declarations, far below either set
    assert len(first & second) < 0.25 * len(first)
    for ident, office, regime in demo[:2000]:  # the audit: the draw against the rate
        assert one.chosen(ident, office, regime) == (one.draw(ident) < one.rate_for(office, regime))


def test_a_chosen_declaration_is_marked_and_its_lane_raised() -> None:
    always = RandomSelection(KEY, rate=1.0)
    engine = Engine.load(ROOT / "profiles", random=always)
    plain = Engine.load(ROOT / "profiles")
    fired = engine.score(README_DECLARATION)
    assert plain.score(README_DECLARATION).lane is Lane.YELLOW
    assert fired.random_selected is True and fired.lane is Lane.RED
    assert [f.key for f in fired.fired] == ["2A/08/2013/00117-04"]  # profiles unchanged
    green = {"id": "G1", "date": "2025-03-01", "office": "UA100110"}
    assert plain.score(green).lane is Lane.GREEN
    assert engine.score(green).lane is Lane.RED
    assert engine.score(green, explain=True).lane is Lane.RED
    assert engine.score(green).to_dict()["random_selected"] is True
    assert "random_selected" not in plain.score(green).to_dict()
    yellow = Engine.load(ROOT / "profiles", random=RandomSelection(KEY, rate=1.0, lane=Lane.YELLOW))
    assert yellow.score(green).lane is Lane.YELLOW
    never = Engine.load(ROOT / "profiles", random=RandomSelection(KEY, rate=0.0))
    result = never.score(README_DECLARATION)
    assert result.random_selected is False and result.lane is Lane.YELLOW
    plain_result = plain.score(green)
    applied = always.apply(plain_result, {"office": "UA100110"})
    assert (applied.lane, applied.random_selected) == (Lane.RED, True)
    assert (plain_result.lane, plain_result.random_selected) == (Lane.GREEN, None)  # untouched
    no_id = engine.score({"date": "2025-03-01", "office": "UA100110"})
    assert no_id.random_selected is False and no_id.lane is Lane.GREEN  # not reproducible


def test_the_key_never_shows(
    tmp_path: Path, config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.init(url)
    selection = RandomSelection.from_toml(config, key=KEY)
    engine = Engine.load(ROOT / "profiles", random=selection)
    spool = tmp_path / "spool.jsonl"
    texts = [repr(selection), str(selection), repr(vars(engine))]
    with DecisionLog(url, spool=spool, revision="r1") as log:
        for r in generate(300, seed=2):
            result = engine.score(r.declaration)
            texts.append(result.to_json())
            texts.append(repr(result))
            log.record(result, r.declaration)
        log.flush(30)
        records = log.read()
    assert sum(1 for rec in records if rec.random_selected) > 0
    texts += [repr(records), caplog.text, (tmp_path / "store.db").read_bytes().decode("latin-1")]
    for text in texts:
        assert KEY.decode() not in text and KEY.hex() not in text
    with pytest.raises(RandomSelectionError) as info:
        RandomSelection.from_toml(config, key=b"short-key")
    assert "short-key" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[random]\nrate = 1.5\n', "rate must be a number from 0 to 1"),
        ('[random]\nkey = "abcdefabcdefabcdef"\n', "the key does not belong in the configuration"),
        ('[random]\nlane = "green"\n', "lane must be red or yellow"),
        ('[random]\nrates = [{office = "A", rate = 0.1}, {office = "A", rate = 0.2}]\n',
         "two random rates for office A"),
        ('[random]\nrates = [{office = "A"}]\n', "has no rate"),
        ('[random]\nratio = 0.1\n', "unknown setting 'ratio'"),
        ('[random]\nrates = [{ofice = "A", rate = 0.1}]\n',
         "rates #1: unknown setting 'ofice' (known: office, regime, rate)"),
        ('rate = 0.1\n', "no [random] table"),
        ('[random\n', "cannot read the random selection settings"),
    ],
)  # fmt: skip
def test_bad_configuration_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "random.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RandomSelectionError, match=re.escape(message)) as info:
        RandomSelection.from_toml(path, key=KEY)
    assert "abcdefabcdefabcdef" not in str(info.value)  # a key put in the file is not echoed


def test_key_sources_and_their_order(tmp_path: Path, config: Path) -> None:
    (tmp_path / "own.key").write_bytes(KEY)
    (tmp_path / "env.key").write_bytes(OTHER_KEY)
    with_file = tmp_path / "with-file.toml"
    text = CONFIG.replace("[random]\n", '[random]\nkey_file = "own.key"\n', 1)
    with_file.write_text(text, encoding="utf-8")
    own = RandomSelection(KEY).key_id
    env = RandomSelection(OTHER_KEY).key_id
    assert RandomSelection.from_toml(with_file, environ={}).key_id == own
    assert (
        RandomSelection.from_toml(with_file, environ={KEY_FILE_ENV: str(tmp_path / "env.key")})
    ).key_id == env
    assert RandomSelection.from_toml(with_file, environ={KEY_ENV: OTHER_KEY.decode()}).key_id == env
    with pytest.raises(RandomSelectionError, match="needs a secret key"):
        RandomSelection.from_toml(config, environ={})
    with pytest.raises(RandomSelectionError, match="cannot read the random selection key file"):
        RandomSelection.from_toml(config, key_file=tmp_path / "missing", environ={})


# -- the command line


def _jsonl(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "decls.jsonl"
    lines = []
    for r in generate(n, seed=4):
        h = r.declaration.header
        lines.append(json.dumps({"id": r.declaration.id, "date": h["date"].isoformat(),
                                 "office": h["office"], "regime": h["regime"]}))  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_cli_random_config(tmp_path: Path, config: Path) -> None:
    decls = _jsonl(tmp_path, 400)
    key_file = tmp_path / "random.key"
    key_file.write_bytes(KEY + b"\n")
    runner = CliRunner()
    args = ["score", str(decls), "--profiles", str(ROOT / "profiles"),
            "--random-config", str(config)]  # fmt: skip
    env = {KEY_ENV: "", KEY_FILE_ENV: ""}
    first = runner.invoke(cli, [*args, "--random-key-file", str(key_file)], env=env)
    assert first.exit_code == 0, first.output
    results = [json.loads(line) for line in first.stdout.splitlines()]
    assert len(results) == 400 and all(isinstance(r["random_selected"], bool) for r in results)
    chosen = [r for r in results if r["random_selected"]]
    assert chosen and all(r["lane"] == "red" for r in chosen)
    selection = RandomSelection.from_toml(config, key=KEY)
    raw = [json.loads(line) for line in decls.read_text().splitlines()]
    assert [r["id"] for r in chosen] == [
        d["id"] for d in raw if selection.chosen(d["id"], d["office"], d["regime"])
    ]
    by_env = runner.invoke(cli, args, env={KEY_ENV: KEY.decode(), KEY_FILE_ENV: ""})
    assert by_env.exit_code == 0 and by_env.stdout == first.stdout  # same key, same choice
    assert KEY.decode() not in first.output + by_env.output
    one = tmp_path / "one.json"
    one.write_text(json.dumps(next(d for d in raw if d["id"] == chosen[0]["id"])))
    table = runner.invoke(
        cli, ["score", str(one), "--profiles", str(ROOT / "profiles"), "--format", "table",
              "--random-config", str(config), "--random-key-file", str(key_file)],
    )  # fmt: skip
    assert table.exit_code == 0, table.output
    assert "lane red (chosen for a random control)" in table.stdout


def test_cli_random_config_errors(tmp_path: Path, config: Path) -> None:
    decls = _jsonl(tmp_path, 3)
    runner = CliRunner()
    base = ["score", str(decls), "--profiles", str(ROOT / "profiles")]
    no_key = runner.invoke(cli, [*base, "--random-config", str(config)],
                           env={KEY_ENV: "", KEY_FILE_ENV: ""})  # fmt: skip
    assert no_key.exit_code == 2
    assert "random selection needs a secret key" in no_key.output
    short = runner.invoke(cli, [*base, "--random-config", str(config)],
                          env={KEY_ENV: "tiny-key", KEY_FILE_ENV: ""})  # fmt: skip
    assert short.exit_code == 2 and "too short" in short.output
    assert "tiny-key" not in short.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[random]\nrate = 2\n", encoding="utf-8")
    wrong = runner.invoke(cli, [*base, "--random-config", str(bad)],
                          env={KEY_ENV: KEY.decode(), KEY_FILE_ENV: ""})  # fmt: skip
    assert wrong.exit_code == 2 and "rate must be a number from 0 to 1" in wrong.output
    lonely = runner.invoke(cli, [*base, "--random-key-file", str(bad)])
    assert lonely.exit_code == 2 and "--random-key-file needs --random-config" in lonely.output


def test_rates_are_checked(tmp_path: Path) -> None:
    with pytest.raises(RandomSelectionError, match="at least 16 bytes"):
        RandomSelection(b"too short")
    with pytest.raises(RandomSelectionError, match="a random rate must be a number"):
        RandomSelection(KEY, [RandomRate("A", None, -0.1)])
