"""History as input: the provider protocol, its value and record types, and an in-memory provider.

A profile's ``history per SUBJECT over N days { negative ... positive ... }`` block asks, for a
subject (the values of the ``per`` fields) and an as-of date, for two numbers:

* ``negative_history`` = min(max, per_case × Σ over the subject's non-completed clearances in the
  window of the highest coefficient among the clearance's reason codes that the profile lists;
  a clearance with no listed reason counts 0);
* ``positive_history`` = min(max, step × number of clean controls (controls that found no
  violation) of the subject in the window).

The window is ``[as_of - window_days, as_of)``: only events strictly before the as-of date count.
A subject with a missing value gives 0 and 0 (the evaluator does not call the provider then).
"""

from __future__ import annotations

import bisect
import datetime as dt
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Protocol, runtime_checkable

import attrs

from riskengine import model as m

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


@attrs.frozen
class HistoryRecord:
    """One event behind a history value.

    ``kind`` is ``"clearance"`` (a non-completed clearance, for negative history) or ``"control"``
    (a control that found no violation, for positive history). ``value`` is what the event added
    before the cap: per_case × coefficient for a clearance (0 when none of its reasons is listed
    by the profile), the step for a clean control.
    """

    kind: Literal["clearance", "control"]
    date: dt.date
    value: float
    declaration_id: str | None = None
    reasons: tuple[str, ...] = ()


@attrs.frozen
class HistoryValue:
    """The two history values of one subject on one date (already capped) and their records."""

    negative: float = 0.0
    positive: float = 0.0
    records: tuple[HistoryRecord, ...] = ()


#: No history: both values 0, no records.
NO_HISTORY = HistoryValue()


@runtime_checkable
class HistoryProvider(Protocol):
    """Where the evaluator gets history from. Implementations must be safe to call from several
    threads at once and must count only events strictly before ``as_of`` inside the window."""

    def history(self, profile: Any, subject: tuple[Any, ...], as_of: dt.date) -> HistoryValue:
        """The history values of ``subject`` for ``profile`` (a model ``Profile`` or a
        ``CompiledProfile``; read its history block with :func:`history_block`) on ``as_of``."""
        ...


def history_block(profile: Any) -> m.History | None:
    """The ``history`` block of a model ``Profile`` or of a ``CompiledProfile``."""
    if isinstance(profile, m.Profile):
        return profile.history
    model = getattr(profile, "profile", None)
    if isinstance(model, m.Profile):
        return model.history
    raise TypeError(f"expected a Profile or a CompiledProfile, got {type(profile).__name__}")


def subject_of(block: m.History, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The subject of a history block given field values by full path (``declaration.x.y`` /
    ``item.x``); ``None`` when a subject field is missing. ``[:N]`` keeps the first N characters."""
    out = []
    for subj in block.subjects:
        value = values.get(subj.field.path)
        if value is None:
            return None
        if subj.prefix is not None and isinstance(value, str):
            value = value[: subj.prefix]
        out.append(value)
    return tuple(out)


class EmptyHistoryProvider:
    """A provider with no events: every history value is 0."""

    def history(self, profile: Any, subject: tuple[Any, ...], as_of: dt.date) -> HistoryValue:
        """Always :data:`NO_HISTORY`."""
        return NO_HISTORY


@attrs.frozen
class Clearance:
    """A past clearance: its date, the subject fields of the declaration (full paths such as
    ``declaration.declarant.id``, ``item.hs_code``), whether it was completed, and if not, the
    non-completion reason codes (appendix 3, ``"0201"``)."""

    date: dt.date
    fields: Mapping[str, Any]
    completed: bool = True
    reasons: tuple[str, ...] = ()
    declaration_id: str | None = None


@attrs.frozen
class ControlResult:
    """A past control form carried out: its date, the subject fields of the declaration, and
    whether it found a violation (a control without a violation is a clean control)."""

    date: dt.date
    fields: Mapping[str, Any]
    violation: bool
    declaration_id: str | None = None


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
        index = self._index(block)
        start = as_of - dt.timedelta(days=block.window_days)
        records: list[HistoryRecord] = []
        negative = 0.0
        positive = 0.0
        if block.negative is not None:
            per_case = float(block.negative.per_case)
            coefficients = {r.code: float(r.coefficient) for r in block.negative.reasons}
            for clearance in index.clearances_between(subject, start, as_of):
                listed = [coefficients[r] for r in clearance.reasons if r in coefficients]
                value = per_case * max(listed) if listed else 0.0
                negative += value
                records.append(
                    HistoryRecord(
                        "clearance", clearance.date, value, clearance.declaration_id,
                        tuple(clearance.reasons),
                    )
                )  # fmt: skip
            negative = min(float(block.negative.max), negative)
        if block.positive is not None:
            step = float(block.positive.step)
            for control in index.controls_between(subject, start, as_of):
                positive += step
                records.append(HistoryRecord("control", control.date, step, control.declaration_id))
            positive = min(float(block.positive.max), positive)
        return HistoryValue(negative, positive, tuple(records))


class _Index:
    """Events of one subject definition: subject → events sorted by date."""

    def __init__(
        self,
        block: m.History,
        clearances: tuple[Clearance, ...],
        controls: tuple[ControlResult, ...],
    ) -> None:
        self._clearances = _group(block, clearances)
        self._controls = _group(block, controls)

    def clearances_between(
        self, subject: tuple[Any, ...], start: dt.date, end: dt.date
    ) -> list[Clearance]:
        return _between(self._clearances.get(subject), start, end)

    def controls_between(
        self, subject: tuple[Any, ...], start: dt.date, end: dt.date
    ) -> list[ControlResult]:
        return _between(self._controls.get(subject), start, end)


def _group(
    block: m.History, events: Iterable[Any]
) -> dict[tuple[Any, ...], tuple[list[dt.date], list[Any]]]:
    grouped: dict[tuple[Any, ...], list[Any]] = {}
    for event in events:
        subject = subject_of(block, event.fields)
        if subject is not None:
            grouped.setdefault(subject, []).append(event)
    out = {}
    for subject, group in grouped.items():
        group.sort(key=lambda e: e.date)  # stable: same-day events keep their input order
        out[subject] = ([e.date for e in group], group)
    return out


def _between(
    entry: tuple[list[dt.date], list[Any]] | None, start: dt.date, end: dt.date
) -> list[Any]:
    if entry is None:
        return []
    dates, events = entry
    lo = bisect.bisect_left(dates, start)
    hi = bisect.bisect_left(dates, end)
    return events[lo:hi]
