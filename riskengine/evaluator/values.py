"""Runtime helpers of the evaluator: missing-safe functions and value formatting for messages.

Missing is ``None`` everywhere. Generated code inlines the common cases (comparisons, arithmetic)
and calls these helpers only for the rarer built-ins, so both the compiled evaluator and the
reference interpreter in the test suite share one definition of each.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

__all__ = [
    "MISSING_TEXT",
    "format_value",
    "number",
    "round_half_away",
    "subtract",
]

#: How a missing value is shown in an inspector message.
MISSING_TEXT = "—"


def number(value: Decimal | int | float) -> float:
    """A number literal as the evaluator sees it: numbers compare and compute as ``float``
    (the literal ``12.50`` is the float ``12.5``)."""
    return float(value)


def round_half_away(value: Any, digits: Any = 0) -> Any:
    """``round(x)`` / ``round(x, n)``: half away from zero (2.5 → 3, -2.5 → -3), like SQL's
    ``ROUND`` on exact numbers; missing when an argument is missing."""
    if value is None or digits is None:
        return None
    n = int(digits)
    scale = 10.0**n
    scaled = abs(float(value)) * scale
    if math.isinf(scaled) or math.isnan(scaled):
        return float(value)
    rounded = math.floor(scaled + 0.5) / scale
    return -rounded if value < 0 else rounded


def subtract(left: Any, right: Any) -> Any:
    """``a - b`` where both may be dates: the number of days between them."""
    if left is None or right is None:
        return None
    result = left - right
    if isinstance(result, dt.timedelta):
        return result.days
    return result


def format_value(value: Any) -> str:
    """A value as shown in an inspector message: missing → "—", numbers without a trailing
    ``.0``, dates ISO, booleans ``true``/``false``, lists comma-separated."""
    if value is None:
        return MISSING_TEXT
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, tuple | list | frozenset):
        return ", ".join(format_value(v) for v in value)
    return str(value)
