"""Store commands: ``riskengine db init|upgrade|current``, ``ingest`` and ``demo-data``."""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from riskengine.catalogue import Catalogue, catalogue_with
from riskengine.store import migrate
from riskengine.store.engine import resolve_url

__all__ = ["db", "demo_data", "ingest"]


def _url_option(func: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--url",
        "--db",
        "url",
        metavar="URL",
        default=None,
        help="Store URL (sqlite:///file.db, postgresql://user@host/db, duckdb:///file.duckdb) "
        "or a .db/.duckdb path. Default: $RISKENGINE_DB, else sqlite:///riskengine.db.",
    )(func)


def _catalogue_option(func: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--catalogue",
        "catalogue_path",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="A user catalogue (TOML, [[field]] tables) extending the built-in fields.",
    )(func)


def _catalogue(path: str | None) -> Catalogue:
    return catalogue_with(path)


def _shown(url: str | None) -> str:
    from sqlalchemy.engine import make_url

    return make_url(resolve_url(url)).render_as_string(hide_password=True)


@click.group()
def db() -> None:
    """Create and migrate the SQL store."""


@db.command("init")
@_url_option
@_catalogue_option
def db_init(url: str | None, catalogue_path: str | None) -> None:
    """Create the store's tables (or bring an existing store up to date)."""
    status = migrate.init(url, _catalogue(catalogue_path))
    click.echo(f"store {_shown(url)} is at schema revision {status.revision} (head)")


@db.command("upgrade")
@_url_option
@_catalogue_option
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def db_upgrade(url: str | None, catalogue_path: str | None, revision: str) -> None:
    """Run new schema revisions and add columns for new catalogue fields."""
    status = migrate.upgrade(url, _catalogue(catalogue_path), revision)
    click.echo(f"store {_shown(url)} is at schema revision {status.revision}")


@db.command("current")
@_url_option
@_catalogue_option
def db_current(url: str | None, catalogue_path: str | None) -> None:
    """Show the store's schema revision and whether it is up to date."""
    from riskengine.store.engine import connect, database_errors

    engine = connect(url)
    try:
        with database_errors(engine), engine.connect() as connection:
            status = migrate.status(connection, _catalogue(catalogue_path))
    finally:
        engine.dispose()
    if status.revision is None:
        click.echo(f"store {_shown(url)} has no riskengine schema: run `riskengine db init`")
        sys.exit(1)
    state = "up to date" if status.up_to_date else "needs `riskengine db upgrade`"
    click.echo(f"store {_shown(url)}: revision {status.revision}, head {status.head}, {state}")
    if status.missing_columns:
        click.echo("fields without a column: " + ", ".join(status.missing_columns))
    if not status.up_to_date:
        sys.exit(1)


@contextmanager
def _progress(total: int | None, description: str, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on a terminal (not with --quiet); yields ``advance(n)``."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    enabled = not quiet and console.is_terminal
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    ) as progress:
        task = progress.add_task(description, total=total)

        def advance(count: int) -> None:
            progress.advance(task, count)

        yield advance


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected a date YYYY-MM-DD, got {value!r}") from None


@click.command("demo-data")
@click.option(
    "--declarations", "-n", "count", type=click.IntRange(min=1), default=10_000, show_default=True
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same data.")
@click.option("--start", callback=_date, default=None, help="First date (default 2024-01-01).")
@click.option("--end", callback=_date, default=None, help="Last date (default 2025-12-31).")
@_url_option
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write a one-row-per-item CSV export (and FILE.outcomes.csv, FILE.outcomes.controls.csv)"
    " instead of storing; ingest it with riskengine/demo/examples/demo_export.toml.",
)
@click.option(
    "--jsonl",
    "jsonl_path",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write declarations as JSON Lines (the input format) instead of storing.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def demo_data(
    count: int,
    seed: int,
    start: dt.date | None,
    end: dt.date | None,
    url: str | None,
    csv_path: str | None,
    jsonl_path: str | None,
    quiet: bool,
) -> None:
    """Generate realistic demo declarations with planted violations, outcomes and controls.

    Repeat offenders make history matter; the same --seed always gives the same data.
    """
    from riskengine import demo
    from riskengine.store.engine import connect

    first = start or demo.DEFAULT_START
    last = end or demo.DEFAULT_END
    if last < first:
        raise click.BadParameter(f"--end {last} is before --start {first}")
    began = time.perf_counter()
    if csv_path or jsonl_path:
        records = list(demo.generate(count, seed, first, last))
        if csv_path:
            rows = demo.export_csv(records, csv_path)
            out = Path(csv_path)
            outcomes_path = out.with_name(out.stem + ".outcomes.csv")
            outcome_rows, control_rows = demo.export_outcomes_csv(records, outcomes_path)
            click.echo(
                f"wrote {rows} item rows of {count} declarations to {csv_path}, "
                f"{outcome_rows} outcome rows to {outcomes_path}, {control_rows} control rows "
                f"to {outcomes_path.with_name(outcomes_path.stem + '.controls.csv')}"
            )
        if jsonl_path:
            lines = demo.export_jsonl(records, jsonl_path)
            click.echo(f"wrote {lines} declarations to {jsonl_path}")
        return
    engine = connect(url)
    try:
        with _progress(count, "demo declarations", quiet) as advance:
            summary = demo.write_demo(engine, count, seed, first, last, progress=advance)
    finally:
        engine.dispose()
    seconds = time.perf_counter() - began
    click.echo(
        f"stored {summary.declarations} declarations ({summary.items} goods items), "
        f"{summary.not_completed} not completed, {summary.controls} controls, "
        f"{summary.violations} planted violations in {_shown(url)} ({seconds:.1f} s)"
    )
    if summary.declarations < count:
        click.echo(f"{count - summary.declarations} declarations were already in the store")


@click.command("ingest")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@_url_option
@click.option(
    "--mapping",
    "mapping_path",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Mapping file (TOML or YAML): source columns to fields, conversions. Without it, FILE "
    "must be JSON Lines in the declaration input format.",
)
@click.option(
    "--kind",
    type=click.Choice(["declarations", "outcomes", "controls"]),
    default=None,
    help="What the file holds (default: the mapping's kind, else declarations).",
)
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Where rejected rows go (default FILE.rejects.csv).",
)
@click.option(
    "--batch-rows",
    type=click.IntRange(min=1),
    default=20_000,
    show_default=True,
    help="Source rows per transaction.",
)
@click.option("--force", is_flag=True, help="Read a file again that was already ingested.")
@click.option(
    "--parallel",
    type=click.Choice(["auto", "yes", "no"]),
    default="auto",
    show_default=True,
    help="Read and convert a CSV of declarations in a second process while this one writes "
    "(auto: for files of 16 MiB or more, on a machine with more than one core).",
)
@_catalogue_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def ingest(
    file: str,
    url: str | None,
    mapping_path: str | None,
    kind: str | None,
    rejects_path: str | None,
    batch_rows: int,
    force: bool,
    parallel: str,
    catalogue_path: str | None,
    quiet: bool,
) -> None:
    """Load declarations, clearance outcomes or control results from a CSV or JSON Lines file.

    Streams the file in batches (one transaction each); bad rows go to the rejects file with their
    row number and reason; ids already stored are skipped; an interrupted ingest resumes where it
    stopped when run again.
    """
    import os

    from riskengine.ingest.mapping import load_ingest_mapping
    from riskengine.ingest.pipeline import ingest_file
    from riskengine.store.engine import connect

    catalogue = _catalogue(catalogue_path)
    mapping = (
        load_ingest_mapping(mapping_path, catalogue=catalogue, kind=kind) if mapping_path else None
    )
    engine = connect(url)
    size = os.path.getsize(file)
    try:
        with _progress(size, f"ingest {Path(file).name}", quiet) as advance:
            done = [0]

            def report(position: int, _rows: int) -> None:
                advance(position - done[0])
                done[0] = position

            try:
                result = ingest_file(
                    engine,
                    file,
                    mapping,
                    kind=kind,
                    batch_rows=batch_rows,
                    rejects_path=rejects_path,
                    force=force,
                    catalogue=catalogue,
                    progress=report,
                    parallel={"auto": None, "yes": True, "no": False}[parallel],
                )
            except KeyboardInterrupt:
                click.echo(
                    "\ninterrupted: the committed batches are stored; run the same command again "
                    "to resume",
                    err=True,
                )
                sys.exit(130)
    finally:
        engine.dispose()
    what = result.kind
    if result.already_done:
        click.echo(
            f"{file} was already ingested ({result.rows} rows, {result.records_added} {what} "
            "added): nothing to do (use --force to read it again)"
        )
        return
    resumed = f", resumed after row {result.resumed_from}" if result.resumed_from else ""
    click.echo(
        f"ingested {file}: {result.rows} rows{resumed}, {result.records_added} {what} added, "
        f"{result.records_skipped} already stored, {result.rows_rejected} rows rejected "
        f"in {result.seconds:.1f} s ({result.rows_per_second:,.0f} rows/s)"
    )
    if result.rejects_path:
        click.echo(f"rejected rows: {result.rejects_path}")
        sys.exit(1)
