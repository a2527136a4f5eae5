"""The numeric rules of the language, Python side: literals, rounding, non-finite results.

* Numbers compute and compare as IEEE doubles (Python ``float``): the literal ``12.50`` is the
  float ``12.5``; an integer field ``3`` equals the literal ``3.0``.
* **A non-finite result is missing.** When ``+ - * /`` of two finite numbers overflows (``1e308 *
  10``, ``1e308 / 0.1``) the result is missing, exactly like a division by zero: no ``inf`` or
  ``nan`` ever flows on into comparisons, the degree or SQL. :func:`finite` is the rule.
* ``round(x)`` / ``round(x, n)`` rounds half away from zero (2.5 → 3, -2.5 → -3), like SQL's
  ``ROUND`` on exact numbers; :func:`round_half_away` is its one definition.
* A difference of two dates is the whole number of days from the right one to the left one.
* **Numbers entering riskengine** (declaration values, ingested cells, JSON input) are finite
  and at most :data:`MAX_INPUT_NUMBER` (10^15) in magnitude; :func:`input_number` is the one
  rule, read by the declaration normaliser and the ingest conversions.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from decimal import Decimal
from typing import Any

__all__ = [
    "MAX_FINITE",
    "MAX_INPUT_NUMBER",
    "MAX_ROUND_DIGITS",
    "days_between",
    "finite",
    "input_number",
    "is_finite_number",
    "number",
    "round_half_away",
]

#: The largest finite float (about 1.8e308); beyond it arithmetic overflows to a missing value.
MAX_FINITE = 1.7976931348623157e308
#: ``round(x, n)`` with ``n`` above this is ``x`` itself (a double has no digit beyond 10**-1075)
#: and with ``n`` below its opposite 0 (every double is below half of ``10**400``).
MAX_ROUND_DIGITS = 1100


#: The largest magnitude of a number in input data: 10^15, inclusive. Every number a profile
#: may write has at most 15 digits before the decimal point (``limits.py``), every integer up to
#: it is exact as a double (2^53 is about 9.007e15), a money value of 15 digits fits the store's
#: ``NUMERIC(18, 2)`` revenue, and products and quotients of such values and literals stay far
#: from the float range on every engine (``1e308 / 0.1`` overflowed PostgreSQL). No customs
#: value, mass or quantity comes near it (10^15 UAH is far above a year's imports).
MAX_INPUT_NUMBER = 10**15


class InputNumberError(ValueError):
    """A number that :func:`input_number` refuses; the message is the reason."""


def _shown(value: Any) -> str:
    """A number as a message shows it: a long integer by its length."""
    if isinstance(value, int):
        if -(10**20) < value < 10**20:
            return str(value)
        # str() refuses 4,300 digits and more: count them from the bits (exact, at most one step)
        digits = int((abs(value).bit_length() - 1) * 0.30102999566398) + 1
        if abs(value) >= 10**digits:
            digits += 1
        return f"an integer of {digits:,} digits"
    if isinstance(value, Decimal):
        text = str(value)
        return text if len(text) <= 40 else text[:37] + "..."
    return repr(value)


def input_number(
    value: int | float | Decimal, *, minimum: float | None = None, shown: str | None = None
) -> int | float:
    """The rule for a number entering riskengine: ``value`` as the evaluator and the store see
    it (an ``int`` stays an ``int``, a ``float`` or ``Decimal`` becomes a ``float``), or
    :class:`InputNumberError` saying why not.

    Refused: ``inf``, ``-inf`` and ``nan`` in any form (a float, ``Decimal('Infinity')``); a
    number beyond :data:`MAX_INPUT_NUMBER` in magnitude, however it is written (``10**400``,
    ``Decimal('1e400')``, the text ``"1e999"`` read as a ``Decimal``), judged on the double it
    becomes; a number below ``minimum`` (the catalogue's ``minimum`` of the field, e.g. 0 for
    masses and values). ``shown`` is how the value was written, for the message."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise InputNumberError(f"expected a number, got {shown or _shown(value)}")
    result: int | float
    if isinstance(value, int):
        if not -MAX_INPUT_NUMBER <= value <= MAX_INPUT_NUMBER:
            raise InputNumberError(_out_of_range(shown or _shown(value)))
        result = int(value)
    else:
        if isinstance(value, Decimal):
            if not value.is_finite():
                raise InputNumberError(f"expected a finite number, got {shown or value}")
            result = float(value)  # beyond the float range: inf, out of range below
        else:
            result = float(value)
            if not math.isfinite(result):
                raise InputNumberError(f"expected a finite number, got {shown or _shown(value)}")
        if not -MAX_INPUT_NUMBER <= result <= MAX_INPUT_NUMBER:
            raise InputNumberError(_out_of_range(shown or _shown(value)))
    if minimum is not None and result < minimum:
        what = "a number that is not negative" if minimum == 0 else f"a number ≥ {minimum:g}"
        raise InputNumberError(f"expected {what}, got {shown or _shown(value)}")
    return result


def _out_of_range(shown: str) -> str:
    return f"{shown} is out of range (a number may be at most 1e15 in magnitude)"


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
