"""One history formula, exact, everywhere: the in-memory provider, the store's single lookup and
provider (uncached, cached, preloaded) and the set-based SQL of backtests (values computed in
Python from the integer columns, and in SQL) give identical values on random histories, on
SQLite, PostgreSQL and DuckDB, equal to the formula of docs/semantics.md#history written out
below with fractions and rounded to a float once."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Iterator, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskengine import model as m
from riskengine.declaration import Declaration
from riskengine.evaluator import Clearance, ControlResult, InMemoryHistoryProvider
from riskengine.semantics.history import HistoryTerms, Weight, subject_of
from riskengine.store.history import (
    SqlHistoryProvider,
    history_for_range,
    history_select,
    history_select_many,
    lookup_history,
)
from riskengine.store.schema import TABLES
from riskengine.store.writer import (
    ControlRecord,
    OutcomeRecord,
    write_controls,
    write_declarations,
    write_outcomes,
)

DAY0 = dt.date(2024, 3, 1)
REASONS = ("0101", "0201", "0302", "1301")
DATA_TABLES = ("outcome_reasons", "clearance_outcomes", "control_results", "items", "declarations")


@attrs.frozen
class World:
    declarations: tuple[Declaration, ...]
    outcomes: tuple[OutcomeRecord, ...]
    controls: tuple[ControlRecord, ...]


def block_of(
    subjects: Sequence[tuple[str, int | None]],
    window: int,
    negative: tuple[str, str, dict[str, str]] | None,
    positive: tuple[str, str] | None,
) -> m.History:
    """A history block from text numbers: negative (max, per case, {code: coefficient}),
    positive (max, step)."""
    return m.History(
        subjects=tuple(m.HistorySubject(m.FieldRef(path), prefix) for path, prefix in subjects),
        window_days=window,
        negative=None
        if negative is None
        else m.NegativeHistory(
            max=Decimal(negative[0]),
            per_case=Decimal(negative[1]),
            reasons=tuple(m.ReasonCoefficient(c, Decimal(k)) for c, k in negative[2].items()),
        ),
        positive=None
        if positive is None
        else m.PositiveHistory(max=Decimal(positive[0]), step=Decimal(positive[1])),
    )


# --- the formula, written out -----------------------------------------------------------------


def _values(declaration: Declaration, item: Any) -> dict[str, Any]:
    values = {f"declaration.{k}": v for k, v in declaration.header.items()}
    if item is not None:
        values.update({f"item.{k}": v for k, v in dict(item).items()})
    return values


def subjects_of(block: m.History, declaration: Declaration) -> dict[tuple[Any, ...], Any]:
    """The subjects a declaration has (header fields; item fields all from one goods item), each
    with the item it comes from."""
    per_item = any(s.field.path.startswith("item.") for s in block.subjects)
    out: dict[tuple[Any, ...], Any] = {}
    for item in declaration.items if per_item else [None]:
        subject = subject_of(block, _values(declaration, item))
        if subject is not None:
            out.setdefault(subject, item)
    return out


@attrs.frozen
class Expected:
    negative: float
    positive: float
    units: int  # Σ scale x the highest listed coefficient
    clean: int


def reference(
    world: World, block: m.History, subject: tuple[Any, ...] | None, as_of: dt.date
) -> Expected:
    """min(max, per_case x Σ c) and min(max, step x clean controls), in fractions."""
    if subject is None:
        return Expected(0.0, 0.0, 0, 0)
    by_id = {d.header["id"]: d for d in world.declarations}
    start = as_of - dt.timedelta(days=block.window_days)
    total = Fraction(0)
    negative = positive = Fraction(0)
    clean = 0
    if block.negative is not None:
        listed: dict[str, Fraction] = {}
        for r in block.negative.reasons:
            listed[r.code] = max(Fraction(r.coefficient), listed.get(r.code, Fraction(0)))
        for o in world.outcomes:
            counts = not o.completed and start <= o.date < as_of
            if counts and subject in subjects_of(block, by_id[o.declaration_id]):
                total += max((listed[r] for r in o.reasons if r in listed), default=0)
        negative = min(Fraction(block.negative.max), Fraction(block.negative.per_case) * total)
    if block.positive is not None:
        for c in world.controls:
            if not c.violation_found and start <= c.date < as_of:
                clean += subject in subjects_of(block, by_id[c.declaration_id])
        positive = min(Fraction(block.positive.max), Fraction(block.positive.step) * clean)
    scale = HistoryTerms.of(block).scale
    assert (total * scale).denominator == 1
    return Expected(float(negative), float(positive), int(total * scale), clean)


def targets(world: World, block: m.History) -> Iterator[tuple[str, int | None, Any, dt.date]]:
    """(declaration id, item number, subject, as-of date) of every goods item (a declaration
    without items: one target, item None)."""
    for d in world.declarations:
        items: list[tuple[int | None, Any]] = [*enumerate(d.items, 1)] or [(None, None)]
        for number, item in items:
            yield d.header["id"], number, subject_of(block, _values(d, item)), d.header["date"]


def in_memory(world: World, block: m.History) -> InMemoryHistoryProvider:
    """The world's events for the in-memory provider: one event per subject of the declaration
    (an earlier declaration counts once per subject, as in the store)."""
    by_id = {d.header["id"]: d for d in world.declarations}
    clearances = []
    controls = []
    for o in world.outcomes:
        d = by_id[o.declaration_id]
        for item in subjects_of(block, d).values():
            fields = _values(d, item)
            clearances.append(Clearance(o.date, fields, o.completed, o.reasons, o.declaration_id))
    for c in world.controls:
        d = by_id[c.declaration_id]
        for item in subjects_of(block, d).values():
            fields = _values(d, item)
            controls.append(ControlResult(c.date, fields, c.violation_found, c.declaration_id))
    return InMemoryHistoryProvider(clearances, controls)


# --- random histories -------------------------------------------------------------------------

SUBJECTS = [
    [("declaration.declarant.id", None)],
    [("declaration.importer.id", None)],
    [("declaration.declarant.id", None), ("item.hs_code", 4)],
    [("item.hs_code", 4)],
    [("item.hs_code", 2), ("item.origin", None)],
]
COEFFICIENTS = ["0.1", "0.05", "0.333", "0.3333333", "0.7", "1", "1.25", "0.2"]

blocks = st.builds(
    block_of,
    st.sampled_from(SUBJECTS),
    st.sampled_from([0, 1, 2, 5, 10, 30]),
    st.none()
    | st.tuples(
        st.sampled_from(["0", "0.3", "1", "7.5", "30", "1000"]),
        st.sampled_from(["1", "0.1", "3", "2.5", "0.333", "12"]),
        st.dictionaries(st.sampled_from(REASONS), st.sampled_from(COEFFICIENTS), max_size=4),
    ),
    st.none()
    | st.tuples(
        st.sampled_from(["0", "0.3", "2", "20"]),
        st.sampled_from(["0.1", "0.5", "1", "0.3333", "3"]),
    ),
)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    declarations = []
    outcomes = []
    controls = []
    for n in range(draw(st.integers(1, 10))):
        ident = f"D{n:03}"
        date = DAY0 + dt.timedelta(days=draw(st.integers(0, 12)))
        header: dict[str, Any] = {"id": ident, "date": date}
        for name, pool in (("declarant.id", ["A", "B"]), ("importer.id", ["I1", "I2", None])):
            value = draw(st.sampled_from(pool))
            if value is not None:
                header[name] = value
        items = []
        for _ in range(draw(st.integers(0, 3))):
            item: dict[str, Any] = {}
            hs = draw(st.sampled_from(["640399", "6403", "6404", "85", None]))
            if hs is not None:
                item["hs_code"] = hs
            origin = draw(st.sampled_from(["CN", "VN", None]))
            if origin is not None:
                item["origin"] = origin
            items.append(item)
        declarations.append(Declaration(header=header, items=tuple(items), id=ident))
        # event dates around the declaration's: on it, before it, after it (window edges)
        if draw(st.booleans()):
            completed = draw(st.integers(0, 3)) == 0
            reasons = () if completed else tuple(sorted(draw(st.sets(st.sampled_from(REASONS)))))
            when = date + dt.timedelta(days=draw(st.integers(-2, 6)))
            outcomes.append(OutcomeRecord(ident, completed, when, reasons))
        for procedure in draw(st.sets(st.sampled_from(["102", "201"]), max_size=2)):
            when = date + dt.timedelta(days=draw(st.integers(-2, 6)))
            controls.append(ControlRecord(ident, procedure, when, draw(st.integers(0, 2)) == 0))
    return World(tuple(declarations), tuple(outcomes), tuple(controls))


# --- every provider ---------------------------------------------------------------------------


@pytest.fixture
def loaded(store: sa.Engine) -> Iterator[Any]:
    """A function writing a world into the store (committed: the providers read it on their
    own connections); every example's rows are deleted afterwards."""

    def empty() -> None:
        for name in DATA_TABLES:  # one transaction each: DuckDB checks foreign keys against
            with store.begin() as c:  # the rows deleted earlier in the same transaction
                c.execute(TABLES.metadata.tables[name].delete())

    def load(world: World) -> dict[int, str]:
        empty()
        with store.begin() as c:
            write_declarations(c, world.declarations)
            write_outcomes(c, world.outcomes)
            write_controls(c, world.controls)
            d = TABLES.declarations
            return dict(c.execute(sa.select(d.c.pk, d.c.id)).all())

    yield load
    empty()


def all_values(store: sa.Engine, world: World, block: m.History, ids: dict[int, str]) -> Any:
    """{provider: {(declaration id, item number): (negative, positive)}} and the integer columns
    of the set-based query, for every goods item of the world."""
    profile = m.Profile(number=None, name="history semantics", history=block)
    providers: dict[str, Any] = {
        "in-memory": in_memory(world, block),
        "store": SqlHistoryProvider(store),
        "store, cached": SqlHistoryProvider(store, cache=True),
        "store, preloaded": SqlHistoryProvider(store, cache=True),
    }
    providers["store, preloaded"].preload(profile)
    out: dict[str, dict[tuple[str, int | None], tuple[float, float]]] = {}
    records: dict[str, list[Any]] = {}
    with store.connect() as c:
        for name, provider in providers.items():
            out[name] = {}
            for ident, number, subject, as_of in targets(world, block):
                if subject is None:  # the evaluator does not ask then: 0 and 0
                    out[name][(ident, number)] = (0.0, 0.0)
                    continue
                value = provider.history(profile, subject, as_of)
                out[name][(ident, number)] = (value.negative, value.positive)
                got = sorted((r.kind, r.date, r.value, r.declaration_id) for r in value.records)
                records.setdefault(f"{ident}/{number}", []).append(got)
        out["lookup_history"] = {}
        for ident, number, subject, as_of in targets(world, block):
            found = (0.0, 0.0)
            if subject is not None:
                value = lookup_history(c, block, subject, as_of)
                found = (value.negative, value.positive)
            out["lookup_history"][(ident, number)] = found
        ranged = list(history_for_range(c, block))
        out["history_for_range"] = {
            (ids[h.decl_pk], h.item_no): (h.negative, h.positive) for h in ranged
        }
        integers = {
            (ids[h.decl_pk], h.item_no): (h.negative_units, h.clean_controls) for h in ranged
        }
        rows = c.execute(history_select(block)).mappings().all()
        out["SQL"] = {
            (ids[r["decl_pk"]], r["item_no"]): (r["negative_history"], r["positive_history"])
            for r in rows
        }
        other = attrs.evolve(block, window_days=block.window_days + 3)
        many = c.execute(history_select_many([other, block])).mappings().all()
        out["SQL, several blocks"] = {
            (ids[r["decl_pk"]], r["item_no"]): (r["negative_history_1"], r["positive_history_1"])
            for r in many
        }
    for key, lists in records.items():
        assert all(r == lists[0] for r in lists), key  # the same records from every provider
    return out, integers


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds(), block=blocks)
def test_every_provider_and_the_sql_give_the_formulas_exact_values(
    store: sa.Engine, loaded: Any, world: World, block: m.History
) -> None:
    ids = loaded(world)
    found, integers = all_values(store, world, block, ids)
    want = {
        (ident, number): reference(world, block, subject, as_of)
        for ident, number, subject, as_of in targets(world, block)
    }
    values = {key: (e.negative, e.positive) for key, e in want.items()}
    for name, got in found.items():
        assert got == values, name
        assert all(type(v) is float for pair in got.values() for v in pair), name
    assert integers == {key: (e.units, e.clean) for key, e in want.items()}


def test_three_clearances_at_0_1_give_0_3_everywhere(store: sa.Engine, loaded: Any) -> None:
    """0.1 + 0.1 + 0.1 is 0.30000000000000004 in floats; the history is exactly 0.3."""
    assert 0.1 + 0.1 + 0.1 != 0.3
    block = block_of(
        [("declaration.declarant.id", None)], 30, ("10", "1", {"0101": "0.1"}), ("10", "0.1")
    )
    day = dt.date(2024, 6, 1)
    earlier = [
        Declaration(header={"id": f"P{n}", "date": day, "declarant.id": "A"}, items=())
        for n in range(3)
    ]
    now = Declaration(
        header={"id": "NOW", "date": day + dt.timedelta(days=10), "declarant.id": "A"},
        items=({"hs_code": "6403"},),
    )
    world = World(
        (*earlier, now),
        tuple(OutcomeRecord(d.header["id"], False, day, ("0101",)) for d in earlier),
        tuple(ControlRecord(d.header["id"], "102", day, False) for d in earlier),
    )
    ids = loaded(world)
    found, integers = all_values(store, world, block, ids)
    assert integers[("NOW", 1)] == (3, 3)
    assert len(found) == 8
    for name, got in found.items():
        assert got[("NOW", 1)] == (0.3, 0.3), name
        assert got[("P0", None)] == (0.0, 0.0), name  # same-day events do not count


# --- the formula's pieces ---------------------------------------------------------------------


@given(
    factor=st.fractions(min_value=0, max_value=1000, max_denominator=10**6),
    cap=st.fractions(min_value=0, max_value=1000, max_denominator=10**6),
    count=st.integers(0, 10**7),
)
def test_a_weight_is_the_exact_value_rounded_once(
    factor: Fraction, cap: Fraction, count: int
) -> None:
    weight = Weight.of(factor, cap)
    exact = min(cap, factor * count)
    assert weight.exact(count) == exact
    assert weight.value(count) == float(exact)
    if weight.cap_count is not None:  # the smallest count that reaches the cap
        assert factor * weight.cap_count >= cap
        assert weight.cap_count == 0 or factor * (weight.cap_count - 1) < cap


def test_weights_within_the_check_limits_are_exact_in_sql() -> None:
    """The largest weights `check` accepts (1,000, 6 decimal places) keep every operand of the
    SQL below 2**53; a block far beyond them says it is not exact there."""
    worst = block_of(
        [("declaration.declarant.id", None)],
        3660,
        ("1000", "999.999999", {"0101": "0.000001", "0201": "1000"}),
        ("1000", "0.000001"),
    )
    assert HistoryTerms.of(worst).sql_exact
    beyond = block_of(
        [("declaration.declarant.id", None)], 1, ("1e20", "0.000000001", {"0101": "0.1"}), None
    )
    assert not HistoryTerms.of(beyond).sql_exact


def test_terms_scale_coefficients_to_integer_units() -> None:
    block = block_of(
        [("declaration.declarant.id", None)],
        30,
        ("30", "2.5", {"0101": "0.1", "0201": "0.05", "0302": "1"}),
        ("20", "0.5"),
    )
    terms = HistoryTerms.of(block)
    assert (terms.scale, dict(terms.units)) == (100, {"0101": 10, "0201": 5, "0302": 100})
    assert terms.clearance_units(["0201", "0101", "9999"]) == 10  # the highest listed
    assert terms.clearance_units(["9999"]) == 0
    assert terms.negative_value(15) == 0.375  # 2.5 x 0.15
    assert terms.negative_value(10**6) == 30.0
    assert terms.positive_value(3) == 1.5 and terms.positive_value(100) == 20.0


def test_the_store_does_not_import_the_evaluator() -> None:
    code = (
        "import sys, riskengine.store.history, riskengine.store.writer; "
        "print(sorted(m for m in sys.modules if m.startswith('riskengine.evaluator')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
