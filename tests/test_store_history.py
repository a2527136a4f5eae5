"""History from the store: the set-based query and the single lookup agree with a plain Python
computation on random outcome histories, on every backend, and nothing dated on or after the
declaration's date counts."""

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
from riskengine.evaluator.history import HistoryProvider, subject_of
from riskengine.store.history import (
    SqlHistoryProvider,
    history_for_range,
    history_select,
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
    st.integers(1, 30),
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
    candidates = [dict(i) for i in other.items] or [None]
    return any(subject_of(block, _values(other, item)) == subject for item in candidates)


def expected(world: World, block: m.History) -> dict[tuple[str, int | None], tuple[float, float]]:
    """History of every goods item, computed the obvious way from the lists."""
    by_id = {d.header["id"]: d for d in world.declarations}
    out = {}
    for declaration in world.declarations:
        as_of = declaration.header["date"]
        start = as_of - dt.timedelta(days=block.window_days)
        targets = [(n, dict(i)) for n, i in enumerate(declaration.items, 1)] or [(None, None)]
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
    connection: sa.Connection, block: m.History, ids: dict[int, str]
) -> dict[tuple[str, int | None], tuple[float, float]]:
    return {
        (ids[h.decl_pk], h.item_no): (h.negative, h.positive)
        for h in history_for_range(connection, block)
    }


def _single(
    connection: sa.Connection, world: World, block: m.History
) -> dict[tuple[str, int | None], tuple[float, float]]:
    out = {}
    asked: dict[tuple[Any, ...], tuple[float, float]] = {}
    for declaration in world.declarations:
        targets = [(n, dict(i)) for n, i in enumerate(declaration.items, 1)] or [(None, None)]
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
    finally:
        transaction.rollback()


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
    assert float(now["negative_history"]) == pytest.approx(1.0, abs=1e-9)
    assert float(now["positive_history"]) == 0.5


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
    from riskengine.store import demo

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
