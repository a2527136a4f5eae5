"""What the SQL compiler knows of a number before it runs: its magnitude, and its value when
it is a constant.

A :class:`Mag` bounds the magnitude of a value (the smallest non-zero one and the largest one)
from the literals, flags, fields and operators it is made of. The compiler guards an operation
against overflow (and, on PostgreSQL, underflow to zero) only when the bounds of its operands
allow one: ``40 * flag + 30 * other`` stays plain SQL, ``item.customs_value / item.net_mass``
is guarded. Constant sub-expressions are computed here, with the evaluator's rules
(:func:`fold`), so no engine ever evaluates an overflowing constant.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import attrs

from riskengine.evaluator.values import round_half_away

#: The smallest positive double (a subnormal).
TINY = 5e-324
DBL_MAX = sys.float_info.max
#: Guard thresholds, with a factor of two of slack for rounding: a sum or product whose
#: bound stays below OVER cannot overflow; a product or quotient whose smallest non-zero
#: magnitude stays above UNDER cannot underflow to zero.
OVER = 2.0**1023
UNDER = 2.0**-1000


@attrs.frozen
class Mag:
    """Bounds of ``|value|`` over every row: ``lo`` the smallest non-zero magnitude (``inf``
    when the value is always 0), ``hi`` the largest; ``integral``: always a whole number."""

    lo: float = TINY
    hi: float = DBL_MAX
    integral: bool = False

    @staticmethod
    def of(value: float) -> Mag:
        a = abs(float(value))
        if a == 0:
            return Mag(math.inf, 0.0, True)
        return Mag(a, a, float(value).is_integer())

    def join(self, other: Mag) -> Mag:
        return Mag(min(self.lo, other.lo), max(self.hi, other.hi), self.integral and other.integral)


UNKNOWN = Mag()
FLAG = Mag(1.0, 1.0, True)
#: A number of days between two dates of years 1..9999.
DAYS = Mag(1.0, 3_652_059.0, True)


def _cap(x: float) -> float:
    return DBL_MAX if x > DBL_MAX or math.isnan(x) else x


def guards(op: str, a: Mag, b: Mag) -> tuple[bool, bool]:
    """Whether ``a op b`` can overflow, and whether it can underflow to zero (a product or
    quotient of non-zero operands that is 0)."""
    if op in "+-":
        return a.hi + b.hi >= OVER, False
    if op == "*":
        over = a.hi * b.hi >= OVER
        under = a.lo < 1 and b.lo < 1 and a.lo * b.lo < UNDER
        return over, under
    over = b.lo < 1 and (a.hi / b.lo if b.lo > 0 else math.inf) >= OVER
    under = b.hi > 1 and a.lo < math.inf and a.lo / b.hi < UNDER
    return over, under


def result(op: str, a: Mag, b: Mag) -> Mag:
    """Bounds of ``a op b`` (a result that overflows is missing, so ``hi`` is at most DBL_MAX)."""
    if op in "+-":
        integral = a.integral and b.integral
        return Mag(1.0 if integral else TINY, _cap(a.hi + b.hi), integral)
    if op == "*":
        lo = a.lo * b.lo
        return Mag(max(lo, TINY), _cap(a.hi * b.hi), a.integral and b.integral)
    lo = a.lo / b.hi if b.hi > 0 else math.inf
    hi = a.hi / b.lo if b.lo > 0 else math.inf
    return Mag(max(lo, TINY), _cap(hi), False)


def rounded(a: Mag) -> Mag:
    return Mag(1.0, _cap(a.hi + 1.0), True)


class _NotConstant:
    def __repr__(self) -> str:
        return "NOT_CONSTANT"


#: The value of an expression that is not a constant.
NOT_CONSTANT: Any = _NotConstant()


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, int) and abs(x) > DBL_MAX:
        return None
    return x


def fold(op: str, *args: Any) -> Any:
    """The evaluator's value of an operator over constant operands (``None``: missing):
    missing in, missing out; a division by zero or a result that is not finite is missing."""
    if any(a is None for a in args):
        return None
    try:
        match op:
            case "+":
                return _finite(args[0] + args[1])
            case "-":
                return _finite(args[0] - args[1])
            case "*":
                return _finite(args[0] * args[1])
            case "/":
                return None if args[1] == 0 else _finite(args[0] / args[1])
            case "neg":
                return -args[0]
            case "abs":
                return abs(args[0])
            case "round":
                return _finite(round_half_away(args[0]))
            case "min":
                return min(args)
            case "max":
                return max(args)
    except OverflowError:
        return None
    raise ValueError(f"no constant rule for {op!r}")
