"""A regional profile applies only where an office's fill is valid: the sample profile selects in
the demo period, and where no fill is valid every command says so (check, backtest, score)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from riskengine import demo
from riskengine.cli import cli
from riskengine.store.engine import connect

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "profiles"
REGIONAL = "1A/20/2023/00005-01"
FILL_OFFICES = {"UA100110", "UA500110"}
PERIOD = ("--from", "2024-01-01", "--to", "2025-12-31")

#: The sample regional profile with one fill of Kyiv valid only in the fourth quarter of 2026.
ONLY_2026 = """\
fill for 1A/20/2023/00005-01 {
    office UA100110 "Kyiv"
    order "412" of 2026-09-24
    valid 2026-10-01 .. 2026-12-31
    values {
        headings = ("8418", "8450", "8516", "8528")
        origins = ("CN", "TR", "KR")
        max_unit_price = 185.50
    }
}
"""


def run(*args: str | Path, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], input=stdin, env={"NO_COLOR": "1"})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The store of `riskengine demo`: 10,000 declarations over 2024-2025, seed 1."""
    path = tmp_path_factory.mktemp("regional") / "demo.db"
    engine = connect(f"sqlite:///{path}")
    demo.write_demo(engine, 10_000, seed=1)
    engine.dispose()
    return str(path)


@pytest.fixture()
def only_2026(tmp_path: Path) -> Path:
    folder = tmp_path / "only2026"
    folder.mkdir()
    (folder / "regional_unit_price.rp").write_text(
        (PROFILES / "regional_unit_price.rp").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (folder / "fill.rp").write_text(ONLY_2026, encoding="utf-8")
    return folder


def _office_rows(output: str) -> dict[str, list[str]]:
    """The regional profile's rows of the "By office" table: office → the other cells."""
    rows: dict[str, list[str]] = {}
    table = output[output.index("By office") :]
    current = None
    for line in table.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if not cells:
            continue
        if cells[0] == REGIONAL:
            current = cells[1]
            rows[current] = cells[2:]
        elif current is not None and cells[0] == "" and cells[-1]:
            rows[current][-1] += " " + cells[-1]  # a wrapped note
    return rows


def test_the_sample_regional_profile_selects_in_the_demo_period(store: str) -> None:
    done = run("backtest", PROFILES, "--db", store, *PERIOD, "--by", "office", "--no-record")
    assert done.exit_code == 0, done.output
    summary = next(ln for ln in done.output.splitlines() if ln.startswith(f"│ {REGIONAL}"))
    selected = int(summary.split("│")[3].replace(",", ""))  # key, name, selected
    assert selected > 0
    assert (
        f"{REGIONAL}: regional, applied at UA100110, UA500110; at every other office not "
        "applied: no fill valid"
    ) in done.output
    rows = _office_rows(done.output)
    assert set(rows) > FILL_OFFICES
    for office, cells in rows.items():
        picked = int(cells[1].replace(",", ""))
        if office in FILL_OFFICES:
            assert cells[-1] == "", office
        else:
            assert picked == 0 and cells[-1] == "not applied: no fill valid", (office, cells)
    assert sum(int(rows[o][1].replace(",", "")) for o in FILL_OFFICES) == selected
    assert all(int(rows[o][1].replace(",", "")) > 0 for o in FILL_OFFICES)


def test_a_backtest_without_a_valid_fill_says_so_everywhere(
    store: str, only_2026: Path, tmp_path: Path
) -> None:
    html = tmp_path / "r.html"
    done = run("backtest", only_2026, "--db", store, *PERIOD, "--by", "office", "--html", html,
               "--no-record")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert (
        f"{REGIONAL}: regional, not applied: no fill valid in 2024-01-01 .. 2025-12-31 at any "
        "office: it selects nothing"
    ) in done.output
    rows = _office_rows(done.output)
    assert len(rows) == len(demo.OFFICES)
    assert {cells[-1] for cells in rows.values()} == {"not applied: no fill valid"}
    page = html.read_text(encoding="utf-8")
    assert "It is regional and no office's fill is valid in the period." in page
    notes = re.findall(r'<span class="note">([^<]*)</span>', page)
    assert notes == ["not applied: no fill valid"] * len(demo.OFFICES)
    as_json = run("backtest", only_2026, "--db", store, *PERIOD, "--format", "json",
                  "--no-record")  # fmt: skip
    (profile,) = json.loads(as_json.output)["profiles"]
    assert profile["fills_valid"] == {} and profile["total"]["selected"] == 0


def test_a_fill_valid_in_part_of_the_period_names_the_days_without_one(store: str) -> None:
    done = run("backtest", PROFILES / "regional_unit_price.rp", PROFILES / "fills", "--db", store,
               "--from", "2025-10-01", "--to", "2026-09-30", "--by", "office", "--format", "csv",
               "--no-record")  # fmt: skip
    assert done.exit_code == 0, done.output
    notes = {
        row["group"]: row["note"]
        for row in csv.DictReader(io.StringIO(done.output))
        if row["breakdown"] == "office"
    }
    # Kyiv's fills: the last quarter of 2025, then none until October 2026; Odesa's: every day
    assert notes["UA100110"] == "no fill valid 2026-01-01 .. 2026-09-30"
    assert notes["UA500110"] == ""
    assert notes["UA209140"] == "not applied: no fill valid"
    as_json = run("backtest", PROFILES / "regional_unit_price.rp", PROFILES / "fills", "--db",
                  store, "--from", "2025-10-01", "--to", "2026-09-30", "--format", "json",
                  "--no-record")  # fmt: skip
    (profile,) = json.loads(as_json.output)["profiles"]
    assert profile["fills_valid"] == {
        "UA100110": [["2025-10-01", "2025-12-31"]],
        "UA500110": [["2025-10-01", "2026-09-30"]],
    }


def test_check_warns_where_the_profile_has_no_valid_fill(only_2026: Path) -> None:
    done = run("check", only_2026)
    assert done.exit_code == 0, done.output
    assert re.search(
        r"regional_unit_price\.rp:6:\d+: warning\[RE415\]: no office's fill is valid on "
        r"2024-01-01 \.\. 2026-09-30 of the in-force period \(2024-01-01 \.\. 2026-12-31\): the "
        r"regional profile 1A/20/2023/00005-01 applies to no declaration on those 1004 days",
        done.output,
    ), done.output
    alone = run("check", only_2026 / "regional_unit_price.rp")
    assert "warning[RE415]: no fill is loaded for the regional profile" in alone.output
    assert run("check", PROFILES).output.strip().endswith("0 errors, 0 warnings")


def test_score_notes_each_office_without_a_valid_fill(only_2026: Path) -> None:
    lines = [
        {"id": f"D{n}", "date": "2025-03-01", "office": office,
         "items": [{"hs_code": "8418102000", "origin": "CN", "customs_value": 100, "net_mass": 10}]}
        for n, office in enumerate(("UA209140", "UA209140", "UA100110", "UA305030"))
    ]  # fmt: skip
    batch = run("score", "--profiles", only_2026,
                stdin="".join(json.dumps(x) + "\n" for x in lines))  # fmt: skip
    assert batch.exit_code == 0, batch.output
    assert batch.stderr.splitlines() == [
        f"note: regional profile {REGIONAL} not applied: no fill valid for office UA100110 "
        "(1 declaration)",
        f"note: regional profile {REGIONAL} not applied: no fill valid for office UA209140 "
        "(2 declarations)",
        f"note: regional profile {REGIONAL} not applied: no fill valid for office UA305030 "
        "(1 declaration)",
    ]
    assert [json.loads(x)["fired"] for x in batch.stdout.splitlines()] == [[]] * 4
    # with the sample fills, Kyiv has one in 2025: only the other office is noted
    sample = run("score", "--profiles", PROFILES,
                 stdin="".join(json.dumps(x) + "\n" for x in lines[2:]))  # fmt: skip
    assert sample.stderr.splitlines() == [
        f"note: regional profile {REGIONAL} not applied: no fill valid for office UA305030 "
        "(1 declaration)"
    ]
    assert json.loads(sample.stdout.splitlines()[0])["fired"][0]["key"] == REGIONAL


def test_score_of_one_declaration_notes_its_office(tmp_path: Path) -> None:
    one = tmp_path / "one.json"
    one.write_text(json.dumps({"id": "D1", "date": "2025-03-01", "office": "UA209140"}))
    done = run("score", one, "--profiles", PROFILES)
    assert done.exit_code == 0, done.output
    assert done.stderr == (
        f"note: regional profile {REGIONAL} not applied: no fill valid for office UA209140 on "
        "2025-03-01\n"
    )
    assert json.loads(done.stdout)["fired"] == []
