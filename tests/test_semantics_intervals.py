"""The interval analysis is sound against the evaluator.

Hypothesis draws numeric expressions over the catalogue's number fields, a boolean field,
indicators (predicates on fields, some constant), history values, every operator and function
and ``if``, with edge values (0, 0.1, 1.4, 1e-300, 1e308, ±inf-making products, divisions by
zero), and declarations whose fields hold such values or are missing. For each the generated
evaluator computes the degree's raw value (its explaining path reports it before the clamp):

- the value lies inside the interval the analysis computes, or it is missing (or not finite:
  the numeric rule makes such a result missing) and the analysis said it may be;
- the same with the checks' view (the catalogue's types trusted);
- when the analysis says the profile cannot fire where some indicators are false, no item on
  which they are false fires.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from riskengine import model as m
from riskengine.catalogue import default_catalogue
from riskengine.evaluator import CompiledProfile, EmptyHistoryProvider, IndicatorState
from riskengine.semantics.intervals import Analysis, Interval, degree_bounds
from tests.eval_strategies import unchecked_declaration

AS_OF = dt.date(2024, 3, 1)
NUMBER_FIELDS = ("item.customs_value", "item.net_mass", "declaration.invoice_total")
EDGE_NUMBERS = (0.0, 0.1, 1.4, 2.5, -2.5, 10000.0, 4199999.99, 1e-300, 1e308, -1e308, 1e200)
INDICATORS = ("cheap", "heavy", "chinese", "always", "never")


def _lit(x: float) -> m.NumberLit:
    return m.NumberLit(Decimal(repr(x)))


numbers = st.one_of(
    st.sampled_from(EDGE_NUMBERS),
    st.floats(min_value=-1000, max_value=1000, allow_nan=False).map(lambda x: round(x, 2)),
)
literals = numbers.map(lambda x: _lit(x) if x >= 0 else m.Neg(_lit(-x)))
leaves = st.one_of(
    literals,
    st.sampled_from(NUMBER_FIELDS).map(m.FieldRef),
    st.just(m.FieldRef("declaration.declarant.aeo")),
    st.sampled_from(INDICATORS).map(m.Ref),
    st.sampled_from((m.HistoryKind.NEGATIVE, m.HistoryKind.POSITIVE)).map(m.HistoryRef),
)


def _grow(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(m.Arith, st.sampled_from("+-*/"), children, children),
        children.map(m.Neg),
        st.builds(
            lambda f, xs: m.Call(f, tuple(xs)),
            st.sampled_from(("min", "max")),
            st.lists(children, min_size=2, max_size=3),
        ),
        children.map(lambda x: m.Call("abs", (x,))),
        st.builds(
            lambda x, d: m.Call("round", (x, *(() if d is None else (_digits(d),)))),
            children,
            st.one_of(st.none(), st.integers(-3, 3)),
        ),
        st.builds(m.Cond, st.sampled_from(INDICATORS).map(m.Ref), children, children),
    )


def _digits(d: int) -> m.Expr:
    return _lit(float(d)) if d >= 0 else m.Neg(_lit(float(-d)))


expressions = st.recursive(leaves, _grow, max_leaves=10)


def _profile(degree: m.Expr) -> m.Profile:
    def cmp(path: str, op: str, x: float) -> m.Expr:
        return m.Compare(op, m.FieldRef(path), _lit(x))

    indicators = (
        m.Indicator("cheap", None, cmp("item.customs_value", "<", 100.0)),
        m.Indicator("heavy", None, cmp("item.net_mass", ">", 1000.0)),
        m.Indicator(
            "chinese", None, m.InList(m.FieldRef("item.origin"), m.ListLit((m.StringLit("CN"),)))
        ),
        m.Indicator("always", None, m.BoolLit(True)),
        m.Indicator("never", None, m.IsMissing(m.FieldRef("item.origin")), m.BoolLit(True)),
    )
    history = m.History(
        subjects=(m.HistorySubject(m.FieldRef("declaration.declarant.id")),),
        window_days=30,
        negative=m.NegativeHistory(max=Decimal(20), reasons=()),
        positive=m.PositiveHistory(max=Decimal(10), step=Decimal(2)),
    )
    controls = tuple(
        m.Control(code, f"control {code}", m.ControlKind.MANDATORY, Decimal(t))
        for code, t in (("102", 1), ("201", 60))
    )
    return m.Profile(
        number=None,
        name="interval soundness",
        indicators=indicators,
        degree=degree,
        controls=controls,
        history=history,
    )


values = st.one_of(st.none(), numbers)
items = st.fixed_dictionaries(
    {
        "customs_value": values,
        "net_mass": values,
        "origin": st.one_of(st.none(), st.sampled_from(("CN", "DE"))),
    }
)
declarations = st.fixed_dictionaries(
    {
        "date": st.just(AS_OF),
        "invoice_total": values,
        "declarant": st.fixed_dictionaries(
            {"id": st.just("UA1"), "aeo": st.one_of(st.none(), st.booleans())}
        ),
        "items": st.lists(items, min_size=1, max_size=3),
    }
)


def _inside(value: float | None, found: Interval) -> bool:
    if value is None or not math.isfinite(value):
        return found.missing
    return found.lo <= value <= found.hi


def _explained(cp: CompiledProfile, raw: dict[str, Any]) -> Any:
    decl = unchecked_declaration(raw)
    return cp.run_explained(
        cp.variant(None), decl.header, decl.items, cp.region(None),
        EmptyHistoryProvider().history, AS_OF, True, None,
    )  # fmt: skip


_ONE_ITEM: dict[str, Any] = {"date": AS_OF, "items": [{}]}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions, declarations)
@example(m.Arith("+", _lit(1e308), _lit(1e308)), _ONE_ITEM)  # overflows: missing
@example(m.Arith("-", m.Neg(_lit(1e308)), _lit(1e308)), _ONE_ITEM)
@example(m.Arith("*", _lit(1e200), _lit(1e200)), _ONE_ITEM)
@example(m.Arith("/", _lit(1e308), _lit(0.1)), _ONE_ITEM)
@example(m.Arith("/", _lit(1.4), _lit(1.4)), _ONE_ITEM)
@example(m.Arith("/", _lit(1.0), m.Arith("-", _lit(0.1), _lit(0.1))), _ONE_ITEM)  # 1 / 0
@example(m.Call("round", (_lit(1.7976931348623157e308), m.Neg(_lit(308.0)))), _ONE_ITEM)
@example(m.Call("round", (_lit(2.5),)), _ONE_ITEM)
@example(m.Call("round", (_lit(4503599627370497.0),)), _ONE_ITEM)  # 2**52 + 1 rounds up
def test_the_evaluators_value_lies_in_the_interval(degree: m.Expr, raw: dict[str, Any]) -> None:
    profile = _profile(degree)
    untyped = Analysis(profile).degree()
    typed = Analysis(profile, catalogue=default_catalogue()).degree()
    lo, hi, missing = degree_bounds(profile)
    assert (lo, hi, missing) == (untyped.lo, untyped.hi, untyped.missing)
    cp = CompiledProfile(profile)
    fired, explanation = _explained(cp, raw)
    for item in explanation.items:
        assert _inside(item.degree_value, untyped), (item.degree_value, untyped)
        assert _inside(item.degree_value, typed), (item.degree_value, typed)
    if not Analysis(profile).can_fire(profile.controls):
        assert fired is None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions, declarations, st.sets(st.sampled_from(INDICATORS[:3]), min_size=1))
def test_a_profile_that_cannot_fire_where_indicators_are_false_does_not(
    degree: m.Expr, raw: dict[str, Any], falsified: set[str]
) -> None:
    profile = _profile(degree)
    forced = {id(i.condition) for i in profile.indicators if i.name in falsified}
    if Analysis(profile, false=forced).can_fire(profile.controls):
        return
    _fired, explanation = _explained(CompiledProfile(profile), raw)
    for item in explanation.items:
        states = {i.name: i.state for i in item.indicators}
        if all(states[n] is not IndicatorState.TRUE for n in falsified):
            assert not item.fired


@pytest.mark.parametrize(
    ("a", "b", "lo", "hi", "missing"),
    [
        # a non-finite result is missing: products and sums that can overflow may be
        ((1e308, 1e308), (10.0, 10.0), INF := math.inf, INF, True),
        ((0.0, 1.0), (1.0, 2.0), 0.0, 2.0, False),
        ((0.0, 0.0), (-INF, INF), 0.0, 0.0, False),
    ],
)
def test_products_that_can_overflow_may_be_missing(
    a: tuple[float, float], b: tuple[float, float], lo: float, hi: float, missing: bool
) -> None:
    found = Interval(*a) * Interval(*b)
    assert (found.lo, found.hi, found.missing) == (lo, hi, missing)
