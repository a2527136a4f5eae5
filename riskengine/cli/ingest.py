"""``riskengine ingest``: load a CSV or JSON Lines export into the store
(:mod:`riskengine.ingest`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from riskengine.cli.common import (
    catalogue_option,
    elapsed_status,
    progress_bar,
    store_catalogue,
    store_url_option,
)
from riskengine.render.words import duration, plural, rate

__all__ = ["ingest"]


@click.command("ingest")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@store_url_option
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
@catalogue_option
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

    from riskengine.ingest.mapping import MappingError, load_ingest_mapping
    from riskengine.ingest.pipeline import ingest_file
    from riskengine.store.engine import connect

    if mapping_path is None:
        from riskengine.ingest.read import has_no_json_line, sniff_format

        suffix = Path(file).suffix.lower()
        json_suffix = suffix in (".jsonl", ".ndjson", ".json")
        if (
            not json_suffix
            and (
                sniff_format(file) == "csv"
                or (sniff_format(file) is None and suffix in (".csv", ".tsv"))
            )
        ) or (json_suffix and has_no_json_line(file)):  # a CSV export named .json
            raise click.UsageError(
                f"{file} is not JSON Lines (its first line does not start with '{{'): a CSV "
                "file needs --mapping MAP.toml, which says which column is which field "
                "(see docs/ingest.md); nothing was read or written"
            )
    catalogue = store_catalogue(url, catalogue_path)
    try:
        mapping = (
            load_ingest_mapping(mapping_path, catalogue=catalogue, kind=kind)
            if mapping_path
            else None
        )
    except MappingError as exc:
        raise click.BadParameter(str(exc), param_hint="'--mapping'") from None
    engine = connect(url)
    size = os.path.getsize(file)
    try:
        with progress_bar(size, f"ingest {Path(file).name}", quiet) as advance:
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
            except MappingError as exc:
                # a mapping that does not fit the file (a column it names is missing, the file
                # is not the format it reads, no header line): bad input, raised before
                # anything is read or written
                raise click.UsageError(str(exc)) from None
            except KeyboardInterrupt:
                click.echo(
                    "\ninterrupted: the committed batches are stored; run the same command again "
                    "to resume",
                    err=True,
                )
                sys.exit(130)
        if result.records_added:
            from riskengine.store.maintenance import analyze, gathers_statistics

            if gathers_statistics(engine):
                with elapsed_status("refreshing the planner statistics", quiet):
                    analyze(engine)
    finally:
        engine.dispose()
    what = result.kind.removesuffix("s")  # declarations, outcomes, controls
    if result.already_done:
        click.echo(
            f"{file} was already ingested ({plural(result.rows, 'row')}, "
            f"{plural(result.records_added, what)} added): nothing to do "
            "(use --force to read it again)"
        )
        if result.rows_rejected:
            # the same exit status as the run that rejected them: the file still has bad rows
            shown = result.rejects_path or "the rejects file"
            gone = (
                ""
                if os.path.exists(shown)
                else " (the file is no longer there: --force writes it again)"
            )
            click.echo(
                f"{plural(result.rows_rejected, 'row')} "
                f"{'was' if result.rows_rejected == 1 else 'were'} rejected: {shown}{gone}"
            )
            sys.exit(1)
        return
    resumed = f", resumed after row {result.resumed_from}" if result.resumed_from else ""
    click.echo(
        f"ingested {file}: {plural(result.rows, 'row')}{resumed}, "
        f"{plural(result.records_added, what)} added, {result.records_skipped:,} already stored, "
        f"{plural(result.rows_rejected, 'row')} rejected in {duration(result.seconds)}"
        f"{rate(result.rows, result.seconds, 'row')}"
    )
    if result.declarations_apart:
        click.echo(
            f"{plural(result.declarations_apart, 'declaration')} had rows apart from each "
            "other in the "
            "file: each was put together and stored whole, or rejected whole (a file sorted "
            f"by {'its group_by column' if mapping is None else mapping.group_by} is read once)"
        )
    if result.rejects_path:
        click.echo(f"rejected rows: {result.rejects_path}")
        sys.exit(1)
