"""History as input to the evaluator: an in-memory provider, and the protocol it implements.

The provider protocol, the value and record types and the formula live in
:mod:`riskengine.semantics.history` (shared with the store's provider and the SQL of backtests);
they are re-exported here for the evaluator's users. :class:`InMemoryHistoryProvider` indexes
lists of clearances and control results held in memory and computes each value with
:func:`~riskengine.semantics.history.history_value`, exactly like the store.
"""

from __future__ import annotations

import bisect
import datetime as dt
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from riskengine import model as m
from riskengine.semantics.history import (
    NO_HISTORY,
    Clearance,
    ControlResult,
    EmptyHistoryProvider,
    HistoryProvider,
    HistoryRecord,
    HistoryValue,
    TermsCache,
    history_block,
    history_value,
    subject_of,
)

__all__ = [
    "NO_HISTORY",
    "Clearance",
    "ControlResult",
    "EmptyHistoryProvider",
    "HistoryProvider",
    "HistoryRecord",
    "HistoryValue",
    "InMemoryHistoryProvider",
    "history_block",
    "subject_of",
]


_SubjectKey = tuple[tuple[str, int | None], ...]


class InMemoryHistoryProvider:
    """History from lists of clearances and control results held in memory.

    Events are indexed per subject definition on first use (the index is built under a lock, then
    read without one), so a provider can be shared by threads.
    """

    def __init__(
        self, clearances: Iterable[Clearance] = (), controls: Iterable[ControlResult] = ()
    ) -> None:
        self._clearances = tuple(c for c in clearances if not c.completed)
        self._controls = tuple(c for c in controls if not c.violation)
        self._lock = threading.Lock()
        self._indexes: dict[_SubjectKey, _Index] = {}
        self._terms = TermsCache()

    def _index(self, block: m.History) -> _Index:
        key = tuple((s.field.path, s.prefix) for s in block.subjects)
        index = self._indexes.get(key)
        if index is None:
            with self._lock:
                index = self._indexes.get(key)
                if index is None:
                    index = _Index(block, self._clearances, self._controls)
                    self._indexes[key] = index
        return index

    def history(self, profile: Any, subject: tuple[Any, ...], as_of: dt.date) -> HistoryValue:
        """The capped history values of ``subject`` on ``as_of`` with the records behind them."""
        block = history_block(profile)
        if block is None or any(v is None for v in subject):
            return NO_HISTORY
        terms = self._terms.get(block)
        index = self._index(block)
        start = as_of - dt.timedelta(days=block.window_days)
        clearances = _between(index.clearances.get(subject), start, as_of) if terms.negative else ()
        controls = _between(index.controls.get(subject), start, as_of) if terms.positive else ()
        return history_value(terms, clearances, controls)


class _Index:
    """Events of one subject definition: subject → (dates, events) sorted by date, each event as
    :func:`~riskengine.semantics.history.history_value` reads it."""

    def __init__(
        self,
        block: m.History,
        clearances: tuple[Clearance, ...],
        controls: tuple[ControlResult, ...],
    ) -> None:
        self.clearances = _group(
            block, ((c.fields, c.date, (c.date, c.declaration_id, c.reasons)) for c in clearances)
        )
        self.controls = _group(
            block, ((c.fields, c.date, (c.date, c.declaration_id)) for c in controls)
        )


_Entry = tuple[list[dt.date], list[Any]]


def _group(
    block: m.History, events: Iterable[tuple[Mapping[str, Any], dt.date, Any]]
) -> dict[tuple[Any, ...], _Entry]:
    grouped: dict[tuple[Any, ...], list[tuple[dt.date, Any]]] = {}
    for fields, date, event in events:
        subject = subject_of(block, fields)
        if subject is not None:
            grouped.setdefault(subject, []).append((date, event))
    out = {}
    for subject, group in grouped.items():
        group.sort(key=lambda e: e[0])  # stable: same-day events keep their input order
        out[subject] = ([e[0] for e in group], [e[1] for e in group])
    return out


def _between(entry: _Entry | None, start: dt.date, end: dt.date) -> list[Any]:
    if entry is None:
        return []
    dates, events = entry
    lo = bisect.bisect_left(dates, start)
    hi = bisect.bisect_left(dates, end)
    return events[lo:hi]
