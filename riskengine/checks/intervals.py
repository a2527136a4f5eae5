"""Interval arithmetic: the range of values the degree can take, to find controls that never apply.

Every expression gets an :class:`Interval` ``[lo, hi]`` (floats, ±inf for unbounded) that
contains every value it can take, and a flag saying whether it can be missing. The rules:

- a number literal ``c`` → ``[c, c]``; ``true`` → ``[1, 1]``, ``false`` → ``[0, 0]``;
- an indicator, a comparison, ``and``/``or``/``not``, ``in``, ``starts with``, ``between``,
  ``matches``, ``is missing`` → ``[0, 1]`` (never missing); a boolean field → ``[0, 1]``,
  may be missing;
- a numeric field → ``[-inf, inf]``, may be missing; a regional parameter → ``[-inf, inf]``
  (``[0, 1]`` if boolean), never missing (every fill supplies every parameter);
- ``negative_history`` → ``[0, max]`` of its block, ``positive_history`` likewise; ``[0, 0]``
  without the block;
- ``a + b`` → ``[a.lo + b.lo, a.hi + b.hi]``; ``a - b`` → ``[a.lo - b.hi, a.hi - b.lo]``;
  ``a * b`` → min and max of the four endpoint products, with ``0 × ±inf = 0``;
  ``a / b`` → ``a × [1/b.hi, 1/b.lo]`` when ``b`` does not contain 0, else ``[-inf, inf]``
  and may be missing (division by zero gives a missing value);
- ``-a`` → ``[-a.hi, -a.lo]``; ``min``/``max`` → the min/max of the lows and of the highs;
  ``abs`` → ``[0, max(|lo|, |hi|)]`` when the interval contains 0, else the mirrored interval;
  ``round(a, d)`` with a constant ``d`` → ``[floor(lo, d), ceil(hi, d)]`` (sound for every
  rounding mode), with a non-constant ``d`` → ``[-inf, inf]``;
- ``if c then a else b`` → the hull of ``a`` and ``b``.

Arithmetic and functions with an operand that may be missing may be missing. The degree of a
profile is missing → 0, so :func:`degree_range` adds 0 to the range when the degree may be
missing. It returns the range *before* clamping to 0..100.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs

from riskengine import model as m
from riskengine.catalogue import Catalogue, FieldType, default_catalogue

INF = math.inf


@attrs.frozen
class Interval:
    """A closed range ``[lo, hi]`` of floats (±inf allowed) and whether the value may be missing."""

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

    def __add__(self, other: Interval) -> Interval:
        return Interval(
            _nan_to(self.lo + other.lo, -INF),
            _nan_to(self.hi + other.hi, INF),
            self.missing or other.missing,
        )

    def __sub__(self, other: Interval) -> Interval:
        return Interval(
            _nan_to(self.lo - other.hi, -INF),
            _nan_to(self.hi - other.lo, INF),
            self.missing or other.missing,
        )

    def __mul__(self, other: Interval) -> Interval:
        products = [
            _mul(self.lo, other.lo),
            _mul(self.lo, other.hi),
            _mul(self.hi, other.lo),
            _mul(self.hi, other.hi),
        ]
        return Interval(min(products), max(products), self.missing or other.missing)

    def __truediv__(self, other: Interval) -> Interval:
        if other.lo <= 0.0 <= other.hi:
            return Interval(-INF, INF, True)
        inverse = Interval(_inv(other.hi), _inv(other.lo))
        result = self * inverse
        return Interval(result.lo, result.hi, self.missing or other.missing)

    def __neg__(self) -> Interval:
        return Interval(-self.hi, -self.lo, self.missing)


UNBOUNDED = Interval(-INF, INF)
BOOL = Interval(0.0, 1.0)


def _nan_to(x: float, default: float) -> float:
    return default if math.isnan(x) else x


def _mul(a: float, b: float) -> float:
    if a == 0.0 or b == 0.0:
        return 0.0
    return a * b


def _inv(x: float) -> float:
    return 0.0 if math.isinf(x) else 1.0 / x


def _floor(x: float, digits: int) -> float:
    if math.isinf(x):
        return x
    scale = 10.0**digits
    return math.floor(x * scale) / scale


def _ceil(x: float, digits: int) -> float:
    if math.isinf(x):
        return x
    scale = 10.0**digits
    return math.ceil(x * scale) / scale


@attrs.define
class RangeFinder:
    """Computes intervals of the expressions of one profile."""

    profile: m.Profile
    catalogue: Catalogue
    indicators: frozenset[str] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.indicators = frozenset(i.name for i in self.profile.indicators)

    def range(self, expr: m.Expr) -> Interval:
        """The interval of ``expr``."""
        fn = _DISPATCH.get(type(expr))
        if fn is None:  # a predicate: true/false
            return BOOL
        return fn(self, expr)

    def _number(self, e: m.NumberLit) -> Interval:
        return Interval.exact(float(e.value))

    def _bool(self, e: m.BoolLit) -> Interval:
        return Interval.exact(1.0 if e.value else 0.0)

    def _field(self, e: m.FieldRef) -> Interval:
        if e.path.startswith("region."):
            for p in self.profile.params:
                if p.name == e.name:
                    return BOOL if p.type == "boolean" and not p.is_list else UNBOUNDED
            return UNBOUNDED
        field = self.catalogue.get(e.path)
        if field is not None and field.type is FieldType.BOOLEAN:
            return Interval(0.0, 1.0, True)
        return Interval(-INF, INF, True)

    def _ref(self, e: m.Ref) -> Interval:
        return BOOL if e.name in self.indicators else UNBOUNDED

    def _history(self, e: m.HistoryRef) -> Interval:
        hist = self.profile.history
        block: m.NegativeHistory | m.PositiveHistory | None = None
        if hist is not None:
            block = hist.negative if e.kind is m.HistoryKind.NEGATIVE else hist.positive
        if block is None:
            return Interval.exact(0.0)
        top = float(block.max)
        return Interval(min(0.0, top), max(0.0, top))

    def _neg(self, e: m.Neg) -> Interval:
        return -self.range(e.operand)

    def _arith(self, e: m.Arith) -> Interval:
        a = self.range(e.left)
        b = self.range(e.right)
        if e.op == "+":
            return a + b
        if e.op == "-":
            return a - b
        if e.op == "*":
            return a * b
        return a / b

    def _call(self, e: m.Call) -> Interval:
        args = [self.range(a) for a in e.args]
        if not args:
            return UNBOUNDED
        missing = any(a.missing for a in args)
        if e.func == "min":
            return Interval(min(a.lo for a in args), min(a.hi for a in args), missing)
        if e.func == "max":
            return Interval(max(a.lo for a in args), max(a.hi for a in args), missing)
        a = args[0]
        if e.func == "abs":
            if a.lo >= 0:
                return Interval(a.lo, a.hi, missing)
            if a.hi <= 0:
                return Interval(-a.hi, -a.lo, missing)
            return Interval(0.0, max(-a.lo, a.hi), missing)
        if e.func == "round":
            digits = 0
            if len(e.args) > 1:
                d = e.args[1]
                if not isinstance(d, m.NumberLit) or d.value != d.value.to_integral():
                    return Interval(-INF, INF, missing)
                digits = int(d.value)
            return Interval(_floor(a.lo, digits), _ceil(a.hi, digits), missing)
        return Interval(-INF, INF, missing)

    def _cond(self, e: m.Cond) -> Interval:
        return self.range(e.then).hull(self.range(e.otherwise))

    def _unknown(self, e: Any) -> Interval:
        return UNBOUNDED


_DISPATCH: dict[type, Callable[[RangeFinder, Any], Interval]] = {
    m.NumberLit: RangeFinder._number,
    m.BoolLit: RangeFinder._bool,
    m.StringLit: RangeFinder._unknown,
    m.DateLit: RangeFinder._unknown,
    m.FieldRef: RangeFinder._field,
    m.Ref: RangeFinder._ref,
    m.HistoryRef: RangeFinder._history,
    m.Neg: RangeFinder._neg,
    m.Arith: RangeFinder._arith,
    m.Call: RangeFinder._call,
    m.Cond: RangeFinder._cond,
}


def expr_range(expr: m.Expr, profile: m.Profile, catalogue: Catalogue | None = None) -> Interval:
    """The interval of any numeric expression of ``profile``."""
    return RangeFinder(profile, catalogue or default_catalogue()).range(expr)


def degree_interval(profile: m.Profile, catalogue: Catalogue | None = None) -> Interval:
    """The degree's interval before clamping; a degree that may be missing counts as 0."""
    if profile.degree is None:
        return Interval.exact(0.0)
    found = expr_range(profile.degree, profile, catalogue)
    if found.missing:
        found = Interval(min(found.lo, 0.0), max(found.hi, 0.0))
    return found


def degree_range(profile: m.Profile, catalogue: Catalogue | None = None) -> tuple[float, float]:
    """``(lo, hi)``: bounds of the degree *before* clamping to 0..100 (±inf when unbounded).
    A degree that may be missing counts as 0, so 0 is then inside the range."""
    found = degree_interval(profile, catalogue)
    return (found.lo, found.hi)
