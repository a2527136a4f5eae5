"""The backtest's SQL path against the Python evaluator, declaration by declaration, per backend.

Hypothesis draws profiles (every expression form, exceptions, regional fills, history) and a
small store (0–4 goods items per declaration, NULLs, boundary values, empty strings, Unicode,
clearance outcomes and control results that make history). For every declaration of the period
the pushed-down SQL must agree with the evaluator scoring it alone on its own date, with history
read from the store by :class:`SqlHistoryProvider`: fired or not, the highest degree among fired
items, and the set of procedure codes applied. Profiles that cannot run as SQL on the backend
take the Python fallback, which is checked the same way.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Sequence
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from riskengine import model as m
from riskengine.backtest.fallback import run_fallback, score_declarations
from riskengine.backtest.metrics import read_groups
from riskengine.backtest.pushdown import PlannedProfile, build_query, declaration_query, plan
from riskengine.backtest.run import BacktestOptions, run_backtest
from riskengine.declaration import Declaration
from riskengine.evaluator import CompiledProfile
from riskengine.format import format_fill, format_profile
from riskengine.sql.compile import register_functions
from riskengine.store.history import SqlHistoryProvider, history_select, history_select_many
from riskengine.store.schema import build_tables
from riskengine.store.source import native_source
from riskengine.syntax import parse
from tests.eval_strategies import REASONS, declarations_for_history, profile_files

# Days close enough for the 30-day windows to matter (30 and 31 days apart) and across fills.
DAYS = (
    dt.date(2020, 1, 1),
    dt.date(2020, 1, 31),
    dt.date(2020, 2, 1),
    dt.date(2020, 6, 15),
    dt.date(2020, 7, 15),
    dt.date(2020, 12, 31),
)
PERIOD = (dt.date(2019, 1, 1), dt.date(2021, 12, 31))
PROCEDURES = ("102", "201", "301")
TABLES = build_tables()
SOURCE = native_source(TABLES)


@st.composite
def stores(draw: st.DrawFn) -> list[dict[str, Any]]:
    """1–5 declarations, each with a date, maybe a clearance outcome and control results."""
    out = []
    for k in range(draw(st.integers(1, 5))):
        decl = draw(declarations_for_history())
        header = dict(decl.header)
        header["date"] = draw(st.sampled_from(DAYS))
        outcome = draw(
            st.none()
            | st.tuples(st.booleans(), st.lists(st.sampled_from((*REASONS, "0105")), max_size=2))
        )
        controls = draw(
            st.lists(
                st.tuples(st.sampled_from(PROCEDURES), st.booleans(), st.booleans()),
                max_size=2,
                unique_by=lambda c: c[0],
            )
        )
        out.append(
            {
                "decl": Declaration(header=header, items=decl.items, id=f"D{k}"),
                "outcome": outcome,
                "controls": controls,
            }
        )
    return out


def _load(engine: sa.Engine, data: Sequence[dict[str, Any]]) -> None:
    t = TABLES
    cols = t.field_columns
    for table in (t.control_results, t.outcome_reasons, t.outcomes, t.items, t.declarations):
        with engine.begin() as conn:  # one by one: DuckDB checks foreign keys per statement
            conn.execute(table.delete())
    with engine.begin() as conn:
        decls, items, outcomes, reasons, done = [], [], [], [], []
        for pk, entry in enumerate(data, 1):
            decl: Declaration = entry["decl"]
            row: dict[str, Any] = {"pk": pk, "id": decl.id}
            for name in cols:
                if name.startswith("declaration.") and name != "declaration.id":
                    row[cols[name]] = decl.header.get(name.partition(".")[2])
            decls.append(row)
            for n, item in enumerate(decl.items, 1):
                irow: dict[str, Any] = {"decl_pk": pk, "item_no": n}
                for name in cols:
                    if name.startswith("item."):
                        irow[cols[name]] = item.get(name.partition(".")[2])
                items.append(irow)
            day = decl.header["date"]
            if entry["outcome"] is not None:
                completed, codes = entry["outcome"]
                outcomes.append({"decl_pk": pk, "completed": completed, "date": day})
                reasons += [{"decl_pk": pk, "reason_code": c} for c in sorted(set(codes))]
            for j, (procedure, violation, random) in enumerate(entry["controls"]):
                done.append(
                    {
                        "pk": pk * 10 + j, "decl_pk": pk, "procedure": procedure,
                        "random_control": random, "violation_found": violation,
                        "revenue": 10.0 * (j + 1) if violation else None, "date": day,
                    }
                )  # fmt: skip
        for table, rows in (
            (t.declarations, decls),
            (t.items, items),
            (t.outcomes, outcomes),
            (t.outcome_reasons, reasons),
            (t.control_results, done),
        ):
            if rows:
                conn.execute(table.insert(), rows)


def _history_sql(block: m.History, start: dt.date, end: dt.date) -> sa.Select[Any]:
    return history_select(block, SOURCE, start, end)


def _history_many(
    blocks: Sequence[m.History], start: dt.date, end: dt.date, items: bool = True
) -> sa.Select[Any]:
    return history_select_many(blocks, SOURCE, start, end, items)


Outcome = tuple[bool, float | None, frozenset[str]]


def _expected(
    engine: sa.Engine, files: Sequence[m.SourceFile], data: Sequence[dict[str, Any]]
) -> dict[str, list[Outcome]]:
    """Per declaration id, per profile: what the evaluator says scoring it alone on its date."""
    provider = SqlHistoryProvider(engine, SOURCE)
    fills = [f for sf in files for f in sf.fills]
    compiled = [
        CompiledProfile(p, lists={ld.name: ld.values for ld in sf.lists}, fills=fills)
        for sf in files
        for p in sf.profiles
    ]
    out: dict[str, list[Outcome]] = {}
    for entry in data:
        decl: Declaration = entry["decl"]
        row: list[Outcome] = []
        for cp in compiled:
            fp = cp.evaluate(decl, decl.header["date"], history=provider)
            if fp is None:
                row.append((False, None, frozenset()))
            else:
                row.append((True, float(fp.degree), frozenset(f.code for f in fp.controls)))
        out[str(decl.id)] = row
    return out


def _planned(files: Sequence[m.SourceFile]) -> list[PlannedProfile]:
    fills = [f for sf in files for f in sf.fills]
    out = []
    pairs = [(sf, p) for sf in files for p in sf.profiles]
    for k, (sf, p) in enumerate(pairs):
        number = str(p.number) if p.number is not None else None
        mine = tuple(f for f in fills if number is not None and str(f.profile) == number)
        lists = {ld.name: ld.values for ld in sf.lists}
        out.append(PlannedProfile(f"{k}:{p.key}", p, mine, lists))
    return out


def _same(got: Outcome, want: Outcome, what: str) -> None:
    assert got[0] == want[0], f"{what}: fired {got[0]}, the evaluator says {want[0]}"
    if want[0]:
        assert got[1] == pytest.approx(want[1], rel=1e-9, abs=1e-9), f"{what}: degree"
        assert got[2] == want[2], f"{what}: controls"


def _check(engine: sa.Engine, files: list[m.SourceFile], data: list[dict[str, Any]]) -> None:
    if currently_in_test_context():  # shown with a falsifying example
        for sf in files:
            note("\n".join(format_profile(p) for p in sf.profiles))
            note("".join(format_fill(f) for f in sf.fills))
        for entry in data:
            note(repr(entry))
    _load(engine, data)
    dialect = engine.dialect.name
    planned = plan(_planned(files), dialect)
    want = _expected(engine, files, data)
    pushed = [n for n, pp in enumerate(planned) if pp.pushdown]
    fallback = [n for n, pp in enumerate(planned) if not pp.pushdown]
    with engine.connect() as conn:
        if pushed:
            # blocks sharing their subjects: one subquery (as run_backtest does); the metrics
            # below use one subquery per block, and must agree
            query, controls = declaration_query(
                SOURCE, planned, *PERIOD, dialect, history_sql=_history_sql,
                history_many=_history_many,
            )  # fmt: skip
            rows = [dict(r._mapping) for r in conn.execute(query)]
            assert sorted(r["decl_id"] for r in rows) == sorted(want)
            for r in rows:
                for k, n in enumerate(pushed):
                    got: Outcome = (
                        bool(r[f"p{k}_fires"]),
                        None if r[f"p{k}_best"] is None else float(r[f"p{k}_best"]),
                        frozenset(c for c in controls[k] if r[f"p{k}_c{c}"]),
                    )
                    _same(got, want[r["decl_id"]][n], f"SQL, {planned[n].key} on {r['decl_id']}")
        if pushed:
            # the same counts per group (selections, controls applied, carried, hits, revenue)
            # from the SQL path's layer 4 and from the Python fallback aggregating the evaluator
            group_by = ("month", "office")
            metrics_query = build_query(
                SOURCE, planned, *PERIOD, dialect, group_by=group_by, history_sql=_history_sql
            )
            sql_rows = metrics_query.fetch(conn)
            sql_groups = {
                g.key: g.profiles for g in read_groups(sql_rows, group_by, metrics_query.controls)
            }
            python = run_fallback(
                conn, SOURCE, [planned[n] for n in pushed], *PERIOD, group_by,
                metrics_query.controls, _history_sql,
            )  # fmt: skip
            assert set(python.groups) == set(sql_groups)
            for key, counts in python.groups.items():
                for a, b in zip(counts, sql_groups[key], strict=True):
                    assert a == b, key  # revenue too: exact cents on both paths
        if fallback:
            mine = [planned[n] for n in fallback]
            seen = []
            for outcome in score_declarations(
                conn, SOURCE, mine, *PERIOD, (), _history_sql, history_many=_history_many
            ):
                seen.append(str(outcome.decl_id))
                for k, n in enumerate(fallback):
                    got = (outcome.fired[k], outcome.degree[k], outcome.codes[k])
                    _same(got, want[str(outcome.decl_id)][n], f"Python, {planned[n].key}")
            assert sorted(seen) == sorted(want)


@settings(
    # a deeper run: RISKENGINE_DIFFERENTIAL_EXAMPLES=500
    max_examples=int(os.environ.get("RISKENGINE_DIFFERENTIAL_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(files=profile_files(max_profiles=2), data=stores())
def test_sql_path_equals_the_evaluator(
    store: sa.Engine, files: list[m.SourceFile], data: list[dict[str, Any]]
) -> None:
    _check(store, files, data)
    _check_analyst_outputs(store, files)


def _check_analyst_outputs(engine: sa.Engine, files: list[m.SourceFile]) -> None:
    """What the backtest shows analysts besides the metrics (issue 11): the selected and
    changes lists, indicator firing counts, the threshold sweep and the counts of every
    control result, pushed down and on the Python fallback: the same (degrees to 1e-9)."""
    from riskengine.backtest.selected import Lists

    profiles = _planned(files)
    keys = [pp.key for pp in profiles]
    compare = ((keys[0], keys[1]),) if len(keys) > 1 else ()
    options = BacktestOptions(*PERIOD, by=("office",), compare=compare, indicators=True, sweep=True)
    got = []
    for force in (False, True):
        selected: list[Any] = []
        changed: list[Any] = []
        with engine.connect() as conn:
            result = run_backtest(
                conn, SOURCE, profiles, options, record=False, force_python=force,
                lists=Lists(selected.append, changed.append),
            )  # fmt: skip
        got.append((result, selected, changed))
    (sql, sql_rows, sql_changes), (python, py_rows, py_changes) = got
    for a, b in zip(sql.profiles, python.profiles, strict=True):
        assert b.path == "python"
        assert (a.total, a.breakdowns, a.series) == (b.total, b.breakdowns, b.series), a.key
        assert a.indicators == b.indicators, a.key
        assert a.sweep == b.sweep, a.key
    assert sql.warnings == python.warnings
    newly = [c for c in sql_changes if c.change == "newly_selected"]
    assert [c.newly_selected for c in sql.comparisons] == [len(newly)] * len(compare)

    def plain(rows: list[Any]) -> list[Any]:
        return [attrs.evolve(r, degree=None) for r in rows]

    def plain_changes(rows: list[Any]) -> list[Any]:
        return [attrs.evolve(c, row=attrs.evolve(c.row, degree=None)) for c in rows]

    assert plain(sql_rows) == plain(py_rows)
    for a, b in zip(sql_rows, py_rows, strict=True):
        assert a.degree == pytest.approx(b.degree, rel=1e-9, abs=1e-9)
    assert plain_changes(sql_changes) == plain_changes(py_changes)
    assert len(sql_rows) == sum(p.total.selected for p in sql.profiles)


@pytest.fixture
def store(store: sa.Engine) -> sa.Engine:
    """The store of conftest, with `matches` available on SQLite."""
    register_functions(store)
    return store


FALLBACK = """
profile "Boots by pattern" {
    indicators {
        boots: item.description matches "(?ai)boots?\\\\b"
        cn: item.origin in ("CN")
    }
    degree = 60 * boots + 40 * cn
    controls {
        102 "Documentary check" mandatory from 40
        201 "Physical inspection" mandatory when boots from 60
    }
}
"""

CURRENT = """
profile "Chinese origin" {
    indicators { cn: item.origin in ("CN") }
    degree = 50 * cn
    controls { 102 "Documentary check" mandatory from 50 }
}
"""


def _fallback_store() -> list[dict[str, Any]]:
    items = [
        ({"description": "Boots", "origin": "CN"},),
        ({"description": "boot", "origin": "DE"}, {"description": "shoes", "origin": "CN"}),
        ({"description": "BOOTS!", "origin": "VN"},),
        (),
        ({"origin": "CN"},),
    ]
    return [
        {
            "decl": Declaration(
                header={"date": DAYS[k % len(DAYS)], "office": "UA100000"},
                items=its,
                id=f"D{k}",
            ),
            "outcome": None,
            "controls": [("102", k % 2 == 0, False), ("201", True, k == 1)],
        }
        for k, its in enumerate(items)
    ]


def test_a_profile_forced_to_python_gives_the_metrics_of_sql(
    store: sa.Engine, tmp_path: Any
) -> None:
    """An ASCII word boundary (`(?a)...\\b`) has no exact PostgreSQL translation: there the
    profile runs in Python; SQLite and DuckDB run it in SQL (RE2). Metrics and comparisons
    agree."""
    _load(store, _fallback_store())
    boots = parse(FALLBACK).profiles[0]
    current = parse(CURRENT).profiles[0]
    profiles = [PlannedProfile(boots.key, boots), PlannedProfile(current.key, current)]
    options = BacktestOptions(
        PERIOD[0], PERIOD[1], by=("office",), compare=((boots.key, current.key),)
    )

    sqlite = sa.create_engine("sqlite://")
    register_functions(sqlite)
    TABLES.metadata.create_all(sqlite)
    _load(sqlite, _fallback_store())
    with sqlite.connect() as conn:
        reference = run_backtest(conn, SOURCE, profiles, options, record=False)
    with store.connect() as conn:
        result = run_backtest(conn, SOURCE, profiles, options, record=False)

    got = result.profile(boots.key)
    if store.dialect.name != "postgresql":
        assert got.path == "sql"
    else:
        assert got.path == "python"
        assert got.reason is not None and "(?ai)boots?\\\\b" in got.reason
    assert reference.profile(boots.key).path == "sql"
    assert got.total == reference.profile(boots.key).total
    assert got.breakdowns == reference.profile(boots.key).breakdowns
    assert got.series == reference.profile(boots.key).series
    assert result.profile(current.key).total == reference.profile(current.key).total
    assert result.comparisons == reference.comparisons
    assert got.total.selected == 3  # D0 (Boots, CN), D1 (boot), D4 (CN)


NEWLINE = """
profile "Dots" {
    indicators { two: item.description matches "a.b" }
    degree = 100 * two
    controls { 102 "Documentary check" mandatory from 50 }
}
"""


def test_a_dot_does_not_match_a_newline_on_any_engine(store: sa.Engine) -> None:
    """Python's `.` stops at a newline; PostgreSQL's would not unless told."""
    descriptions = ("a\nb", "axb", "a\rb")
    data: list[dict[str, Any]] = [
        {
            "decl": Declaration(
                header={"date": DAYS[0]}, items=({"description": text},), id=f"D{k}"
            ),
            "outcome": None,
            "controls": [],
        }
        for k, text in enumerate(descriptions)
    ]
    _check(store, [parse(NEWLINE)], data)


CASELESS = """
profile "Lamps, any case" {
    indicators {
        lamp: item.description matches "(?i).*lamps?.*"
        kit: item.description matches "(?i)[^x]*kits? [a_]*"
    }
    degree = 60 * lamp + 40 * kit
    controls { 102 "Documentary check" mandatory from 40 }
}
"""


def test_a_caseless_pattern_runs_in_sql_and_reads_as_python(store: sa.Engine) -> None:
    """A leading `(?i)` over ASCII letters is spelt out as classes (`[lL][aA]...`), with the
    non-ASCII letters Python's re folds onto ASCII ones (Kelvin sign, long s, dotted and dotless
    i): pushed down on every engine, and the same selections as the evaluator."""
    descriptions = ("LED LAMPS", "Lamp\nbase", "lamp", "ſmall LAMPS", "Kit A_", "\u212aITS aa",
                    "xkit ", "KİT a", "kıt ", "lambs", "kit\n", "")  # fmt: skip
    data: list[dict[str, Any]] = [
        {
            "decl": Declaration(
                header={"date": DAYS[0]}, items=({"description": text},), id=f"D{k}"
            ),
            "outcome": None,
            "controls": [],
        }
        for k, text in enumerate(descriptions)
    ]
    files = [parse(CASELESS)]
    assert all(pp.pushdown for pp in plan(_planned(files), store.dialect.name))
    _check(store, files, data)


SHARED_SUBJECTS = """
profile "Declarant, a year" {
    indicators { shoes: item.hs_code starts with ("64") }
    degree = 10 * shoes + negative_history - positive_history
    controls { 102 "Documentary check" mandatory from 5 }
    history per declaration.declarant.id over 365 days {
        negative max 30 per case 10 { 0201: 1.0  0302: 0.3 }
        positive max 20 per clean control 2
    }
}

profile "Declarant, a month" {
    degree = 5 + negative_history - positive_history
    controls { 201 "Physical inspection" mandatory from 6 }
    history per declaration.declarant.id over 30 days {
        negative max 5 per case 1 { 1301: 0.8  0302: 1.0 }
        positive max 3 per clean control 0.5
    }
}

profile "Declarant and heading" {
    degree = 1 + negative_history - positive_history
    controls { 301 "Sampling" mandatory from 2 }
    history per declaration.declarant.id, item.hs_code[:4] over 365 days {
        negative max 30 per case 10 { 0201: 0.8 }
    }
}
"""


@settings(
    max_examples=int(os.environ.get("RISKENGINE_DIFFERENTIAL_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=stores())
def test_history_blocks_sharing_subjects_share_one_subquery(
    store: sa.Engine, data: list[dict[str, Any]]
) -> None:
    """Two blocks per declarant (different windows, reasons, caps) computed in one
    `history_select_many` subquery, next to a block with other subjects: SQL = the evaluator."""
    _check(store, [parse(SHARED_SUBJECTS)], data)


# --- numbers at their edges, user catalogue fields, deep and wide profiles ---------------------

EDGE_ITEMS = [
    {"customs_value": 1.4, "net_mass": 1.4},  # 1 exactly: not < 1 (single precision said yes)
    {"customs_value": 4199999.99, "net_mass": 10000.0},  # 419.999999: < 420
    {"customs_value": 0.1 + 0.2, "net_mass": 0.3},  # steps of 0.1 do not add up exactly
    {"customs_value": 1e39, "net_mass": 1.0},  # beyond single precision (DuckDB failed)
    {"customs_value": 1e-300, "net_mass": 1e300},  # underflows to 0 (PostgreSQL raised)
    {"customs_value": 50.0, "net_mass": 1.0},  # at a threshold
    {"customs_value": 50.5, "net_mass": 1.0},
    {"customs_value": 49.99999999999999, "net_mass": 1.0},
    {"net_mass": 2.0},
]

EDGE_PROFILE = """
profile "Unit price at the edges" {
    indicators {
        below_one: item.customs_value / item.net_mass < 1
        cheap: item.customs_value / item.net_mass < 420
        tiny: item.customs_value * item.net_mass < 0.000001
        sum: item.customs_value + item.net_mass >= 51.5
    }
    degree = item.customs_value / item.net_mass + 10 * below_one + 5 * tiny
    controls {
        102 "Documentary check" mandatory from 50
        201 "Physical inspection" mandatory when cheap from 50.5
        301 "Sampling" mandatory when sum from 0
    }
}
"""


def test_numbers_at_their_edges_agree_with_the_evaluator(store: sa.Engine) -> None:
    """1.4 / 1.4, 4,199,999.99 UAH for 10,000 kg, 0.1 + 0.2, 1e39, 1e-300 × 1e300 and values at
    every threshold: the SQL backtest selects exactly what the evaluator selects."""
    data: list[dict[str, Any]] = [
        {"decl": Declaration(header={"date": DAYS[0]}, items=(item,), id=f"D{k}"),
         "outcome": None, "controls": []}
        for k, item in enumerate(EDGE_ITEMS)
    ]  # fmt: skip
    files = [parse(EDGE_PROFILE)]
    assert all(pp.pushdown for pp in plan(_planned(files), store.dialect.name))
    _check(store, files, data)


OVERFLOW_PROFILE = """
profile "Overflow" {
    indicators { high: item.customs_value / item.net_mass > 30 }
    degree = 60 * high + item.customs_value * 10 - item.customs_value * 10
    controls { 102 "Documentary check" mandatory from 50 }
}
"""


def test_an_overflow_is_missing_on_every_engine(store: sa.Engine) -> None:
    """1e308 / 0.1 and 1e308 * 10 overflow: missing (the comparison is false, the degree 0),
    with no error on any engine (PostgreSQL raised "value out of range", DuckDB failed)."""
    data: list[dict[str, Any]] = [
        {"decl": Declaration(header={"date": DAYS[0]}, items=(item,), id=f"D{k}"),
         "outcome": None, "controls": []}
        for k, item in enumerate([
            {"customs_value": 1e308, "net_mass": 0.1},
            {"customs_value": 100.0, "net_mass": 1.0},
            {"customs_value": sys.float_info.max, "net_mass": 1.0},
        ])
    ]  # fmt: skip
    _load(store, data)
    planned = plan(_planned([parse(OVERFLOW_PROFILE)]), store.dialect.name)
    query, _ = declaration_query(SOURCE, planned, *PERIOD, store.dialect.name)
    with store.connect() as conn:
        fired = {r["decl_id"]: r["p0_fires"] for r in conn.execute(query).mappings()}
    # D0: the quotient overflows (missing: not > 30), the products too: degree 0
    # D1: 100 > 30, 60 + 1000 - 1000 = 60; D2: DBL_MAX * 10 overflows: degree missing, 0
    assert fired == {"D0": 0, "D1": 1, "D2": 0}


CATALOGUE_FIELDS = {
    "declaration.arrival_date": "date",
    "declaration.carrier": "string",
    "item.brand": "code",
    "item.declared_price": "number",
    "item.licensed": "boolean",
}


def _catalogue() -> Any:
    from riskengine.catalogue import Catalogue, Field, FieldType, default_catalogue

    extra = [Field(path, FieldType(kind)) for path, kind in CATALOGUE_FIELDS.items()]
    return default_catalogue().extend(Catalogue({f.path: f for f in extra}))


CATALOGUE_PROFILE = """
profile "User fields" {
    indicators {
        late: declaration.arrival_date - declaration.date > 30
        early: declaration.arrival_date - declaration.date <= -1
        carrier: declaration.carrier < item.description
        brand: item.brand >= "M" and item.brand != item.origin
        price: item.declared_price / item.net_mass < 1.5
        licensed: item.licensed
    }
    degree = 30 * late + 10 * early + 20 * carrier + 15 * brand + 15 * price + 10 * licensed
    controls {
        102 "Documentary check" mandatory from 20
        201 "Physical inspection" mandatory when licensed from 40
    }
}
"""


@settings(
    max_examples=int(os.environ.get("RISKENGINE_DIFFERENTIAL_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    items=st.lists(
        st.fixed_dictionaries({}, optional={
            "brand": st.sampled_from(("M", "Mz", "a", "É", "Z", "CN")),
            "description": st.sampled_from(("b", "B", "é", "Z", "")),
            "origin": st.sampled_from(("CN", "M")),
            "declared_price": st.sampled_from((1.4, 0.1, 4199999.99, 0.0, 1e-300, 15.0)),
            "net_mass": st.sampled_from((1.4, 0.3, 10000.0, 0.0, 10.0, 1e300)),
            "licensed": st.booleans(),
        }),
        min_size=1, max_size=3,
    ),
    arrival=st.none() | st.sampled_from((dt.date(2020, 1, 31), dt.date(2020, 2, 1),
                                         dt.date(2019, 12, 31), dt.date(2020, 1, 1))),
    carrier=st.none() | st.sampled_from(("a", "B", "é", "Z")),
)  # fmt: skip
def test_user_catalogue_fields_of_every_type(
    db_url: str, items: list[dict[str, Any]], arrival: Any, carrier: Any
) -> None:
    """A user catalogue adds a date, a string, a code, a number and a boolean field: days
    between dates, text ordered by code point (PostgreSQL's locale would differ), numbers as
    doubles, a boolean as a condition; the SQL backtest agrees with the evaluator."""
    from riskengine.evaluator import CompiledProfile
    from riskengine.store.engine import connect

    catalogue = _catalogue()
    tables = build_tables(catalogue)
    source = native_source(tables)
    engine = connect(db_url)
    register_functions(engine)
    try:
        tables.metadata.create_all(engine)
        cols = tables.field_columns
        header: dict[str, Any] = {"date": dt.date(2020, 1, 1), "office": "UA100000"}
        if arrival is not None:
            header["arrival_date"] = arrival
        if carrier is not None:
            header["carrier"] = carrier
        for table in (tables.items, tables.declarations):
            with engine.begin() as conn:  # one by one: DuckDB checks foreign keys per statement
                conn.execute(table.delete())
        with engine.begin() as conn:
            row = {"pk": 1, "id": "D1"}
            row |= {cols[p]: header.get(p.partition(".")[2]) for p in cols
                    if p.startswith("declaration.") and p != "declaration.id"}  # fmt: skip
            conn.execute(tables.declarations.insert(), [row])
            conn.execute(tables.items.insert(), [
                {"decl_pk": 1, "item_no": n} | {cols[p]: item.get(p.partition(".")[2])
                                                for p in cols if p.startswith("item.")}
                for n, item in enumerate(items, 1)
            ])  # fmt: skip
        profile = parse(CATALOGUE_PROFILE).profiles[0]
        planned = plan([PlannedProfile("u", profile)], engine.dialect.name, catalogue)
        assert planned[0].pushdown, planned[0].reason
        query, controls = declaration_query(source, planned, *PERIOD,
                                            engine.dialect.name)  # fmt: skip
        with engine.connect() as conn:
            [got] = [dict(r._mapping) for r in conn.execute(query)]
        decl = Declaration(header=header, items=tuple(items), id="D1")
        result = CompiledProfile(profile, catalogue=catalogue).evaluate(decl, header["date"])
        assert bool(got["p0_fires"]) == (result is not None)
        if result is not None:
            assert got["p0_best"] == pytest.approx(float(result.degree), rel=1e-12)
            assert {c for c in controls[0] if got[f"p0_c{c}"]} == {f.code for f in result.controls}
    finally:
        engine.dispose()
