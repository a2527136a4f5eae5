"""Reading the registry for people: the list of profiles and a profile's case file as Markdown
(:mod:`riskengine.registry.casefile_html` writes the same case file as an HTML page).

The case file (§7) shows the profile's editions (with a unified diff between consecutive
editions' approved texts), the commission's decisions, the clarifications, the suspensions and
resumptions, the regional fills, the effectiveness reviews, the evidence of each submission and
the profile's log entries.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re

import attrs
import sqlalchemy as sa

from riskengine.registry.audit import AuditEntry, entries
from riskengine.registry.base import ProfileRow, profile_row
from riskengine.registry.evidence import RegistryError
from riskengine.registry.operations import current_text, in_force
from riskengine.registry.state import object_key, table

__all__ = [
    "CaseFile",
    "ClarificationEntry",
    "DecisionEntry",
    "EditionEntry",
    "EvidenceEntry",
    "FillEntry",
    "ProfileLine",
    "ReviewEntry",
    "SuspensionEntry",
    "case_file",
    "edition_diff",
    "markdown",
    "profiles",
    "read_case_file",
]


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


@attrs.frozen
class EditionEntry:
    """An edition: its number, dates, the approved text and its SHA-256, the current text (the
    latest clarification's, else the approved text)."""

    number: str
    approved_on: dt.date
    in_force_from: dt.date
    in_force_to: dt.date | None
    withdrawn: bool
    sha256: str
    text: str
    current: str


@attrs.frozen
class DecisionEntry:
    """A commission decision (approve, return, amend, terminate)."""

    kind: str
    number: str
    decided_on: dt.date
    submission: int | None


@attrs.frozen
class ClarificationEntry:
    """A technical clarification (§10.2) of an edition."""

    edition: str
    ground: str
    reason: str
    changed: tuple[str, ...]
    recorded_at: dt.datetime


@attrs.frozen
class SuspensionEntry:
    """A suspension (with its §10.3 ground) or a resumption."""

    kind: str
    effective_on: dt.date
    ground: str | None
    reason: str


@attrs.frozen
class FillEntry:
    """A regional office's fill with its order (§11)."""

    pk: int
    edition: str
    office: str
    order_number: str
    order_date: dt.date
    valid_from: dt.date
    valid_to: dt.date
    responsible: tuple[str, ...]
    viewers: tuple[str, ...]
    entered_on: dt.date
    late: bool
    text: str


@attrs.frozen
class ReviewEntry:
    """An effectiveness review's decision (§9.4-9.5), or an office's monitoring (§11.5)."""

    office: str | None
    decision: str
    decided_on: dt.date
    next_review: dt.date | None
    minutes: str

    @property
    def by(self) -> str:
        return "commission" if self.office is None else f"office {self.office}"


@attrs.frozen
class EvidenceEntry:
    """A submission with its evidence: the check, the unit-test run, the backtest run."""

    submission: int
    kind: str
    status: str
    check_summary: str
    tests_passed: int
    tests_failed: int
    coverage: float
    backtest_run: int
    sha256: str
    text: str = ""  # the submitted text


@attrs.frozen
class CaseFile:
    """A profile's case file (§7) as read from the store; :func:`case_file` writes it as
    Markdown, :func:`riskengine.registry.casefile_html.case_file_html` as an HTML page."""

    key: str  # the base number, or "profile/KEY" before approval
    name: str
    status: str
    terminated_on: dt.date | None
    editions: tuple[EditionEntry, ...]
    decisions: tuple[DecisionEntry, ...]
    clarifications: tuple[ClarificationEntry, ...]
    suspensions: tuple[SuspensionEntry, ...]
    fills: tuple[FillEntry, ...]
    evidence: tuple[EvidenceEntry, ...]
    log: tuple[AuditEntry, ...]
    reviews: tuple[ReviewEntry, ...] = ()

    @property
    def state(self) -> str:
        """The status, with the last day of a terminated profile."""
        return self.status + (f" (last day {self.terminated_on})" if self.terminated_on else "")


def read_case_file(connection: sa.Connection, number: str) -> CaseFile:
    """The case file of the profile ``number`` (base number, a full number with edition, or
    ``profile/KEY`` before approval). Raises RegistryError for an unknown one."""
    p = _profile(connection, number)
    eds, decs = table("profile_editions"), table("commission_decisions")
    subs, clar = table("profile_submissions"), table("profile_clarifications")
    susp, fills = table("profile_suspensions"), table("regional_fills")
    editions = tuple(
        EditionEntry(
            str(e.number),
            e.approved_on,
            e.in_force_from,
            e.in_force_to,
            bool(e.withdrawn),
            str(e.sha256),
            str(e.text),
            current_text(connection, int(e.pk)),
        )
        # all rows first: DuckDB drops a result set when another query runs on the connection
        for e in connection.execute(
            sa.select(*eds.c).where(eds.c.profile_pk == p.pk).order_by(eds.c.edition)
        ).all()
    )
    decisions = tuple(
        DecisionEntry(
            str(d.kind),
            str(d.number),
            d.decided_on,
            None if d.submission_pk is None else int(d.submission_pk),
        )
        for d in connection.execute(
            sa.select(decs.c.kind, decs.c.number, decs.c.decided_on, decs.c.submission_pk)
            .where(decs.c.profile_pk == p.pk)
            .order_by(decs.c.pk)
        )
    )
    clarifications = tuple(
        ClarificationEntry(
            str(c.number), str(c.ground), str(c.reason), tuple(json.loads(c.changed)), c.recorded_at
        )
        for c in connection.execute(
            sa.select(
                eds.c.number, clar.c.ground, clar.c.reason, clar.c.changed, clar.c.recorded_at
            )
            .join(eds, eds.c.pk == clar.c.edition_pk)
            .where(eds.c.profile_pk == p.pk)
            .order_by(clar.c.pk)
        )
    )
    suspensions = tuple(
        SuspensionEntry(
            str(s.kind), s.effective_on, None if s.ground is None else str(s.ground), str(s.reason)
        )
        for s in connection.execute(
            sa.select(susp.c.kind, susp.c.effective_on, susp.c.ground, susp.c.reason)
            .where(susp.c.profile_pk == p.pk)
            .order_by(susp.c.pk)
        )
    )
    fill_entries = tuple(
        FillEntry(
            int(f.pk),
            str(f.number),
            str(f.office),
            str(f.order_number),
            f.order_date,
            f.valid_from,
            f.valid_to,
            tuple(json.loads(f.responsible)),
            tuple(json.loads(f.viewers)),
            f.entered_on,
            bool(f.late),
            str(f.text),
        )
        for f in connection.execute(
            sa.select(eds.c.number, *fills.c)
            .join(eds, eds.c.pk == fills.c.edition_pk)
            .where(fills.c.profile_pk == p.pk)
            .order_by(fills.c.pk)
        )
    )
    evidence = tuple(
        EvidenceEntry(
            int(s.pk),
            str(s.kind),
            str(s.status),
            str(s.check_summary),
            int(s.tests_passed),
            int(s.tests_failed),
            float(s.coverage),
            int(s.backtest_run_pk),
            str(s.sha256),
            str(s.text),
        )
        for s in connection.execute(
            sa.select(*subs.c).where(subs.c.profile_pk == p.pk).order_by(subs.c.pk)
        )
    )
    revs = table("profile_reviews")
    reviews = tuple(
        ReviewEntry(r.office, str(r.decision), r.decided_on, r.next_review, str(r.minutes))
        for r in connection.execute(
            sa.select(revs.c.office, revs.c.decision, revs.c.decided_on, revs.c.next_review,
                      revs.c.minutes)
            .where(revs.c.profile_pk == p.pk)
            .order_by(revs.c.decided_on, revs.c.pk)
        )
    )  # fmt: skip
    return CaseFile(
        key=p.base_number or object_key(p.pk),
        name=p.name,
        status=p.status,
        terminated_on=p.terminated_on,
        editions=editions,
        decisions=decisions,
        clarifications=clarifications,
        suspensions=suspensions,
        fills=fill_entries,
        evidence=evidence,
        log=tuple(entries(connection, object_key(p.pk))),
        reviews=reviews,
    )


def case_file(connection: sa.Connection, number: str) -> str:
    """The case file of the profile ``number`` (base number, a full number with edition, or
    ``profile/KEY`` before approval) as Markdown. Raises RegistryError for an unknown one."""
    return markdown(read_case_file(connection, number))


def markdown(cf: CaseFile) -> str:
    """A case file as Markdown."""
    out = [f"# {cf.key}: {_md(cf.name)}", ""]
    out += [f"State: {cf.state}.", ""]

    out += ["## Editions", ""]
    out += ["| edition | approved | in force | SHA-256 |", "|---|---|---|---|"]
    for e in cf.editions:
        span = f"{e.in_force_from} .. {_day(e.in_force_to)}".rstrip()
        if e.withdrawn:
            span += " (withdrawn)"
        out.append(f"| {e.number} | {e.approved_on} | {span} | `{e.sha256[:12]}` |")
    out.append("")
    previous = None
    for e in cf.editions:
        if previous is None:
            out += [f"### {e.number}", "", *_fence(e.text, "text"), ""]
        else:
            out += [f"### {e.number}: changes from {previous.number}", ""]
            out += _fence(edition_diff(previous.text, e.text, previous.number, e.number), "diff")
            out.append("")
        if e.current != e.text:
            out += [f"Current (clarified) text of {e.number}:", "", *_fence(e.current, "text"), ""]
        previous = e

    out += ["## Commission decisions", ""]
    out += ["| decision | number | date | submission |", "|---|---|---|---|"]
    out += [
        f"| {d.kind} | {_md(d.number)} | {d.decided_on} | {_day(d.submission)} |"
        for d in cf.decisions
    ]
    out.append("")

    out += ["## Clarifications", ""]
    if cf.clarifications:
        out += ["| edition | ground | reason | changed | recorded |", "|---|---|---|---|---|"]
        for c in cf.clarifications:
            changed = ", ".join(c.changed)
            when = c.recorded_at.date()
            out.append(f"| {c.edition} | {c.ground} | {_md(c.reason)} | {changed} | {when} |")
    else:
        out.append("None.")
    out.append("")

    out += ["## Suspensions and resumptions", ""]
    if cf.suspensions:
        out += ["| event | from | ground | reason |", "|---|---|---|---|"]
        for s in cf.suspensions:
            out.append(f"| {s.kind} | {s.effective_on} | {_day(s.ground)} | {_md(s.reason)} |")
    else:
        out.append("None.")
    out.append("")

    out += ["## Regional fills", ""]
    if cf.fills:
        out += [
            "| edition | office | order | valid | responsible | viewers | entered | late |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for f in cf.fills:
            out.append(
                f"| {f.edition} | {f.office} | {_md(f.order_number)} of {f.order_date} | "
                f"{f.valid_from} .. {f.valid_to} | {_md(', '.join(f.responsible))} | "
                f"{_md(', '.join(f.viewers))} | {f.entered_on} | "
                f"{'late' if f.late else 'no'} |"
            )
    else:
        out.append("None.")
    out.append("")

    out += ["## Effectiveness reviews", ""]
    if cf.reviews:
        out += ["| decided | by | decision | next review | minutes |", "|---|---|---|---|---|"]
        for r in cf.reviews:
            out.append(
                f"| {r.decided_on} | {r.by} | {r.decision} | {_day(r.next_review)} | "
                f"{_md(r.minutes)} |"
            )
    else:
        out.append("None.")
    out.append("")

    out += ["## Evidence of the submissions", ""]
    out += [
        "| submission | kind | status | checks | unit tests | coverage | backtest run |",
        "|---|---|---|---|---|---|---|",
    ]
    for ev in cf.evidence:
        out.append(
            f"| {ev.submission} | {ev.kind} | {ev.status} | {ev.check_summary} | "
            f"{ev.tests_passed} passed, {ev.tests_failed} failed | {ev.coverage:.1f}% | "
            f"{ev.backtest_run} |"
        )
    out.append("")

    out += ["## Log", ""]
    out += ["| entry | at (UTC) | actor | action | hash |", "|---|---|---|---|---|"]
    for a in cf.log:
        at = a.logged_at.isoformat(sep=" ", timespec="seconds")
        out.append(f"| {a.pk} | {at} | {_md(a.actor)} | {a.action} | `{a.entry_hash[:12]}` |")
    return "\n".join(out) + "\n"
