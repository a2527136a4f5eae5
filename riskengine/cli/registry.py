"""``riskengine registry VERB``: the profile registry (docs/registry.md) on the command line.

Each action verb calls one function of :mod:`riskengine.registry` and prints a one-line result;
a refusal is the library's message (``error: …``, status 1) and writes nothing. ``list``,
``show``, ``log``, ``verify`` and ``export`` read the store.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
import sqlalchemy as sa

from riskengine.cli.common import atomic_write, iso_date, plural, printable, store_url_option

__all__ = ["registry"]

FC = TypeVar("FC", bound=Callable[..., Any])


@contextmanager
def _store(url: str | None) -> Iterator[sa.Engine]:
    """The initialised store at ``url`` (never created here), disposed afterwards."""
    from riskengine.store.access import open_existing

    engine = open_existing(url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _reading(url: str | None) -> Iterator[sa.Connection]:
    from riskengine.store.engine import database_errors

    with _store(url) as engine, database_errors(engine), engine.connect() as connection:
        yield connection


def _read(path: str) -> str:
    from riskengine.registry import RegistryError

    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        where = f"{exc.reason} at byte {exc.start}"
        raise RegistryError(f"{path} is not UTF-8 text ({where})") from None
    except OSError as exc:
        raise RegistryError(f"{path} cannot be read: {exc.strerror}") from None


def _file_argument(name: str) -> Callable[[FC], FC]:
    return click.argument(name, type=click.Path(exists=True, dir_okay=False))


def _date_option(flag: str, help_text: str, required: bool = True) -> Callable[[FC], FC]:
    return click.option(
        flag, metavar="YYYY-MM-DD", required=required, callback=iso_date, help=help_text
    )


_decision = click.option(
    "--decision", required=True, metavar="NUMBER", help="The commission decision's number."
)
_decided_on = click.option(
    "--decided-on",
    metavar="YYYY-MM-DD",
    required=True,
    callback=iso_date,
    help="The decision's date.",
)
_reason = click.option("--reason", required=True, help="Why (recorded in the case file).")


def _span(start: dt.date, end: dt.date | None) -> str:
    return f"{start} .. {end}" if end is not None else f"from {start}"


@click.group()
def registry() -> None:
    """The profile registry: submission, the commission's decisions, editions, clarifications,
    suspensions, regional fills, the case files and the audit log (docs/registry.md)."""


@registry.command("submit")
@store_url_option
@_file_argument("file")
@click.option(
    "--tests",
    "tests_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The profile's unit tests (a .test.toml file); all must pass.",
)
@click.option(
    "--run",
    "run",
    required=True,
    type=click.IntRange(min=1),
    help="The recorded backtest run of this text (riskengine backtest prints its number).",
)
@click.option(
    "--amends",
    metavar="NUMBER",
    default=None,
    help="Submit a new text of the approved profile NUMBER (an amendment) instead of a draft.",
)
def submit(url: str | None, file: str, tests_path: str, run: int, amends: str | None) -> None:
    """Submit the draft FILE with its evidence to the commission.

    Refused unless FILE checks clean and holds one profile, its unit tests pass and the backtest
    run tested this very text.
    """
    from riskengine import registry as r

    text, tests = _read(file), _read(tests_path)
    with _store(url) as store:
        sub = r.submit(
            store, text, tests=tests, backtest_run=run, file=Path(file).name, amends=amends
        )
    what = f"an amendment of {amends}" if sub.kind == "amend" else "a new profile"
    click.echo(f'submission {sub.pk}: "{sub.name}", {what}, awaits the commission')


@registry.command("approve")
@store_url_option
@click.argument("submission", type=click.IntRange(min=1))
@_decision
@_decided_on
@click.option("--group", required=True, help="The profile group WW of the number (e.g. 1A).")
@click.option("--unit", required=True, help="The unit XX of the number (appendix 4).")
@_date_option("--in-force-from", "The first day the profile is in force.")
@_date_option("--in-force-to", "The last day it is in force (default: open).", required=False)
def approve(
    url: str | None,
    submission: int,
    decision: str,
    decided_on: dt.date,
    group: str,
    unit: str,
    in_force_from: dt.date,
    in_force_to: dt.date | None,
) -> None:
    """Record the commission's approval of SUBMISSION: the number and edition 01."""
    from riskengine import registry as r

    with _store(url) as store:
        ed = r.approve(
            store,
            submission,
            decision=decision,
            decided_on=decided_on,
            group=group,
            unit=unit,
            in_force_from=in_force_from,
            in_force_to=in_force_to,
        )
    click.echo(
        f"approved: {ed.number} (decision {decision.strip()} of {decided_on}), in force "
        f"{_span(ed.in_force_from, ed.in_force_to)}"
    )


@registry.command("return")
@store_url_option
@click.argument("submission", type=click.IntRange(min=1))
@_decision
@_decided_on
def return_(url: str | None, submission: int, decision: str, decided_on: dt.date) -> None:
    """Record the commission's return of SUBMISSION for rework."""
    from riskengine import registry as r

    with _store(url) as store:
        r.return_for_rework(store, submission, decision=decision, decided_on=decided_on)
    click.echo(
        f"submission {submission} returned for rework (decision {decision.strip()} of {decided_on})"
    )


@registry.command("amend")
@store_url_option
@click.argument("submission", type=click.IntRange(min=1))
@_decision
@_decided_on
@_date_option("--in-force-from", "The day the new edition comes into force.")
def amend(
    url: str | None, submission: int, decision: str, decided_on: dt.date, in_force_from: dt.date
) -> None:
    """Record the commission's amendment: SUBMISSION becomes the profile's next edition."""
    from riskengine import registry as r

    with _store(url) as store:
        ed = r.amend(
            store,
            submission,
            decision=decision,
            decided_on=decided_on,
            in_force_from=in_force_from,
        )
    before = in_force_from - dt.timedelta(days=1)
    click.echo(
        f"amended: {ed.number} in force {_span(ed.in_force_from, ed.in_force_to)}; the previous "
        f"edition applies until {before}"
    )


@registry.command("clarify")
@store_url_option
@click.argument("number")
@_file_argument("file")
@click.option(
    "--ground",
    required=True,
    type=click.Choice(sorted(["10.2.1", "10.2.2", "10.2.3"])),
    help="§10.2 ground: 10.2.1 technical error, 10.2.2 changed regulations, 10.2.3 contacts.",
)
@_reason
def clarify(url: str | None, number: str, file: str, ground: str, reason: str) -> None:
    """Record a technical clarification of the edition NUMBER (its full number): FILE is the
    clarified text. Refused, with a located diff, when it changes what the profile selects."""
    from riskengine import registry as r

    text = _read(file)
    with _store(url) as store:
        changed = r.clarify(store, number, text, ground=ground, reason=reason)
    click.echo(f"clarified {number.strip()} (ground {ground}): {', '.join(changed)} changed")


@registry.command("suspend")
@store_url_option
@click.argument("number")
@click.option(
    "--ground",
    required=True,
    type=click.Choice(["10.3.1", "10.3.2", "10.3.3", "10.3.4"]),
    help="§10.3 ground: 10.3.1 regulations changed the indicators' meaning, 10.3.2 "
    "regulations repealed, 10.3.3 no longer relevant, 10.3.4 an urgent fix is needed.",
)
@_date_option("--on", "The first day of the suspension.")
@_reason
def suspend(url: str | None, number: str, ground: str, on: dt.date, reason: str) -> None:
    """Suspend the profile NUMBER from a day (by the risk unit, reported to the commission)."""
    from riskengine import registry as r

    with _store(url) as store:
        r.suspend(store, number, ground=ground, on=on, reason=reason)
    click.echo(f"suspended {number.strip()} from {on} (ground {ground})")


@registry.command("resume")
@store_url_option
@click.argument("number")
@_date_option("--on", "The day the profile applies again.")
@_reason
def resume(url: str | None, number: str, on: dt.date, reason: str) -> None:
    """Resume the suspended profile NUMBER from a day."""
    from riskengine import registry as r

    with _store(url) as store:
        r.resume(store, number, on=on, reason=reason)
    click.echo(f"resumed {number.strip()} from {on}")


@registry.command("terminate")
@store_url_option
@click.argument("number")
@_decision
@_decided_on
@_date_option("--last-day", "The last day the profile applies.")
def terminate(
    url: str | None, number: str, decision: str, decided_on: dt.date, last_day: dt.date
) -> None:
    """Record the commission's termination of the profile NUMBER."""
    from riskengine import registry as r

    with _store(url) as store:
        r.terminate(store, number, decision=decision, decided_on=decided_on, last_day=last_day)
    click.echo(
        f"terminated {number.strip()} (decision {decision.strip()} of {decided_on}): it applies "
        f"until {last_day}"
    )


@registry.command("review")
@store_url_option
@click.argument("number")
@click.option(
    "--decision",
    "outcome",
    required=True,
    type=click.Choice(["keep", "widen", "narrow", "amend", "terminate"]),
    help="The commission's decision after the effectiveness review (§9.4): keep unchanged, "
    "widen or narrow the scope, amend, terminate.",
)
@_date_option(
    "--next-review",
    "The date of the next effectiveness review (§9.5; required unless terminating; for an "
    "office's monitoring at most 3 months ahead, default exactly 3 months).",
    required=False,
)
@click.option("--minutes", default="", help="The minutes (number, item, summary) of the meeting.")
@_date_option("--date", "The decision's date (default today).", required=False)
@click.option(
    "--office",
    default=None,
    metavar="CODE",
    help="Record office CODE's quarterly monitoring of its fills (§11.5) instead of the "
    "commission's decision (role office_filler for CODE).",
)
def review(
    url: str | None,
    number: str,
    outcome: str,
    next_review: dt.date | None,
    minutes: str,
    date: dt.date | None,
    office: str | None,
) -> None:
    """Record the commission's decision on the profile NUMBER after its effectiveness review
    (seed 003 §9.4-9.5), with the date of the next review; or, with --office, an office's
    monitoring of its fills (§11.5). The decision changes no edition: the next step (an
    amendment, the termination) is recorded with its own verb, as printed."""
    from riskengine import registry as r

    decided_on = date or dt.date.today()
    with _store(url) as store:
        done = r.review(
            store,
            number,
            decision=outcome,
            decided_on=decided_on,
            next_review=next_review,
            minutes=minutes,
            office=office,
        )
    what = "review" if office is None else f"monitoring by {done.office}"
    after = "no next review" if done.next_review is None else f"next review {done.next_review}"
    click.echo(f"{what} of {done.number} on {decided_on}: {outcome}; {after}")
    if done.next_step:
        click.echo(f"next step: {done.next_step}")


@registry.command("fill")
@store_url_option
@_file_argument("file")
@click.option(
    "--responsible",
    multiple=True,
    required=True,
    metavar="PERSON",
    help="A person the office's order makes responsible (at least 2; repeat the option).",
)
@click.option(
    "--viewer", "viewers", multiple=True, metavar="PERSON", help="A viewer the order names."
)
@_date_option("--entered-on", "The entry date (default: today).", required=False)
def fill(
    url: str | None,
    file: str,
    responsible: tuple[str, ...],
    viewers: tuple[str, ...],
    entered_on: dt.date | None,
) -> None:
    """Enter a regional office's fill (FILE: one `fill for NUMBER { … }` statement)."""
    from riskengine import registry as r
    from riskengine.registry.base import working_days_after

    text = _read(file)
    with _store(url) as store:
        f = r.fill(store, text, responsible=responsible, viewers=viewers, entered_on=entered_on)
    line = (
        f"fill {f.pk} of {f.office}: order {f.order_number} of {f.order_date}, valid "
        f"{f.valid_from} .. {f.valid_to}"
    )
    if f.late:
        due = working_days_after(f.order_date, 2)
        entered = entered_on or dt.date.today()
        line += f"; LATE: entered {entered}, due by {due} (2 working days after the order, §11.4)"
    click.echo(line)


@registry.command("list")
@store_url_option
@_date_option("--as-of", "The day whose edition in force is shown (default: today).", False)
def list_(url: str | None, as_of: dt.date | None) -> None:
    """List the registry's profiles: number, name, the edition in force, state."""
    from riskengine.registry.casefile import profiles

    with _reading(url) as connection:
        rows = profiles(connection, as_of or dt.date.today())
    if not rows:
        click.echo("the registry is empty")
        return
    table = [("number", "name", "in force", "state")] + [
        (x.number, x.name, x.edition, x.state) for x in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for row in table:
        cells = [row[i].ljust(widths[i]) for i in range(3)] + [row[3]]
        click.echo(printable("  ".join(cells)))


@registry.command("show")
@store_url_option
@click.argument("number")
@click.option(
    "--format",
    "fmt_name",
    type=click.Choice(["markdown", "html"]),
    default="markdown",
    show_default=True,
    help="markdown, or a self-contained printable html page (inline CSS, nothing fetched).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the case file to this file instead of standard output.",
)
def show(url: str | None, number: str, fmt_name: str, output: Path | None) -> None:
    """Print the case file of the profile NUMBER (its base number, a full number with edition,
    or profile/KEY before approval) as Markdown, or as an HTML page with --format html."""
    from riskengine.cli.common import EXIT_PROBLEMS, user_error
    from riskengine.registry.casefile import markdown, read_case_file
    from riskengine.registry.casefile_html import render_html

    with _reading(url) as connection:
        found = read_case_file(connection, number)
    text = render_html(found) if fmt_name == "html" else markdown(found)
    if output is None:
        click.echo(printable(text), nl=False)
        return
    try:
        atomic_write(output, text)
    except OSError as exc:
        user_error(f"cannot write {output}: {exc.strerror or exc}")
        sys.exit(EXIT_PROBLEMS)
    click.echo(f"wrote {output}", err=True)


@registry.command("log")
@store_url_option
def log(url: str | None) -> None:
    """Print the audit log, oldest first: key, time (UTC), actor, action, object, details."""
    from riskengine import registry as r
    from riskengine.registry.audit import current_actor

    with _reading(url) as connection:
        r.require(connection, current_actor(connection), "log")
        found = r.entries(connection)
    if not found:
        click.echo("the log is empty")
    for e in found:
        at = e.logged_at.isoformat(sep=" ", timespec="seconds")
        details = json.loads(e.details)
        shown = " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in details.items())
        click.echo(printable(f"{e.pk} {at} {e.actor} {e.action} {e.object} {shown}"))


@registry.command("verify")
@store_url_option
def verify(url: str | None) -> None:
    """Verify the audit log's hash chain and each case file against its last entry.

    Exit status 1 names the first entry found wrong.
    """
    from riskengine import registry as r
    from riskengine.registry.audit import current_actor

    with _reading(url) as connection:
        r.require(connection, current_actor(connection), "verify")
    with _store(url) as store:
        result = r.verify(store)
    if result.ok:
        n = result.entries
        click.echo(f"the log verifies: {n} {'entry' if n == 1 else 'entries'}")
        return
    click.echo(f"the log does not verify: {result.problem}")
    sys.exit(1)


def export_name(number: str) -> str:
    """The file an edition is exported to: its number with ``/`` as ``_``
    (``1A_12_2025_00001-01.rp``)."""
    return number.replace("/", "_") + ".rp"


@registry.command("export")
@store_url_option
@click.argument("directory", type=click.Path(file_okay=False))
@_date_option("--as-of", "The day whose editions in force are exported (default: today).", False)
def export(url: str | None, directory: str, as_of: dt.date | None) -> None:
    """Write the current text of each edition in force to DIRECTORY, one .rp file per profile
    named by its number (1A_12_2025_00001-01.rp). Refused when DIRECTORY holds other .rp files
    (an earlier export's profiles no longer in force)."""
    from riskengine import registry as r

    day = as_of or dt.date.today()
    with _reading(url) as connection:
        live = r.in_force(connection, day)
    out = Path(directory)
    names = {export_name(x.number) for x in live}
    stale = sorted(p.name for p in out.glob("*.rp") if p.name not in names) if out.is_dir() else []
    if stale:
        raise r.RegistryError(
            f"{out} holds {', '.join(stale)}, not an edition in force on {day}: a folder loaded "
            "as the profiles in force must hold nothing else; export to an empty folder "
            "(nothing was written)"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        for x in live:
            atomic_write(out / export_name(x.number), x.text)
    except OSError as exc:
        raise click.FileError(exc.filename or directory, exc.strerror) from None
    click.echo(f"{plural(len(live), 'edition')} in force on {day} written to {out}")


_office = click.option(
    "--office", metavar="CODE", default=None, help="The office (office_filler, office_viewer)."
)
_role = click.argument(
    "role",
    type=click.Choice(
        [
            "analyst",
            "risk_unit_head",
            "secretary",
            "office_filler",
            "office_viewer",
            "deployer",
            "auditor",
            "admin",
        ]
    ),
    metavar="ROLE",
)


def _check_role(role: str, office: str | None) -> None:
    """An office role without an office (or the reverse) is bad usage: status 2."""
    from riskengine.registry import RegistryError
    from riskengine.registry.access import check_role

    try:
        check_role(role, office)
    except RegistryError as exc:
        raise click.UsageError(str(exc)) from None


@registry.command("grant")
@store_url_option
@click.argument("login")
@_role
@_office
def grant(url: str | None, login: str, role: str, office: str | None) -> None:
    """Give LOGIN the registry role ROLE (for --office CODE): analyst, risk_unit_head,
    secretary, office_filler, office_viewer, deployer, auditor, admin (docs/registry.md)."""
    from riskengine import registry as r

    _check_role(role, office)
    with _store(url) as store:
        who = r.grant(store, login, role, office=office)
    click.echo(f"{who} has the role {role}" + (f" for {office}" if office else ""))


@registry.command("revoke")
@store_url_option
@click.argument("login")
@_role
@_office
def revoke(url: str | None, login: str, role: str, office: str | None) -> None:
    """Take the registry role ROLE (for --office CODE) from LOGIN."""
    from riskengine import registry as r

    _check_role(role, office)
    with _store(url) as store:
        who = r.revoke(store, login, role, office=office)
    click.echo(f"{who} no longer has the role {role}" + (f" for {office}" if office else ""))


@registry.command("members")
@store_url_option
def members(url: str | None) -> None:
    """List the registry's members: actor, role, office; and who you are."""
    from riskengine import registry as r
    from riskengine.registry.audit import current_actor

    with _reading(url) as connection:
        rows = r.members(connection)
        me = current_actor(connection)
        postgresql = connection.dialect.name == "postgresql"
        mine = r.roles_of(connection, me)
        superuser = (
            postgresql
            and connection.execute(
                sa.text("SELECT current_setting('is_superuser') = 'on'")
            ).scalar()
        )
    if rows:
        table = [("actor", "role", "office")] + [(x.actor, x.role, x.office or "") for x in rows]
        widths = [max(len(row[i]) for row in table) for i in range(2)]
        for row in table:
            line = f"{row[0].ljust(widths[0])}  {row[1].ljust(widths[1])}  {row[2]}"
            click.echo(printable(line.rstrip()))
    if superuser:
        click.echo(
            f"you are {me} (the database login), a superuser: PostgreSQL lets it do anything"
        )
    elif postgresql:
        held = ", ".join(x.role + (f" for {x.office}" if x.office else "") for x in mine)
        click.echo(f"you are {me} (the database login): {held or 'no registry role'}")
    elif not rows:
        click.echo(
            f"no members: the local user ({me}, recorded, not authenticated) may do every "
            "registry action; `riskengine registry grant USER admin` starts the rights"
        )
    else:
        held = ", ".join(x.role + (f" for {x.office}" if x.office else "") for x in mine)
        click.echo(f"you are {me} (not authenticated): {held or 'no registry role'}")


@registry.command("purge")
@store_url_option
@click.argument("number")
def purge(url: str | None, number: str) -> None:
    """Delete the case file of the terminated profile NUMBER, more than 3 years after its last
    day (§7.3-7.4); the log records it with the hashes. Refused before."""
    from riskengine import registry as r

    with _store(url) as store:
        details = r.purge(store, number)
    rows = sum(details["rows"].values())
    click.echo(
        f"purged {details['number']} (last day {details['last_day']}, kept until "
        f"{details['kept_until']}): {plural(rows, 'row')} deleted, the log records the "
        "case file's hash"
    )
