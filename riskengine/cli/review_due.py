"""``riskengine review due``: the review queue (docs/review-queue.md).

Profiles whose effectiveness review is due or overdue (seed 003 §9.2, §9.5), regional offices'
quarterly monitoring of their fills (§11.5), fills about to expire (§11.3) and review decisions
not yet carried out. The command joins the ``review`` group of ``riskengine/cli/review.py``.
"""

from __future__ import annotations

import datetime as dt
import json

import click

from riskengine.cli.common import iso_date, plural, store_url_option

__all__ = ["due"]


def _status(status: str, due: dt.date, as_of: dt.date) -> str:
    days = (due - as_of).days
    if status == "pending":
        return "not done"
    if days < 0:
        return f"overdue {plural(-days, 'day')}"
    if days == 0:
        return "due today"
    return f"due in {plural(days, 'day')}"


@click.command("due")
@store_url_option
@click.option(
    "--as-of",
    metavar="YYYY-MM-DD",
    callback=iso_date,
    default=None,
    help="The day of the queue (default today).",
)
@click.option(
    "--within",
    type=click.IntRange(min=0, max=3660),
    default=30,
    show_default=True,
    metavar="DAYS",
    help="Also list what falls due, and the fills that end, in the next DAYS days.",
)
@click.option(
    "--office",
    default=None,
    metavar="CODE",
    help="Only office CODE's monitoring and fills (the commission's reviews are left out).",
)
@click.option(
    "--intervals",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="The suggested-interval rule (default riskengine/data/review_intervals.toml).",
)
@click.option(
    "--format",
    "fmt_name",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
)
def due(
    url: str | None,
    as_of: dt.date | None,
    within: int,
    office: str | None,
    intervals: str | None,
    fmt_name: str,
) -> None:
    """List what is due for review on a day: effectiveness reviews due or overdue (§9.2,
    §9.5), offices' quarterly monitoring of their fills (§11.5), fills about to expire (§11.3)
    and review decisions not carried out, with the suggested interval to the next review."""
    from riskengine.cli.registry import _reading
    from riskengine.registry.due import due_items
    from riskengine.registry.interval import load_rule

    day = as_of or dt.date.today()
    rule = load_rule(intervals)
    with _reading(url) as connection:
        items = due_items(connection, day, within=within, office=office, rule=rule)
    until = day + dt.timedelta(days=within)
    if fmt_name == "json":
        document = {
            "as_of": day.isoformat(),
            "within_days": within,
            "until": until.isoformat(),
            "office": office,
            "rule": rule.source,
            "items": [x.as_dict(day) for x in items],
        }
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    where = f", office {office}" if office else ""
    if not items:
        click.echo(f"review queue on {day}{where}: nothing due by {until}")
        return
    click.echo(f"review queue on {day}{where}: {plural(len(items), 'item')} due by {until}")
    rows = [
        (
            str(x.due),
            _status(x.status, x.due, day),
            x.kind,
            x.number,
            x.office or "-",
            x.name,
        )
        for x in items
    ]
    headers = ("due", "status", "kind", "profile", "office", "name")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    click.echo(line(headers))
    for x, row in zip(items, rows, strict=True):
        click.echo(line(row))
        click.echo(f"    {x.basis}")
        if x.suggestion is not None:
            click.echo(f"    suggested interval to the next review: {x.suggestion.describe()}")
