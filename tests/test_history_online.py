"""History at production speed (issue 13): the single lookup's query plans on SQLite and
PostgreSQL, and the online provider's cache kept current by the writer (every backend) and by
PostgreSQL's LISTEN/NOTIFY (a write through one replica is seen by another's next lookup).

The provider's values and records are checked against the first single lookup, the in-memory
provider and a plain computation on random histories in tests/test_store_history.py."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from riskengine import model as m
from riskengine.declaration import Declaration
from riskengine.store import migrate
from riskengine.store.engine import StoreError, connect
from riskengine.store.history import SqlHistoryProvider, StoreHistoryProvider
from riskengine.store.history.online import lookup_statement
from riskengine.store.source import native_source
from riskengine.store.writer import (
    ControlRecord,
    OutcomeRecord,
    write_controls,
    write_declarations,
    write_outcomes,
)

#: Every kind of subject definition: a header field, two, header + item prefix, item alone.
SPECS: list[tuple[tuple[str, int | None], ...]] = [
    (("declaration.importer.id", None),),
    (("declaration.declarant.id", None),),
    (("declaration.declarant.id", None), ("item.hs_code", 4)),
    (("item.hs_code", 4),),
]
HISTORY_TABLES = (
    "declarations",
    "items",
    "clearance_outcomes",
    "outcome_reasons",
    "control_results",
)


def _block(subjects: tuple[tuple[str, int | None], ...], window: int = 30) -> m.History:
    return m.History(
        subjects=tuple(m.HistorySubject(m.FieldRef(path), prefix) for path, prefix in subjects),
        window_days=window,
        negative=m.NegativeHistory(
            max=Decimal(30),
            per_case=Decimal(10),
            reasons=(
                m.ReasonCoefficient("0201", Decimal("1.0")),
                m.ReasonCoefficient("1301", Decimal("0.3")),
            ),
        ),
        positive=m.PositiveHistory(max=Decimal(20), step=Decimal(2)),
    )


PROFILE = m.Profile(
    number=None, name="online", history=_block((("declaration.declarant.id", None),))
)
AS_OF = dt.date(2024, 6, 30)


def _values(spec: tuple[tuple[str, int | None], ...], subject: tuple[Any, ...]) -> dict[str, Any]:
    values: dict[str, Any] = {"start": dt.date(2024, 1, 1), "end": dt.date(2025, 1, 1)}
    for k, ((_path, prefix), value) in enumerate(zip(spec, subject, strict=True)):
        values[f"s{k}"] = value
        if prefix is not None:
            values[f"lo{k}"] = value
            values[f"hi{k}"] = value[:-1] + chr(ord(value[-1]) + 1)
    return values


def _explain(connection: sa.Connection, statement: Any, values: dict[str, Any]) -> list[str]:
    """The plan of ``statement`` with these bound values, one line per step."""
    compiled = statement.compile(dialect=connection.dialect)
    params = compiled.construct_params(values)
    if connection.dialect.name == "sqlite":
        args = tuple(
            params[name].isoformat() if isinstance(params[name], dt.date) else params[name]
            for name in compiled.positiontup
        )
        rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), args)
        return [row[-1] for row in rows]
    rows = connection.exec_driver_sql("EXPLAIN " + str(compiled), params)
    return [row[0] for row in rows]


def _demo_store(url: str, count: int) -> sa.Engine:
    from riskengine.demo import write_demo

    migrate.init(url)
    engine = connect(url)
    write_demo(engine, count, seed=3)
    return engine


def _busiest(engine: sa.Engine) -> dict[str, Any]:
    """Subject values of the busiest declarant and importer and a common HS heading."""
    with engine.connect() as c:

        def top(sql: str) -> Any:
            return c.execute(sa.text(sql)).scalar_one()

        return {
            "declaration.declarant.id": top(
                "SELECT declarant_id FROM declarations GROUP BY declarant_id "
                "ORDER BY count(*) DESC, declarant_id LIMIT 1"
            ),
            "declaration.importer.id": top(
                "SELECT importer_id FROM declarations GROUP BY importer_id "
                "ORDER BY count(*) DESC, importer_id LIMIT 1"
            ),
            "item.hs_code": top(
                "SELECT substr(hs_code, 1, 4) FROM items GROUP BY substr(hs_code, 1, 4) "
                "ORDER BY count(*) DESC LIMIT 1"
            ),
        }


def _subject(spec: tuple[tuple[str, int | None], ...], busy: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(busy[path] for path, _ in spec)


# --- query plans ------------------------------------------------------------------------------


@pytest.mark.sqlite
def test_sqlite_lookups_search_the_subject_and_window_indexes(
    tmp_path: os.PathLike[str],
) -> None:
    """EXPLAIN QUERY PLAN of every kind of subject: each history table is searched through an
    index (the subject's keys from (subject, pk), each key's window from (decl_pk, flag, date)),
    none is scanned."""
    engine = _demo_store(f"sqlite:///{tmp_path}/store.db", 1_500)
    busy = _busiest(engine)
    try:
        with engine.connect() as connection:
            for spec in SPECS:
                statement = lookup_statement(
                    spec, native_source(), ranged=tuple(p is not None for _, p in spec)
                )
                plan = _explain(connection, statement, _values(spec, _subject(spec, busy)))
                text = "\n".join(plan)
                assert not [line for line in plan if line.startswith("SCAN")], text
                assert (
                    "USING COVERING INDEX ix_clearance_outcomes_decl_pk_completed_date "
                    "(decl_pk=? AND completed=? AND date>? AND date<?)"
                ) in text
                assert (
                    "USING COVERING INDEX ix_control_results_decl_pk_violation_found_date "
                    "(decl_pk=? AND violation_found=? AND date>? AND date<?)"
                ) in text
                if spec[0][0] == "declaration.importer.id":
                    assert "USING INDEX ix_declarations_importer_id_pk (importer_id=?)" in text
                elif spec[0][0] == "declaration.declarant.id":
                    assert "USING INDEX ix_declarations_declarant_id_pk (declarant_id=?)" in text
                else:  # the prefix as a key range of the item index
                    assert (
                        "USING COVERING INDEX ix_items_hs_code_decl_pk (hs_code>? AND hs_code<?)"
                    ) in text
    finally:
        engine.dispose()


@pytest.mark.postgresql
def test_postgresql_lookups_use_the_indexes(pg_schema: tuple[sa.URL, str]) -> None:
    """EXPLAIN of every kind of subject on 3,000 demo declarations after ANALYZE, with
    ``enable_seqscan = off``: at this size a sequential scan of the small events tables is
    the planner's cheaper choice for a busy subject, so the setting asks whether the lookup *can*
    be answered from the indexes -- it can: no table is scanned."""
    base, schema = pg_schema
    url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )
    engine = _demo_store(url, 3_000)
    busy = _busiest(engine)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
            connection.exec_driver_sql("SET enable_seqscan = off")
            for spec in SPECS:
                statement = lookup_statement(
                    spec, native_source(), ranged=tuple(p is not None for _, p in spec)
                )
                plan = _explain(connection, statement, _values(spec, _subject(spec, busy)))
                text = "\n".join(plan)
                assert "Seq Scan" not in text, text
                for table in ("clearance_outcomes", "control_results"):  # by key or by date
                    assert any("Index" in line and table in line for line in plan), text
                key = spec[0][0]
                if key.startswith("declaration."):
                    name = f"ix_declarations_{key.split('.')[1]}_id_pk"
                else:
                    name = "ix_items_hs_code_decl_pk"
                assert name in text, text
    finally:
        engine.dispose()


# --- the cache follows the writer ------------------------------------------------------------


def _declaration(ident: str, date: dt.date, declarant: str) -> Declaration:
    return Declaration(header={"id": ident, "date": date, "declarant.id": declarant}, items=())


def _seed(engine: sa.Engine) -> None:
    with engine.begin() as c:
        write_declarations(
            c,
            [
                _declaration("P1", dt.date(2024, 6, 1), "A"),
                _declaration("P2", dt.date(2024, 6, 2), "A"),
                _declaration("Q1", dt.date(2024, 6, 3), "B"),
                _declaration("N1", dt.date(2024, 6, 4), "NEWCOMER"),
            ],
        )
        write_outcomes(
            c,
            [
                OutcomeRecord("P1", False, dt.date(2024, 6, 5), ("0201",)),
                OutcomeRecord("Q1", False, dt.date(2024, 6, 5), ("1301",)),
            ],
        )


def _pair(value: Any) -> tuple[float, float]:
    return (value.negative, value.positive)


def test_the_writer_keeps_the_cache_current(store: sa.Engine) -> None:
    """A cached subject is read once; the writer's outcome or control for one of its
    declarations makes the next lookup read it again (and only it); a rolled-back write changes
    nothing; a preloaded subject definition learns a subject that had no events."""
    _seed(store)
    provider = StoreHistoryProvider(store, cache=True, listen=False)
    assert _pair(provider.history(PROFILE, ("A",), AS_OF)) == (10.0, 0.0)
    assert _pair(provider.history(PROFILE, ("B",), AS_OF)) == (3.0, 0.0)
    assert provider.history(PROFILE, ("A",), AS_OF - dt.timedelta(days=1)).negative == 10.0
    assert provider.queries == 2
    with store.begin() as c:
        write_outcomes(c, [OutcomeRecord("P2", False, dt.date(2024, 6, 6), ("1301",))])
        write_controls(c, [ControlRecord("P2", "102", dt.date(2024, 6, 7), False)])
    assert _pair(provider.history(PROFILE, ("A",), AS_OF)) == (13.0, 2.0)
    assert provider.queries == 3  # A read again
    assert _pair(provider.history(PROFILE, ("B",), AS_OF)) == (3.0, 0.0)
    assert provider.queries == 3  # B untouched: still cached
    fresh = StoreHistoryProvider(store, cache=False)
    assert provider.history(PROFILE, ("A",), AS_OF) == fresh.history(PROFILE, ("A",), AS_OF)
    assert provider.history(PROFILE, ("A",), AS_OF) == SqlHistoryProvider(store).history(
        PROFILE, ("A",), AS_OF
    )

    with store.connect() as c:
        transaction = c.begin()
        write_controls(c, [ControlRecord("Q1", "201", dt.date(2024, 6, 8), False)])
        transaction.rollback()
    assert _pair(provider.history(PROFILE, ("B",), AS_OF)) == (3.0, 0.0)

    assert provider.preload(PROFILE) == 2  # A and B have events; NEWCOMER none
    asked = provider.queries
    assert _pair(provider.history(PROFILE, ("NEWCOMER",), AS_OF)) == (0.0, 0.0)
    assert provider.queries == asked
    with store.begin() as c:
        write_outcomes(c, [OutcomeRecord("N1", False, dt.date(2024, 6, 9), ("0201",))])
    assert _pair(provider.history(PROFILE, ("NEWCOMER",), AS_OF)) == (10.0, 0.0)
    assert provider.queries == asked + 1


def test_listening_needs_postgresql_and_a_cache(store: sa.Engine) -> None:
    if store.dialect.name == "postgresql":
        with pytest.raises(StoreError, match="listen=True keeps a cache current"):
            StoreHistoryProvider(store, cache=False, listen=True)
        return
    with pytest.raises(StoreError, match=rf"listen=True needs PostgreSQL.*{store.dialect.name}"):
        StoreHistoryProvider(store, listen=True)


# --- several replicas: LISTEN/NOTIFY ---------------------------------------------------------


@pytest.fixture
def replicas(store_url: str) -> Iterator[tuple[sa.Engine, sa.Engine]]:
    """Two engines (two pools, two connections) on one PostgreSQL store, as two service
    replicas would have."""
    if not store_url.startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    first, second = connect(store_url), connect(store_url)
    try:
        yield first, second
    finally:
        first.dispose()
        second.dispose()


def test_a_write_through_one_replica_is_seen_by_the_others_next_lookup(
    replicas: tuple[sa.Engine, sa.Engine],
) -> None:
    one, other = replicas
    _seed(one)
    with StoreHistoryProvider(one) as a, StoreHistoryProvider(other) as b:
        for provider in (a, b):
            assert _pair(provider.history(PROFILE, ("A",), AS_OF)) == (10.0, 0.0)
            assert _pair(provider.history(PROFILE, ("B",), AS_OF)) == (3.0, 0.0)
        assert (a.queries, b.queries) == (2, 2)

        # the writer, through replica one
        with one.begin() as c:
            write_outcomes(c, [OutcomeRecord("P2", False, dt.date(2024, 6, 6), ("1301",))])
        b.sync()  # every change committed before this call has reached b's cache
        assert _pair(b.history(PROFILE, ("A",), AS_OF)) == (13.0, 0.0)
        assert _pair(a.history(PROFILE, ("A",), AS_OF)) == (13.0, 0.0)
        assert _pair(b.history(PROFILE, ("B",), AS_OF)) == (3.0, 0.0)
        assert b.queries == 3  # A read again, B still cached

        # another tool's plain INSERT (no riskengine writer): the trigger notifies too
        with one.begin() as c:
            c.execute(
                sa.text(
                    "INSERT INTO control_results (pk, decl_pk, procedure, random_control, "
                    "violation_found, date) SELECT 900, pk, '102', false, false, DATE '2024-06-10' "
                    "FROM declarations WHERE id = 'Q1'"
                )
            )
        b.sync()
        a.sync()
        assert _pair(b.history(PROFILE, ("B",), AS_OF)) == (3.0, 2.0)
        assert _pair(a.history(PROFILE, ("B",), AS_OF)) == (3.0, 2.0)

        # without sync(): the listener applies a notice by itself, a moment after the commit
        with other.begin() as c:
            write_controls(c, [ControlRecord("P1", "201", dt.date(2024, 6, 11), False)])
        deadline = time.monotonic() + 10
        while _pair(a.history(PROFILE, ("A",), AS_OF)) != (13.0, 2.0):
            assert time.monotonic() < deadline, "replica one never saw the write"
            time.sleep(0.01)
        assert a.listener_error is None and b.listener_error is None


# --- what a user sees: the same scores and explanations ---------------------------------------


def test_scoring_with_the_new_provider_gives_the_old_providers_results(store: sa.Engine) -> None:
    """The sample profiles score demo declarations with history from the store: every result,
    explanations included (the records behind each history value), is the same with the old
    provider, the new one uncached and the new one cached -- and the cached one asks the store
    once per subject."""
    from pathlib import Path

    from riskengine import demo
    from riskengine.evaluator import Engine

    records = list(demo.generate(400, seed=5))
    with store.begin() as c:
        write_declarations(c, [r.declaration for r in records])
        write_outcomes(c, [r.outcome for r in records])
        write_controls(c, [x for r in records for x in r.controls])
    engine = Engine.load(Path(__file__).resolve().parents[1] / "profiles")
    old = SqlHistoryProvider(store)
    uncached = StoreHistoryProvider(store, cache=False)
    with StoreHistoryProvider(store, cache=True) as cached:
        fired = 0
        for record in records[::4]:
            declaration = record.declaration
            want = engine.score(declaration, explain=True, history=old)
            assert engine.score(declaration, explain=True, history=uncached) == want
            assert engine.score(declaration, explain=True, history=cached) == want
            assert engine.score(declaration, history=cached) == engine.score(
                declaration, history=old
            )
            fired += bool(want.fired)
        assert fired > 5
        assert cached.queries < uncached.queries


def test_uncached_lookups_read_a_subject_once_per_declaration(store: sa.Engine) -> None:
    """Uncached, the lookup function of one declaration (``scoped_history``, what the engine
    asks for per declaration) reads a subject once, with the widest window its definition was
    seen with, and gives every block its own window's value -- the values of a plain lookup
    each time; a block with a wider window seen for the first time reads again; the next
    declaration reads afresh and sees what was written in between."""
    _seed(store)
    with store.begin() as c:
        write_declarations(c, [_declaration("P0", dt.date(2024, 1, 10), "A")])
        write_outcomes(c, [OutcomeRecord("P0", False, dt.date(2024, 1, 15), ("1301",))])
    short = m.Profile(number=None, name="short", history=_block(SPECS[1], 30))
    long = m.Profile(number=None, name="long", history=_block(SPECS[1], 200))
    reference = StoreHistoryProvider(store, cache=False)
    provider = StoreHistoryProvider(store, cache=False)

    lookup = provider.scoped_history()
    assert _pair(lookup(short, ("A",), AS_OF)) == (10.0, 0.0)  # 2024-01-15 is out of 30 days
    assert _pair(lookup(short, ("A",), AS_OF)) == (10.0, 0.0)
    assert provider.queries == 1
    assert lookup(long, ("A",), AS_OF) == reference.history(long, ("A",), AS_OF)
    assert _pair(lookup(long, ("A",), AS_OF)) == (13.0, 0.0)
    assert provider.queries == 2  # a wider window than the subject was read with: read again
    assert _pair(lookup(short, ("B",), AS_OF)) == (3.0, 0.0)
    assert provider.queries == 3

    with store.begin() as c:
        write_outcomes(c, [OutcomeRecord("P2", False, dt.date(2024, 6, 6), ("1301",))])
    assert _pair(lookup(short, ("A",), AS_OF)) == (10.0, 0.0)  # this declaration's read
    following = provider.scoped_history()
    for profile in (short, long, short):  # one read, with the widest window seen (200 days)
        assert following(profile, ("A",), AS_OF) == reference.history(profile, ("A",), AS_OF)
    assert provider.queries == 4
    assert _pair(following(short, ("A",), AS_OF)) == (13.0, 0.0)
    assert _pair(following(long, ("A",), AS_OF)) == (16.0, 0.0)
    assert following(short, ("A",), AS_OF - dt.timedelta(days=1)) == reference.history(
        short, ("A",), AS_OF - dt.timedelta(days=1)
    )
    cached = StoreHistoryProvider(store, cache=True, listen=False)
    assert cached.scoped_history() == cached.history  # the cache needs no scope


def test_uncached_lookups_on_a_connection_see_its_transaction(store: sa.Engine) -> None:
    """A provider on a Connection reads through it: inside a transaction, what the transaction
    wrote and has not committed yet (on SQLite through the DBAPI cursor of that connection)."""
    _seed(store)
    with store.connect() as connection:
        transaction = connection.begin()
        write_outcomes(connection, [OutcomeRecord("P2", False, dt.date(2024, 6, 6), ("1301",))])
        inside = StoreHistoryProvider(connection, cache=False)
        assert _pair(inside.scoped_history()(PROFILE, ("A",), AS_OF)) == (13.0, 0.0)
        assert _pair(inside.history(PROFILE, ("A",), AS_OF)) == (13.0, 0.0)
        transaction.rollback()
    outside = StoreHistoryProvider(store, cache=False)
    assert _pair(outside.history(PROFILE, ("A",), AS_OF)) == (10.0, 0.0)


class _PerLookup:
    """A provider without ``scoped_history``: the engine calls its ``history`` per lookup."""

    def __init__(self, inner: StoreHistoryProvider) -> None:
        self.inner = inner

    def history(self, profile: Any, subject: tuple[Any, ...], as_of: dt.date) -> Any:
        return self.inner.history(profile, subject, as_of)


def test_scoring_uncached_asks_the_store_once_per_subject_and_declaration(
    store: sa.Engine,
) -> None:
    """The sample profiles on demo declarations, uncached: the same results (explanations
    included) as lookup by lookup, with fewer round trips (several profiles ask for the same
    importer's history)."""
    from pathlib import Path

    from riskengine import demo
    from riskengine.evaluator import Engine

    records = list(demo.generate(300, seed=8))
    with store.begin() as c:
        write_declarations(c, [r.declaration for r in records])
        write_outcomes(c, [r.outcome for r in records])
        write_controls(c, [x for r in records for x in r.controls])
    engine = Engine.load(Path(__file__).resolve().parents[1] / "profiles")
    scoped = StoreHistoryProvider(store, cache=False)
    plain = StoreHistoryProvider(store, cache=False)
    for record in records[::3]:
        for explain in (False, True):
            want = engine.score(record.declaration, explain=explain, history=_PerLookup(plain))
            assert engine.score(record.declaration, explain=explain, history=scoped) == want
    assert 0 < scoped.queries < plain.queries * 0.7


# --- the revision ----------------------------------------------------------------------------


def test_r0005_goes_down_and_up_again(db_url: str) -> None:
    """A store at r0003 (single-column subject indexes, no event indexes, no triggers) gets the
    history indexes from r0005 (and, on PostgreSQL, the NOTIFY triggers); down again restores
    r0003's indexes. The data is kept."""
    from alembic import command
    from alembic.script import ScriptDirectory

    from riskengine.store import reflect

    migrate.init(db_url)
    engine = connect(db_url)
    try:
        _seed(engine)

        def indexes() -> set[str]:
            with engine.connect() as c:
                return {
                    name
                    for table in ("declarations", "items", "clearance_outcomes", "control_results")
                    for name in reflect.index_names(c, table)
                    if name.startswith("ix_")
                }

        new = {
            "ix_declarations_declarant_id_pk",
            "ix_declarations_importer_id_pk",
            "ix_items_hs_code_decl_pk",
            "ix_clearance_outcomes_decl_pk_completed_date",
            "ix_control_results_decl_pk_violation_found_date",
        }
        old = {
            "ix_declarations_declarant_id",
            "ix_declarations_importer_id",
            "ix_items_hs_code",
            "ix_control_results_decl_pk",
        }
        assert new <= indexes() and not old & indexes()
        with engine.begin() as c:
            config = migrate.alembic_config(c)
            # the revision before r0005 (r0003 on this branch; whatever it is chained after)
            below = ScriptDirectory.from_config(config).get_revision("r0005").down_revision
            assert isinstance(below, str)
            command.downgrade(config, below)
            assert migrate.current_revision(c) == below
        assert old <= indexes() and not new & indexes()
        with engine.begin() as c:
            command.upgrade(migrate.alembic_config(c), "head")
        assert new <= indexes() and not old & indexes()
        with StoreHistoryProvider(engine, cache=False) as provider:
            assert _pair(provider.history(PROFILE, ("A",), AS_OF)) == (10.0, 0.0)
        if engine.dialect.name == "postgresql":
            with engine.connect() as c:
                triggers = c.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_trigger WHERE tgname LIKE '%_history_%' "
                        "AND tgrelid::regclass::text IN "
                        "('clearance_outcomes', 'outcome_reasons', 'control_results')"
                    )
                ).scalar_one()
            assert triggers == 9
    finally:
        engine.dispose()
