"""Backtest pushdown on a small store whose metrics are computed by hand below."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from riskengine.backtest.pushdown import PlannedProfile, build_query, plan
from riskengine.store.schema import build_tables
from riskengine.store.source import native_source
from riskengine.syntax import parse
from tests.backtest_store import write_store

PROFILE = """
profile "Cheap or Chinese" {
    indicators {
        cheap: item.customs_value / item.net_mass < 10
        cn: item.origin in ("CN")
    }
    degree = 60 * cheap + 40 * cn
    controls {
        102 "Documentary check" mandatory from 40
        201 "Physical inspection" mandatory when cheap from 60
    }
}
"""

D = dt.date


def _store() -> tuple[sa.Engine, Any]:
    engine = sa.create_engine("sqlite://")
    decls = [
        # pk, id, date, office
        (1, "D1", D(2025, 1, 10), "A"),
        (2, "D2", D(2025, 1, 20), "A"),
        (3, "D3", D(2025, 2, 5), "B"),
        (4, "D4", D(2025, 2, 6), "B"),
        (5, "D5", D(2025, 2, 7), "B"),  # no goods items
        (6, "D6", D(2025, 3, 1), "B"),  # outside the period
    ]
    items = [
        # decl_pk, item_no, origin, customs_value, net_mass
        (1, 1, "CN", 50.0, 10.0),  # cheap + cn: 100
        (2, 1, "DE", 50.0, 10.0),  # cheap: 60 -> 102, 201
        (2, 2, "CN", 200.0, 10.0),  # cn: 40 -> 102
        (3, 1, "CN", 50.0, None),  # mass missing: cn only, 40 -> 102
        (4, 1, "DE", 200.0, 10.0),  # 0
        (6, 1, "CN", 50.0, 10.0),  # would fire, but outside the period
    ]
    controls = [
        # pk, decl_pk, procedure, random, violation, revenue
        (1, 1, "201", False, True, 1000.0),
        (2, 1, "102", False, False, None),
        (3, 2, "102", False, True, 200.0),
        (4, 4, "201", True, True, 300.0),
    ]
    return engine, write_store(engine, decls, items, controls, D(2025, 2, 28))


def _run(group_by: tuple[str, ...]) -> list[dict[str, Any]]:
    engine, source = _store()
    profile = parse(PROFILE).profiles[0]
    planned = plan([PlannedProfile(profile.key, profile)], "sqlite")
    assert planned[0].pushdown
    query = build_query(source, planned, D(2025, 1, 1), D(2025, 2, 28), "sqlite", group_by=group_by)
    with engine.connect() as conn:
        return query.fetch(conn)


def test_one_pass_metrics_match_the_hand_count() -> None:
    [row] = _run(())
    assert row["considered"] == 5  # D1..D5; D6 is after the period
    assert row["p0_selected"] == 3  # D1, D2, D3
    assert row["p0_c102"] == 3
    assert row["p0_c201"] == 2  # D1, D2 (item 1)
    # controls carried out on the selection, for the procedures the profile applied:
    # D1: 201 + 102, D2: 102 (201 applied but was not carried out) -> 3
    assert row["p0_controls"] == 3
    assert row["p0_hits"] == 2  # D1's 201, D2's 102
    assert row["p0_revenue"] == 120000  # cents, exactly
    # every control result on the selection, whatever its procedure: the same here
    assert (row["p0_controls_any"], row["p0_hits_any"], row["p0_revenue_any"]) == (3, 2, 120000)
    assert row["violations"] == 3  # D1, D2 and the random control on D4
    assert (row["random_controls"], row["random_hits"]) == (1, 1)


def test_breakdown_by_month_and_office() -> None:
    rows = _run(("month", "office"))
    got = [(r["month"], r["office"], r["considered"], r["p0_selected"]) for r in rows]
    assert got == [("2025-01", "A", 2, 2), ("2025-02", "B", 3, 1)]


HISTORY_PROFILE = """
profile "Chinese origin, with history" {
    indicators { cn: item.origin in ("CN") }
    degree = 30 * cn + negative_history
    controls { 102 "Documentary check" mandatory from 40 }
    history per declaration.declarant.id over 30 days {
        negative max 50 { 0201: 20 }
    }
}
"""


def test_history_joins_as_of_each_declaration() -> None:
    from riskengine.store.history import history_select

    tables = build_tables()
    engine = sa.create_engine("sqlite://")
    tables.metadata.create_all(engine)
    decls = [
        (1, "P0", D(2025, 1, 5), "X"),  # not completed: undervaluation (0201)
        (2, "P1", D(2025, 1, 10), "X"),  # 5 days later: 30 + 20 = 50, fires
        (3, "P2", D(2025, 2, 4), "X"),  # 30 days later: 0201 still inside [as_of-30, as_of)
        (4, "P3", D(2025, 2, 5), "X"),  # 31 days later: outside the window, 30, no
        (5, "P4", D(2025, 1, 10), "Y"),  # another declarant: 30, no
    ]
    with engine.begin() as conn:
        conn.execute(
            tables.declarations.insert(),
            [{"pk": p, "id": i, "date": d, "declarant_id": who} for p, i, d, who in decls],
        )
        conn.execute(
            tables.items.insert(),
            [{"decl_pk": p, "item_no": 1, "origin": "CN"} for p, *_ in decls],
        )
        conn.execute(
            tables.outcomes.insert(), [{"decl_pk": 1, "completed": False, "date": D(2025, 1, 5)}]
        )
        conn.execute(tables.outcome_reasons.insert(), [{"decl_pk": 1, "reason_code": "0201"}])
    source = native_source(tables)
    profile = parse(HISTORY_PROFILE).profiles[0]
    planned = plan([PlannedProfile(profile.key, profile)], "sqlite")
    query = build_query(
        source,
        planned,
        D(2025, 1, 6),
        D(2025, 2, 28),
        "sqlite",
        group_by=("month",),
        history_sql=lambda block, start, end: history_select(block, source, start, end),
    )
    with engine.connect() as conn:
        rows = query.fetch(conn)
    assert [(r["month"], r["considered"], r["p0_selected"]) for r in rows] == [
        ("2025-01", 2, 1),  # P1 fires, P4 does not
        ("2025-02", 2, 1),  # P2 fires (day 30 is inside), P3 does not
    ]


DRAFT = """
profile "Cheap only (draft)" {
    indicators { cheap: item.customs_value / item.net_mass < 10 }
    degree = 100 * cheap
    controls { 201 "Physical inspection" mandatory from 50 }
}
"""


def test_run_rolls_up_compares_and_records_the_run() -> None:
    from riskengine.backtest.run import BacktestOptions, run_backtest

    engine, source = _store()
    current = parse(PROFILE).profiles[0]
    draft = parse(DRAFT).profiles[0]
    options = BacktestOptions(
        D(2025, 1, 1), D(2025, 2, 28), by=("office",), compare=((draft.key, current.key),)
    )
    with engine.connect() as conn:
        result = run_backtest(
            conn, source, [PlannedProfile(current.key, current), PlannedProfile(draft.key, draft)],
            options,
        )  # fmt: skip
        runs = conn.execute(sa.text("select engine, profile_hashes from backtest_runs")).all()
    total = result.profile(current.key).total
    assert (total.considered, total.selected) == (5, 3)
    assert total.selectivity == pytest.approx(60.0)
    assert total.hit_rate == pytest.approx(2 / 3)
    assert total.revenue == Decimal("1200.00")
    assert total.revenue_per_control == Decimal("400.00")
    assert total.detection_share == pytest.approx(2 / 3)
    assert total.random_hit_rate == pytest.approx(1.0)
    assert total.high_selectivity  # 60 % >= the default 5 %
    by_office = dict(result.profile(current.key).breakdowns["office"])
    assert (by_office["A"].selected, by_office["B"].selected) == (2, 1)
    assert [month for month, _ in result.profile(current.key).series] == ["2025-01", "2025-02"]
    # The draft selects D1 and D2 (cheap items) but not D3 (mass missing): one no longer selected.
    [cmp] = result.comparisons
    assert (cmp.newly_selected, cmp.no_longer_selected) == (0, 1)
    assert cmp.examples_gone == ("D3",)
    assert cmp.deltas["selected"] == (2, 3, -1)
    assert result.run_id == 1
    assert runs[0][0] == "sqlite"
    assert set(json.loads(runs[0][1])) == {current.key, draft.key}


ROUNDED = """
profile "Cheap or Chinese, rounded" {
    indicators {
        cheap: round(item.customs_value / item.net_mass, 1) < 10
        cn: item.origin in ("CN")
    }
    degree = 60 * cheap + 40 * cn
    controls {
        102 "Documentary check" mandatory from 40
        201 "Physical inspection" mandatory when cheap from 60
    }
}
"""


def test_a_profile_sql_cannot_run_is_measured_in_python_with_the_same_numbers() -> None:
    from riskengine.backtest.run import BacktestOptions, run_backtest

    engine, source = _store()
    current = parse(PROFILE).profiles[0]
    rounded = parse(ROUNDED).profiles[0]
    draft = parse(DRAFT).profiles[0]
    options = BacktestOptions(
        D(2025, 1, 1),
        D(2025, 2, 28),
        by=("office",),
        compare=((draft.key, rounded.key), (rounded.key, current.key)),
    )
    profiles = [PlannedProfile(p.key, p) for p in (current, rounded, draft)]
    with engine.connect() as conn:
        result = run_backtest(conn, source, profiles, options, record=False)
    python = result.profile(rounded.key)
    assert (python.path, result.profile(current.key).path) == ("python", "sql")
    assert python.reason is not None and "round" in python.reason
    # round(x, 1) < 10 selects what x < 10 does on this data: the same numbers as the SQL profile
    sql = result.profile(current.key)
    assert python.total == sql.total
    assert python.breakdowns == sql.breakdowns
    assert python.series == sql.series
    to_sql, same = result.comparisons
    # the draft (SQL) drops D3 against the Python-measured profile, as against the SQL one
    assert (to_sql.newly_selected, to_sql.no_longer_selected) == (0, 1)
    assert to_sql.examples_gone == ("D3",)
    assert (same.newly_selected, same.no_longer_selected) == (0, 0)


def test_the_fallback_streams_control_results_and_keeps_ids_only_when_asked() -> None:
    """Each streamed declaration carries its own control results (nothing of the period held
    in a dict); selected ids are kept only for the profiles named in ``keep_ids``."""
    from riskengine.backtest.fallback import run_fallback, score_declarations

    engine, source = _store()
    profile = parse(PROFILE).profiles[0]
    planned = [PlannedProfile(profile.key, profile)]
    with engine.connect() as conn:
        period = (D(2025, 1, 1), D(2025, 2, 28))
        streamed = score_declarations(conn, source, planned, *period, control_codes=("102", "201"))
        done = {o.decl_id: dict(o.done) for o in streamed}
        kept = run_fallback(conn, source, planned, *period, (), [("102", "201")])
        none = run_fallback(conn, source, planned, *period, (), [("102", "201")], keep_ids=())
    assert done["D1"] == {"201": (1, 1, 100000), "102": (1, 0, 0)}  # revenue in cents
    assert done["D2"] == {"102": (1, 1, 20000)}
    assert done["D3"] == {} and done["D5"] == {}
    assert kept.fired_ids == (frozenset({"D1", "D2", "D3"}),)
    assert none.fired_ids == (frozenset(),)
    assert kept.groups == none.groups


# --- profiles at the limits of depth and width --------------------------------------------------


def _n(x: float) -> Any:
    from decimal import Decimal

    from riskengine import model as m

    return m.NumberLit(Decimal(str(x)))


def _shape(name: str) -> Any:
    """A profile nesting 100 levels deep, or 1,000 terms wide (built as models: the parser has
    its own limits)."""
    from decimal import Decimal

    from riskengine import model as m

    mass, value = m.FieldRef("item.net_mass"), m.FieldRef("item.customs_value")
    degree: Any = None
    cond: Any = None
    if name == "neg":
        degree = mass
        for _ in range(100):
            degree = m.Neg(degree)
    elif name == "not":
        cond = m.Compare(">", mass, _n(1))
        for _ in range(100):
            cond = m.Not(cond)
    elif name in ("max", "round", "if", "alternating"):
        degree = mass
        for k in range(100):
            if name == "max":
                degree = m.Call("max", (degree, _n(k % 7)))
            elif name == "round":
                degree = m.Call("round", (degree,))
            elif name == "if":
                degree = m.Cond(m.Compare(">", value, _n(k)), degree, _n(k))
            else:
                degree = m.Arith("*" if k % 2 else "+", degree, _n(1.5) if k % 2 else value)
    elif name in ("flags", "fields"):

        def term(k: int) -> Any:
            if name == "flags":
                return m.Arith("*", _n(1), m.Compare(">", mass, _n(k / 20)))
            return mass if k % 2 else value

        degree = term(0)
        for k in range(1, 1000):
            degree = m.Arith("+", degree, term(k))
    else:  # "and": 1,000 comparisons
        cond = m.Compare(">", mass, _n(0))
        for k in range(1, 1000):
            cond = m.And(cond, m.Compare("<", value, _n(1e6 - k)))
    indicators: tuple[Any, ...] = ()
    if cond is not None:
        indicators = (m.Indicator("c", None, cond),)
        degree = m.Arith("*", _n(100), m.Ref("c"))
    control = m.Control("102", "Documentary check", m.ControlKind.MANDATORY, Decimal(50))
    return m.Profile(number=None, name=name, indicators=indicators, degree=degree,
                     controls=(control,))  # fmt: skip


def _reference(expr: Any, item: dict[str, float], profile: Any) -> Any:
    """The language's rules, by hand (missing is None; non-finite results are missing)."""
    import math as _math

    from riskengine import model as m
    from riskengine.evaluator.values import round_half_away

    def val(e: Any) -> Any:
        match e:
            case m.NumberLit(value=v):
                return float(v)
            case m.FieldRef(path=path):
                return item.get(path.partition(".")[2])
            case m.Neg(operand=a):
                x = val(a)
                return None if x is None else -x
            case m.Arith(op=op, left=a, right=b):
                x, y = num(a), num(b)
                if x is None or y is None or (op == "/" and y == 0):
                    return None
                r = {"+": x + y, "-": x - y, "*": x * y, "/": x / y if y else 0.0}[op]
                return r if _math.isfinite(r) else None
            case m.Call(func=f, args=args):
                xs = [num(a) for a in args]
                if any(x is None for x in xs):
                    return None
                return round_half_away(xs[0]) if f == "round" else (max if f == "max" else min)(xs)
            case m.Cond(test=t, then=a, otherwise=b):
                return val(a) if cond(t) else val(b)
        return cond(e)

    def num(e: Any) -> Any:
        x = val(e)
        return (1.0 if x else 0.0) if isinstance(x, bool) else x

    def cond(e: Any) -> bool:
        match e:
            case m.Compare(op=op, left=a, right=b):
                x, y = val(a), val(b)
                return x is not None and y is not None and (x > y if op == ">" else x < y)
            case m.Not(operand=a):
                return not cond(a)
            case m.And(left=a, right=b):
                return cond(a) and cond(b)
            case m.Ref(name=name):
                return cond(next(i for i in profile.indicators if i.name == name).condition)
        raise AssertionError(e)

    return num(expr)


@pytest.mark.parametrize("shape", ["neg", "not", "max", "round", "if", "alternating", "flags",
                                   "fields", "and"])  # fmt: skip
def test_deep_and_wide_profiles_run_or_fall_back_with_a_reason(
    engine: sa.Engine, shape: str
) -> None:
    """100 levels deep or 1,000 terms wide (the limits `check` allows): PostgreSQL and DuckDB
    push every shape down, SQLite whatever its parser and expression depth can read, and the
    rest takes the Python fallback with SQLite's reason; the SQL results are the language's."""
    from riskengine.backtest.pushdown import PlannedProfile, declaration_query, plan
    from riskengine.backtest.run import _engine_settings
    from riskengine.declaration import Declaration
    from riskengine.semantics.sql import sql_recursion
    from riskengine.sql.compile import register_functions
    from tests.test_backtest_differential import PERIOD, _load

    items = [
        {"net_mass": 1.4, "customs_value": 1.4},
        {"net_mass": 60.0, "customs_value": 3.0},
        {"customs_value": 2.0},
        {"net_mass": 1e308, "customs_value": 1e308},
        {"net_mass": 49.6, "customs_value": 1e6},
        {"net_mass": -75.5, "customs_value": 8.0},
    ]
    tables = build_tables()
    tables.metadata.create_all(engine)
    register_functions(engine)
    data = [{"decl": Declaration(header={"date": dt.date(2020, 1, 1)}, items=(it,), id=f"D{k}"),
             "outcome": None, "controls": []} for k, it in enumerate(items)]  # fmt: skip
    _load(engine, data)
    profile = _shape(shape)
    dialect = engine.dialect.name
    with sql_recursion():
        [pp] = plan([PlannedProfile(shape, profile)], dialect)
        if not pp.pushdown:
            assert dialect == "sqlite" and pp.reason is not None and "SQLite" in pp.reason
            return
        assert dialect != "sqlite" or shape in ("neg", "not", "flags", "and")
        query, _ = declaration_query(native_source(tables), [pp], *PERIOD, dialect)
        with engine.connect() as conn, _engine_settings(conn):
            got = {r["decl_id"]: r["p0_best"] for r in conn.execute(query).mappings()}
        for k, item in enumerate(items):
            raw = _reference(profile.degree, item, profile)
            degree = 0.0 if raw is None else min(100.0, max(0.0, raw))
            assert got[f"D{k}"] == (degree if degree >= 50 else None), (k, raw)


def _totals(result: Any) -> dict[str, tuple[Any, ...]]:
    return {
        p.key: (p.total.considered, p.total.selected, p.total.hits, p.total.revenue)
        for p in result.profiles
    }


def test_a_plain_sqlite_run_tries_deep_profiles_only_when_sqlite_refuses_the_query(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On SQLite a deep profile is prepared alone (its depth trial) only when the one-pass query
    cannot be prepared: a profile deeper than the trial's threshold that SQLite reads runs in
    SQL with no trial; one beyond SQLite's parser makes the query fail, and the run then plans
    with the trials, sends that profile to Python with SQLite's reason and gives the totals the
    Python path gives."""
    from riskengine.backtest import planned as planned_module
    from riskengine.backtest.run import BacktestOptions, run_backtest
    from riskengine.sql.compile import register_functions

    engine, source = _store()
    register_functions(engine)
    current = parse(PROFILE).profiles[0]
    # deeper than the trial threshold by weight (sum of products of a guarded division), and
    # read by SQLite without trouble
    weighty = parse(PROFILE.replace("60 * cheap + 40 * cn", "30 * cheap + 30 * cn + 40 * cheap")
                    .replace('"Cheap or Chinese"', '"Weighty"')).profiles[0]  # fmt: skip
    assert planned_module.profile_depth(weighty, weighted=True) > planned_module._SAFE_DEPTH
    deep = _shape("max")  # beyond SQLite's parser stack in the one-pass query
    trials: list[int] = []
    real = planned_module._prepares

    def counted(*args: Any) -> None:
        trials.append(1)
        real(*args)

    monkeypatch.setattr(planned_module, "_prepares", counted)
    planned_module._PREPARED.clear()
    options = BacktestOptions(D(2025, 1, 1), D(2025, 2, 28))
    with engine.connect() as conn:
        plain = run_backtest(
            conn, source, [PlannedProfile(current.key, current), PlannedProfile("w", weighty)],
            options, record=False,
        )  # fmt: skip
    assert trials == []  # the query prepared: nothing was tried
    assert [p.path for p in plain.profiles] == ["sql", "sql"]

    profiles = [PlannedProfile(current.key, current), PlannedProfile("deep", deep)]
    with engine.connect() as conn:
        lazy = run_backtest(conn, source, profiles, options, record=False)
        python = run_backtest(conn, source, profiles, options, record=False, force_python=True)
    assert trials  # the query was refused, then the deep profile was tried
    by_key = {p.key: p for p in lazy.profiles}
    assert by_key[current.key].path == "sql"
    assert by_key["deep"].path == "python"
    assert by_key["deep"].reason is not None and "SQLite" in by_key["deep"].reason
    assert _totals(lazy) == _totals(python)
