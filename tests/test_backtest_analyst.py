"""What analysts read from a backtest besides the summary (issue 11, items 14, 15, 17).

The full list of selected declarations and of the changes of a comparison, per-indicator firing
counts, the threshold sweep, the LOW threshold and a checked ``[backtest]`` configuration; control
results that name another procedure (warned about, or counted with ``--any-control``); money
summed exactly to the cent. Every figure below is computed by hand from the small store, and is
the same on SQLite, PostgreSQL and DuckDB, pushed down or on the Python fallback.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from riskengine.backtest.pushdown import PlannedProfile
from riskengine.backtest.run import BacktestOptions, BacktestResult, run_backtest
from riskengine.backtest.selected import ChangeRow, Lists, SelectedRow
from riskengine.cli import cli
from riskengine.sql.compile import register_functions
from riskengine.syntax import parse
from tests.backtest_store import write_store
from tests.test_backtest_report import assert_offline
from tests.test_backtest_report import parse as parse_html

D = dt.date
PERIOD = (D(2025, 1, 1), D(2025, 2, 28))

PROFILE = """
profile "Cheap or Chinese" {
    indicators {
        cheap: item.customs_value / item.net_mass < 10
        cn: item.origin in ("CN")
        never: item.origin in ("ZZ")
    }
    degree = 60 * cheap + 40 * cn
    controls {
        102 "Documentary check" mandatory from 40
        201 "Physical inspection" mandatory when cheap from 60
    }
}
"""

DRAFT = """
profile "Cheap only (draft)" {
    indicators { cheap: item.customs_value / item.net_mass < 10 }
    degree = 100 * cheap
    controls { 201 "Physical inspection" mandatory from 50 }
}
"""

DECLS = [
    (1, "D1", D(2025, 1, 10), "A"),  # CN, cheap: 100 -> 102, 201
    (2, "D2", D(2025, 1, 20), "A"),  # item 1 cheap: 60 -> 102, 201; item 2 CN: 40
    (3, "D3", D(2025, 2, 5), "B"),  # CN, mass missing: 40 -> 102
    (4, "D4", D(2025, 2, 6), "B"),  # 0
    (5, "D5", D(2025, 2, 7), "B"),  # no goods items: 0
    (6, "D6", D(2025, 3, 1), "B"),  # outside the period
]
ITEMS = [
    (1, 1, "CN", 50.0, 10.0),
    (2, 1, "DE", 50.0, 10.0),
    (2, 2, "CN", 200.0, 10.0),
    (3, 1, "CN", 50.0, None),
    (4, 1, "DE", 200.0, 10.0),
    (6, 1, "CN", 50.0, 10.0),
]
#: (pk, decl_pk, procedure, random, violation, revenue): 0.1 + 0.2 is 0.30000000000000004 in
#: floating point
CONTROLS = [
    (1, 1, "201", False, True, 0.1),
    (2, 1, "102", False, False, None),
    (3, 2, "102", False, True, 0.2),
    (4, 4, "201", True, True, 300.0),
]


def _profiles(*texts: str) -> list[PlannedProfile]:
    out = []
    for text in texts:
        p = parse(text).profiles[0]
        out.append(PlannedProfile(p.key, p))
    return out


def _engine(store_url: str, controls: list[Any] = CONTROLS) -> sa.Engine:
    from riskengine.store.engine import connect

    engine = connect(store_url)
    register_functions(engine)
    write_store(engine, DECLS, ITEMS, controls, D(2025, 2, 28))
    return engine


def _run(
    engine: sa.Engine, options: BacktestOptions, *texts: str, force: bool = False,
    lists: Lists | None = None,
) -> BacktestResult:  # fmt: skip
    from riskengine.store.schema import build_tables
    from riskengine.store.source import native_source

    with engine.connect() as conn:
        return run_backtest(
            conn, native_source(build_tables()), _profiles(*(texts or (PROFILE,))), options,
            record=False, force_python=force, lists=lists,
        )  # fmt: skip


# --- 17: money ---------------------------------------------------------------------------------


def test_revenue_is_an_exact_decimal_with_or_without_breakdowns(store_url: str) -> None:
    engine = _engine(store_url)
    try:
        plain = _run(engine, BacktestOptions(*PERIOD))
        by = _run(engine, BacktestOptions(*PERIOD, by=("office", "month")))
        python = _run(engine, BacktestOptions(*PERIOD, by=("office",)), force=True)
    finally:
        engine.dispose()
    for result in (plain, by, python):
        total = result.profiles[0].total
        assert total.revenue == Decimal("0.30")  # D1's 201 (0.1) + D2's 102 (0.2)
        assert str(total.revenue) == "0.30"
        assert total.revenue_per_control == Decimal("0.10")  # 0.30 / 3 controls
    assert dict(by.profiles[0].breakdowns["office"])["A"].revenue == Decimal("0.30")
    # the JSON says 0.3, never 0.30000000000000004
    data = plain.to_json()
    assert data["profiles"][0]["total"]["revenue"] == 0.3
    assert "0.30000000000000004" not in json.dumps(data)


def test_revenue_per_control_is_rounded_half_up_to_the_cent() -> None:
    from riskengine.backtest.metrics import per

    assert per(Decimal("1.00"), 8) == Decimal("0.13")  # 0.125
    assert per(Decimal("765800.25"), 2) == Decimal("382900.13")
    assert per(Decimal("1.00"), 0) is None


# --- 14 (d, e): thresholds ----------------------------------------------------------------------


def _cli_store(tmp_path: Path, controls: list[Any] = CONTROLS) -> tuple[str, Path, Path]:
    db = tmp_path / "store.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    write_store(engine, DECLS, ITEMS, controls, D(2025, 2, 28))
    engine.dispose()
    profile = tmp_path / "current.rp"
    profile.write_text(PROFILE, encoding="utf-8")
    draft = tmp_path / "draft.rp"
    draft.write_text(DRAFT, encoding="utf-8")
    return f"sqlite:///{db}", profile, draft


def _cli(*args: str) -> Any:
    return CliRunner().invoke(
        cli, ["backtest", *args, "--from", "2025-01-01", "--to", "2025-02-28", "--no-record"]
    )


def test_an_unknown_config_key_is_an_error_located_in_the_file(tmp_path: Path) -> None:
    url, profile, _ = _cli_store(tmp_path)
    config = tmp_path / "backtest.toml"
    config.write_text(
        "# the commission's values\n[backtest]\nhigh_selectivity = 1.0\nhigh_selectivty = 0.5\n",
        encoding="utf-8",
    )
    run = _cli(str(profile), "--db", url, "--config", str(config))
    assert run.exit_code == 2
    assert f"{config}:4: unknown key 'high_selectivty' in [backtest]" in run.output
    assert "did you mean 'high_selectivity'?" in run.output
    config.write_text("[backtest]\nhigh_selectivity = 1\nlow_selectivity = 2\n", "utf-8")
    run = _cli(str(profile), "--db", url, "--config", str(config))
    assert run.exit_code == 2
    assert f"{config}:3: low_selectivity (2 %) is above high_selectivity (1 %)" in run.output
    run = _cli(str(profile), "--db", url, "--low-selectivity", "101")
    assert run.exit_code == 2
    assert "--low-selectivity" in run.output and "between 0 and 100" in run.output


def test_a_config_without_a_backtest_table_is_an_error(tmp_path: Path) -> None:
    """Thresholds at the top level, or under a misspelt table, were silently ignored (HIGH
    stayed at 5 %): the file is refused, saying what it holds, and nothing is run."""
    url, profile, _ = _cli_store(tmp_path)
    config = tmp_path / "backtest.toml"
    for text, found in (
        ("high_selectivity = 1.0\n", "found 'high_selectivity'"),
        ("[backtset]\nhigh_selectivity = 1.0\n", "found [backtset]"),
        ("", "the file is empty"),
    ):
        config.write_text(text, "utf-8")
        run = _cli(str(profile), "--db", url, "--config", str(config))
        assert run.exit_code == 2, run.output
        assert f"{config}: no [backtest] table ({found}): the thresholds go under [backtest]" in (
            " ".join(run.output.split())
        )
        assert "Backtest" not in run.output
    config.write_text("[backtest]\nhigh_selectivity = 1.0\n", "utf-8")
    run = _cli(str(profile), "--db", url, "--config", str(config))
    assert run.exit_code == 0, run.output
    assert "HIGH = selectivity ≥ 1 %" in run.output


def test_low_selectivity_is_flagged_everywhere(tmp_path: Path) -> None:
    url, profile, draft = _cli_store(tmp_path)
    config = tmp_path / "backtest.toml"
    config.write_text("[backtest]\nhigh_selectivity = 50\nlow_selectivity = 50\n", "utf-8")
    # PROFILE selects 3 of 5 (60 %: HIGH); the draft 2 of 5 (40 %: LOW)
    run = _cli(str(profile), str(draft), "--db", url, "--config", str(config), "--format", "json")
    assert run.exit_code == 0, run.output
    data = json.loads(run.stdout)
    assert data["options"]["thresholds"] == {"high_selectivity": 50.0, "low_selectivity": 50.0}
    flags = {p["key"]: (p["total"]["high_selectivity"], p["total"]["low_selectivity"])
             for p in data["profiles"]}  # fmt: skip
    assert flags == {"Cheap or Chinese": (True, False), "Cheap only (draft)": (False, True)}
    run = _cli(str(profile), str(draft), "--db", url, "--config", str(config), "--format", "csv")
    rows = {(r["profile"], r["breakdown"]): r for r in csv.DictReader(io.StringIO(run.stdout))}
    draft_total = rows["Cheap only (draft)", "total"]
    assert (draft_total["low"], draft_total["high"]) == ("1", "0")
    run = _cli(str(profile), str(draft), "--db", url, "--config", str(config))
    # the summary shows the flag under the profile's key (the key's cell, next line)
    lines = run.stdout.splitlines()
    at = next(k for k, line in enumerate(lines) if "│ Cheap only (draft)" in line)
    assert lines[at + 1].split("│")[1].strip() == "LOW"
    assert "HIGH = selectivity ≥ 50 %, LOW = selectivity < 50 %" in run.stdout
    html = tmp_path / "r.html"
    run = _cli(str(profile), str(draft), "--db", url, "--config", str(config), "--html", str(html))
    text = html.read_text(encoding="utf-8")
    assert '<span class="flag low">LOW</span>' in text
    assert "<th>LOW selectivity threshold</th><td>&lt; 50 %</td>" in text


# --- 15: control results of another procedure --------------------------------------------------

#: Every control result names a procedure (991..994) that no profile orders.
OTHER = [(k, p, f"99{k}", False, v, r) for k, p, _, _, v, r in CONTROLS]


def test_controls_of_other_procedures_are_warned_about_or_counted(store_url: str) -> None:
    engine = _engine(store_url, OTHER)
    try:
        strict = _run(engine, BacktestOptions(*PERIOD))
        python = _run(engine, BacktestOptions(*PERIOD), force=True)
        loose = _run(engine, BacktestOptions(*PERIOD, any_control=True))
        loose_python = _run(engine, BacktestOptions(*PERIOD, any_control=True), force=True)
    finally:
        engine.dispose()
    total = strict.profiles[0].total
    assert (total.selected, total.controls_carried, total.hit_rate) == (3, 0, None)
    assert total.controls_any == 3  # D1: 2, D2: 1
    assert strict.warnings == (
        "Cheap or Chinese: its 3 selected declarations have 3 control results, none for a "
        "procedure it applied (102, 201): 0 controls counted; --any-control counts them",
    )
    assert python.warnings == strict.warnings and python.profiles[0].total == total
    counted = loose.profiles[0].total
    assert (counted.controls_carried, counted.hits, counted.revenue) == (3, 2, Decimal("0.30"))
    assert counted.hit_rate == pytest.approx(2 / 3)
    assert loose_python.profiles[0].total == counted
    assert "--any-control" in loose.warnings[0] and "they are counted" in loose.warnings[0]


def test_no_warning_when_the_procedures_match(store_url: str) -> None:
    engine = _engine(store_url)
    try:
        result = _run(engine, BacktestOptions(*PERIOD))
    finally:
        engine.dispose()
    assert result.warnings == ()
    assert result.profiles[0].total.controls_carried == 3


def test_the_cli_prints_the_warning_and_counts_with_any_control(tmp_path: Path) -> None:
    url, profile, _ = _cli_store(tmp_path, OTHER)
    run = _cli(str(profile), "--db", url)
    assert run.exit_code == 0
    assert "warning: Cheap or Chinese: its 3 selected declarations have 3 control results" in (
        run.stderr
    )
    html = tmp_path / "r.html"
    run = _cli(str(profile), "--db", url, "--html", str(html))
    text = html.read_text(encoding="utf-8")
    doc = parse_html(text)
    assert_offline(text, doc)
    warnings = doc.find("section", id="warnings").text()
    assert "Cheap or Chinese: its 3 selected declarations have 3 control results" in warnings
    run = _cli(str(profile), "--db", url, "--any-control", "--format", "json")
    total = json.loads(run.stdout)["profiles"][0]["total"]
    assert (total["controls_carried"], total["hits"], total["revenue"]) == (3, 2, 0.3)


# --- 14 (a): the full lists -----------------------------------------------------------------------

SELECTED_CSV = """\
profile,declaration,date,office,degree,controls,controls_carried,hits,hit,revenue
Cheap or Chinese,D1,2025-01-10,A,100.0,102;201,2,1,1,0.10
Cheap or Chinese,D2,2025-01-20,A,60.0,102;201,1,1,1,0.20
Cheap or Chinese,D3,2025-02-05,B,40.0,102,0,0,0,0.00
Cheap only (draft),D1,2025-01-10,A,100.0,201,1,1,1,0.10
Cheap only (draft),D2,2025-01-20,A,100.0,201,0,0,0,0.00
"""


def test_the_selected_list_and_the_changes(tmp_path: Path) -> None:
    url, profile, draft = _cli_store(tmp_path)
    selected, changes = tmp_path / "selected.csv", tmp_path / "changes.jsonl"
    run = _cli(str(profile), str(draft), "--db", url, "--selected", str(selected))
    assert run.exit_code == 0, run.output
    assert selected.read_text(encoding="utf-8") == SELECTED_CSV
    assert f"5 selected declarations written to {selected}" in run.stderr
    run = _cli(str(draft), "--compare", str(profile), "--db", url, "--changes", str(changes))
    assert run.exit_code == 0, run.output
    rows = [json.loads(line) for line in changes.read_text(encoding="utf-8").splitlines()]
    assert rows == [
        {"a": "Cheap only (draft)", "b": "Cheap or Chinese", "change": "no_longer_selected",
         "profile": "Cheap or Chinese", "declaration": "D3", "date": "2025-02-05", "office": "B",
         "degree": 40.0, "controls": ["102"], "controls_carried": 0, "hits": 0, "hit": False,
         "revenue": "0.00"},
    ]  # fmt: skip
    # the comparison's revenue delta is exact and signed: 0.30 - 0.10
    html = tmp_path / "cmp.html"
    run = _cli(str(profile), "--compare", str(draft), "--db", url, "--html", str(html))
    deltas = parse_html(html.read_text(encoding="utf-8")).find("table", **{"class": "deltas"})
    revenue = next(tr for tr in deltas.find_all("tr") if tr.text().startswith("Revenue"))
    assert [td.text() for td in revenue.find_all("td")] == ["Revenue", "0.30", "0.10", "+0.20"]


def test_list_files_are_checked_before_the_run(tmp_path: Path) -> None:
    url, profile, _ = _cli_store(tmp_path)
    run = _cli(str(profile), "--db", url, "--selected", str(tmp_path / "out.txt"))
    assert run.exit_code == 2 and "name a .csv or .jsonl file" in run.output
    run = _cli(str(profile), "--db", url, "--changes", str(tmp_path / "out.csv"))
    assert run.exit_code == 2 and "--changes needs --compare" in run.output
    assert not (tmp_path / "out.csv").exists()
    # a run that fails leaves neither the list nor a temporary file
    empty = tmp_path / "empty"
    empty.mkdir()
    sa.create_engine(f"sqlite:///{empty / 'none.db'}").dispose()
    run = _cli(str(profile), "--db", f"sqlite:///{empty / 'none.db'}", "--selected",
               str(empty / "out.csv"))  # fmt: skip
    assert run.exit_code != 0
    assert sorted(p.name for p in empty.iterdir() if not p.name.startswith("none.db")) == []


def test_lists_are_the_same_in_sql_and_in_python(store_url: str) -> None:
    """Pushed down, forced onto the Python fallback, and mixed (one side of the comparison in
    Python): the same rows on every engine."""
    draft, current = (parse(t).profiles[0].key for t in (DRAFT, PROFILE))
    options = BacktestOptions(*PERIOD, compare=((draft, current),))
    got: dict[str, tuple[list[SelectedRow], list[ChangeRow]]] = {}
    engine = _engine(store_url)
    try:
        for how, force in (("sql", False), ("python", True)):
            selected: list[SelectedRow] = []
            changed: list[ChangeRow] = []
            _run(engine, options, DRAFT, PROFILE, force=force,
                 lists=Lists(selected.append, changed.append))  # fmt: skip
            got[how] = (selected, changed)
        # mixed: the current profile rounds (round(x, 1) runs in Python only)
        rounded = PROFILE.replace("item.customs_value / item.net_mass < 10",
                                  "round(item.customs_value / item.net_mass, 1) < 10")  # fmt: skip
        selected, changed = [], []
        mixed = _run(engine, options, DRAFT, rounded, lists=Lists(selected.append, changed.append))
    finally:
        engine.dispose()
    assert [p.path for p in mixed.profiles] == ["sql", "python"]
    assert got["sql"] == got["python"]
    assert (selected, changed) == got["sql"]
    rows, changes = got["sql"]
    assert [(r.profile, r.declaration, r.controls, r.hit) for r in rows] == [
        (draft, "D1", ("201",), True),
        (draft, "D2", ("201",), False),
        (current, "D1", ("102", "201"), True),
        (current, "D2", ("102", "201"), True),
        (current, "D3", ("102",), False),
    ]
    assert [(c.change, c.row.profile, c.row.declaration) for c in changes] == [
        ("no_longer_selected", current, "D3")
    ]
    assert rows[2].revenue == Decimal("0.10") and rows[2].date == D(2025, 1, 10)


# --- 14 (b, c): indicator counts and the threshold sweep -----------------------------------------


def test_indicator_counts_and_sweep_by_hand_on_every_engine(store_url: str) -> None:
    options = BacktestOptions(*PERIOD, indicators=True, sweep=True)
    engine = _engine(store_url)
    try:
        sql = _run(engine, options).profiles[0]
        python = _run(engine, options, force=True).profiles[0]
    finally:
        engine.dispose()
    assert (sql.path, python.path) == ("sql", "python")
    # cheap: D1 and D2's first item; cn: D1, D2's second item, D3; never: nowhere
    assert [(i.name, i.items, i.declarations) for i in sql.indicators] == [
        ("cheap", 2, 2), ("cn", 3, 3), ("never", 0, 0),
    ]  # fmt: skip
    # degrees D1 100, D2 60, D3 40, D4 0, D5 0 (no items); controls of 102 and 201: D1 2 (1 hit,
    # 0.10), D2 1 (1 hit, 0.20), D4 1 (random, 1 hit, 300.00)
    points = {p.threshold: p for p in sql.sweep}
    assert sorted(points) == [float(t) for t in range(0, 101, 5)]
    by_hand = {0: (5, 4, 3, "300.30"), 5: (3, 3, 2, "0.30"), 40: (3, 3, 2, "0.30"),
               45: (2, 3, 2, "0.30"), 60: (2, 3, 2, "0.30"), 65: (1, 2, 1, "0.10"),
               100: (1, 2, 1, "0.10")}  # fmt: skip
    for t, (sel, carried, hits, revenue) in by_hand.items():
        p = points[float(t)]
        assert (p.selected, p.controls_carried, p.hits, p.revenue) == (
            sel,
            carried,
            hits,
            Decimal(revenue),
        ), t
        assert p.selectivity == pytest.approx(100 * sel / 5)
    # at the profile's own lowest threshold (40) the sweep selects what the profile selects
    assert points[40.0].selected == sql.total.selected
    assert python.indicators == sql.indicators
    assert python.sweep == sql.sweep


def test_indicators_and_sweep_in_the_outputs(tmp_path: Path) -> None:
    url, profile, _ = _cli_store(tmp_path)
    html = tmp_path / "r.html"
    run = _cli(str(profile), "--db", url, "--indicators", "--sweep", "--html", str(html))
    assert run.exit_code == 0, run.output
    assert "Indicators: where each was true" in run.stdout
    assert "never never" in run.stdout  # the dead indicator, flagged
    assert "Threshold sweep: Cheap or Chinese" in run.stdout
    text = html.read_text(encoding="utf-8")
    doc = parse_html(text)
    assert_offline(text, doc)  # well-formed, nothing fetched
    assert "<h3>Threshold sweep</h3>" in text and "NEVER TRUE" in text
    assert text.count('<svg class="chart"') == 4  # two by month, two by threshold
    sweep = doc.find("table", **{"class": "sweep"})
    first = [td.text() for td in sweep.find_all("tr")[1].find_all("td")]
    assert first == ["0", "5", "100.00", "4", "3", "75.00", "300.30"]
    run = _cli(str(profile), "--db", url, "--sweep", "--format", "json")
    data = json.loads(run.stdout)["profiles"][0]
    assert data["indicators"] == []  # not asked
    first = data["sweep"][0]
    assert (first["threshold"], first["selected"], first["revenue"]) == (0.0, 5, 300.3)


def test_the_lists_are_ordered_by_code_point_on_every_engine(store_url: str) -> None:
    """PostgreSQL's locale would put "a_3" before "B-2"; the lists sort ids by code point, as
    Python sorts the fallback's."""
    from riskengine.store.engine import connect

    ids = ["b-1", "B-2", "a_3", "Ä4", "a-3"]
    decls = [(k, i, D(2025, 1, 10), "A") for k, i in enumerate(ids, 1)]
    items = [(k, 1, "CN", 50.0, 10.0) for k in range(1, len(ids) + 1)]
    engine = connect(store_url)
    register_functions(engine)
    write_store(engine, decls, items, [], D(2025, 2, 28))
    orders = []
    try:
        for force in (False, True):
            rows: list[SelectedRow] = []
            _run(engine, BacktestOptions(*PERIOD), force=force, lists=Lists(rows.append))
            orders.append([r.declaration for r in rows])
    finally:
        engine.dispose()
    assert orders[0] == orders[1] == sorted(ids) == ["B-2", "a-3", "a_3", "b-1", "Ä4"]
