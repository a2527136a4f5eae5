"""The commission's path of a profile: submit, approve or return, amend, terminate.

Every function runs one transaction that also appends the audit entry (all-or-nothing) and
raises :class:`~riskengine.registry.evidence.RegistryError` with the reason when refused.
The registry writes the fields it owns into an approved text — the number, ``approved``,
``edition approved``, ``in force`` (its start) and ``edition in force`` — through the formatter,
so the approved text is the formatter's canonical text (comments kept).
"""

from __future__ import annotations

import datetime as dt
import hashlib

import attrs
import sqlalchemy as sa

from riskengine import model as m
from riskengine.format import format_source, format_text
from riskengine.registry.base import Action, action, insert, next_key, one, profile_row
from riskengine.registry.evidence import RegistryError, checked_text, gather_evidence
from riskengine.registry.state import table
from riskengine.syntax import parse_source

__all__ = [
    "Edition",
    "Submission",
    "amend",
    "approve",
    "return_for_rework",
    "submit",
    "terminate",
]

#: The highest sequence number ZZZZZ and edition VV (5 and 2 digits).
MAX_SEQUENCE = 99999
MAX_EDITION = 99


@attrs.frozen
class Submission:
    pk: int
    profile_pk: int
    kind: str  # "new" | "amend"
    name: str


@attrs.frozen
class Edition:
    pk: int
    profile_pk: int
    number: str
    edition: int
    sha256: str
    text: str
    in_force_from: dt.date
    in_force_to: dt.date | None


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def submit(
    store: sa.Engine,
    text: str,
    *,
    tests: str,
    backtest_run: int | None,
    file: str = "profile.rp",
    amends: str | None = None,
    actor: str | None = None,
) -> Submission:
    """A draft (or, with ``amends``, a new text of an approved profile) enters the registry.

    Refused unless the text checks clean and holds one profile, its unit tests (the TOML text
    ``tests``) all pass, and the store records the finished backtest run ``backtest_run`` of this
    very text (the run's profile hashes hold the text's canonical hash)."""
    profiles, subs = table("profiles"), table("profile_submissions")
    with action(store, "submit", actor) as act:
        c = act.connection
        ev = gather_evidence(c, text, file, tests, backtest_run)
        p = ev.profile
        if amends is None:
            if p.number is not None:
                raise RegistryError(
                    f"{file} is numbered {p.number}: a new profile is submitted as a draft "
                    '(`profile draft "…"`); to change an approved one, submit with amends='
                    f"{p.number.base}"
                )
            row = c.execute(
                sa.select(profiles.c.pk, profiles.c.status).where(profiles.c.name == p.name)
            ).first()
            if row is not None and row.status != "returned":
                raise RegistryError(
                    f'the registry already has a profile named "{p.name}" ({row.status}): '
                    "a profile's name is unique (§4.2.7)"
                )
            if row is None:
                act.profile_pk = next_key(c, "profiles")
                pk = insert(c, "profiles", act, name=p.name, status="submitted")
            else:
                act.profile_pk = pk = int(row.pk)
                c.execute(sa.update(profiles).where(profiles.c.pk == pk).values(status="submitted"))
            kind = "new"
        else:
            target = profile_row(c, amends)
            if target.status != "approved":
                raise RegistryError(
                    f"{target.base_number} is {target.status}: it cannot be amended"
                )
            latest = _latest_edition(c, target.pk)
            if p.number is None or str(p.number) != latest.number:
                raise RegistryError(
                    f"an amendment starts from the latest edition {latest.number}; {file} is "
                    f"{'a draft' if p.number is None else p.number}"
                )
            pending = c.execute(
                sa.select(subs.c.pk).where(
                    subs.c.profile_pk == target.pk, subs.c.status == "pending"
                )
            ).first()
            if pending is not None:
                raise RegistryError(
                    f"submission {pending.pk} of {target.base_number} awaits the commission"
                )
            act.profile_pk = pk = target.pk
            kind = "amend"
        sub = insert(
            c,
            "profile_submissions",
            act,
            profile_pk=pk,
            kind=kind,
            text=text,
            sha256=sha256(text),
            profile_sha256=ev.profile_sha256,
            check_summary=ev.check_summary,
            tests_text=tests,
            tests_passed=ev.tests_passed,
            tests_failed=ev.tests_failed,
            coverage=ev.coverage,
            backtest_run_pk=ev.backtest_run,
            status="pending",
        )
        act.details = {
            "submission": sub,
            "kind": kind,
            "name": p.name,
            "sha256": sha256(text),
            "tests": f"{ev.tests_passed} passed, coverage {ev.coverage:.1f}%",
            "backtest_run": ev.backtest_run,
        }
    return Submission(sub, pk, kind, p.name)


def _pending(c: sa.Connection, submission: int, kind: str) -> sa.Row[tuple[int, str, str]]:
    subs = table("profile_submissions")
    row = one(
        c,
        sa.select(subs.c.profile_pk, subs.c.text, subs.c.status, subs.c.kind).where(
            subs.c.pk == submission
        ),
        lambda: f"the registry has no submission {submission}",
    )
    if row.status != "pending":
        raise RegistryError(f"submission {submission} is {row.status}, not awaiting a decision")
    if row.kind != kind:
        what = "a new profile" if row.kind == "new" else "an amendment"
        use = "approve" if row.kind == "new" else "amend"
        raise RegistryError(f"submission {submission} is {what}: use `{use}`")
    return row  # type: ignore[no-any-return]


def _decision(
    c: sa.Connection,
    act: Action,
    profile_pk: int,
    sub: int | None,
    kind: str,
    number: str,
    decided_on: dt.date,
) -> int:
    if not number.strip():
        raise RegistryError("the commission's decision needs its number")
    return insert(
        c,
        "commission_decisions",
        act,
        profile_pk=profile_pk,
        submission_pk=sub,
        kind=kind,
        number=number.strip(),
        decided_on=decided_on,
    )


def _rewrite(text: str, file: str, change: dict[str, object]) -> str:
    """The text with the registry's fields set, formatted; refused unless it checks clean."""
    parsed = parse_source(text, file)
    assert parsed.source is not None  # the submission checked clean
    source = parsed.source
    profile = attrs.evolve(source.profiles[0], **change)  # type: ignore[arg-type]
    items = tuple(profile if isinstance(x, m.Profile) else x for x in source.items)
    new = attrs.evolve(source, profiles=(profile,), items=items)
    out = format_source(new, text)
    checked_text(out, file)
    if format_text(out, file) != out:  # pragma: no cover - the formatter is idempotent
        raise RegistryError("the approved text is not stable under the formatter")
    return out


def approve(
    store: sa.Engine,
    submission: int,
    *,
    decision: str,
    decided_on: dt.date,
    group: str,
    unit: str,
    in_force_from: dt.date,
    in_force_to: dt.date | None = None,
    actor: str | None = None,
) -> Edition:
    """Record the commission's approval: the next sequence number ZZZZZ, edition 01, the number
    ``group/unit/YEAR/ZZZZZ-01`` (YEAR of the decision) written into the approved text."""
    profiles = table("profiles")
    with action(store, "approve", actor) as act:
        c = act.connection
        row = _pending(c, submission, "new")
        act.profile_pk = pk = int(row.profile_pk)
        if in_force_from < decided_on:
            raise RegistryError(
                f"in force from {in_force_from} is before the decision of {decided_on}"
            )
        if in_force_to is not None and in_force_to < in_force_from:
            raise RegistryError(
                f"in force to {in_force_to} is before in force from {in_force_from}"
            )
        top = c.execute(sa.select(sa.func.max(profiles.c.sequence))).scalar()
        sequence = 1 if top is None else int(top) + 1
        if sequence > MAX_SEQUENCE:
            raise RegistryError("every sequence number 00001-99999 is taken")
        number = m.ProfileNumber(group, unit, str(decided_on.year), f"{sequence:05d}", "01")
        approved = _rewrite(
            row.text,
            "profile.rp",
            {
                "number": number,
                "approved": decided_on,
                "edition_approved": decided_on,
                "in_force": m.Validity(in_force_from, in_force_to),
                "edition_in_force": in_force_from,
            },
        )
        dec = _decision(c, act, pk, submission, "approve", decision, decided_on)
        c.execute(
            sa.update(table("profile_submissions"))
            .where(table("profile_submissions").c.pk == submission)
            .values(status="approved")
        )
        c.execute(
            sa.update(profiles)
            .where(profiles.c.pk == pk)
            .values(sequence=sequence, base_number=number.base, status="approved")
        )
        digest = sha256(approved)
        ed = insert(
            c,
            "profile_editions",
            act,
            profile_pk=pk,
            edition=1,
            number=str(number),
            submission_pk=submission,
            decision_pk=dec,
            text=approved,
            sha256=digest,
            approved_on=decided_on,
            in_force_from=in_force_from,
            in_force_to=in_force_to,
            withdrawn=False,
        )
        act.details = {
            "submission": submission,
            "decision": decision,
            "decided_on": decided_on.isoformat(),
            "number": str(number),
            "sha256": digest,
            "in_force": [in_force_from.isoformat(), in_force_to and in_force_to.isoformat()],
        }
    return Edition(ed, pk, str(number), 1, digest, approved, in_force_from, in_force_to)


def return_for_rework(
    store: sa.Engine,
    submission: int,
    *,
    decision: str,
    decided_on: dt.date,
    actor: str | None = None,
) -> None:
    """Record the commission's return of a submission for rework (§6.1)."""
    subs, profiles = table("profile_submissions"), table("profiles")
    with action(store, "return", actor) as act:
        c = act.connection
        row = one(
            c,
            sa.select(subs.c.profile_pk, subs.c.status, subs.c.kind).where(subs.c.pk == submission),
            lambda: f"the registry has no submission {submission}",
        )
        if row.status != "pending":
            raise RegistryError(f"submission {submission} is {row.status}, not awaiting a decision")
        act.profile_pk = pk = int(row.profile_pk)
        _decision(c, act, pk, submission, "return", decision, decided_on)
        c.execute(sa.update(subs).where(subs.c.pk == submission).values(status="returned"))
        if row.kind == "new":
            c.execute(sa.update(profiles).where(profiles.c.pk == pk).values(status="returned"))
        act.details = {
            "submission": submission,
            "decision": decision,
            "decided_on": decided_on.isoformat(),
        }


@attrs.frozen
class _Latest:
    pk: int
    edition: int
    number: str
    in_force_from: dt.date
    in_force_to: dt.date | None


def _latest_edition(c: sa.Connection, profile_pk: int) -> _Latest:
    eds = table("profile_editions")
    row = c.execute(
        sa.select(eds.c.pk, eds.c.edition, eds.c.number, eds.c.in_force_from, eds.c.in_force_to)
        .where(eds.c.profile_pk == profile_pk, eds.c.withdrawn == sa.false())
        .order_by(eds.c.edition.desc())
        .limit(1)
    ).first()
    assert row is not None  # an approved profile has an edition
    return _Latest(*row)


def amend(
    store: sa.Engine,
    submission: int,
    *,
    decision: str,
    decided_on: dt.date,
    in_force_from: dt.date,
    actor: str | None = None,
) -> Edition:
    """Record the commission's amendment: edition VV+1 with its own in-force date; the previous
    edition stays in force until the day before. The profile's ``in force`` start and
    ``approved`` date stay those of edition 01; its end is the amended text's."""
    eds, subs = table("profile_editions"), table("profile_submissions")
    with action(store, "amend", actor) as act:
        c = act.connection
        row = _pending(c, submission, "amend")
        act.profile_pk = pk = int(row.profile_pk)
        prof = c.execute(
            sa.select(table("profiles").c.status).where(table("profiles").c.pk == pk)
        ).scalar_one()
        if prof != "approved":
            raise RegistryError(f"the profile is {prof}: it cannot be amended")
        latest = _latest_edition(c, pk)
        if in_force_from <= latest.in_force_from:
            raise RegistryError(
                f"edition {latest.edition + 1} must come into force after edition "
                f"{latest.number} did ({latest.in_force_from}), not on {in_force_from}"
            )
        if in_force_from < decided_on:
            raise RegistryError(
                f"in force from {in_force_from} is before the decision of {decided_on}"
            )
        if latest.edition >= MAX_EDITION:
            raise RegistryError(f"{latest.number} is the last edition a number can have")
        first = c.execute(
            sa.select(eds.c.text).where(eds.c.profile_pk == pk, eds.c.edition == 1)
        ).scalar_one()
        original = parse_source(first, "profile.rp").source
        assert original is not None
        start = original.profiles[0]
        new_source = parse_source(row.text, "profile.rp").source
        assert new_source is not None
        submitted = new_source.profiles[0]
        assert submitted.number is not None and start.in_force is not None
        end = submitted.in_force.end if submitted.in_force is not None else None
        if end is not None and end < in_force_from:
            raise RegistryError(f"the amended text ends on {end}, before {in_force_from}")
        number = attrs.evolve(submitted.number, edition=f"{latest.edition + 1:02d}")
        text = _rewrite(
            row.text,
            "profile.rp",
            {
                "number": number,
                "approved": start.approved,
                "edition_approved": decided_on,
                "in_force": m.Validity(start.in_force.start, end),
                "edition_in_force": in_force_from,
            },
        )
        dec = _decision(c, act, pk, submission, "amend", decision, decided_on)
        c.execute(sa.update(subs).where(subs.c.pk == submission).values(status="approved"))
        c.execute(
            sa.update(eds)
            .where(eds.c.pk == latest.pk)
            .values(in_force_to=in_force_from - dt.timedelta(days=1))
        )
        digest = sha256(text)
        ed = insert(
            c,
            "profile_editions",
            act,
            profile_pk=pk,
            edition=latest.edition + 1,
            number=str(number),
            submission_pk=submission,
            decision_pk=dec,
            text=text,
            sha256=digest,
            approved_on=decided_on,
            in_force_from=in_force_from,
            in_force_to=end,
            withdrawn=False,
        )
        act.details = {
            "submission": submission,
            "decision": decision,
            "decided_on": decided_on.isoformat(),
            "number": str(number),
            "previous": latest.number,
            "sha256": digest,
            "in_force_from": in_force_from.isoformat(),
        }
    return Edition(ed, pk, str(number), latest.edition + 1, digest, text, in_force_from, end)


def terminate(
    store: sa.Engine,
    number: str,
    *,
    decision: str,
    decided_on: dt.date,
    last_day: dt.date,
    actor: str | None = None,
) -> None:
    """Record the commission's termination: the profile applies up to ``last_day`` (inclusive);
    an edition due to come into force after it is withdrawn. The case file stays readable."""
    eds, profiles = table("profile_editions"), table("profiles")
    with action(store, "terminate", actor) as act:
        c = act.connection
        p = profile_row(c, number)
        act.profile_pk = p.pk
        if p.status != "approved":
            raise RegistryError(f"{p.base_number} is {p.status}: it cannot be terminated")
        if last_day < decided_on - dt.timedelta(days=1):
            raise RegistryError(
                f"a decision of {decided_on} cannot end the profile in the past ({last_day}): "
                "the earliest last day is the day before the decision"
            )
        _decision(c, act, p.pk, None, "terminate", decision, decided_on)
        live = eds.c.profile_pk == p.pk
        c.execute(sa.update(eds).where(live, eds.c.in_force_from > last_day).values(withdrawn=True))
        c.execute(
            sa.update(eds)
            .where(
                live,
                eds.c.in_force_from <= last_day,
                sa.or_(eds.c.in_force_to.is_(None), eds.c.in_force_to > last_day),
            )
            .values(in_force_to=last_day)
        )
        c.execute(
            sa.update(profiles)
            .where(profiles.c.pk == p.pk)
            .values(status="terminated", terminated_on=last_day)
        )
        act.details = {
            "number": p.base_number,
            "decision": decision,
            "decided_on": decided_on.isoformat(),
            "last_day": last_day.isoformat(),
        }
