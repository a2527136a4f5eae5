"""Demo data: reproducible, plausible, with repeat offenders, and selective under the sample
profiles."""

from __future__ import annotations

import collections
import datetime as dt
import statistics
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

from riskengine import demo
from riskengine.classifiers import reasons
from riskengine.cli.demo import DEFAULT_SEED, demo_data
from riskengine.declaration import normalise_declaration
from riskengine.store.engine import connect
from riskengine.store.schema import TABLES

PROFILES = Path(__file__).resolve().parent.parent / "profiles"


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data() -> None:
    first = list(demo.generate(300, seed=42))
    assert first == list(demo.generate(300, seed=42))
    other = list(demo.generate(300, seed=43))
    assert [r.declaration for r in first] != [r.declaration for r in other]


def test_records_are_valid_input_in_date_order_within_the_range() -> None:
    start, end = dt.date(2024, 3, 1), dt.date(2024, 3, 31)
    records = list(demo.generate(500, seed=1, start=start, end=end))
    dates = [r.declaration.header["date"] for r in records]
    assert dates == sorted(dates) and start <= dates[0] and dates[-1] <= end
    assert len({r.declaration.header["id"] for r in records}) == 500
    codes = set(reasons().codes())
    for record in records:
        raw = demo.raw_declaration(record)
        assert normalise_declaration(raw) == record.declaration
        assert set(record.outcome.reasons) <= codes
        assert record.outcome.completed == (not record.outcome.reasons)
        assert all(c.date >= record.declaration.header["date"] for c in record.controls)


def test_the_data_is_plausible() -> None:
    records = list(demo.generate(5000, seed=3))
    violations = collections.Counter(r.violation for r in records if r.violation)
    share = sum(violations.values()) / len(records)
    assert 0.005 < share < 0.05
    assert set(violations) == set(demo.PROFILE_KEYS)  # every scheme is planted
    not_completed = [r for r in records if not r.outcome.completed]
    assert 0.005 < len(not_completed) / len(records) < 0.06
    random_controls = [c for r in records for c in r.controls if c.random_control]
    assert random_controls and all(c.profile_key is None for c in random_controls)
    # repeat offenders: declarants with several non-completed clearances
    per_declarant = collections.Counter(r.declaration.header["declarant.id"] for r in not_completed)
    assert sum(1 for n in per_declarant.values() if n >= 3) >= 5

    # unit prices: honest footwear and clothing cost ~1000 UAH per kg, undervalued far less
    def unit_prices(violation: str | None) -> list[float]:
        return [
            r.declaration.items[0]["customs_value"] / r.declaration.items[0]["net_mass"]
            for r in records
            if r.violation == violation and r.declaration.items[0]["hs_code"][:2] in {"61", "64"}
        ]

    honest = statistics.median(unit_prices(None))
    assert 600 < honest < 2500
    assert statistics.median(unit_prices("undervaluation")) < honest / 2
    origins = collections.Counter(i["origin"] for r in records for i in r.declaration.items)
    assert {"CN", "VN", "TR", "DE", "PL", "US", "IN"} <= set(origins)
    chapters = {i["hs_code"][:2] for r in records for i in r.declaration.items}
    assert {"64", "61", "62", "85", "29", "22", "24", "87", "95"} <= chapters


def test_demo_data_command_stores_and_skips_what_is_there(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    runner = CliRunner()
    result = runner.invoke(demo_data, ["--declarations", "800", "--seed", "9", "--db", url])
    assert result.exit_code == 0, result.output
    assert "stored 800 declarations" in result.output
    again = runner.invoke(demo_data, ["-n", "800", "--seed", "9", "--db", url, "-q"])
    assert "800 declarations were already in the store" in again.output
    engine = connect(url)
    with engine.connect() as c:
        count = c.execute(sa.select(sa.func.count()).select_from(TABLES.declarations)).scalar()
        outcomes = c.execute(sa.select(sa.func.count()).select_from(TABLES.outcomes)).scalar()
    engine.dispose()
    assert count == outcomes == 800


def test_demo_data_command_writes_files(tmp_path: Path) -> None:
    csv_path = tmp_path / "d.csv"
    jsonl_path = tmp_path / "d.jsonl"
    result = CliRunner().invoke(
        demo_data, ["-n", "50", "--csv", str(csv_path), "--jsonl", str(jsonl_path)]
    )
    assert result.exit_code == 0, result.output
    lines = csv_path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("DECL_ID;DECL_NO;DECL_DATE")
    assert len(lines) - 1 == sum(r.item_rows for r in demo.generate(50, seed=DEFAULT_SEED))
    assert len(jsonl_path.read_text(encoding="utf-8").splitlines()) == 50
    assert (tmp_path / "d.outcomes.csv").is_file()
    assert (tmp_path / "d.outcomes.controls.csv").is_file()


def test_the_sample_profiles_select_a_few_percent_and_find_violations(tmp_path: Path) -> None:
    from riskengine.evaluator import Engine
    from riskengine.store.history import SqlHistoryProvider

    count = 4000
    engine = connect(f"sqlite:///{tmp_path / 'demo.db'}")
    demo.write_demo(engine, count, seed=1)
    scorer = Engine.load(PROFILES, history=SqlHistoryProvider(engine, cache=True))
    selected = hits = 0
    records = list(demo.generate(count, seed=1))
    for record in records:
        result = scorer.score(record.declaration, record.declaration.header["date"])
        if result.fired:
            selected += 1
            hits += record.violation is not None
    engine.dispose()
    base_rate = sum(r.violation is not None for r in records) / count
    assert 0.01 < selected / count < 0.15
    assert hits / selected > 4 * base_rate


def _passport_body(text: str) -> list[str]:
    """The lines of a profile that decide what it selects (indicators to controls)."""
    lines = [line.strip() for line in text.splitlines()]
    start = lines.index("indicators {")
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("102 "))
    return [line for line in lines[start : end + 2] if line]


def test_the_demo_draft_is_the_readme_tutorial_profile_after_its_second_version() -> None:
    import re

    from riskengine.demo.lifecycle import DRAFT

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    tutorial = re.search(r"```\n(profile draft .*?)```", readme, re.S)
    assert tutorial is not None
    second = tutorial.group(1).replace("from 70", "from 100")  # the README's `sed` edit
    assert _passport_body(DRAFT) == _passport_body(second)


def test_the_demo_takes_the_draft_to_a_signed_bundle_and_scores_from_it(tmp_path: Path) -> None:
    from riskengine import registry as r
    from riskengine.bundle.keys import public_key_path
    from riskengine.demo.lifecycle import draft_to_bundle
    from riskengine.evaluator import Engine

    count = 3000
    engine = connect(f"sqlite:///{tmp_path / 'demo.db'}")
    try:
        demo.write_demo(engine, count, seed=DEFAULT_SEED)
        raws = [demo.raw_declaration(x) for x in demo.generate(count, DEFAULT_SEED)]
        first = draft_to_bundle(engine, tmp_path / "life", lambda: raws)
        assert first.submission == 1 and first.number == "1A/12/2025/00001-01"
        assert first.revision == 1 and first.editions == 1 and first.run_id is not None
        assert first.considered == count and 0 < first.selected < count
        assert first.scored is not None and first.fired == ("1A/12/2025/00001-01 (degree 100)",)
        # the bundle is what the clearance software loads: only the approved edition scores,
        # each result carries the revision
        scorer = Engine.load(first.bundle, public_key=public_key_path(tmp_path / "life/deploy.key"))
        fired = [raw for raw in raws if scorer.score(raw).fired]
        assert fired and all(scorer.score(raw).bundle_revision == 1 for raw in raws[:50])
        assert all(raw["date"] >= "2025-02-01" for raw in fired)  # in force from 2025-02-01
        # run again: the approved profile and the key are reused, the next revision is built
        again = draft_to_bundle(engine, tmp_path / "life", lambda: raws)
        assert again.submission is None and again.number == first.number
        assert again.revision == 2 and again.key_id == first.key_id
        assert r.verify(engine).ok
        with engine.connect() as connection:
            actions = [e.action for e in r.entries(connection)]
        assert actions == ["submit", "approve", "bundle", "bundle"]
    finally:
        engine.dispose()
