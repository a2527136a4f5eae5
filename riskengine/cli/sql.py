"""``riskengine sql``: the SQL a backtest runs for profiles, compiled for one database (like
``sigma convert``), to read, review or run by hand."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa

from riskengine.cli.common import catalogue_option_no_store, expand_paths, iso_date

__all__ = ["DIALECTS", "compiled_sql", "sql"]

#: The databases a backtest runs on, and a URL that names each one's SQLAlchemy dialect.
DIALECTS: dict[str, str] = {
    "sqlite": "sqlite://",
    "postgresql": "postgresql+psycopg://",
    "duckdb": "duckdb:///:memory:",
}


def _dialect(name: str) -> sa.Dialect:
    dialect: sa.Dialect = sa.make_url(DIALECTS[name]).get_dialect()()
    return dialect


def compiled_sql(
    paths: Sequence[Path],
    dialect: str,
    date_from: dt.date,
    date_to: dt.date,
    *,
    by: Sequence[str] = (),
    history: bool = True,
    selector: str | None = None,
    catalogue_path: str | None = None,
) -> tuple[str, list[tuple[str, str]]]:
    """The backtest query for the profiles in ``paths`` as ``dialect`` runs it, with its
    parameters written in as literals, and the profiles left out of it (run in Python) with
    the reason."""
    from riskengine.backtest.planned import plan
    from riskengine.backtest.pushdown import BREAKDOWNS, build_query
    from riskengine.backtest.run import planned_from
    from riskengine.catalogue import catalogue_with
    from riskengine.checks import load_checked
    from riskengine.semantics.sql import sql_recursion
    from riskengine.store.history import history_select, history_select_many
    from riskengine.store.schema import build_tables
    from riskengine.store.source import native_source

    catalogue = catalogue_with(catalogue_path)
    checked = load_checked(expand_paths(paths), catalogue)
    profiles = planned_from(checked)
    if selector is not None:
        chosen = [
            pp
            for pp in profiles
            if selector in (pp.key, pp.profile.name)
            or (pp.profile.number is not None and selector == pp.profile.number.base)
        ]
        if not chosen:
            known = ", ".join(pp.key for pp in profiles) or "none"
            raise click.BadParameter(
                f"no profile {selector!r} in the given files; they have: {known}",
                param_hint="'--profile'",
            )
        profiles = chosen
    if not profiles:
        raise click.UsageError("no profile found in the given files")
    planned = plan(profiles, dialect, catalogue)
    left_out = [(pp.key, pp.reason or "") for pp in planned if not pp.pushdown]
    if len(left_out) == len(planned):
        return "", left_out
    source = native_source(build_tables(catalogue))

    def history_sql(block: Any, start: dt.date, end: dt.date) -> sa.Select[Any]:
        return history_select(block, source, start, end)

    def history_many(
        blocks: Sequence[Any], start: dt.date, end: dt.date, items: bool = True
    ) -> sa.Select[Any]:
        return history_select_many(blocks, source, start, end, items)

    group_by = tuple(sorted(set(by) | {"month"}, key=list(BREAKDOWNS).index))
    query = build_query(
        source,
        planned,
        date_from,
        date_to,
        dialect,
        group_by=group_by,
        history_sql=history_sql if history else None,
        history_many=history_many if history else None,
    )
    with sql_recursion():
        compiled = query.select.compile(
            dialect=_dialect(dialect), compile_kwargs={"literal_binds": True}
        )
        text = str(compiled)
    # SQLAlchemy's SQLite compiler writes `OFFSET n` without a limit as `LIMIT ? OFFSET n`,
    # binding -1 (no limit) even when asked for literals: write it in
    left = [compiled.params[name] for name in compiled.positiontup or ()]
    if left:
        if set(left) != {-1} or text.count("LIMIT ? OFFSET") != len(left):
            raise RuntimeError(f"parameters left unbound in the {dialect} query: {left}")
        text = text.replace("LIMIT ? OFFSET", "LIMIT -1 OFFSET")
    return text, left_out


def _breakdowns(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    from riskengine.backtest.pushdown import BREAKDOWNS

    keys = tuple(k.strip() for k in (value or "").split(",") if k.strip())
    for key in keys:
        if key not in BREAKDOWNS:
            raise click.BadParameter(f"{key!r}: use any of {', '.join(BREAKDOWNS)}")
    return keys


@click.command()
@click.argument(
    "paths",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, path_type=Path),
    metavar="PATH...",
)
@click.option(
    "--dialect",
    type=click.Choice(list(DIALECTS)),
    default="sqlite",
    show_default=True,
    help="The database the SQL is written for.",
)
@click.option(
    "--profile",
    "-p",
    "selector",
    metavar="NUMBER_OR_NAME",
    help="Only this profile (number, number without -VV, or name).",
)
@click.option("--from", "date_from", callback=iso_date, help="First day (default: a year ago).")
@click.option("--to", "date_to", callback=iso_date, help="Last day (default: today).")
@click.option("--by", callback=_breakdowns, help="Breakdowns as in backtest: month,office,regime.")
@click.option("--no-history", is_flag=True, help="Without the negative/positive history joins.")
@catalogue_option_no_store
def sql(
    paths: Sequence[Path],
    dialect: str,
    selector: str | None,
    date_from: dt.date | None,
    date_to: dt.date | None,
    by: tuple[str, ...],
    no_history: bool,
    catalogue_path: str | None,
) -> None:
    """Print the SQL that `riskengine backtest` runs for the profiles in PATH... on --dialect.

    The query is compiled with its parameters written in as literals so that it can be read
    (and run by hand); the backtest itself sends it with bound parameters. A profile the
    database cannot evaluate (it runs in Python) is named in a comment instead.
    """
    end = date_to or dt.date.today()
    start = date_from or end - dt.timedelta(days=364)
    if end < start:
        raise click.BadParameter(f"--to {end} is before --from {start}", param_hint="'--to'")
    text, left_out = compiled_sql(
        paths,
        dialect,
        start,
        end,
        by=by,
        history=not no_history,
        selector=selector,
        catalogue_path=catalogue_path,
    )
    from riskengine import __version__

    click.echo(
        f"-- riskengine {__version__}: the backtest query on {dialect}, {start} .. {end}"
        + (f", by {','.join(by)}" if by else "")
        + ("" if not no_history else ", without history")
    )
    click.echo(
        "-- Parameters are written in as literals for reading; `riskengine backtest` sends the "
        "same query with bound parameters."
    )
    for key, reason in left_out:
        click.echo(f"-- {key}: not in this query, the backtest evaluates it in Python ({reason})")
    if dialect == "sqlite" and "re_fullmatch(" in text:
        # the sqlite3 shell does not know it: say so rather than let "no such function" surprise
        click.echo(
            "-- re_fullmatch(pattern, value) (`matches`) is riskengine's own SQLite function: run "
            "the query on an engine given it by riskengine.sql.compile.register_functions(engine), "
            "not in the sqlite3 shell."
        )
    if text:
        click.echo(text.rstrip() + ";")
