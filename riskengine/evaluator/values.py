"""Runtime helpers of the evaluator: missing-safe functions and value formatting for messages.

Missing is ``None`` everywhere. The numeric rules (literals, ``round``, date differences) are
defined once in :mod:`riskengine.semantics.numbers` and re-exported here.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

# One definition of each, in the semantics package (re-exported for the evaluator's callers).
from riskengine.semantics.numbers import days_between as subtract
from riskengine.semantics.numbers import number, round_half_away

__all__ = [
    "MISSING_TEXT",
    "format_value",
    "number",
    "round_half_away",
    "subtract",
]

#: How a missing value is shown in an inspector message.
MISSING_TEXT = "—"


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
