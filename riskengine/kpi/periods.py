"""Reporting periods: a financial (calendar) year, or a reporting year that starts in another
month, such as October–September (seed 001: "the current year is the period from 1 October of
the previous year to 30 September of the current year")."""

from __future__ import annotations

import datetime as dt

import attrs

__all__ = ["Period", "reporting_year"]


@attrs.frozen
class Period:
    """Dates ``start`` .. ``end``, both inclusive; ``label`` as shown in reports."""

    start: dt.date
    end: dt.date
    label: str

    def __contains__(self, day: object) -> bool:
        return isinstance(day, dt.date) and self.start <= day <= self.end


def reporting_year(year: int, start_month: int = 1) -> Period:
    """The reporting year ``year``: the calendar year with ``start_month`` 1, else the twelve
    months that END in ``year`` (``reporting_year(2025, 10)`` is 2024-10-01 .. 2025-09-30)."""
    if not 1 <= start_month <= 12:
        raise ValueError(f"start month {start_month} is not 1-12")
    if start_month == 1:
        return Period(dt.date(year, 1, 1), dt.date(year, 12, 31), str(year))
    start = dt.date(year - 1, start_month, 1)
    end = dt.date(year, start_month, 1) - dt.timedelta(days=1)
    return Period(start, end, f"{year} ({start:%Y-%m}..{end:%Y-%m})")
