"""History from the store: the set-based query (alone, over a date range, several blocks at once,
several queries in one statement) and the single lookup agree with a plain Python computation on
random outcome histories, on every backend, and nothing dated on or after the declaration's date
counts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskengine import model as m
from riskengine.declaration import Declaration
from riskengine.evaluator.history import Clearance, ControlResult, InMemoryHistoryProvider
from riskengine.semantics.history import HistoryProvider, HistoryValue, subject_of
from riskengine.store.history import (
    SqlHistoryProvider,
    StoreHistoryProvider,
    history_for_range,
    history_select,
    history_select_many,
    lookup_history,
)
from riskengine.store.writer import (
    ControlRecord,
    OutcomeRecord,
    write_controls,
    write_declarations,
    write_outcomes,
)

DAY0 = dt.date(2024, 3, 1)
REASONS = ("0101", "0201", "0302", "1301")


# --- the data: declarations, outcomes, controls ----------------------------------------------


@attrs.frozen
class World:
    declarations: tuple[Declaration, ...]
    outcomes: tuple[OutcomeRecord, ...]
    controls: tuple[ControlRecord, ...]


def _history(
    subjects: Sequence[tuple[str, int | None]],
    window: int,
    negative: tuple[Decimal, Decimal, dict[str, Decimal]] | None,
    positive: tuple[Decimal, Decimal] | None,
) -> m.History:
    return m.History(
        subjects=tuple(m.HistorySubject(m.FieldRef(path), prefix) for path, prefix in subjects),
        window_days=window,
        negative=None
        if negative is None
        else m.NegativeHistory(
            max=negative[0],
            per_case=negative[1],
            reasons=tuple(m.ReasonCoefficient(c, k) for c, k in negative[2].items()),
        ),
        positive=None if positive is None else m.PositiveHistory(max=positive[0], step=positive[1]),
    )


SUBJECTS = [
    [("declaration.declarant.id", None)],
    [("declaration.importer.id", None)],
    [("declaration.declarant.id", None), ("item.hs_code", 4)],
    [("item.hs_code", 4)],
    [("item.hs_code", 2), ("item.origin", None)],
]

decimals = st.sampled_from([Decimal("0.1"), Decimal("0.3"), Decimal("0.8"), Decimal("1.0"),
                            Decimal("1.25"), Decimal("2")])  # fmt: skip
histories = st.builds(
    _history,
    st.sampled_from(SUBJECTS),
    st.integers(0, 30),  # 0: an empty window
    st.none()
    | st.tuples(
        st.sampled_from([Decimal(1), Decimal(5), Decimal("7.5"), Decimal(30)]),
        st.sampled_from([Decimal(1), Decimal("2.5"), Decimal(10)]),
        st.dictionaries(st.sampled_from(REASONS), decimals, max_size=3),
    ),
    st.none()
    | st.tuples(
        st.sampled_from([Decimal(2), Decimal(5), Decimal(20)]),
        st.sampled_from([Decimal("0.5"), Decimal(1), Decimal(4)]),
    ),
)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    count = draw(st.integers(1, 14))
    declarations = []
    outcomes = []
    controls = []
    for n in range(count):
        ident = f"D{n:03}"
        date = DAY0 + dt.timedelta(days=draw(st.integers(0, 40)))
        header: dict[str, Any] = {"id": ident, "date": date}
        for name, pool in (("declarant.id", ["A", "B"]), ("importer.id", ["I1", "I2", None])):
            value = draw(st.sampled_from(pool))
            if value is not None:
                header[name] = value
        items = []
        for _ in range(draw(st.integers(0, 3))):
            item: dict[str, Any] = {}
            hs = draw(st.sampled_from(["640399", "6403", "6404", "85", "", None]))
            if hs is not None:
                item["hs_code"] = hs
            origin = draw(st.sampled_from(["CN", "VN", None]))
            if origin is not None:
                item["origin"] = origin
            items.append(item)
        declarations.append(Declaration(header=header, items=tuple(items), id=ident))
        # Outcome and control dates may even precede the declaration's date: the rule is about
        # the event's date, whatever the data.
        if draw(st.booleans()):
            completed = draw(st.booleans())
            reasons = () if completed else tuple(draw(st.sets(st.sampled_from(REASONS))))
            when = date + dt.timedelta(days=draw(st.integers(-3, 12)))
            outcomes.append(OutcomeRecord(ident, completed, when, tuple(sorted(reasons))))
        for procedure in draw(st.sets(st.sampled_from(["102", "201"]), max_size=2)):
            when = date + dt.timedelta(days=draw(st.integers(-3, 12)))
            controls.append(ControlRecord(ident, procedure, when, draw(st.booleans())))
    return World(tuple(declarations), tuple(outcomes), tuple(controls))


# --- the plain Python computation -------------------------------------------------------------


def _values(declaration: Declaration, item: dict[str, Any] | None) -> dict[str, Any]:
    values = {f"declaration.{k}": v for k, v in declaration.header.items()}
    if item is not None:
        values.update({f"item.{k}": v for k, v in item.items()})
    return values


def _matches(block: m.History, subject: tuple[Any, ...], other: Declaration) -> bool:
    """Whether ``other`` has the subject: header fields equal, item fields on one of its items."""
    candidates: list[dict[str, Any] | None] = [dict(i) for i in other.items] or [None]
    return any(subject_of(block, _values(other, item)) == subject for item in candidates)


def expected(
    world: World,
    block: m.History,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> dict[tuple[str, int | None], tuple[float, float]]:
    """History of every goods item (of the declarations dated date_from..date_to), computed the
    obvious way from the lists."""
    by_id = {d.header["id"]: d for d in world.declarations}
    out: dict[tuple[str, int | None], tuple[float, float]] = {}
    for declaration in world.declarations:
        as_of = declaration.header["date"]
        if (date_from is not None and as_of < date_from) or (
            date_to is not None and as_of > date_to
        ):
            continue
        start = as_of - dt.timedelta(days=block.window_days)
        targets: list[tuple[int | None, dict[str, Any] | None]] = [
            (n, dict(i)) for n, i in enumerate(declaration.items, 1)
        ] or [(None, None)]
        for number, item in targets:
            subject = subject_of(block, _values(declaration, item))
            negative = Decimal(0)
            positive = Decimal(0)
            if subject is not None and block.negative is not None:
                listed = {r.code: r.coefficient for r in block.negative.reasons}
                total = Decimal(0)
                for outcome in world.outcomes:
                    if outcome.completed or not start <= outcome.date < as_of:
                        continue
                    if _matches(block, subject, by_id[outcome.declaration_id]):
                        found = [listed[r] for r in outcome.reasons if r in listed]
                        total += max(found) if found else Decimal(0)
                negative = min(block.negative.max, block.negative.per_case * total)
            if subject is not None and block.positive is not None:
                clean = sum(
                    1
                    for c in world.controls
                    if not c.violation_found
                    and start <= c.date < as_of
                    and _matches(block, subject, by_id[c.declaration_id])
                )
                positive = min(block.positive.max, block.positive.step * clean)
            out[(declaration.header["id"], number)] = (float(negative), float(positive))
    return out


# --- running it on a store --------------------------------------------------------------------


@pytest.fixture
def connection(store: sa.Engine) -> Iterator[sa.Connection]:
    with store.connect() as connection:
        yield connection


def _load(connection: sa.Connection, world: World) -> dict[int, str]:
    write_declarations(connection, world.declarations)
    write_outcomes(connection, world.outcomes)
    write_controls(connection, world.controls)
    from riskengine.store.schema import TABLES

    d = TABLES.declarations
    return dict(connection.execute(sa.select(d.c.pk, d.c.id)).all())


def _set_based(
    connection: sa.Connection,
    block: m.History,
    ids: dict[int, str],
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> dict[tuple[str, int | None], tuple[float, float]]:
    return {
        (ids[h.decl_pk], h.item_no): (h.negative, h.positive)
        for h in history_for_range(connection, block, None, start, end)
    }


def _single(
    connection: sa.Connection, world: World, block: m.History
) -> dict[tuple[str, int | None], tuple[float, float]]:
    out: dict[tuple[str, int | None], tuple[float, float]] = {}
    asked: dict[tuple[Any, ...], tuple[float, float]] = {}
    for declaration in world.declarations:
        targets: list[tuple[int | None, dict[str, Any] | None]] = [
            (n, dict(i)) for n, i in enumerate(declaration.items, 1)
        ] or [(None, None)]
        for number, item in targets:
            subject = subject_of(block, _values(declaration, item))
            as_of = declaration.header["date"]
            if subject is None:
                value = (0.0, 0.0)
            elif (subject, as_of) in asked:
                value = asked[(subject, as_of)]
            else:
                found = lookup_history(connection, block, subject, as_of)
                value = asked[(subject, as_of)] = (found.negative, found.positive)
            out[(declaration.header["id"], number)] = value
    return out


def _in_memory(world: World, block: m.History) -> InMemoryHistoryProvider:
    """The evaluator's in-memory provider over the same events: an event is given once per
    distinct subject of its declaration (its items' subjects), as the store counts it."""
    by_id = {d.header["id"]: d for d in world.declarations}

    def fields(declaration_id: str) -> list[dict[str, Any]]:
        declaration = by_id[declaration_id]
        rows = [_values(declaration, dict(i)) for i in declaration.items] or [
            _values(declaration, None)
        ]
        seen: dict[tuple[Any, ...], dict[str, Any]] = {}
        for row in rows:
            subject = subject_of(block, row)
            if subject is not None:
                seen.setdefault(subject, row)
        return list(seen.values())

    clearances = [
        Clearance(o.date, f, o.completed, o.reasons, o.declaration_id)
        for o in world.outcomes
        for f in fields(o.declaration_id)
    ]
    controls = [
        ControlResult(c.date, f, c.violation_found, c.declaration_id)
        for c in world.controls
        for f in fields(c.declaration_id)
    ]
    return InMemoryHistoryProvider(clearances, controls)


def _sorted(value: HistoryValue) -> list[tuple[Any, ...]]:
    return sorted(
        (r.kind, r.date, r.declaration_id or "", r.reasons, r.value) for r in value.records
    )


def _online_agrees(
    connection: sa.Connection, world: World, block: m.History, want: dict[Any, Any]
) -> None:
    """StoreHistoryProvider (uncached, cached) gives the plain computation's values, and the
    same values and records (in the same order) as the first single lookup, and as the
    evaluator's in-memory provider over the same events."""
    profile = m.Profile(number=None, name="online", history=block)
    uncached = StoreHistoryProvider(connection, cache=False)
    cached = StoreHistoryProvider(connection, cache=True, listen=False)
    memory = _in_memory(world, block)
    for declaration in world.declarations:
        targets: list[tuple[int | None, dict[str, Any] | None]] = [
            (n, dict(i)) for n, i in enumerate(declaration.items, 1)
        ] or [(None, None)]
        as_of = declaration.header["date"]
        for number, item in targets:
            subject = subject_of(block, _values(declaration, item))
            if subject is None:
                continue
            first = lookup_history(connection, block, subject, as_of)
            for provider in (uncached, cached):
                found = provider.history(profile, subject, as_of)
                assert (found.negative, found.positive) == want[(declaration.id, number)]
                assert found == first and found.records == first.records
            in_memory = memory.history(profile, subject, as_of)
            assert (in_memory.negative, in_memory.positive) == (first.negative, first.positive)
            assert _sorted(in_memory) == _sorted(first)  # same-day events: input order there
    assert cached.queries <= uncached.queries


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds(), block=histories)
def test_set_based_and_single_lookup_equal_a_plain_computation(
    connection: sa.Connection, world: World, block: m.History
) -> None:
    transaction = connection.begin()
    try:
        ids = _load(connection, world)
        want = expected(world, block)
        assert _set_based(connection, block, ids) == want
        assert _single(connection, world, block) == want
        _online_agrees(connection, world, block, want)
    finally:
        transaction.rollback()


days = st.none() | st.integers(-5, 45).map(lambda n: DAY0 + dt.timedelta(days=n))


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds(), block=histories, start=days, end=days)
def test_a_date_range_gives_its_declarations_the_same_history(
    connection: sa.Connection,
    world: World,
    block: m.History,
    start: dt.date | None,
    end: dt.date | None,
) -> None:
    """Only the declarations dated start..end, each with its full history: the events read for
    the range (from start - window days on) are all those that can count."""
    transaction = connection.begin()
    try:
        ids = _load(connection, world)
        assert _set_based(connection, block, ids, start, end) == expected(world, block, start, end)
    finally:
        transaction.rollback()


@st.composite
def same_subject_blocks(draw: st.DrawFn) -> list[m.History]:
    subjects = tuple(draw(histories).subjects)
    return [
        attrs.evolve(draw(histories), subjects=subjects) for _ in range(draw(st.integers(1, 3)))
    ]


def _rows(connection: sa.Connection, query: sa.Select[Any]) -> dict[tuple[int, int | None], Any]:
    return {(r[0], r[1]): tuple(r[3:]) for r in connection.execute(query)}


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds(), blocks=same_subject_blocks(), start=days, end=days)
def test_blocks_with_the_same_subjects_in_one_query_equal_one_query_each(
    connection: sa.Connection,
    world: World,
    blocks: list[m.History],
    start: dt.date | None,
    end: dt.date | None,
) -> None:
    transaction = connection.begin()
    try:
        _load(connection, world)
        together = _rows(connection, history_select_many(blocks, None, start, end))
        for k, block in enumerate(blocks):
            alone = _rows(connection, history_select(block, None, start, end))
            assert {key: row[4 * k : 4 * k + 4] for key, row in together.items()} == alone
    finally:
        transaction.rollback()


def test_several_blocks_need_the_same_subjects() -> None:
    other = attrs.evolve(PROFILE_HISTORY, subjects=(m.HistorySubject(m.FieldRef("item.origin")),))
    with pytest.raises(ValueError, match="same subjects"):
        history_select_many([PROFILE_HISTORY, other])
    with pytest.raises(ValueError, match="at least one"):
        history_select_many([])


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds(), block=histories, data=st.data())
def test_records_dated_on_or_after_the_declaration_never_count(
    connection: sa.Connection, world: World, block: m.History, data: st.DataObject
) -> None:
    target = data.draw(st.sampled_from(world.declarations))
    as_of = target.header["date"]
    # Rewrite every event dated on or after the target's date into the worst possible one.
    worse = attrs.evolve(
        world,
        outcomes=tuple(
            attrs.evolve(o, completed=False, reasons=REASONS) if o.date >= as_of else o
            for o in world.outcomes
        ),
        controls=tuple(
            attrs.evolve(c, violation_found=False) if c.date >= as_of else c for c in world.controls
        ),
    )
    results = []
    for version in (world, worse):
        transaction = connection.begin()
        try:
            ids = _load(connection, version)
            found = _set_based(connection, block, ids)
            results.append({k: v for k, v in found.items() if k[0] == target.header["id"]})
        finally:
            transaction.rollback()
    assert results[0] == results[1]


def _declaration(ident: str, date: dt.date, declarant: str, *hs: str) -> Declaration:
    items = tuple({"hs_code": code} for code in hs)
    return Declaration(header={"id": ident, "date": date, "declarant.id": declarant}, items=items)


PROFILE_HISTORY = _history(
    [("declaration.declarant.id", None)],
    30,
    (Decimal(30), Decimal(10), {"0201": Decimal("1.0"), "1301": Decimal("0.3")}),
    (Decimal(20), Decimal(2)),
)


def test_window_bounds_and_the_records_behind_a_value(connection: sa.Connection) -> None:
    """Outcomes on as_of - 30 days count, on as_of do not; records name the declarations."""
    as_of = dt.date(2024, 6, 30)
    world = World(
        declarations=(
            _declaration("OLD", dt.date(2024, 5, 1), "A"),
            _declaration("EDGE", dt.date(2024, 5, 31), "A"),
            _declaration("LATE", dt.date(2024, 6, 30), "A"),
            _declaration("OTHER", dt.date(2024, 6, 1), "B"),
            _declaration("NOW", as_of, "A", "6403"),
        ),
        outcomes=(
            OutcomeRecord("OLD", False, dt.date(2024, 5, 30), ("0201",)),  # 31 days before
            OutcomeRecord("EDGE", False, dt.date(2024, 5, 31), ("0201", "1301")),  # 30 days
            OutcomeRecord("LATE", False, as_of, ("0201",)),  # on the date itself
            OutcomeRecord("OTHER", False, dt.date(2024, 6, 10), ("0201",)),  # other declarant
        ),
        controls=(
            ControlRecord("EDGE", "102", dt.date(2024, 6, 29), False),
            ControlRecord("EDGE", "201", dt.date(2024, 6, 29), True),  # found a violation
        ),
    )
    with connection.begin():
        _load(connection, world)
        value = lookup_history(connection, PROFILE_HISTORY, ("A",), as_of)
    assert (value.negative, value.positive) == (10.0, 2.0)
    kinds = sorted((r.kind, r.declaration_id, r.date, r.reasons, r.value) for r in value.records)
    assert kinds == [
        ("clearance", "EDGE", dt.date(2024, 5, 31), ("0201", "1301"), 10.0),
        ("control", "EDGE", dt.date(2024, 6, 29), (), 2.0),
    ]


def test_set_based_window_bounds_across_a_leap_day(connection: sa.Connection) -> None:
    """A window of N days reaches back exactly N calendar days (leap day included) and stops
    before the declaration's own date, also when only the declarations of one day are asked."""
    world = World(
        declarations=(
            _declaration("FEB28", dt.date(2024, 2, 28), "A"),
            _declaration("FEB29", dt.date(2024, 2, 29), "A"),
            _declaration("SAME", dt.date(2024, 3, 1), "A"),
            _declaration("NOW1", dt.date(2024, 3, 1), "A", "6403"),
            _declaration("NOW2", dt.date(2025, 3, 1), "A", "6403"),
        ),
        outcomes=(
            OutcomeRecord("FEB28", False, dt.date(2024, 2, 28), ("0201",)),
            OutcomeRecord("FEB29", False, dt.date(2024, 2, 29), ("0201",)),
            OutcomeRecord("SAME", False, dt.date(2024, 3, 1), ("0201",)),
        ),
        controls=(
            ControlRecord("FEB28", "102", dt.date(2024, 2, 28), False),
            ControlRecord("FEB29", "102", dt.date(2024, 2, 29), False),
        ),
    )
    one_day = attrs.evolve(PROFILE_HISTORY, window_days=1)
    leap_year = attrs.evolve(PROFILE_HISTORY, window_days=366)  # 2025-03-01 - 366 d = 2024-02-29
    with connection.begin():
        ids = _load(connection, world)
        found = {
            (block.window_days, day): _set_based(connection, block, ids, day, day)
            for block in (one_day, leap_year)
            for day in (dt.date(2024, 3, 1), dt.date(2025, 3, 1))
        }
    assert found[(1, dt.date(2024, 3, 1))][("NOW1", 1)] == (10.0, 2.0)  # Feb 29 only
    assert found[(1, dt.date(2025, 3, 1))][("NOW2", 1)] == (0.0, 0.0)
    assert found[(366, dt.date(2025, 3, 1))][("NOW2", 1)] == (20.0, 2.0)  # Feb 29 and Mar 1
    assert found[(366, dt.date(2024, 3, 1))][("NOW1", 1)] == (20.0, 4.0)  # Feb 28 and 29
    for (window, day), values in found.items():
        block = one_day if window == 1 else leap_year
        assert values == expected(world, block, day, day)


def test_history_queries_joined_in_one_statement_keep_their_own_terms(
    connection: sa.Connection,
) -> None:
    """A backtest joins one history query per block into one statement: each keeps its own
    window (a shared parameter name once made every block use the same one)."""
    as_of = dt.date(2024, 6, 30)
    world = World(
        declarations=(
            _declaration("P1", dt.date(2024, 5, 1), "A", "640399", "6403"),
            _declaration("P2", dt.date(2024, 6, 20), "A"),
            _declaration("NOW", as_of, "A", "6403"),
        ),
        outcomes=(OutcomeRecord("P1", False, dt.date(2024, 5, 16), ("0201",)),),  # 45 days before
        controls=(ControlRecord("P2", "102", dt.date(2024, 6, 20), False),),  # 10 days before
    )
    blocks = [
        attrs.evolve(PROFILE_HISTORY, window_days=30),
        attrs.evolve(PROFILE_HISTORY, window_days=60),
        _history(
            [("declaration.declarant.id", None), ("item.hs_code", 4)],
            90,
            (Decimal(50), Decimal(3), {"0201": Decimal("0.5")}),
            None,
        ),
    ]
    with connection.begin():
        ids = {v: k for k, v in _load(connection, world).items()}
        parts = [history_select(b).subquery(f"h{k}") for k, b in enumerate(blocks)]
        first = parts[0]
        joined: sa.FromClause = first
        for h in parts[1:]:
            joined = joined.join(
                h,
                sa.and_(
                    h.c.decl_pk == first.c.decl_pk,
                    sa.func.coalesce(h.c.item_no, -1) == sa.func.coalesce(first.c.item_no, -1),
                ),
            )
        statement = sa.select(
            first.c.decl_pk,
            *(col for h in parts for col in (h.c.negative_history, h.c.positive_history)),
        ).select_from(joined)
        together = {r[0]: tuple(float(v) for v in r[1:]) for r in connection.execute(statement)}
    assert together[ids["NOW"]] == (0.0, 2.0, 10.0, 2.0, 1.5, 0.0)
    for k, block in enumerate(blocks):
        want = expected(world, block)
        assert {ids[i]: want[(i, n)] for i, n in want if n in (1, None)} == {
            pk: values[2 * k : 2 * k + 2] for pk, values in together.items()
        }


def test_caps_apply(connection: sa.Connection) -> None:
    as_of = dt.date(2024, 6, 30)
    declarations = tuple(_declaration(f"P{n}", dt.date(2024, 6, 1), "A") for n in range(5))
    world = World(
        declarations=(*declarations, _declaration("NOW", as_of, "A", "6403", "6404")),
        outcomes=tuple(
            OutcomeRecord(d.header["id"], False, dt.date(2024, 6, 2), ("0201",))
            for d in declarations
        ),
        controls=tuple(
            ControlRecord(d.header["id"], "102", dt.date(2024, 6, 3), False)
            for d in declarations * 3
        ),
    )
    with connection.begin():
        ids = _load(connection, world)
        found = _set_based(connection, PROFILE_HISTORY, ids)
    # 5 clearances x 10 = 50, capped at 30; 5 clean controls x 2 = 10 (duplicates skipped)
    assert found[("NOW", 1)] == found[("NOW", 2)] == (30.0, 10.0)


def test_sql_computed_columns_agree_with_the_exact_values(connection: sa.Connection) -> None:
    block = _history(
        [("declaration.declarant.id", None)],
        30,
        (Decimal(100), Decimal("2.5"), {"0201": Decimal("0.1"), "1301": Decimal("0.3")}),
        (Decimal(20), Decimal("0.5")),
    )
    world = World(
        declarations=(
            _declaration("P1", dt.date(2024, 6, 1), "A"),
            _declaration("P2", dt.date(2024, 6, 2), "A"),
            _declaration("NOW", dt.date(2024, 6, 20), "A", "1"),
        ),
        outcomes=(
            OutcomeRecord("P1", False, dt.date(2024, 6, 1), ("0201",)),
            OutcomeRecord("P2", False, dt.date(2024, 6, 2), ("1301", "0201")),
        ),
        controls=(ControlRecord("P1", "102", dt.date(2024, 6, 3), False),),
    )
    with connection.begin():
        ids = {v: k for k, v in _load(connection, world).items()}
        rows = connection.execute(history_select(block)).mappings().all()
        exact = {(h.decl_pk, h.item_no): h for h in history_for_range(connection, block)}
    now = next(r for r in rows if r["decl_pk"] == ids["NOW"])
    assert now["negative_units"] == 4 and now["clean_controls"] == 1
    assert exact[(ids["NOW"], 1)].negative == 1.0  # 2.5 x (0.1 + 0.3), exactly
    assert now["negative_history"] == 1.0  # the same double, computed in SQL
    assert now["positive_history"] == 0.5


def test_provider_cache_is_kept_current_as_outcomes_arrive(
    store: sa.Engine, connection: sa.Connection
) -> None:
    as_of = dt.date(2024, 6, 30)
    world = World(
        declarations=(
            _declaration("P1", dt.date(2024, 6, 1), "A"),
            _declaration("P2", dt.date(2024, 6, 2), "A"),
            _declaration("NOW", as_of, "A", "6403"),
        ),
        outcomes=(OutcomeRecord("P1", False, dt.date(2024, 6, 5), ("0201",)),),
        controls=(),
    )
    with connection.begin():
        _load(connection, world)
    provider = SqlHistoryProvider(store, cache=True)
    profile = attrs.evolve(_profile(), history=PROFILE_HISTORY)
    assert isinstance(provider, HistoryProvider)
    assert provider.history(profile, ("A",), as_of).negative == 10.0
    assert provider.history(profile, ("A",), as_of - dt.timedelta(days=1)).negative == 10.0
    assert provider.queries == 1  # the second call was answered from the cache
    with store.begin() as writing:
        provider.record_outcome(
            writing, "P2", completed=False, date=dt.date(2024, 6, 6), reasons=("1301",)
        )
        provider.record_control(
            writing, "P2", procedure="102", date=dt.date(2024, 6, 7), violation_found=False
        )
    value = provider.history(profile, ("A",), as_of)
    assert (value.negative, value.positive) == (13.0, 2.0)
    uncached = SqlHistoryProvider(store).history(profile, ("A",), as_of)
    assert (uncached.negative, uncached.positive, uncached.records) == (
        value.negative,
        value.positive,
        value.records,
    )
    assert provider.history(profile, ("B",), as_of).negative == 0.0


def test_missing_subject_values_give_no_history(store: sa.Engine) -> None:
    provider = SqlHistoryProvider(store)
    profile = attrs.evolve(_profile(), history=PROFILE_HISTORY)
    value = provider.history(profile, (None,), dt.date(2024, 1, 1))
    assert (value.negative, value.positive, value.records) == (0.0, 0.0, ())
    assert provider.queries == 0


def _profile() -> m.Profile:
    return m.Profile(number=None, name="history test")


def test_a_preloaded_provider_answers_without_queries_and_stays_current(
    store: sa.Engine,
) -> None:
    from riskengine import demo

    records = list(demo.generate(600, seed=2, start=dt.date(2024, 1, 1), end=dt.date(2024, 4, 30)))
    with store.begin() as c:
        write_declarations(c, [r.declaration for r in records])
        write_outcomes(c, [r.outcome for r in records])
        write_controls(c, [x for r in records for x in r.controls])
    block = _history(
        [("declaration.declarant.id", None), ("item.hs_code", 4)],
        60,
        (Decimal(30), Decimal(10), {"0201": Decimal("1.0"), "0901": Decimal("0.5")}),
        (Decimal(20), Decimal(2)),
    )
    profile = attrs.evolve(_profile(), history=block)
    plain = SqlHistoryProvider(store)
    preloaded = SqlHistoryProvider(store, cache=True)
    assert preloaded.preload(profile) > 0
    assert preloaded.queries == 2
    asked = 0
    for record in records[::3]:
        for item in record.declaration.items:
            subject = subject_of(block, _values(record.declaration, dict(item)))
            if subject is None:
                continue
            as_of = record.declaration.header["date"]
            assert preloaded.history(profile, subject, as_of) == plain.history(
                profile, subject, as_of
            )
            asked += 1
    assert asked > 100 and preloaded.queries == 2
    # a new subject (never seen before) gets an outcome: the preloaded cache learns it
    newcomer = _declaration("NEW-1", dt.date(2024, 5, 1), "NEWCOMER", "6403")
    with store.begin() as c:
        write_declarations(c, [newcomer])
        preloaded.record_outcome(
            c, "NEW-1", completed=False, date=dt.date(2024, 5, 2), reasons=("0201",)
        )
    value = preloaded.history(profile, ("NEWCOMER", "6403"), dt.date(2024, 5, 10))
    assert value.negative == 10.0
    assert value == plain.history(profile, ("NEWCOMER", "6403"), dt.date(2024, 5, 10))
