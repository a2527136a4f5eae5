"""Recording an effectiveness review's outcome (seed 003 §9.4-9.5, §11.5).

After the risk unit's effectiveness review the profile goes to the expert commission with the
unit's proposals, and the commission decides (§9.4): keep the profile in force unchanged, change
it — widen or narrow its scope, or amend it otherwise — or terminate it. When the profile stays
in force, changed or not, the commission sets the date of the next review (§9.5). The
commission's secretary records the decision (role ``secretary``, like the commission's other
decisions): :func:`review`.

A regional office monitors its fills of a regional profile at least every three months after
they come into force (§11.5) and decides whether to go on applying them, change or supplement
them: :func:`review` with ``office=`` (role ``office_filler`` for that office; action
``monitor``). The next monitoring is at most three months later.

A decision records what was decided; it changes no edition and no status. What follows is a
registry action of its own, which :attr:`Review.next_step` names: an amendment (widen, narrow,
amend) is a new text submitted with ``submit --amends`` and approved with ``amend``; a
termination is ``terminate`` with the last day. The review queue (:mod:`riskengine.registry.due`)
lists a decision whose step has not been recorded.
"""

from __future__ import annotations

import calendar
import datetime as dt

import attrs
import sqlalchemy as sa

from riskengine.registry.access import require
from riskengine.registry.base import action, insert, profile_row
from riskengine.registry.evidence import RegistryError
from riskengine.registry.state import table

__all__ = [
    "DECISIONS",
    "MONITORING_MONTHS",
    "Review",
    "add_months",
    "next_step",
    "review",
    "reviews_of",
]

#: The commission's decisions after an effectiveness review (§9.4), with what each means.
DECISIONS: dict[str, str] = {
    "keep": "keep the profile in force without changes (§9.4.1)",
    "widen": "widen the profile's scope: an amendment (§9.3.2, §9.4.2)",
    "narrow": "narrow the profile's scope: an amendment (§9.4.2)",
    "amend": "amend the profile (§9.4.2)",
    "terminate": "terminate the profile (§9.4.3)",
}

#: A regional office's monitoring is at most this many months apart (§11.5).
MONITORING_MONTHS = 3


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus ``months`` calendar months; a day the target month lacks becomes its last
    day (2025-01-31 + 1 month = 2025-02-28)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def next_step(decision: str, number: str) -> str:
    """What the registry must record next to carry out ``decision`` on profile ``number``."""
    if decision == "terminate":
        return (
            f"record the termination: riskengine registry terminate {number} --decision N "
            "--decided-on DATE --last-day DATE"
        )
    if decision in ("widen", "narrow", "amend"):
        return (
            f"the changed text goes to the commission: riskengine registry submit FILE --amends "
            f"{number} ... then riskengine registry amend SUBMISSION ..."
        )
    return ""


@attrs.frozen
class Review:
    """A recorded review decision (``office`` None) or an office's monitoring (``office`` set)."""

    pk: int
    number: str
    office: str | None
    decision: str
    decided_on: dt.date
    next_review: dt.date | None
    minutes: str

    @property
    def next_step(self) -> str:
        """What the registry must record next (empty for ``keep`` and for a monitoring)."""
        return "" if self.office is not None else next_step(self.decision, self.number)


def reviews_of(connection: sa.Connection, profile_pk: int, number: str = "") -> list[Review]:
    """A profile's review decisions and monitorings, in the order they were decided."""
    t = table("profile_reviews")
    rows = connection.execute(
        sa.select(t.c.pk, t.c.office, t.c.decision, t.c.decided_on, t.c.next_review, t.c.minutes)
        .where(t.c.profile_pk == profile_pk)
        .order_by(t.c.decided_on, t.c.pk)
    ).all()
    return [
        Review(int(r.pk), number, r.office, str(r.decision), r.decided_on, r.next_review, r.minutes)
        for r in rows
    ]


def _is_regional(connection: sa.Connection, profile_pk: int, office: str) -> None:
    fills = table("regional_fills")
    found = connection.execute(
        sa.select(fills.c.pk).where(fills.c.profile_pk == profile_pk, fills.c.office == office)
    ).first()
    if found is None:
        raise RegistryError(
            f"office {office} has no fill of this profile: §11.5 monitoring is of an office's "
            "own fills of a regional profile"
        )


def review(
    store: sa.Engine,
    number: str,
    *,
    decision: str,
    decided_on: dt.date,
    next_review: dt.date | None,
    minutes: str = "",
    office: str | None = None,
    actor: str | None = None,
) -> Review:
    """Record the commission's decision on profile ``number`` after its effectiveness review
    (``office`` None, role ``secretary``), or office ``office``'s monitoring of its fills
    (role ``office_filler`` for that office; ``next_review`` defaults to three months later).

    Refused: an unknown decision; a profile not approved (never approved, terminated); a
    decision before the profile's approval or before its previous review; keep, widen, narrow
    or amend without a next review after the decision (§9.5), terminate with one; a monitoring
    by an office without a fill of the profile, deciding to terminate, or setting the next one
    more than three months ahead (§11.5)."""
    if decision not in DECISIONS:
        raise RegistryError(
            f"{decision!r} is not a review decision; §9.4 allows "
            + ", ".join(f"{k} ({v})" for k, v in DECISIONS.items())
        )
    if office is not None:
        office = office.strip()
        if decision == "terminate":
            raise RegistryError(
                "an office's monitoring (§11.5) decides whether to go on applying, change or "
                "supplement its fill (keep, amend, widen, narrow); terminating the profile is "
                "the commission's decision"
            )
        latest = add_months(decided_on, MONITORING_MONTHS)
        if next_review is None:
            next_review = latest
        elif next_review > latest:
            raise RegistryError(
                f"the next monitoring ({next_review}) is more than {MONITORING_MONTHS} months "
                f"after this one ({decided_on}): §11.5 asks for one at least every three "
                f"months, by {latest}"
            )
    if decision == "terminate" and next_review is not None:
        raise RegistryError(
            "a decision to terminate sets no next review (§9.5 sets one when the profile stays "
            "in force): leave out the next review date"
        )
    if decision != "terminate" and next_review is None:
        raise RegistryError(
            f"a decision to {decision} needs the date of the next review (§9.5: when the profile "
            "stays in force, changed or not, a new review date is set)"
        )
    if next_review is not None and next_review <= decided_on:
        raise RegistryError(
            f"the next review ({next_review}) must come after the decision ({decided_on})"
        )
    text = " ".join(minutes.split()) if minutes else ""
    name = "review" if office is None else "monitor"
    with action(store, name, actor) as act:
        c = act.connection
        p = profile_row(c, number)
        if office is not None:
            require(c, act.actor, "monitor", office=office)
        act.profile_pk = p.pk
        base = str(p.base_number)
        if p.status != "approved":
            raise RegistryError(f"{base} is {p.status}: it has no effectiveness review to record")
        eds = table("profile_editions")
        approved = c.execute(
            sa.select(sa.func.min(eds.c.approved_on)).where(eds.c.profile_pk == p.pk)
        ).scalar()
        if approved is not None and decided_on < approved:
            raise RegistryError(
                f"{base} was approved on {approved}: a review cannot be decided before "
                f"({decided_on})"
            )
        if office is not None:
            _is_regional(c, p.pk, office)
        earlier = [r for r in reviews_of(c, p.pk, base) if r.office == office]
        if earlier and decided_on < earlier[-1].decided_on:
            raise RegistryError(
                f"the last review of {base}{'' if office is None else ' by ' + office} was "
                f"decided on {earlier[-1].decided_on}: one decided before it ({decided_on}) "
                "cannot be recorded after it"
            )
        pk = insert(
            c,
            "profile_reviews",
            act,
            profile_pk=p.pk,
            office=office,
            decision=decision,
            decided_on=decided_on,
            next_review=next_review,
            minutes=text,
        )
        act.details = {
            "number": base,
            "decision": decision,
            "decided_on": decided_on.isoformat(),
            "next_review": None if next_review is None else next_review.isoformat(),
            "minutes": text,
        }
        if office is not None:
            act.details["office"] = office
    return Review(pk, base, office, decision, decided_on, next_review, text)
