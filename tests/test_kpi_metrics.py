"""The built-in KPI metrics and SQL sources on a small hand-made store, on every backend: each
figure below is worked out by hand from the rows written in :func:`kpi_store`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from riskengine.kpi.metrics import (
    EMPTY,
    KpiError,
    compute_metric,
    compute_metric_each,
    offices,
    run_sql,
)
from riskengine.kpi.periods import Period, reporting_year
from riskengine.store.schema import build_tables

D = dt.date
# pk, id, date, office, aeo, item customs values, completed
DECLARATIONS: list[tuple[int, str, dt.date, str, bool, list[float]]] = [
    (1, "D1", D(2025, 1, 10), "A", True, [1000.0]),
    (2, "D2", D(2025, 3, 5), "A", False, [3000.0]),
    (3, "D3", D(2025, 6, 1), "B", False, [4000.0]),
    (4, "D4", D(2025, 9, 30), "B", False, [2000.0]),
    (5, "D5", D(2025, 10, 1), "A", True, []),
    (6, "D6", D(2025, 12, 31), "B", False, [4000.0, 6000.0]),
    (7, "D7", D(2024, 11, 15), "A", False, [500.0]),
    (8, "D8", D(2024, 5, 1), "B", False, [800.0]),
]
#: decl_pk -> completed (every declaration has an outcome; D4 was not completed)
COMPLETED = {1: True, 2: True, 3: True, 4: False, 5: True, 6: True, 7: True, 8: True}
# decl_pk, procedure, profile_key, random, violation, revenue
CONTROLS: list[tuple[int, str, str | None, bool, bool, float | None]] = [
    (2, "102", "P1", False, False, None),  # documents only: yellow
    (3, "201", "P1", False, True, 500.0),  # physical: red, a hit
    (4, "201", None, True, True, 300.0),  # random physical, a hit
    (5, "201", None, True, False, None),  # random physical, clean
    (6, "103", "P2", False, False, None),  # two controls on D6: one clean ...
    (6, "204", "P2", False, True, 1000.0),  # ... one physical that found it
    (7, "102", "P1", False, True, 200.0),  # 2024: yellow, a hit
]
YEAR = reporting_year(2025)


def write_kpi_store(engine: sa.Engine) -> None:
    """The rows above, into an initialised store."""
    tables = build_tables()
    with engine.begin() as conn:
        conn.execute(
            tables.declarations.insert(),
            [
                {"pk": pk, "id": i, "date": d, "office": o, "declarant_aeo": aeo}
                for pk, i, d, o, aeo, _ in DECLARATIONS
            ],
        )
        conn.execute(
            tables.items.insert(),
            [
                {"decl_pk": pk, "item_no": n, "customs_value": v}
                for pk, _, _, _, _, values in DECLARATIONS
                for n, v in enumerate(values, start=1)
            ],
        )
        conn.execute(
            tables.outcomes.insert(),
            [
                {"decl_pk": pk, "completed": done, "date": D(2026, 1, 1)}
                for pk, done in COMPLETED.items()
            ],
        )
        conn.execute(
            tables.control_results.insert(),
            [
                {
                    "pk": k, "decl_pk": p, "procedure": c, "profile_key": key,
                    "random_control": r, "violation_found": v, "revenue": rev,
                    "date": D(2026, 1, 1),
                }
                for k, (p, c, key, r, v, rev) in enumerate(CONTROLS, start=1)
            ],
        )  # fmt: skip


@pytest.fixture
def kpi_store(store: sa.Engine) -> sa.Engine:
    write_kpi_store(store)
    return store


def metric(
    engine: sa.Engine, name: str, period: Period = YEAR, office: str | None = None, **params: Any
) -> Any:
    with engine.connect() as conn:
        return compute_metric(conn, build_tables(), name, params, period, office)


def test_corridor_shares_by_count_and_by_customs_value(kpi_store: sa.Engine) -> None:
    # 2025: D1 green (no control), D2 yellow (documents), D3 D4 D5 D6 red (a physical control)
    assert metric(kpi_store, "corridor_share", corridor="green").value == pytest.approx(100 / 6)
    assert metric(kpi_store, "corridor_share", corridor="yellow").value == pytest.approx(100 / 6)
    red = metric(kpi_store, "corridor_share", corridor="red")
    assert (red.value, red.numerator, red.denominator) == (pytest.approx(400 / 6), 4, 6)
    # customs value: 1000 + 3000 + 4000 + 2000 + 0 (no items) + 10000 = 20000
    by_value = {
        c: metric(kpi_store, "corridor_share", corridor=c, weight="customs_value").value
        for c in ("green", "yellow", "red")
    }
    assert by_value == {"green": 5.0, "yellow": 15.0, "red": 80.0}
    # a passport's own physical codes: 201 only, so D6 (103 + 204) becomes yellow
    red201 = metric(kpi_store, "corridor_share", corridor="red", physical=["201"])
    assert red201.value == pytest.approx(300 / 6)


def test_aeo_share_of_declarations_and_of_value(kpi_store: sa.Engine) -> None:
    assert metric(kpi_store, "aeo_share").value == pytest.approx(200 / 6)  # D1, D5
    assert metric(kpi_store, "aeo_share", weight="customs_value").value == 5.0  # 1000 / 20000


def test_released_without_physical_inspection(kpi_store: sa.Engine) -> None:
    # released (completed) in 2025: D1 D2 D3 D5 D6; without a physical control: D1, D2
    m = metric(kpi_store, "released_without_physical_inspection")
    assert (m.value, m.numerator, m.denominator) == (40.0, 2, 5)


def test_hit_rates_with_wilson_intervals(kpi_store: sa.Engine) -> None:
    # risk-based controlled declarations: D2 (clean), D3 (hit), D6 (two controls, one hit)
    risk = metric(kpi_store, "hit_rate", control="risk")
    assert (risk.numerator, risk.denominator) == (2, 3)
    assert risk.value == pytest.approx(200 / 3)
    # Wilson 95 % for 2 of 3: 20.77 % .. 93.85 % (the published tables' figures)
    assert risk.interval == (pytest.approx(20.766, abs=1e-3), pytest.approx(93.851, abs=1e-3))
    random = metric(kpi_store, "hit_rate", control="random")  # D4 hit, D5 clean
    assert (random.value, random.numerator, random.denominator) == (50.0, 1, 2)
    assert random.interval == (pytest.approx(9.453, abs=1e-3), pytest.approx(90.547, abs=1e-3))
    p1 = metric(kpi_store, "hit_rate", control="risk", profile="P1")  # D2 clean, D3 hit
    assert p1.value == 50.0
    none = metric(kpi_store, "hit_rate", control="risk", profile="P9")
    assert (none.value, none.interval, none.denominator) == (None, None, 0)


def test_revenue_per_control(kpi_store: sa.Engine) -> None:
    # risk: (0 + 500 + 1000) / 3 declarations; random: (300 + 0) / 2
    assert metric(kpi_store, "revenue_per_control", control="risk").value == 500.0
    assert metric(kpi_store, "revenue_per_control", control="random").value == 150.0
    # all: D2..D6 controlled, 0 + 500 + 300 + 0 + 1000 over 5
    assert metric(kpi_store, "revenue_per_control", control="all").value == 360.0


def test_selectivity_per_profile(kpi_store: sa.Engine) -> None:
    assert metric(kpi_store, "selectivity", profile="P1").value == pytest.approx(200 / 6)
    assert metric(kpi_store, "selectivity", profile="P2").value == pytest.approx(100 / 6)
    assert metric(kpi_store, "selectivity").value == 50.0  # D2, D3, D6 of 6


def test_per_office(kpi_store: sa.Engine) -> None:
    with kpi_store.connect() as conn:
        assert offices(conn, build_tables(), YEAR) == ["A", "B"]
    # office A in 2025: D1 green, D2 yellow, D5 red; AEO D1, D5
    assert metric(kpi_store, "corridor_share", office="A", corridor="green").value == (
        pytest.approx(100 / 3)
    )
    assert metric(kpi_store, "aeo_share", office="A").value == pytest.approx(200 / 3)
    assert metric(kpi_store, "aeo_share", office="B").value == 0.0
    # office B: D3 D4 D6, all red
    assert metric(kpi_store, "corridor_share", office="B", corridor="red").value == 100.0
    assert metric(kpi_store, "aeo_share", office="C").value is None  # no declaration


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("released_without_physical_inspection", {}),
        ("corridor_share", {"corridor": "green"}),
        ("corridor_share", {"corridor": "red", "weight": "customs_value"}),
        ("aeo_share", {"weight": "customs_value"}),
        ("hit_rate", {"control": "risk"}),
        ("hit_rate", {"control": "random"}),
        ("revenue_per_control", {"control": "all"}),
        ("selectivity", {"profile": "P1"}),
    ],
)
def test_each_office_in_one_query_equals_one_office_at_a_time(
    kpi_store: sa.Engine, name: str, params: dict[str, Any]
) -> None:
    with kpi_store.connect() as conn:
        for period in (YEAR, reporting_year(2025, 10), reporting_year(2023)):
            grouped = compute_metric_each(conn, build_tables(), name, params, period)
            for office in ("A", "B", "C"):
                one = compute_metric(conn, build_tables(), name, params, period, office)
                assert grouped.get(office, EMPTY) == one, (period, office)


def test_reporting_year_october_to_september(kpi_store: sa.Engine) -> None:
    year = reporting_year(2025, 10)
    assert (year.start, year.end) == (D(2024, 10, 1), D(2025, 9, 30))
    # D7 (2024-11-15), D1, D2, D3, D4 (2025-09-30, the last day); not D5 (2025-10-01)
    m = metric(kpi_store, "corridor_share", period=year, corridor="green")
    assert (m.numerator, m.denominator) == (1, 5)
    following = metric(kpi_store, "corridor_share", period=reporting_year(2026, 10),
                       corridor="red")  # fmt: skip
    assert (following.numerator, following.denominator) == (2, 2)  # D5, D6


def test_reviews_on_time_without_review_records_has_no_data(kpi_store: sa.Engine) -> None:
    # the store's registry is empty: no review was due, so no value (not 0 %); the figures
    # worked out by hand on a registry are in tests/test_review_queue.py
    m = metric(kpi_store, "reviews_on_time")
    assert (m.value, m.numerator, m.denominator) == (None, 0, 0)


SQL = (
    "SELECT 100.0 * SUM(CASE WHEN declarant_aeo THEN 1 ELSE 0 END) / COUNT(*) FROM declarations "
    "WHERE date BETWEEN :period_start AND :period_end AND (:office IS NULL OR office = :office)"
)


def test_sql_source_with_bound_parameters(kpi_store: sa.Engine) -> None:
    assert run_sql(kpi_store, SQL, YEAR).value == pytest.approx(200 / 6)
    assert run_sql(kpi_store, SQL, YEAR, "A").value == pytest.approx(200 / 3)
    # an office is a bound value, never SQL: a quote in it is just a value that matches nothing
    assert run_sql(kpi_store, SQL, YEAR, "A' OR '1'='1").value is None
    assert run_sql(kpi_store, "SELECT NULL", YEAR).value is None


def test_sql_source_write_is_refused(kpi_store: sa.Engine) -> None:
    backend = kpi_store.dialect.name
    tables = build_tables()
    if backend == "sqlite":
        write = "WITH x AS (SELECT 1) INSERT INTO clearance_outcomes (decl_pk, completed, date) " \
                "SELECT 99, 1, '2025-01-01' FROM x"  # fmt: skip
    elif backend == "postgresql":
        write = "WITH gone AS (DELETE FROM control_results RETURNING 1) SELECT COUNT(*) FROM gone"
    else:  # DuckDB: no read-only switch; the text check refuses anything but one SELECT
        write = "DELETE FROM control_results"
    with pytest.raises(KpiError) as caught:
        run_sql(kpi_store, write, YEAR)
    assert any(
        words in str(caught.value)
        for words in ("readonly", "read-only", "read only", "must be one SELECT")
    ), str(caught.value)
    with kpi_store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(
            tables.control_results)).scalar_one() == len(CONTROLS)  # fmt: skip
        assert conn.execute(sa.select(sa.func.count()).select_from(
            tables.outcomes)).scalar_one() == len(COMPLETED)  # fmt: skip
    # the connection is usable for writes again afterwards (query_only switched back off)
    with kpi_store.begin() as conn:
        conn.execute(tables.outcome_reasons.insert(), {"decl_pk": 4, "reason_code": "0101"})


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("DELETE FROM declarations", "must be one SELECT"),
        ("SELECT 1; DELETE FROM declarations", "must be one statement"),
        ("SELECT nope FROM declarations", "the SQL source failed"),
    ],
)
def test_sql_source_refusals(kpi_store: sa.Engine, sql: str, problem: str) -> None:
    with pytest.raises(KpiError, match=problem):
        run_sql(kpi_store, sql, YEAR)
