"""The interval analysis of the profile language: what values an expression can take.

One abstract interpretation, read by the checks (the degree's range: controls that can never or
always apply, RE302/RE303/RE307), by the evaluator (:func:`degree_bounds`: a degree always
within 0..100 skips the clamp) and by the candidate index and the backtest's guards
(:meth:`Analysis.can_fire` with chosen predicates forced false).

Abstract values:

- a number is an :class:`Interval` ``[lo, hi]`` (floats; ±inf means unbounded, never a value)
  and a flag saying whether it may be *missing*;
- a condition is a :class:`Truth`: whether it can be true, whether it can be false. Conditions
  are never missing (a predicate with a missing operand is false).

The rules follow the evaluator's (docs/semantics.md):

- a number literal ``c`` → ``[c, c]``; ``true`` → 1, ``false`` → 0;
- a condition used as a number → 0 and/or 1, as its :class:`Truth` allows; an indicator's
  truth is its condition's and not its ``unless``'s, evaluated in indicator order; every
  predicate (comparison, ``in``, ``starts with``, ``between``, ``matches``, ``is missing``) can
  be true or false unless it is one of the predicates forced false;
- a declaration or item field → unbounded, may be missing (a boolean field of the catalogue:
  0..1); a regional parameter → unbounded (a boolean one 0..1), never missing when the
  catalogue is given (the checks: every fill supplies every parameter, RE406), may be missing
  otherwise (a fill built through the API);
- ``negative_history`` / ``positive_history`` → ``[0, max]`` of the block, 0 without it;
- ``+ - * /``, unary ``-``: interval arithmetic on the endpoints in floating point (the
  evaluator's own operations are monotone in each operand, so the bounds hold), ``0 × ±inf``
  taken as 0 (an unbounded operand is still a finite value); a divisor whose interval holds 0
  makes the result unbounded and maybe missing (division by zero is missing);
- *the numeric rule*: a non-finite arithmetic result is missing. Whenever finite operands
  within the intervals could overflow, the result may be missing;
- ``min``/``max`` → the min/max of the lows and of the highs; ``abs`` → the mirrored interval
  (from 0 when it holds 0); ``round(x, d)`` → for each digit count ``d`` can take (a few), the
  hull of ``floor``/``ceil`` at ``d`` digits and the evaluator's own rounding of the ends (both
  monotone); an argument that may be missing makes the result maybe missing;
- ``if c then a else b`` → the hull of the branches ``c`` allows (missing or false → ``b``).

The checks add 0 to the degree's range when it may be missing (a missing degree is 0); the
clamp to 0..100 comes after.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import attrs

from riskengine import model as m
from riskengine.catalogue import Catalogue, FieldType
from riskengine.semantics.indicators import topo_indicators

INF = math.inf
_MAX = sys.float_info.max


class Interval(NamedTuple):
    """A closed range ``[lo, hi]`` of floats (±inf: unbounded) and whether the value may be
    missing instead. Immutable (a named tuple: the analysis builds many, and cheaply)."""

    lo: float
    hi: float
    missing: bool = False

    @classmethod
    def exact(cls, value: float) -> Interval:
        return cls(value, value)

    def hull(self, other: Interval) -> Interval:
        """The smallest interval containing both."""
        return Interval(
            min(self.lo, other.lo), max(self.hi, other.hi), self.missing or other.missing
        )

    def contains(self, value: float) -> bool:
        return self.lo <= value <= self.hi

    def clamp(self, low: float = 0.0, high: float = 100.0) -> Interval:
        """The interval after clamping each value to ``[low, high]``."""
        return Interval(min(max(self.lo, low), high), min(max(self.hi, low), high), self.missing)

    def maybe_missing(self) -> Interval:
        return self if self.missing else Interval(self.lo, self.hi, True)

    # Each operation: the ends of the result, and whether a value inside the operands'
    # intervals can overflow (then the result may be missing: a non-finite result is missing).
    # With finite ends the overflow test is on the ends' own results; an infinite end stands
    # for the largest finite value there (:func:`_fin`).

    def __add__(self, other: Interval) -> Interval:  # type: ignore[override]
        a, b, c, d = self.lo, self.hi, other.lo, other.hi
        lo, hi = a + c, b + d
        missing = self.missing or other.missing
        if _isfinite(lo) and _isfinite(hi):
            return Interval(lo, hi, missing)
        over = _overflows(_fin(a) + _fin(c), _fin(b) + _fin(d))
        return Interval(_nan_to(lo, -INF), _nan_to(hi, INF), missing or over)

    def __sub__(self, other: Interval) -> Interval:
        a, b, c, d = self.lo, self.hi, other.lo, other.hi
        lo, hi = a - d, b - c
        missing = self.missing or other.missing
        if _isfinite(lo) and _isfinite(hi):
            return Interval(lo, hi, missing)
        over = _overflows(_fin(a) - _fin(d), _fin(b) - _fin(c))
        return Interval(_nan_to(lo, -INF), _nan_to(hi, INF), missing or over)

    def __mul__(self, other: Interval) -> Interval:  # type: ignore[override]
        a, b, c, d = self.lo, self.hi, other.lo, other.hi
        p1, p2, p3, p4 = _mul(a, c), _mul(a, d), _mul(b, c), _mul(b, d)
        missing = self.missing or other.missing
        if _isfinite(p1) and _isfinite(p2) and _isfinite(p3) and _isfinite(p4):
            return Interval(min(p1, p2, p3, p4), max(p1, p2, p3, p4), missing)
        fa, fb, fc, fd = _fin(a), _fin(b), _fin(c), _fin(d)
        over = _overflows(fa * fc, fa * fd, fb * fc, fb * fd)
        return Interval(min(p1, p2, p3, p4), max(p1, p2, p3, p4), missing or over)

    def __truediv__(self, other: Interval) -> Interval:
        if other.lo <= 0.0 <= other.hi:
            return Interval(-INF, INF, True)
        ends = [(a, b) for a in (self.lo, self.hi) for b in (other.lo, other.hi)]
        # inf / inf has no value; the end with the same numerator over the other end of the
        # divisor is ±inf or covers it (the divisor's interval is on one side of 0)
        quotients = [q for a, b in ends if not math.isnan(q := a / b)]
        over = _overflows(*(_fin(a) / _fin(b) for a, b in ends))
        if not quotients:
            return Interval(-INF, INF, True)
        return Interval(min(quotients), max(quotients), self.missing or other.missing or over)

    def __neg__(self) -> Interval:
        return Interval(-self.hi, -self.lo, self.missing)


_isfinite = math.isfinite


UNBOUNDED = Interval(-INF, INF)
ANY = Interval(-INF, INF, True)
BOOL = Interval(0.0, 1.0)


def _nan_to(x: float, default: float) -> float:
    return default if math.isnan(x) else x


def _fin(x: float) -> float:
    """An end as the largest finite value it stands for (for overflow tests)."""
    return min(max(x, -_MAX), _MAX)


def _overflows(*values: float) -> bool:
    return not all(math.isfinite(v) for v in values)


def _mul(a: float, b: float) -> float:
    if a == 0.0 or b == 0.0:
        return 0.0
    return a * b


def _round_interval(x: Interval, digits: Interval) -> Interval:
    """``round(x, d)`` for every ``d`` in ``digits``: the evaluator's rounding (half away from
    zero at ``int(d)`` digits) is monotone in ``x``, so its values at the ends bound it;
    ``floor``/``ceil`` at ``d`` digits bound every rounding mode, and are kept where wider."""
    missing = x.missing or digits.missing
    if not (math.isfinite(digits.lo) and math.isfinite(digits.hi)):
        return Interval(-INF, INF, True)
    first, last = int(digits.lo), int(digits.hi)
    if last - first > 32:
        return Interval(-INF, INF, True)
    lows: list[float] = []
    highs: list[float] = []
    for n in range(first, last + 1):
        try:
            lows.append(_round_bound(x.lo, n, up=False))
            highs.append(_round_bound(x.hi, n, up=True))
            missing = missing or _overflows(_evaluator_round(-_MAX, n), _evaluator_round(_MAX, n))
        except ArithmeticError:  # 10.0 ** n out of range: no bound
            return Interval(-INF, INF, True)
    return Interval(min(lows), max(highs), missing)


def _round_bound(end: float, n: int, up: bool) -> float:
    """A bound of ``round(x, n)`` for ``x`` on this side of ``end`` (below it when ``up``)."""
    if math.isinf(end):
        return end
    rounded = _evaluator_round(end, n)
    scale = 10.0**n
    scaled = end * scale
    if not math.isfinite(scaled):
        return rounded
    if up:
        return max(rounded, math.ceil(scaled) / scale)
    return min(rounded, math.floor(scaled) / scale)


def _evaluator_round(value: float, n: int) -> float:
    """The evaluator's ``round``, with a missing (overflowing) result as a signed infinity, so
    that the bound stays sound and ``_overflows`` marks the interval as possibly missing."""
    from riskengine.semantics.numbers import round_half_away

    result: float | None = round_half_away(value, n)
    return math.copysign(math.inf, value) if result is None else result


@attrs.frozen
class Truth:
    """An abstract condition: whether it can be true, whether it can be false."""

    t: bool
    f: bool

    def as_number(self) -> Interval:
        return Interval(0.0 if self.f else 1.0, 1.0 if self.t else 0.0)


UNKNOWN = Truth(True, True)
TRUE = Truth(True, False)
FALSE = Truth(False, True)
#: ``_TRUTHS[t][f]``: the one instance of each truth (immutable: built once)
_TRUTHS = ((Truth(False, False), FALSE), (TRUE, UNKNOWN))


class Analysis:
    """The abstract evaluation of one profile's expressions.

    ``catalogue``: the field types to trust (boolean fields and regional parameters then read
    as 0..1, and regional parameters as never missing); without it every field and parameter
    is any number or missing. ``false``: ids of predicate nodes taken as false (the index's
    question "can the profile fire where these predicates are all false?"). ``order``: the
    profile's indicators in evaluation order (computed when not given; with a cycle, the
    indicators read as unknown)."""

    def __init__(
        self,
        profile: m.Profile,
        *,
        catalogue: Catalogue | None = None,
        false: frozenset[int] | set[int] = frozenset(),
        order: Sequence[m.Indicator] | None = None,
    ) -> None:
        self.profile = profile
        self.catalogue = catalogue
        self.false = false
        self.indicators: dict[str, Truth] = {}
        hist = profile.history
        self.neg = _history(hist.negative if hist is not None else None)
        self.pos = _history(hist.positive if hist is not None else None)
        if order is None:
            try:
                order = topo_indicators(profile)
            except Exception:  # a cycle (RE214): every indicator stays unknown
                order = ()
        for ind in order:
            c = self.truth(ind.condition)
            if ind.unless is not None:
                u = self.truth(ind.unless)
                c = Truth(c.t and u.f, c.f or u.t)
            self.indicators[ind.name] = c

    # -- conditions
    def truth(self, e: m.Expr) -> Truth:
        """Whether ``e``, read as a condition, can be true and can be false."""
        if id(e) in self.false:
            return FALSE
        kind = type(e)
        if kind is m.Ref:
            return self.indicators.get(e.name, UNKNOWN)  # type: ignore[union-attr]
        if kind is m.And or kind is m.Or:
            # a chain of one operator, its left spine walked without recursion
            rights: list[m.Expr] = []
            node: m.Expr = e
            false = self.false
            while type(node) is kind and (node is e or id(node) not in false):
                rights.append(node.right)
                node = node.left
            acc = self.truth(node)
            for right in reversed(rights):
                y = self.truth(right)
                if kind is m.And:
                    acc = _TRUTHS[acc.t and y.t][acc.f or y.f]
                else:
                    acc = _TRUTHS[acc.t or y.t][acc.f and y.f]
            return acc
        if kind is m.BoolLit:
            return TRUE if e.value else FALSE  # type: ignore[union-attr]
        if kind is m.Not:
            x = self.truth(e.operand)  # type: ignore[union-attr]
            return _TRUTHS[x.f][x.t]
        if kind is m.Cond:
            assert isinstance(e, m.Cond)
            x = self.truth(e.test)
            branches = ([self.truth(e.then)] if x.t else []) + (
                [self.truth(e.otherwise)] if x.f else []
            )
            return _TRUTHS[any(v.t for v in branches)][any(v.f for v in branches)]
        return UNKNOWN

    # -- numbers
    def value(self, e: m.Expr) -> Interval:
        """The interval of ``e`` read as a number."""
        kind = type(e)
        if kind is m.NumberLit:
            v = float(e.value)  # type: ignore[union-attr, arg-type]
            return Interval(v, v)
        if kind is m.Arith:
            # the left spine of a chain (``a + b - c * d``) without recursion: width is
            # not limited (docs/language.md#limits)
            rights: list[tuple[str, m.Expr]] = []
            node: m.Expr = e
            while type(node) is m.Arith:
                rights.append((node.op, node.right))
                node = node.left
            acc = self.value(node)
            for op, right in reversed(rights):
                y = self.value(right)
                if op == "+":
                    acc = acc + y
                elif op == "-":
                    acc = acc - y
                elif op == "*":
                    acc = acc * y
                else:
                    acc = acc / y
            return acc
        if kind is m.Ref:
            name = e.name  # type: ignore[union-attr]
            found = self.indicators.get(name)
            if found is not None:
                return found.as_number()
            if any(i.name == name for i in self.profile.indicators):
                return BOOL  # an indicator on a cycle
            return UNBOUNDED  # an unknown name (RE2xx)
        if kind is m.FieldRef:
            return self._field(e)  # type: ignore[arg-type]
        if kind is m.HistoryRef:
            return self.neg if e.kind is m.HistoryKind.NEGATIVE else self.pos  # type: ignore[union-attr]
        if kind is m.StringLit or kind is m.DateLit:
            return UNBOUNDED
        if kind is m.Neg:
            return -self.value(e.operand)  # type: ignore[union-attr]
        if kind is m.Call:
            return self._call(e.func, e.args)  # type: ignore[union-attr]
        if kind is m.Cond:
            assert isinstance(e, m.Cond)
            c = self.truth(e.test)
            parts = ([self.value(e.then)] if c.t else []) + (
                [self.value(e.otherwise)] if c.f else []
            )
            if not parts:
                return ANY
            out = parts[0]
            for p in parts[1:]:
                out = out.hull(p)
            return out
        return self.truth(e).as_number()

    def _field(self, e: m.FieldRef) -> Interval:
        if self.catalogue is None:
            return ANY
        if e.scope == "region":
            for p in self.profile.params:
                if p.name == e.name:
                    return BOOL if p.type == "boolean" and not p.is_list else UNBOUNDED
            return UNBOUNDED
        field = self.catalogue.get(e.path)
        if field is not None and field.type is FieldType.BOOLEAN:
            return Interval(0.0, 1.0, True)
        return ANY

    def _call(self, func: str, args: tuple[m.Expr, ...]) -> Interval:
        if not args or func not in m.FUNCTIONS:
            return ANY
        xs = [self.value(a) for a in args]
        missing = any(x.missing for x in xs)
        if func == "min":
            return Interval(min(x.lo for x in xs), min(x.hi for x in xs), missing)
        if func == "max":
            return Interval(max(x.lo for x in xs), max(x.hi for x in xs), missing)
        x = xs[0]
        if func == "abs":
            if x.lo >= 0:
                return Interval(x.lo, x.hi, missing)
            if x.hi <= 0:
                return Interval(-x.hi, -x.lo, missing)
            return Interval(0.0, max(-x.lo, x.hi), missing)
        digits = xs[1] if len(xs) > 1 else Interval.exact(0.0)
        return _round_interval(x, digits)

    # -- the profile
    def degree(self) -> Interval:
        """The degree's interval before the clamp (0 when the profile has no degree)."""
        if self.profile.degree is None:
            return Interval.exact(0.0)
        return self.value(self.profile.degree)

    def can_fire(self, controls: Iterable[m.Control]) -> bool:
        """Whether one of ``controls`` can apply: its threshold within reach of the clamped
        degree and its condition possibly true."""
        d = self.degree()
        top = min(max(d.hi, 0.0), 100.0)
        for ctl in controls:
            if top < float(ctl.threshold):
                continue
            if ctl.condition is None or self.truth(ctl.condition).t:
                return True
        return False


def _history(block: m.NegativeHistory | m.PositiveHistory | None) -> Interval:
    if block is None:
        return Interval.exact(0.0)
    top = float(block.max)
    return Interval(min(0.0, top), max(0.0, top))


# ------------------------------------------------------------------------------ entry points


def expr_range(expr: m.Expr, profile: m.Profile, catalogue: Catalogue | None = None) -> Interval:
    """The interval of a numeric expression of ``profile``, with the catalogue's types (the
    default catalogue when none is given)."""
    from riskengine.catalogue import default_catalogue

    return Analysis(profile, catalogue=catalogue or default_catalogue()).value(expr)


def degree_interval(profile: m.Profile, catalogue: Catalogue | None = None) -> Interval:
    """The degree's interval before clamping, as the checks read it: a degree that may be
    missing counts as 0, so 0 is then inside the range."""
    if profile.degree is None:
        return Interval.exact(0.0)
    try:
        found = expr_range(profile.degree, profile, catalogue)
    except RecursionError:  # nested beyond the language's limits (reported by the checks)
        return Interval(-INF, INF)
    if found.missing:
        found = Interval(min(found.lo, 0.0), max(found.hi, 0.0))
    return found


def degree_range(profile: m.Profile, catalogue: Catalogue | None = None) -> tuple[float, float]:
    """``(lo, hi)``: bounds of the degree *before* clamping to 0..100 (±inf when unbounded).
    A degree that may be missing counts as 0, so 0 is then inside the range."""
    found = degree_interval(profile, catalogue)
    return (found.lo, found.hi)


def degree_bounds(
    profile: m.Profile, lists: Mapping[str, m.ListLit] | None = None
) -> tuple[float, float, bool]:
    """Bounds of the degree before clamping and whether it may be missing, trusting no types
    (the evaluator's view: a degree within 0..100 whenever it is not missing skips the clamp).
    ``lists`` is unused (the analysis reads no list values)."""
    if profile.degree is None:
        return 0.0, 0.0, False
    try:
        found = Analysis(profile).degree()
    except RecursionError:  # nested beyond the language's limits (reported by the checks)
        return -INF, INF, True
    return found.lo, found.hi, found.missing
