"""Reading the registry for people: the list of profiles and a profile's case file as Markdown.

The case file (§7) shows the profile's editions (with a unified diff between consecutive
editions' approved texts), the commission's decisions, the clarifications, the suspensions and
resumptions, the regional fills, the evidence of each submission and the profile's log entries.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re

import attrs
import sqlalchemy as sa

from riskengine.registry.audit import entries
from riskengine.registry.base import ProfileRow, profile_row
from riskengine.registry.evidence import RegistryError
from riskengine.registry.operations import current_text, in_force
from riskengine.registry.state import object_key, table

__all__ = ["ProfileLine", "case_file", "edition_diff", "profiles"]


@attrs.frozen
class ProfileLine:
    """One profile of the registry as ``list`` shows it."""

    number: str  # the base number, or "profile/KEY" before approval
    name: str
    edition: str  # the full number of the edition in force on the day, or "-"
    state: str


def profiles(connection: sa.Connection, day: dt.date) -> list[ProfileLine]:
    """Every profile with its number, name, the edition in force on ``day`` and its state (the
    profile's status; ``suspended`` when it is approved but suspended on ``day``)."""
    t, eds = table("profiles"), table("profile_editions")
    live = {x.profile_pk: x.number for x in in_force(connection, day)}
    out = []
    for row in connection.execute(
        sa.select(t.c.pk, t.c.name, t.c.base_number, t.c.status).order_by(
            t.c.sequence.is_(None), t.c.sequence, t.c.pk
        )
    ):
        state = str(row.status)
        if state == "approved" and row.pk not in live:
            has_current = connection.execute(
                sa.select(eds.c.pk).where(
                    eds.c.profile_pk == row.pk,
                    eds.c.withdrawn == sa.false(),
                    eds.c.in_force_from <= day,
                    sa.or_(eds.c.in_force_to.is_(None), eds.c.in_force_to >= day),
                )
            ).first()
            state = "suspended" if has_current is not None else "approved, not in force"
        number = row.base_number or object_key(int(row.pk))
        out.append(ProfileLine(str(number), str(row.name), live.get(row.pk, "-"), state))
    return out


def edition_diff(before: str, after: str, old_name: str, new_name: str) -> str:
    """The unified diff of two texts (empty when equal)."""
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=old_name,
        tofile=new_name,
    )
    return "".join(x if x.endswith("\n") else x + "\n" for x in lines)


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")


def _md(value: object) -> str:
    """A text from the registry as one line of Markdown: punctuation escaped (as the passport
    does), so a reason or a name never becomes markup or breaks a table."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def _day(value: object) -> str:
    return "" if value is None else str(value)


def _fence(text: str, lang: str = "") -> list[str]:
    fence = "````" if "```" in text else "```"
    return [fence + lang, text.rstrip("\n"), fence]


def _profile(connection: sa.Connection, number: str) -> ProfileRow:
    """The profile a number names, or ``profile/KEY`` (how ``list`` and the log name a profile
    before it has a number)."""
    found = re.fullmatch(r"profile/(\d+)", number.strip())
    if found is None:
        return profile_row(connection, number)
    t = table("profiles")
    row = connection.execute(
        sa.select(
            t.c.pk, t.c.name, t.c.sequence, t.c.base_number, t.c.status, t.c.terminated_on
        ).where(t.c.pk == int(found.group(1)))
    ).first()
    if row is None:
        raise RegistryError(f"the registry has no profile {number.strip()}")
    return ProfileRow(*row)


def case_file(connection: sa.Connection, number: str) -> str:
    """The case file of the profile ``number`` (base number, a full number with edition, or
    ``profile/KEY`` before approval) as Markdown. Raises RegistryError for an unknown one."""
    p = _profile(connection, number)
    eds, decs = table("profile_editions"), table("commission_decisions")
    subs, clar = table("profile_submissions"), table("profile_clarifications")
    susp, fills = table("profile_suspensions"), table("regional_fills")
    out = [f"# {p.base_number or object_key(p.pk)}: {_md(p.name)}", ""]
    state = p.status + (f" (last day {p.terminated_on})" if p.terminated_on else "")
    out += [f"State: {state}.", ""]

    editions = connection.execute(
        sa.select(*eds.c).where(eds.c.profile_pk == p.pk).order_by(eds.c.edition)
    ).all()
    out += ["## Editions", ""]
    out += ["| edition | approved | in force | SHA-256 |", "|---|---|---|---|"]
    for e in editions:
        span = f"{e.in_force_from} .. {_day(e.in_force_to)}".rstrip()
        if e.withdrawn:
            span += " (withdrawn)"
        out.append(f"| {e.number} | {e.approved_on} | {span} | `{e.sha256[:12]}` |")
    out.append("")
    previous = None
    for e in editions:
        if previous is None:
            out += [f"### {e.number}", "", *_fence(e.text, "text"), ""]
        else:
            out += [f"### {e.number}: changes from {previous.number}", ""]
            out += _fence(edition_diff(previous.text, e.text, previous.number, e.number), "diff")
            out.append("")
        current = current_text(connection, int(e.pk))
        if current != e.text:
            out += [f"Current (clarified) text of {e.number}:", "", *_fence(current, "text"), ""]
        previous = e

    out += ["## Commission decisions", ""]
    rows = connection.execute(
        sa.select(decs.c.kind, decs.c.number, decs.c.decided_on, decs.c.submission_pk)
        .where(decs.c.profile_pk == p.pk)
        .order_by(decs.c.pk)
    ).all()
    out += ["| decision | number | date | submission |", "|---|---|---|---|"]
    out += [
        f"| {d.kind} | {_md(d.number)} | {d.decided_on} | {_day(d.submission_pk)} |" for d in rows
    ]
    out.append("")

    clars = connection.execute(
        sa.select(eds.c.number, clar.c.ground, clar.c.reason, clar.c.changed, clar.c.recorded_at)
        .join(eds, eds.c.pk == clar.c.edition_pk)
        .where(eds.c.profile_pk == p.pk)
        .order_by(clar.c.pk)
    ).all()
    out += ["## Clarifications", ""]
    if clars:
        out += ["| edition | ground | reason | changed | recorded |", "|---|---|---|---|---|"]
        for c in clars:
            changed = ", ".join(json.loads(c.changed))
            when = c.recorded_at.date()
            out.append(f"| {c.number} | {c.ground} | {_md(c.reason)} | {changed} | {when} |")
    else:
        out.append("None.")
    out.append("")

    events = connection.execute(
        sa.select(susp.c.kind, susp.c.effective_on, susp.c.ground, susp.c.reason)
        .where(susp.c.profile_pk == p.pk)
        .order_by(susp.c.pk)
    ).all()
    out += ["## Suspensions and resumptions", ""]
    if events:
        out += ["| event | from | ground | reason |", "|---|---|---|---|"]
        for s in events:
            out.append(f"| {s.kind} | {s.effective_on} | {_day(s.ground)} | {_md(s.reason)} |")
    else:
        out.append("None.")
    out.append("")

    fill_rows = connection.execute(
        sa.select(eds.c.number, *fills.c)
        .join(eds, eds.c.pk == fills.c.edition_pk)
        .where(fills.c.profile_pk == p.pk)
        .order_by(fills.c.pk)
    ).all()
    out += ["## Regional fills", ""]
    if fill_rows:
        out += [
            "| edition | office | order | valid | responsible | viewers | entered | late |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for f in fill_rows:
            out.append(
                f"| {f.number} | {f.office} | {_md(f.order_number)} of {f.order_date} | "
                f"{f.valid_from} .. {f.valid_to} | {_md(', '.join(json.loads(f.responsible)))} | "
                f"{_md(', '.join(json.loads(f.viewers)))} | {f.entered_on} | "
                f"{'late' if f.late else 'no'} |"
            )
    else:
        out.append("None.")
    out.append("")

    out += ["## Evidence of the submissions", ""]
    out += [
        "| submission | kind | status | checks | unit tests | coverage | backtest run |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in connection.execute(
        sa.select(*subs.c).where(subs.c.profile_pk == p.pk).order_by(subs.c.pk)
    ):
        out.append(
            f"| {s.pk} | {s.kind} | {s.status} | {s.check_summary} | "
            f"{s.tests_passed} passed, {s.tests_failed} failed | {s.coverage:.1f}% | "
            f"{s.backtest_run_pk} |"
        )
    out.append("")

    out += ["## Log", ""]
    out += ["| entry | at (UTC) | actor | action | hash |", "|---|---|---|---|---|"]
    for a in entries(connection, object_key(p.pk)):
        at = a.logged_at.isoformat(sep=" ", timespec="seconds")
        out.append(f"| {a.pk} | {at} | {_md(a.actor)} | {a.action} | `{a.entry_hash[:12]}` |")
    return "\n".join(out) + "\n"
