"""The registry's window of an edition: the days it may apply, as the registry decides them.

An approved text carries its own ``in force`` dates, but the registry has the last word: an
amendment ends the previous edition the day before the new one, a termination ends every edition
on its last day, and a suspension takes a profile out of force for a while (seed 003 §10). A
set loaded from a bundle (docs/bundle.md) gives each edition its :class:`Window`; the profile
set then scores an edition only on the days its window allows, on top of the text's own dates.
"""

from __future__ import annotations

import datetime as dt

import attrs

__all__ = ["Window"]


@attrs.frozen
class Window:
    """An edition is in force from ``start`` to ``end`` (inclusive; ``None``: open), except on
    the days of a ``suspended`` period ``(first day, last day or None while not resumed)``."""

    start: dt.date
    end: dt.date | None = None
    suspended: tuple[tuple[dt.date, dt.date | None], ...] = ()

    def allows(self, day: dt.date) -> bool:
        """Whether the edition may apply on ``day``."""
        if day < self.start or (self.end is not None and day > self.end):
            return False
        for first, last in self.suspended:
            if first <= day and (last is None or day <= last):
                return False
        return True

    def dates(self) -> list[dt.date]:
        """The days on which :meth:`allows` may change (for the set's per-span cache)."""
        out = [self.start]
        for last in [self.end] + [s[1] for s in self.suspended]:
            if last is not None and last < dt.date.max:
                out.append(last + dt.timedelta(days=1))
        out += [s[0] for s in self.suspended]
        return out
