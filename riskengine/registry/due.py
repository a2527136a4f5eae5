"""The review queue (seed 003 §9.2, §9.5, §11.3, §11.5) and the reviews done on time.

**When a profile's effectiveness review is due.** Each review decision the commission recorded
(:func:`riskengine.registry.review.review`) answers the review that was due and sets the date of
the next (§9.5). Before the first decision the due date is the one set at approval (§9.2): the
``review by`` date of the latest edition approved by then that has one; without one, the first
edition's entry into force plus the suggested interval (:mod:`riskengine.registry.interval`,
from the firings of the profile's first ``window_days`` in force), but not after the edition's
last day in force. A profile is in the queue while it is approved and in force, or to be in
force, on the queue's day; a terminated profile, or one whose period ran out, is not.

**An office's monitoring (§11.5)** of its fills of a regional profile is due three months after
the office's first fill came into force, then at the date its last monitoring set (at most three
months later). It is due while the office has a fill valid in the three months before.

**A fill about to expire (§11.3)**: the office's last fill of a profile ends within the window,
and the profile stays in force after it.

**A decision not carried out**: the last review decided to terminate, or to widen, narrow or
amend, and the registry has no termination, or no edition approved on or after the decision.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import attrs
import sqlalchemy as sa

from riskengine.registry.interval import (
    Firings,
    IntervalRule,
    Suggestion,
    fired_on,
    load_rule,
    scored,
    suggest,
)
from riskengine.registry.operations import current_text
from riskengine.registry.review import MONITORING_MONTHS, Review, add_months, reviews_of
from riskengine.registry.state import table
from riskengine.syntax import parse_source

__all__ = ["Due", "Entry", "Scheduled", "due_items", "on_time", "schedule"]


@attrs.frozen
class Scheduled:
    """A review that was (or is) due: its date, why, and the decision that answered it."""

    due: dt.date
    basis: str
    answered_by: Review | None


@attrs.frozen
class Entry:
    """A profile as the queue reads it from the registry."""

    pk: int
    number: str
    name: str
    first_in_force: dt.date
    last_day: dt.date | None  # the latest edition's end (None: open)
    terminated_on: dt.date | None
    status: str


@attrs.frozen
class Due:
    """One line of the queue."""

    kind: str  # review | monitoring | fill expires | decision
    number: str
    name: str
    office: str | None
    due: dt.date
    status: str  # overdue | due | pending
    basis: str
    suggestion: Suggestion | None = None

    def as_dict(self, as_of: dt.date) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "profile": self.number,
            "name": self.name,
            "office": self.office,
            "due": self.due.isoformat(),
            "days": (self.due - as_of).days,
            "status": self.status,
            "basis": self.basis,
        }
        if self.suggestion is not None:
            s = self.suggestion
            out["suggested_months"] = s.months
            out["firings"] = s.count
            out["firing_days"] = s.days
            out["firings_per_30_days"] = None if s.rate is None else round(s.rate, 2)
        return out


def _entries(connection: sa.Connection) -> list[Entry]:
    """Every approved or terminated profile with its first day in force and its last day."""
    profiles, eds = table("profiles"), table("profile_editions")
    query = (
        sa.select(
            profiles.c.pk,
            profiles.c.base_number,
            profiles.c.name,
            profiles.c.status,
            profiles.c.terminated_on,
            sa.func.min(eds.c.in_force_from).label("first"),
        )
        .join(eds, eds.c.profile_pk == profiles.c.pk)
        .where(profiles.c.status.in_(("approved", "terminated")), eds.c.withdrawn == sa.false())
        .group_by(
            profiles.c.pk,
            profiles.c.base_number,
            profiles.c.name,
            profiles.c.status,
            profiles.c.terminated_on,
        )
        .order_by(profiles.c.base_number)
    )
    out = []
    for row in connection.execute(query).all():
        ends = connection.execute(
            sa.select(eds.c.in_force_to)
            .where(eds.c.profile_pk == row.pk, eds.c.withdrawn == sa.false())
            .order_by(eds.c.edition.desc())
            .limit(1)
        ).scalar()
        out.append(
            Entry(
                int(row.pk),
                str(row.base_number),
                str(row.name),
                row.first,
                ends,
                row.terminated_on,
                str(row.status),
            )
        )
    return out


@lru_cache(maxsize=4096)
def _review_by(text: str) -> dt.date | None:
    parsed = parse_source(text, "profile.rp")
    if parsed.source is None or not parsed.source.profiles:
        return None
    return parsed.source.profiles[0].review


class _Firings:
    """Decision-log counts, each read once: the declarations scored per window, and per window
    and profile the declarations it fired on."""

    def __init__(self, connection: sa.Connection, rule: IntervalRule) -> None:
        self.connection = connection
        self.rule = rule
        self._scored: dict[tuple[dt.date, dt.date], int] = {}
        self._fired: dict[tuple[str, dt.date, dt.date], int] = {}

    def suggestion(self, entry: Entry, start: dt.date, end: dt.date) -> Suggestion:
        window = (start, end)
        if window not in self._scored:
            self._scored[window] = scored(self.connection, start, end)
        count = 0
        if self._scored[window]:
            key = (entry.number, start, end)
            if key not in self._fired:
                self._fired[key] = fired_on(self.connection, entry.number, start, end)
            count = self._fired[key]
        found = Firings(start, end, self._scored[window], {entry.number: count})
        return suggest(self.rule, found, entry.number, (entry.first_in_force, entry.last_day))


def _first_due(
    connection: sa.Connection, entry: Entry, by: dt.date, counts: _Firings
) -> tuple[dt.date, str]:
    """The first review's due date (§9.2) as set by the editions approved by ``by``."""
    eds = table("profile_editions")
    rows = connection.execute(
        sa.select(eds.c.pk, eds.c.number)
        .where(eds.c.profile_pk == entry.pk, eds.c.withdrawn == sa.false(), eds.c.approved_on <= by)
        .order_by(eds.c.edition.desc())
    ).all()
    for row in rows:
        day = _review_by(current_text(connection, int(row.pk)))
        if day is not None:
            return day, f"review by {day} in {row.number} (set at approval, §9.2)"
    window = counts.rule.window_days
    end = min(by, entry.first_in_force + dt.timedelta(days=window - 1))
    s = counts.suggestion(entry, entry.first_in_force, end)
    due = add_months(entry.first_in_force, s.months)
    basis = f"in force from {entry.first_in_force} + suggested {s.describe()}"
    if entry.last_day is not None and entry.last_day < due:
        due = entry.last_day
        basis += f", brought forward to its last day in force {entry.last_day}"
    return due, basis


def schedule(
    connection: sa.Connection, entry: Entry, as_of: dt.date, counts: _Firings
) -> list[Scheduled]:
    """The profile's reviews due so far, each with the decision that answered it; the last one
    is unanswered unless the last decision was to terminate."""
    decided = [r for r in reviews_of(connection, entry.pk, entry.number) if r.office is None]
    decided = [r for r in decided if r.decided_on <= as_of]
    by = decided[0].decided_on if decided else as_of
    due, basis = _first_due(connection, entry, by, counts)
    out: list[Scheduled] = []
    for r in decided:
        out.append(Scheduled(due, basis, r))
        if r.next_review is None:  # terminate
            return out
        due = r.next_review
        basis = f"next review set by the commission's decision of {r.decided_on} ({r.decision})"
    out.append(Scheduled(due, basis, None))
    return out


def _fills(connection: sa.Connection, entry: Entry) -> dict[str, tuple[dt.date, dt.date, str]]:
    """Per office: its first fill's start, its last fill's end, that fill's order."""
    fills = table("regional_fills")
    out: dict[str, tuple[dt.date, dt.date, str]] = {}
    for row in connection.execute(
        sa.select(fills.c.office, fills.c.valid_from, fills.c.valid_to, fills.c.order_number)
        .where(fills.c.profile_pk == entry.pk)
        .order_by(fills.c.valid_to, fills.c.pk)
    ).all():
        first = out[row.office][0] if row.office in out else row.valid_from
        out[str(row.office)] = (min(first, row.valid_from), row.valid_to, str(row.order_number))
    return out


def monitoring(
    connection: sa.Connection, entry: Entry, office: str, start: dt.date, as_of: dt.date
) -> list[Scheduled]:
    """An office's monitorings due so far (§11.5), each with the monitoring that answered it."""
    done = [
        r
        for r in reviews_of(connection, entry.pk, entry.number)
        if r.office == office and r.decided_on <= as_of
    ]
    due = add_months(start, MONITORING_MONTHS)
    basis = f"3 months after its first fill came into force on {start} (§11.5)"
    out = []
    for r in done:
        out.append(Scheduled(due, basis, r))
        assert r.next_review is not None  # a monitoring always sets the next one
        due = r.next_review
        basis = f"set by its monitoring of {r.decided_on} (§11.5: at least every 3 months)"
    out.append(Scheduled(due, basis, None))
    return out


def _applies(entry: Entry, day: dt.date) -> bool:
    """Whether the profile is (or will be) in force on or after ``day``."""
    if entry.status != "approved":
        return False
    return entry.last_day is None or entry.last_day >= day


def _state(due: dt.date, as_of: dt.date) -> str:
    return "overdue" if due < as_of else "due"


def due_items(
    connection: sa.Connection,
    as_of: dt.date,
    *,
    within: int = 30,
    office: str | None = None,
    rule: IntervalRule | None = None,
) -> list[Due]:
    """The queue on ``as_of``: reviews and monitorings due by ``as_of`` + ``within`` days (those
    before ``as_of`` overdue), fills ending by then, decisions not carried out; ``office`` keeps
    that office's monitorings and fills only. Ordered by date, then profile."""
    rule = rule or load_rule()
    counts = _Firings(connection, rule)
    horizon = as_of + dt.timedelta(days=within)
    recent = (as_of - dt.timedelta(days=rule.window_days - 1), as_of)
    out: list[Due] = []
    for entry in _entries(connection):
        if not _applies(entry, as_of):
            continue
        if office is None:
            out += _review_items(connection, entry, as_of, horizon, counts, recent)
        out += _office_items(connection, entry, as_of, horizon, office)
    out.sort(key=lambda d: (d.due, d.number, d.office or "", d.kind))
    return out


def _review_items(
    connection: sa.Connection,
    entry: Entry,
    as_of: dt.date,
    horizon: dt.date,
    counts: _Firings,
    recent: tuple[dt.date, dt.date],
) -> Iterable[Due]:
    chain = schedule(connection, entry, as_of, counts)
    last = chain[-1]
    if last.answered_by is None and last.due <= horizon:
        yield Due(
            "review",
            entry.number,
            entry.name,
            None,
            last.due,
            _state(last.due, as_of),
            last.basis,
            counts.suggestion(entry, *recent),
        )
    decided = [s.answered_by for s in chain if s.answered_by is not None]
    if not decided:
        return
    r = decided[-1]
    if r.decision == "terminate":
        yield Due(
            "decision", entry.number, entry.name, None, r.decided_on, "pending",
            f"the commission decided to terminate on {r.decided_on}: {r.next_step}",
        )  # fmt: skip
    elif r.decision in ("widen", "narrow", "amend"):
        eds = table("profile_editions")
        later = connection.execute(
            sa.select(eds.c.pk).where(
                eds.c.profile_pk == entry.pk, eds.c.approved_on >= r.decided_on
            )
        ).first()
        if later is None:
            yield Due(
                "decision", entry.number, entry.name, None, r.decided_on, "pending",
                f"the commission decided to {r.decision} on {r.decided_on}, no edition approved "
                f"since: {r.next_step}",
            )  # fmt: skip


def _office_items(
    connection: sa.Connection,
    entry: Entry,
    as_of: dt.date,
    horizon: dt.date,
    office: str | None,
) -> Iterable[Due]:
    for where, (start, end, order) in sorted(_fills(connection, entry).items()):
        if office is not None and where != office:
            continue
        chain = monitoring(connection, entry, where, start, as_of)
        last = chain[-1]
        active = end > add_months(last.due, -MONITORING_MONTHS)
        if active and start <= as_of and last.due <= horizon:
            yield Due(
                "monitoring", entry.number, entry.name, where, last.due,
                _state(last.due, as_of), last.basis,
            )  # fmt: skip
        if as_of <= end <= horizon and _applies(entry, end + dt.timedelta(days=1)):
            yield Due(
                "fill expires", entry.number, entry.name, where, end, "due",
                f"its last fill (order {order}) is valid until {end} (§11.3: at most 3 months); "
                "the profile stays in force after it",
            )  # fmt: skip


def on_time(
    connection: sa.Connection,
    start: dt.date,
    end: dt.date,
    *,
    kinds: str = "all",
    office: str | None = None,
    each: bool = False,
    as_of: dt.date | None = None,
    rule: IntervalRule | None = None,
) -> dict[str | None, tuple[int, int]]:
    """Reviews due ``start`` .. ``end`` and how many were recorded by their due date: (on time,
    due) per office (``None``: the commission's reviews and every office's monitorings, or
    ``office``'s monitorings only; ``each``: per office). ``kinds``: ``commission``,
    ``monitoring`` or ``all``. A review due after ``as_of`` (default: today) and not yet recorded
    is not counted: it cannot be late yet."""
    rule = rule or load_rule()
    counts = _Firings(connection, rule)
    today = as_of or dt.date.today()
    tally: dict[str | None, list[int]] = {}

    def count(key: str | None, chain: list[Scheduled], last_day: dt.date | None) -> None:
        for s in chain:
            if not start <= s.due <= end or (last_day is not None and s.due > last_day):
                continue
            answered = s.answered_by
            if answered is None and s.due >= today:
                continue
            hit = answered is not None and answered.decided_on <= s.due
            slot = tally.setdefault(key, [0, 0])
            slot[0] += int(hit)
            slot[1] += 1

    horizon = end
    for entry in _entries(connection):
        last_day = entry.terminated_on or entry.last_day
        if kinds in ("commission", "all") and office is None and not each:
            count(None, schedule(connection, entry, horizon, counts), last_day)
        if kinds in ("monitoring", "all"):
            for where, (first, fill_end, _) in _fills(connection, entry).items():
                if office is not None and where != office:
                    continue
                chain = monitoring(connection, entry, where, first, horizon)
                limit = min(fill_end, last_day) if last_day is not None else fill_end
                covered = [s for s in chain if add_months(s.due, -MONITORING_MONTHS) < limit]
                count(where if each else office, covered, None)
    return {k: (v[0], v[1]) for k, v in tally.items()}
