"""Release time: the table ``release_times`` (revision r0008), its ingest fields, the demo data's
times and the ``release_time`` metric, with figures worked out by hand."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from riskengine import demo
from riskengine.ingest.mapping import load_ingest_mapping
from riskengine.ingest.pipeline import ingest_file
from riskengine.kpi.metrics import compute_metric
from riskengine.kpi.periods import reporting_year
from riskengine.store import migrate
from riskengine.store.schema import build_tables
from riskengine.store.writer import OutcomeRecord, write_outcomes
from tests.test_kpi_metrics import write_kpi_store

EXAMPLES = Path(demo.__file__).parent / "examples"
T = dt.datetime


def _times(engine: sa.Engine) -> None:
    """Replace the small store's outcomes with ones that carry times (2025: D1..D6)."""
    records = [
        OutcomeRecord("D1", True, dt.date(2025, 1, 10), (), T(2025, 1, 10, 9), T(2025, 1, 10, 10)),
        OutcomeRecord("D2", True, dt.date(2025, 3, 5), (), T(2025, 3, 5, 9), T(2025, 3, 5, 12)),
        OutcomeRecord("D3", True, dt.date(2025, 6, 2), (), T(2025, 6, 1, 9), T(2025, 6, 2, 9)),
        # not completed: lodged, never released
        OutcomeRecord("D4", False, dt.date(2025, 9, 30), ("0101",), T(2025, 9, 30, 9), None),
        # released, but the service did not record the times
        OutcomeRecord("D5", True, dt.date(2025, 10, 1)),
        OutcomeRecord("D6", True, dt.date(2025, 12, 31), (), T(2025, 12, 31, 8),
                      T(2025, 12, 31, 16)),
    ]  # fmt: skip
    with engine.begin() as conn:
        result = write_outcomes(conn, records, replace=True)
    assert result.added == 6


@pytest.fixture
def timed_store(store: sa.Engine) -> sa.Engine:
    write_kpi_store(store)
    _times(store)
    return store


def _release(
    engine: sa.Engine, **params: object
) -> tuple[float | None, float | None, float | None]:
    with engine.connect() as conn:
        m = compute_metric(conn, build_tables(), "release_time", params, reporting_year(2025))
    return m.value, m.numerator, m.denominator


def test_release_time_mean_median_and_by_corridor(timed_store: sa.Engine) -> None:
    # released in 2025 with both times: D1 1 h, D2 3 h, D3 24 h, D6 8 h; D5 released untimed
    assert _release(timed_store) == (9.0, 4, 5)
    assert _release(timed_store, statistic="median") == (5.5, 4, 5)
    assert _release(timed_store, corridor="green") == (1.0, 1, 1)  # D1
    assert _release(timed_store, corridor="yellow") == (3.0, 1, 1)  # D2
    assert _release(timed_store, corridor="red") == (16.0, 2, 3)  # D3, D6 (D5 untimed)
    with timed_store.connect() as conn:
        times = conn.execute(sa.select(sa.func.count()).select_from(
            build_tables().release_times)).scalar_one()  # fmt: skip
    assert times == 5  # D5 has none


def test_release_time_each_office_in_one_query(timed_store: sa.Engine) -> None:
    from riskengine.kpi.metrics import compute_metric_each

    with timed_store.connect() as conn:
        grouped = compute_metric_each(
            conn, build_tables(), "release_time", {"statistic": "median"}, reporting_year(2025)
        )
        # office A: D1 1 h, D2 3 h (D5 untimed); office B: D3 24 h, D6 8 h (D4 not released)
        assert {k: (m.value, m.numerator, m.denominator) for k, m in grouped.items()} == {
            "A": (2.0, 2, 3),
            "B": (16.0, 2, 2),
        }
        for office in ("A", "B"):
            one = compute_metric(
                conn, build_tables(), "release_time", {"statistic": "median"},
                reporting_year(2025), office,
            )  # fmt: skip
            assert one == grouped[office]


def test_release_time_without_times_has_no_data(store: sa.Engine) -> None:
    write_kpi_store(store)
    assert _release(store) == (None, 0, 5)


def _export(tmp_path: Path, records: list[demo.DemoRecord]) -> tuple[Path, Path]:
    declarations = tmp_path / "export.csv"
    demo.export_csv(records, declarations)
    outcomes = tmp_path / "export.outcomes.csv"
    demo.export_outcomes_csv(records, outcomes)
    return declarations, outcomes


def test_demo_times_ingest_and_round_trip(store: sa.Engine, tmp_path: Path) -> None:
    records = list(demo.generate(60, 3))
    for r in records:
        o = r.outcome
        assert o.lodged_at is not None and o.lodged_at.date() == r.declaration.header["date"]
        assert (o.released_at is not None) == o.completed
        if o.released_at is not None:
            assert o.released_at >= o.lodged_at
    declarations, outcomes = _export(tmp_path, records)
    ingest_file(store, declarations, load_ingest_mapping(EXAMPLES / "demo_export.toml"))
    result = ingest_file(
        store, outcomes, load_ingest_mapping(EXAMPLES / "demo_outcomes_times.toml")
    )
    assert result.rows_rejected == 0
    t = build_tables()
    query = sa.select(
        t.declarations.c.id, t.release_times.c.lodged_at, t.release_times.c.released_at
    )
    with store.connect() as conn:
        stored = {
            i: (a, b)
            for i, a, b in conn.execute(
                query.join_from(
                    t.release_times,
                    t.declarations,
                    t.declarations.c.pk == t.release_times.c.decl_pk,
                )
            )
        }
    expected = {
        r.outcome.declaration_id: (r.outcome.lodged_at, r.outcome.released_at) for r in records
    }
    assert stored == expected


def test_bad_times_are_rejected_with_the_reason(store: sa.Engine, tmp_path: Path) -> None:
    records = list(demo.generate(3, 3))
    declarations, _ = _export(tmp_path, records)
    ingest_file(store, declarations, load_ingest_mapping(EXAMPLES / "demo_export.toml"))
    ids = [r.outcome.declaration_id for r in records]
    outcomes = tmp_path / "times.csv"
    with open(outcomes, "w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, delimiter=";")
        writer.writerow(["DECL_ID", "STATUS", "STATUS_DATE", "REASON", "LODGED_AT", "RELEASED_AT"])
        writer.writerow([ids[0], "COMPLETED", "05.01.2024", "", "2024-01-05T09:00", "noon"])
        writer.writerow([ids[1], "COMPLETED", "05.01.2024", "", "2024-01-05T09:00",
                         "2024-01-05T08:00"])  # fmt: skip
        writer.writerow([ids[2], "COMPLETED", "05.01.2024", "", "2024-01-05 09:00",
                         "2024-01-05 10:30"])  # fmt: skip
    result = ingest_file(
        store, outcomes, load_ingest_mapping(EXAMPLES / "demo_outcomes_times.toml")
    )
    assert result.records_added == 1
    # (rows are counted from the first data row, as in every rejects file)
    with open(result.rejects_path or "", encoding="utf-8", newline="") as stream:
        rejects = {int(r["row"]): r["reason"] for r in csv.DictReader(stream)}
    assert (
        "released_at: expected an ISO 8601 date and time (2025-03-01T10:15), got 'noon'"
        in rejects[1]
    )
    assert "released_at 2024-01-05T08:00:00 is before lodged_at 2024-01-05T09:00:00" in rejects[2]


def test_r0008_goes_down_and_up_again(db_url: str) -> None:
    migrate.init(db_url)
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as connection:
            assert migrate.current_revision(connection) == migrate.head_revision()
            assert "release_times" in sa.inspect(connection).get_table_names()
            command.downgrade(migrate.alembic_config(connection), "r0008-1")
            assert "release_times" not in sa.inspect(connection).get_table_names()
            command.upgrade(migrate.alembic_config(connection), "head")
            assert "release_times" in sa.inspect(connection).get_table_names()
    finally:
        engine.dispose()
