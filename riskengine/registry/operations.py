"""The risk unit's and the offices' actions: clarify, suspend, resume, fill; and the reads:
the editions in force on a date, an edition's current text, verification of the log.

Each action runs in one transaction with its audit entry and raises
:class:`~riskengine.registry.evidence.RegistryError` with the reason when refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import attrs
import sqlalchemy as sa

from riskengine import model as m
from riskengine.registry import audit
from riskengine.registry.access import require
from riskengine.registry.audit import canonical_json
from riskengine.registry.base import action, insert, one, profile_row, working_days_after
from riskengine.registry.clarify import GROUNDS, allowed_changes, changes_outside, text_diff
from riskengine.registry.evidence import RegistryError, checked_text
from riskengine.registry.lifecycle import sha256
from riskengine.registry.state import table
from riskengine.store.engine import database_errors
from riskengine.syntax import parse_source

__all__ = [
    "SUSPENSION_GROUNDS",
    "InForce",
    "clarify",
    "current_text",
    "fill",
    "in_force",
    "resume",
    "suspend",
    "verify",
]

#: The §10.3 grounds for suspending a profile.
SUSPENSION_GROUNDS: dict[str, str] = {
    "10.3.1": "the regulations the profile takes into account changed what the indicators mean",
    "10.3.2": "the regulations the profile takes into account were repealed",
    "10.3.3": "the profile is no longer relevant",
    "10.3.4": "problems found in applying the profile need an urgent fix",
}

#: Working days an office has to enter a fill after its order (§11.4).
ENTRY_DAYS = 2


def _edition(c: sa.Connection, number: str) -> sa.Row[tuple[int, int, str, bool]]:
    eds = table("profile_editions")
    return one(  # type: ignore[no-any-return]
        c,
        sa.select(
            eds.c.pk,
            eds.c.profile_pk,
            eds.c.text,
            eds.c.withdrawn,
            eds.c.in_force_from,
            eds.c.in_force_to,
        ).where(eds.c.number == number.strip()),
        lambda: f"the registry has no edition {number} (give the full number WW/XX/YYYY/ZZZZZ-VV)",
    )


def current_text(connection: sa.Connection, edition_pk: int) -> str:
    """An edition's text as it applies now: its latest clarification, else the approved text."""
    clar, eds = table("profile_clarifications"), table("profile_editions")
    text = connection.execute(
        sa.select(clar.c.text)
        .where(clar.c.edition_pk == edition_pk)
        .order_by(clar.c.pk.desc())
        .limit(1)
    ).scalar()
    if text is None:
        text = connection.execute(sa.select(eds.c.text).where(eds.c.pk == edition_pk)).scalar_one()
    return str(text)


def _parse(text: str, file: str) -> m.SourceFile:
    result = checked_text(text, file)
    return result.files[0]


def _lists(sf: m.SourceFile) -> dict[str, m.ListLit]:
    return {ld.name: ld.values for ld in sf.lists}


def clarify(
    store: sa.Engine,
    number: str,
    text: str,
    *,
    ground: str,
    reason: str,
    actor: str | None = None,
) -> list[str]:
    """Record a technical clarification of edition ``number`` (full number) on a §10.2 ground
    (``10.2.1``, ``10.2.2``, ``10.2.3``); returns the fields it changed. Refused, with the
    located changes and a diff, when it changes what the ground does not allow
    (:mod:`riskengine.registry.clarify`)."""
    if ground not in GROUNDS:
        raise RegistryError(
            f"{ground!r} is not a ground for a technical clarification; §10.2 allows "
            + ", ".join(f"{k} ({v})" for k, v in GROUNDS.items())
        )
    if not reason.strip():
        raise RegistryError("a clarification needs its reason")
    with action(store, "clarify", actor) as act:
        c = act.connection
        ed = _edition(c, number)
        act.profile_pk = int(ed.profile_pk)
        p = c.execute(
            sa.select(table("profiles").c.status).where(table("profiles").c.pk == ed.profile_pk)
        ).scalar_one()
        if p != "approved" or ed.withdrawn:
            raise RegistryError(f"{number} is not an edition of a profile in the registry's force")
        before = current_text(c, int(ed.pk))
        old_sf, new_sf = _parse(before, "approved.rp"), _parse(text, "clarified.rp")
        if len(new_sf.profiles) != 1 or new_sf.fills:
            raise RegistryError("a clarification is the edition's text: one profile, no fills")
        old, new = old_sf.profiles[0], new_sf.profiles[0]
        outside = changes_outside(old, new, ground)
        if _lists(old_sf) != _lists(new_sf):
            outside.append("the file's named lists changed")
        if outside:
            raise RegistryError(
                f"the clarification changes what ground {ground} ({GROUNDS[ground]}) does not "
                "allow; it needs the commission (amend):\n  "
                + "\n  ".join(outside)
                + "\n"
                + text_diff(old, new, number, "clarified")
            )
        changed = allowed_changes(old, new)
        if not changed:
            raise RegistryError(f"the clarification changes nothing in {number}")
        digest = sha256(text)
        insert(
            c,
            "profile_clarifications",
            act,
            edition_pk=ed.pk,
            ground=ground,
            reason=reason.strip(),
            before_sha256=sha256(before),
            text=text,
            sha256=digest,
            changed=canonical_json(changed),
        )
        act.details = {"number": number, "ground": ground, "changed": changed, "sha256": digest}
    return changed


def _events(c: sa.Connection, profile_pk: int) -> list[sa.Row[tuple[str, dt.date]]]:
    s = table("profile_suspensions")
    rows = c.execute(
        sa.select(s.c.kind, s.c.effective_on).where(s.c.profile_pk == profile_pk).order_by(s.c.pk)
    )
    return list(rows)  # type: ignore[arg-type]


def suspend(
    store: sa.Engine,
    number: str,
    *,
    ground: str,
    on: dt.date,
    reason: str,
    actor: str | None = None,
) -> None:
    """Suspend a profile from ``on`` by the risk unit's decision, on a §10.3 ground (reported to
    the commission at its next meeting, §10.4)."""
    if ground not in SUSPENSION_GROUNDS:
        raise RegistryError(
            f"{ground!r} is not a ground for suspension; §10.3 allows "
            + ", ".join(f"{k} ({v})" for k, v in SUSPENSION_GROUNDS.items())
        )
    if not reason.strip():
        raise RegistryError("a suspension needs its reason")
    with action(store, "suspend", actor) as act:
        c = act.connection
        p = profile_row(c, number)
        act.profile_pk = p.pk
        if p.status != "approved":
            raise RegistryError(f"{p.base_number} is {p.status}: it cannot be suspended")
        events = _events(c, p.pk)
        if events and events[-1].kind == "suspend":
            raise RegistryError(
                f"{p.base_number} is already suspended from {events[-1].effective_on}"
            )
        if events and on < events[-1].effective_on:
            raise RegistryError(
                f"{p.base_number} was resumed on {events[-1].effective_on}: a suspension "
                f"cannot start before that ({on})"
            )
        insert(
            c,
            "profile_suspensions",
            act,
            profile_pk=p.pk,
            kind="suspend",
            effective_on=on,
            ground=ground,
            reason=reason.strip(),
        )
        act.details = {"number": p.base_number, "ground": ground, "on": on.isoformat()}


def resume(
    store: sa.Engine, number: str, *, on: dt.date, reason: str, actor: str | None = None
) -> None:
    """Resume a suspended profile from ``on``."""
    if not reason.strip():
        raise RegistryError("a resumption needs its reason")
    with action(store, "resume", actor) as act:
        c = act.connection
        p = profile_row(c, number)
        act.profile_pk = p.pk
        events = _events(c, p.pk)
        if not events or events[-1].kind != "suspend":
            raise RegistryError(f"{p.base_number} is not suspended")
        if on < events[-1].effective_on:
            raise RegistryError(
                f"{p.base_number} is suspended from {events[-1].effective_on}: it cannot be "
                f"resumed on {on}"
            )
        insert(
            c,
            "profile_suspensions",
            act,
            profile_pk=p.pk,
            kind="resume",
            effective_on=on,
            ground=None,
            reason=reason.strip(),
        )
        act.details = {"number": p.base_number, "on": on.isoformat()}


@attrs.frozen
class FillRecord:
    pk: int
    office: str
    order_number: str
    order_date: dt.date
    valid_from: dt.date
    valid_to: dt.date
    late: bool


def fill(
    store: sa.Engine,
    text: str,
    *,
    responsible: Sequence[str],
    viewers: Sequence[str],
    entered_on: dt.date | None = None,
    actor: str | None = None,
) -> FillRecord:
    """Enter a regional office's fill (one ``fill for NUMBER { … }`` statement) with the office
    order's persons (§11.1: at least 2 responsible, the viewers). The fill must check clean
    against the edition's current text (values, validity of at most 3 months §11.3, the order);
    an entry later than 2 working days after the order's date is recorded as late (§11.4)."""
    people = [x.strip() for x in responsible if x.strip()]
    if len(set(people)) < 2:
        raise RegistryError(
            "the office's order names at least 2 persons responsible for the fill (§11.1); "
            f"{len(set(people))} given"
        )
    seen = [x.strip() for x in viewers if x.strip()]
    entered = entered_on or dt.date.today()
    with action(store, "fill", actor) as act:
        c = act.connection
        parsed = parse_source(text, "fill.rp")
        if parsed.source is None or parsed.diagnostics:
            checked_text(text, "fill.rp")  # raises with the syntax errors rendered
        sf = parsed.source
        assert sf is not None
        if len(sf.fills) != 1 or sf.profiles or sf.lists:
            raise RegistryError("a fill entry is one `fill for NUMBER { … }` statement")
        f = sf.fills[0]
        require(c, act.actor, "fill", office=f.office)
        ed = _edition(c, str(f.profile))
        act.profile_pk = int(ed.profile_pk)
        status = c.execute(
            sa.select(table("profiles").c.status).where(table("profiles").c.pk == ed.profile_pk)
        ).scalar_one()
        if status != "approved" or ed.withdrawn:
            raise RegistryError(f"{f.profile} is not in the registry's force ({status})")
        profile_text = current_text(c, int(ed.pk))
        checked_text(text, "fill.rp", {"profile.rp": profile_text})
        profile = _parse(profile_text, "profile.rp").profiles[0]
        if not profile.is_regional:
            raise RegistryError(f"{f.profile} is a central profile: it takes no regional fills")
        assert f.order is not None and f.valid is not None and f.office is not None
        assert f.valid.end is not None  # the checks require a closed range of at most 3 months
        if entered < f.order.date:
            raise RegistryError(
                f"the fill is entered on {entered}, before its order of {f.order.date}"
            )
        if f.valid.end < ed.in_force_from or (
            ed.in_force_to is not None and f.valid.start > ed.in_force_to
        ):
            until = "" if ed.in_force_to is None else str(ed.in_force_to)
            raise RegistryError(
                f"the fill is valid {f.valid.start} .. {f.valid.end}, when {f.profile} is not in "
                f"force ({ed.in_force_from} .. {until})"
            )
        late = entered > working_days_after(f.order.date, ENTRY_DAYS)
        pk = insert(
            c,
            "regional_fills",
            act,
            profile_pk=ed.profile_pk,
            edition_pk=ed.pk,
            office=f.office,
            text=text,
            sha256=sha256(text),
            order_number=f.order.number,
            order_date=f.order.date,
            valid_from=f.valid.start,
            valid_to=f.valid.end,
            responsible=canonical_json(people),
            viewers=canonical_json(seen),
            entered_on=entered,
            late=late,
        )
        act.details = {
            "number": str(f.profile),
            "office": f.office,
            "order": [f.order.number, f.order.date.isoformat()],
            "valid": [f.valid.start.isoformat(), f.valid.end.isoformat()],
            "late": late,
            "sha256": sha256(text),
        }
    return FillRecord(pk, f.office, f.order.number, f.order.date, f.valid.start, f.valid.end, late)


@attrs.frozen
class InForce:
    """An edition in force on a date, with its current text."""

    number: str
    edition_pk: int
    profile_pk: int
    text: str


def in_force(connection: sa.Connection, day: dt.date) -> list[InForce]:
    """The editions in force on ``day``: approved, not withdrawn, ``day`` within their range, the
    profile not suspended then (its latest suspension event on or before ``day`` is not a
    suspension). Ordered by number."""
    eds = table("profile_editions")
    rows = connection.execute(
        sa.select(eds.c.pk, eds.c.profile_pk, eds.c.number)
        .where(
            eds.c.withdrawn == sa.false(),
            eds.c.in_force_from <= day,
            sa.or_(eds.c.in_force_to.is_(None), eds.c.in_force_to >= day),
        )
        .order_by(eds.c.number)
    ).all()
    out = []
    for row in rows:
        events = [e for e in _events(connection, int(row.profile_pk)) if e.effective_on <= day]
        if events and events[-1].kind == "suspend":
            continue
        out.append(
            InForce(
                str(row.number),
                int(row.pk),
                int(row.profile_pk),
                current_text(connection, int(row.pk)),
            )
        )
    return out


def verify(store: sa.Engine) -> audit.Verification:
    """Verify the audit log's chain and every case file against its last entry."""
    with database_errors(store), store.connect() as connection:
        return audit.verify(connection)
