"""The numeric rules of the language, Python side: literals, rounding, non-finite results.

* Numbers compute and compare as IEEE doubles (Python ``float``): the literal ``12.50`` is the
  float ``12.5``; an integer field ``3`` equals the literal ``3.0``.
* **A non-finite result is missing.** When ``+ - * /`` of two finite numbers overflows (``1e308 *
  10``, ``1e308 / 0.1``) the result is missing, exactly like a division by zero: no ``inf`` or
  ``nan`` ever flows on into comparisons, the degree or SQL. :func:`finite` is the rule.
* ``round(x)`` / ``round(x, n)`` rounds half away from zero (2.5 → 3, -2.5 → -3), like SQL's
  ``ROUND`` on exact numbers; :func:`round_half_away` is its one definition.
* A difference of two dates is the whole number of days from the right one to the left one.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from decimal import Decimal
from typing import Any

__all__ = [
    "MAX_FINITE",
    "MAX_ROUND_DIGITS",
    "days_between",
    "finite",
    "is_finite_number",
    "number",
    "round_half_away",
]

#: The largest finite float (about 1.8e308); beyond it arithmetic overflows to a missing value.
MAX_FINITE = 1.7976931348623157e308
#: ``round(x, n)`` with ``n`` above this is ``x`` itself (a double has no digit beyond 10**-1075)
#: and with ``n`` below its opposite 0 (every double is below half of ``10**400``).
MAX_ROUND_DIGITS = 1100


def number(value: Decimal | int | float) -> float:
    """A number literal as the evaluator sees it: a ``float`` (``12.50`` → ``12.5``). A literal
    beyond the float range becomes ``inf`` here; ``check`` rejects such literals, and the code
    generator never writes the value as text (it goes through a module constant)."""
    return float(value)


def is_finite_number(value: float) -> bool:
    """Whether a float is finite (neither ``inf``, ``-inf`` nor ``nan``)."""
    return math.isfinite(value)


def finite(value: Any) -> Any:
    """The rule for arithmetic results: a number beyond the float range (``inf``, ``-inf``,
    ``nan``, or an int too large for a float) is missing (``None``)."""
    if value is None or -MAX_FINITE <= value <= MAX_FINITE:
        return value
    return None


def round_half_away(value: Any, digits: Any = 0) -> Any:
    """``round(x)`` / ``round(x, n)``: half away from zero (2.5 → 3, -2.5 → -3); ``n`` is
    truncated to a whole number; missing when an argument is missing or the result overflows.

    For ``|n| <= 300`` the value is scaled by ``10**n`` in floats (as always); beyond, where the
    scale itself leaves the float range, the rounding is done exactly in decimal."""
    if value is None or digits is None:
        return None
    n = int(digits)
    if not -_FLOAT_DIGITS <= n <= _FLOAT_DIGITS:
        return _round_exact(float(value), n)
    scale = 10.0**n
    scaled = abs(float(value)) * scale
    if math.isinf(scaled) or math.isnan(scaled):
        return float(value)
    rounded = math.floor(scaled + 0.5) / scale
    return finite(-rounded if value < 0 else rounded)  # round(1.7e308, -308) overflows


_FLOAT_DIGITS = 300
_EXACT = decimal.Context(prec=2000, Emax=100_000, Emin=-100_000, rounding=decimal.ROUND_HALF_UP)


def _round_exact(value: float, n: int) -> float | None:
    """Round half away from zero to ``n`` decimal places, exactly (any ``n``)."""
    if not math.isfinite(value) or n > MAX_ROUND_DIGITS:
        return value  # a double has no digit beyond 10**-1075
    if n < -MAX_ROUND_DIGITS:
        return -0.0 if value < 0 else 0.0  # every double is below half of 10**400
    exact = Decimal(value).quantize(Decimal(1).scaleb(-n), context=_EXACT)
    result: float | None = finite(float(exact))
    return result


def days_between(left: Any, right: Any) -> Any:
    """``a - b`` where both may be dates: the number of days from ``b`` to ``a``; numbers
    subtract (with the non-finite rule); missing when either is missing."""
    if left is None or right is None:
        return None
    result = left - right
    if isinstance(result, dt.timedelta):
        return result.days
    return finite(result)
