"""KPI passports (parsing, located errors), targets (mean, trimmed mean with fewer than 5 periods
and ties), the 1–5 scale at its edges, the total, and ``riskengine kpi`` on a small store."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from riskengine.cli import cli
from riskengine.kpi.passport import (
    Direction,
    PassportError,
    Scale,
    TargetMethod,
    default_passports_dir,
    load_passports,
    parse_passport,
)
from riskengine.kpi.targets import attainment, mean, score, total, trimmed_mean
from riskengine.store import migrate
from tests.test_kpi_metrics import write_kpi_store

GOOD = """\
id = "green"
name = "Green corridor"
goal = "Release low-risk goods fast"
indicator = "Share of declarations without control"
unit = "%"
periodicity = "monthly"
responsible = "Risk management department"
direction = "higher"

[source]
metric = "corridor_share"
corridor = "green"

[baseline]
year = 2024
value = 50.0

[target]
method = "normative"
value = 40.0
"""


def test_a_passport_is_read() -> None:
    p = parse_passport(GOOD, "green.toml")
    assert (p.id, p.direction, p.source.metric, dict(p.source.params)) == (
        "green", Direction.HIGHER, "corridor_share", {"corridor": "green"}
    )  # fmt: skip
    assert (p.baseline_year, p.baseline_value, p.target.method, p.target.value) == (
        2024, 50.0, TargetMethod.NORMATIVE, 40.0
    )  # fmt: skip
    assert p.scale == Scale() and p.year_start_month == 1


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ('direction = "higher"', 'direction = "up"',
         "green.toml:8: direction: must be one of higher, lower, not 'up'"),
        ('corridor = "green"', 'corridor = "blue"',
         "green.toml:12: source.corridor: must be one of green, yellow, red, not 'blue'"),
        ('metric = "corridor_share"', 'metric = "corridor_shares"',
         "green.toml:11: source.metric: unknown metric 'corridor_shares'; did you mean "
         "'corridor_share'?"),
        ('corridor = "green"', 'corridor = "green"\nwieght = "customs_value"',
         "green.toml:13: source.wieght: metric 'corridor_share' has no parameter 'wieght'; "
         "did you mean 'weight'?"),
        ('method = "normative"', 'method = "avg"',
         "green.toml:19: target.method: must be one of limit, normative, mean, trimmed_mean, "
         "not 'avg'"),
        ('method = "normative"\nvalue = 40.0', 'method = "mean"\nvalue = 40.0',
         "green.toml:20: target.value: method 'mean' computes the target from past periods"),
        ('method = "normative"\nvalue = 40.0', 'method = "trimmed_mean"',
         "green.toml:19: target.method: method 'trimmed_mean' needs exactly one of"),
        ("value = 50.0", 'value = "fifty"',
         "green.toml:16: baseline.value: must be a number, not 'fifty'"),
        ("year = 2024", "year = 24", "green.toml:15: baseline.year: must be a year"),
        ('periodicity = "monthly"', 'periodicity = "weekly"',
         "green.toml:6: periodicity: must be one of monthly, quarterly, half-yearly, annual"),
        ('unit = "%"', 'unit = "%"\ncolour = "red"', "green.toml:6: colour: unknown key"),
        ('[source]\nmetric = "corridor_share"\ncorridor = "green"',
         '[source]\nsql = "SELECT 1 FROM declarations WHERE date >= :start"',
         "green.toml:11: source.sql: unknown parameter :start (the query may use :period_start"),
        ('[source]\nmetric = "corridor_share"\ncorridor = "green"',
         '[source]\nsql = "DELETE FROM declarations"',
         "green.toml:11: source.sql: must be one SELECT statement"),
        ('[source]\nmetric = "corridor_share"', '[source]\nmetric = "corridor_share"\nsql = "x"',
         "green.toml:10: source: needs exactly one of 'metric'"),
        ('value = 40.0', 'value = 40.0\n[scale]\nthresholds = [1.0, 0.9, 0.9, 0.5]',
         "green.toml:22: scale.thresholds: must be positive and strictly decreasing"),
        ('id = "green"', 'id = "Green Corridor"', "green.toml:1: id: must be lower-case"),
        ('goal = "Release low-risk goods fast"\n', "",
         "green.toml: goal: the passport has no 'goal'"),
        ('[target]', '[target', "green.toml:18: invalid TOML"),
    ],
)  # fmt: skip
def test_located_errors(old: str, new: str, where: str) -> None:
    assert old in GOOD
    with pytest.raises(PassportError) as caught:
        parse_passport(GOOD.replace(old, new, 1), "green.toml")
    assert str(caught.value).startswith(where), str(caught.value)


def test_duplicate_ids_and_missing_folder(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "b.toml").write_text(GOOD, encoding="utf-8")
    with pytest.raises(PassportError, match=r"b\.toml:1: id: the id 'green' is already used"):
        load_passports([tmp_path])
    with pytest.raises(PassportError, match="no such file or folder"):
        load_passports([tmp_path / "nope"])


def test_shipped_passports_are_valid() -> None:
    passports = load_passports([default_passports_dir()])
    assert len(passports) >= 8
    assert {p.source.metric for p in passports} >= {
        "released_without_physical_inspection", "corridor_share", "aeo_share", "hit_rate",
        "revenue_per_control", "reviews_on_time",
    }  # fmt: skip
    assert any(p.source.sql for p in passports)


# --- targets ---------------------------------------------------------------------------------


def test_mean_and_trimmed_mean() -> None:
    assert mean([1.0, 2.0, 6.0]).value == 3.0
    # 7 values: drop 1, 2 (worst) and 90, 100 (best): mean of 3, 4, 5
    t = trimmed_mean([100.0, 1.0, 4.0, 2.0, 90.0, 5.0, 3.0], Direction.HIGHER)
    assert t.value == 4.0
    assert t.note == ("mean of 3 of 7 past periods, the 2 highest (best) and the 2 worst dropped")
    # exactly 5: only the middle one is left
    assert trimmed_mean([5.0, 1.0, 3.0, 2.0, 4.0], Direction.LOWER).value == 3.0
    # lower is better: the best are the lowest; the same values are dropped
    assert "2 lowest (best)" in trimmed_mean([1.0] * 6, Direction.LOWER).note


def test_trimmed_mean_ties() -> None:
    # ties at both ends: whichever equal value is dropped, the rest is the same; a third 7
    # stays (only 2 best are dropped, however many are tied for best)
    assert trimmed_mean([7.0, 7.0, 7.0, 1.0, 1.0, 4.0], Direction.HIGHER).value == 5.5
    assert trimmed_mean([2.0, 2.0, 2.0, 2.0, 2.0], Direction.HIGHER).value == 2.0
    assert trimmed_mean([9.0, 9.0, 1.0, 1.0, 5.0, 5.0], Direction.HIGHER).value == 5.0


@pytest.mark.parametrize(
    ("values", "expected", "note"),
    [
        (
            [4.0, 8.0, 9.0, 3.0],
            6.0,
            "only 4 past periods (the trimmed mean needs at least 5): plain mean used",
        ),
        ([10.0, 20.0], 15.0, "only 2 past periods"),
        ([7.0], 7.0, "only 1 past period (the"),
    ],
)
def test_trimmed_mean_with_fewer_than_5_periods_is_the_plain_mean(
    values: list[float], expected: float, note: str
) -> None:
    t = trimmed_mean(values, Direction.HIGHER)
    assert t.value == expected
    assert t.note.startswith(note)
    with pytest.raises(ValueError, match="no past value"):
        trimmed_mean([], Direction.HIGHER)


# --- the scale and the total ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("actual", "target", "direction", "points"),
    [
        (100.0, 100.0, Direction.HIGHER, 5),  # reached exactly
        (120.0, 100.0, Direction.HIGHER, 5),
        (99.99, 100.0, Direction.HIGHER, 4),  # just under: 4
        (95.0, 100.0, Direction.HIGHER, 4),  # 0.95: still 4
        (94.99, 100.0, Direction.HIGHER, 3),
        (85.0, 100.0, Direction.HIGHER, 3),
        (84.99, 100.0, Direction.HIGHER, 2),
        (70.0, 100.0, Direction.HIGHER, 2),
        (69.99, 100.0, Direction.HIGHER, 1),
        (0.0, 100.0, Direction.HIGHER, 1),
        (5.0, 0.0, Direction.HIGHER, 5),  # a target of 0 is reached by anything
        (10.0, 10.0, Direction.LOWER, 5),
        (8.0, 10.0, Direction.LOWER, 5),  # below a lower-is-better target
        (10.0 / 0.95, 10.0, Direction.LOWER, 4),  # ratio 0.95
        (12.0, 10.0, Direction.LOWER, 2),  # ratio 0.833
        (20.0, 10.0, Direction.LOWER, 1),  # ratio 0.5
        (0.0, 10.0, Direction.LOWER, 5),  # nothing at all: the best
        (0.0, 0.0, Direction.LOWER, 5),
        (3.0, 0.0, Direction.LOWER, 1),  # target 0, actual above
    ],
)
def test_scale_edges(actual: float, target: float, direction: Direction, points: int) -> None:
    assert score(actual, target, direction).points == points


def test_configured_scale_and_negative_values() -> None:
    strict = Scale((1.0, 0.99, 0.98, 0.97))
    assert score(98.5, 100.0, Direction.HIGHER, strict).points == 3
    assert score(90.0, 100.0, Direction.HIGHER, strict).points == 1
    assert attainment(50.0, 200.0, Direction.HIGHER) == 0.25
    with pytest.raises(ValueError, match="at least 0"):
        score(-1.0, 10.0, Direction.HIGHER)


def test_total_is_the_sum_over_5_n() -> None:
    t = total([5, 4, 3, 1])
    assert (t.points, t.maximum, t.n, t.value) == (13, 20, 4, 0.65)
    assert total([]).value is None


# --- riskengine kpi --------------------------------------------------------------------------


@pytest.fixture
def kpi_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'kpi.db'}"
    migrate.init(url)
    engine = sa.create_engine(url)
    write_kpi_store(engine)
    engine.dispose()
    return url


def _passport(folder: Path, name: str, text: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.toml").write_text(text, encoding="utf-8")


@pytest.fixture
def passports(tmp_path: Path) -> Path:
    folder = tmp_path / "kpis"
    _passport(folder, "1-green", GOOD)  # actual 2025: 1 of 6 = 16.7 %; target 40: ratio 0.42
    _passport(
        folder,
        "2-aeo",
        GOOD.replace('id = "green"', 'id = "aeo"')
        .replace('name = "Green corridor"', 'name = "AEO share"')
        .replace('metric = "corridor_share"\ncorridor = "green"', 'metric = "aeo_share"')
        .replace(
            'method = "normative"\nvalue = 40.0',
            'method = "trimmed_mean"\nvalues = [10.0, 20.0, 30.0, 40.0, 99.0]',
        ),
    )
    _passport(
        folder,
        "3-random",
        GOOD.replace('id = "green"', 'id = "random-hits"')
        .replace('name = "Green corridor"', 'name = "Random hit rate"')
        .replace(
            'metric = "corridor_share"\ncorridor = "green"',
            'metric = "hit_rate"\ncontrol = "random"',
        )
        .replace('method = "normative"\nvalue = 40.0', 'method = "mean"\npast_periods = 1'),
    )
    _passport(folder, "4-reviews", GOOD.replace('id = "green"', 'id = "reviews"')
              .replace('name = "Green corridor"', 'name = "Reviews on time"')
              .replace('metric = "corridor_share"\ncorridor = "green"',
                       'metric = "reviews_on_time"'))  # fmt: skip
    return folder


def test_report_in_the_terminal(kpi_db: str, passports: Path) -> None:
    result = CliRunner().invoke(
        cli, ["kpi", "report", "--db", kpi_db, "--year", "2025", "--passports", str(passports)],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.output
    assert "KPI report 2025: 4 KPIs, period 2025" in out
    for heading in ("KPI", "Indicator", "Baseline", "Target", "Actual", "Unit", "Source",
                    "Periodicity", "Score"):  # fmt: skip
        assert heading in out
    lines = {line.split("│")[1].strip(): line for line in out.splitlines() if "│" in line}
    # green: 1 of 6 = 16.7 % against 40: ratio 0.42, 1 point
    assert re.search(r"2024: 50\.0 │ +40\.0 │ +16\.7 │ % .* │ 1 \(0\.42\)",
                     lines["Green corridor"])  # fmt: skip
    assert "green: target: normative value" in out
    # AEO 2 of 6 = 33.3 % against the trimmed mean of 10..99 without 2+2: 30; ratio 1.11
    assert re.search(r"30\.0 │ +33\.3 │ .* │ 5 \(1\.11\)", lines["AEO share"])
    # random hit rate 2025: D4 hit, D5 clean = 50 % [9.5–90.5]; target: the mean of 2024,
    # which had no random control: no target, not scored
    assert re.search(r"50\.0 \[9\.5–90\.5\]", lines["Random hit rate"])
    assert "total (all offices): 6 / (5 × 2) = 0.60 (60 %); 2 of 4 KPIs not scored" in out
    assert "aeo: target: mean of 1 of 5 past periods, the 2 highest (best) and the 2 worst " \
        "dropped" in out  # fmt: skip
    assert "random-hits: not scored: no target: no past period with data (1 looked at)" in out
    assert "reviews: not scored: no data in the period" in out  # no review records


def test_report_by_office(kpi_db: str, passports: Path) -> None:
    result = CliRunner().invoke(
        cli, ["kpi", "report", "--db", kpi_db, "--year", "2025", "--by", "office",
              "--passports", str(passports / "1-green.toml")], env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "KPIs 2025, office A" in result.output and "KPIs 2025, office B" in result.output
    # office A: 1 of 3 green = 33.3 % (ratio 0.83: 2 points); office B: none green (1 point)
    assert "total (office A): 2 / (5 × 1) = 0.40 (40 %)" in result.output
    assert "total (office B): 1 / (5 × 1) = 0.20 (20 %)" in result.output


def test_reporting_year_in_a_passport(kpi_db: str, tmp_path: Path) -> None:
    folder = tmp_path / "oct"
    _passport(
        folder,
        "green",
        GOOD.replace('direction = "higher"', 'direction = "higher"\nyear_start_month = 10'),
    )
    result = CliRunner().invoke(
        cli, ["kpi", "report", "--db", kpi_db, "--year", "2025", "--passports", str(folder)],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "period 2025 (2024-10..2025-09)" in result.output
    assert re.search(r"│ +20\.0 │", result.output)  # D7 D1 D2 D3 D4: only D1 green


def test_bad_passport_is_status_2_with_the_place(kpi_db: str, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    _passport(folder, "green", GOOD.replace('direction = "higher"', 'direction = "up"'))
    result = CliRunner().invoke(
        cli, ["kpi", "report", "--db", kpi_db, "--year", "2025", "--passports", str(folder)]
    )
    assert result.exit_code == 2
    assert f"error: {folder / 'green.toml'}:8: direction: must be one of higher, lower" in (
        result.output
    )
    assert "Traceback" not in result.output


def test_failing_sql_source_names_the_file(kpi_db: str, tmp_path: Path) -> None:
    folder = tmp_path / "sql"
    _passport(
        folder,
        "q",
        GOOD.replace(
            'metric = "corridor_share"\ncorridor = "green"', 'sql = "SELECT nope FROM declarations"'
        ),
    )
    result = CliRunner().invoke(
        cli, ["kpi", "report", "--db", kpi_db, "--year", "2025", "--passports", str(folder)]
    )
    assert result.exit_code == 1
    assert f"error: {folder / 'q.toml'}: source: the SQL source failed: no such column: nope" \
        in result.output  # fmt: skip


def test_kpi_check(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["kpi", "check"])
    assert result.exit_code == 0, result.output
    assert re.search(r"\d+ passports, no errors", result.output)
    assert "reviews-on-time: reviews_on_time, target limit, higher is better" in result.output


def test_report_on_a_missing_store(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["kpi", "report", "--db", str(tmp_path / "none.db"), "--year", "2025"]
    )
    assert result.exit_code == 1
    assert "riskengine db init" in result.output
    assert not (tmp_path / "none.db").exists()


def test_trimmed_mean_target_from_the_store_with_few_periods(kpi_db: str) -> None:
    from riskengine.kpi.report import build_report
    from riskengine.store.engine import connect
    from riskengine.store.schema import build_tables

    text = GOOD.replace('method = "normative"\nvalue = 40.0',
                        'method = "trimmed_mean"\npast_periods = 3')  # fmt: skip
    engine = connect(kpi_db)
    try:
        report = build_report(engine, build_tables(), [parse_passport(text, "g.toml")], 2025)
    finally:
        engine.dispose()
    [row] = report.rows
    # 2022 and 2023 have no declaration; 2024: D7 yellow, D8 green = 50 %
    assert row.past == (("2022", None), ("2023", None), ("2024", 50.0))
    assert row.target == 50.0
    assert row.target_note == (
        "only 1 past period (the trimmed mean needs at least 5): plain mean used; "
        "2 without data skipped"
    )
    assert row.score is not None and row.score.points == 1  # 16.7 / 50 = 0.33


def test_docs_kpi_md_shows_the_real_report(tmp_path: Path) -> None:
    """docs/kpi.md's report is what `kpi report` prints on the demo store (the demo's data:
    demo-data with the same default seed and size as `riskengine demo`)."""
    root = Path(__file__).resolve().parent.parent
    doc = (root / "docs" / "kpi.md").read_text(encoding="utf-8")
    command = "$ riskengine kpi report --db riskengine-demo/riskengine.db --year 2025\n"
    shown = doc.split(command, 1)[1].split("\n```", 1)[0]
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    runner = CliRunner()
    made = runner.invoke(cli, ["demo-data", "--db", url, "--quiet"])
    assert made.exit_code == 0, made.output
    result = runner.invoke(cli, ["kpi", "report", "--db", url, "--year", "2025"])
    assert result.exit_code == 0, result.output
    printed = "\n".join(line.rstrip() for line in result.output.splitlines())
    assert printed == shown
    by_office = runner.invoke(
        cli, ["kpi", "report", "--db", url, "--year", "2025", "--by", "office"]
    )
    totals = [line for line in by_office.output.splitlines() if line.startswith("total (")]
    assert "\n".join(totals) in doc
