"""Ingestion: CSV and JSON Lines exports into the store, streamed in batches, resumable.

``ingest_file(engine, path, mapping)`` reads the file row by row (never whole), turns rows into
declarations (or clearance outcomes, or control results) with the mapping's conversions, and
stores them in batches of about ``batch_rows`` source rows, each batch in one transaction
together with the file's progress record. So:

* a bad row (a value that does not convert, a missing id or date, a broken CSV line) goes to the
  rejects file with its row number and reason, with the other rows of its declaration; the good
  rows are stored;
* a declaration id already in the store is skipped: ingesting the same file twice adds nothing;
* an interrupted ingest (Ctrl-C, a kill, a lost connection) resumes after the last committed
  batch when started again: the file is recognised by its size and the SHA-256 of its first MiB
  (with the mapping's SHA-256), and the rejects file is cut back to the committed batches'.

Rows of one declaration need not be consecutive in a one-row-per-item export (``group_by``):
a declaration whose rows are apart is completed at the end of the file
(:mod:`~riskengine.ingest.split`), stored whole or rejected with all its rows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import io
import os
import time
from collections.abc import Callable, Iterator

import attrs
import sqlalchemy as sa

from riskengine.catalogue import Catalogue, default_catalogue
from riskengine.ingest.batches import Batch, group_key, prefetch, read_batches
from riskengine.ingest.mapping import IngestMapping, MappingError, native_mapping
from riskengine.ingest.process import ConversionProcess, use_parallel
from riskengine.ingest.read import (
    csv_rows,
    detect_format,
    groups,
    has_no_json_line,
    jsonl_rows,
    sniff_format,
)
from riskengine.ingest.records import Declarations, Records
from riskengine.ingest.rejects import RejectsFile, rejects_of
from riskengine.ingest.resume import FileState, file_state, identity, restart
from riskengine.ingest.split import delete_split_items, read_split, replace_split
from riskengine.store.engine import StoreError, database_errors
from riskengine.store.migrate import ensure_schema
from riskengine.store.schema import StoreTables, build_tables
from riskengine.store.writer import (
    allocate_keys,
    write_controls,
    write_declaration_values,
    write_outcomes,
)

__all__ = ["DEFAULT_BATCH_ROWS", "IngestResult", "ingest_file"]

#: SQLite: WAL pages between checkpoints while ingesting (64 MiB of 4 KiB pages; SQLite's
#: default is 1,000). Each checkpoint writes pages back and syncs the database file; a busy
#: index page is written once per checkpoint, so fewer checkpoints write much less.
SQLITE_WAL_PAGES = 16_384
DEFAULT_BATCH_ROWS = 20_000


@attrs.frozen
class IngestResult:
    """What an ingest did (counts over the whole file, earlier interrupted runs included)."""

    path: str
    kind: str
    rows: int
    rows_rejected: int
    records_added: int
    records_skipped: int
    batches: int
    resumed_from: int
    seconds: float
    rejects_path: str | None
    already_done: bool = False
    #: Declarations whose rows were apart in the file (completed at the end, see
    #: :mod:`riskengine.ingest.split`), counted by this run.
    declarations_apart: int = 0

    @property
    def rows_per_second(self) -> float:
        """Rows read by this run per second."""
        done = self.rows - self.resumed_from
        return done / self.seconds if self.seconds > 0 else 0.0


def ingest_file(
    engine: sa.Engine,
    path: str | os.PathLike[str],
    mapping: IngestMapping | None = None,
    *,
    kind: str | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    rejects_path: str | os.PathLike[str] | None = None,
    force: bool = False,
    catalogue: Catalogue | None = None,
    progress: Callable[[int, int], None] | None = None,
    parallel: bool | None = None,
) -> IngestResult:
    """Ingest a CSV or JSON Lines file into the store on ``engine``.

    ``mapping``: how columns become fields (``None``: JSON Lines in the declaration input format).
    ``kind``: declarations, outcomes or controls (the mapping's kind by default). ``rejects_path``:
    where rejected rows go (default: next to the file, ``FILE.rejects.csv``). ``force``: read a
    file again that was already ingested completely (stored ids are still skipped).
    ``progress(bytes_read, rows_done)`` is called after each batch. ``parallel``: read and
    convert a CSV file of declarations in a second process while this one writes (default:
    for files of :data:`PARALLEL_MIN_BYTES` or more on a machine with two cores or more);
    the result is the same either way.

    Raises :class:`MappingError` for a mapping that does not fit the file and
    :class:`~riskengine.store.engine.StoreError` for database problems; bad rows never raise.
    """
    began = time.perf_counter()
    source = os.fspath(path)
    catalogue = catalogue or default_catalogue()
    if mapping is None:
        mapping = native_mapping(kind or "declarations")
    if kind is not None and mapping.kind != kind:
        raise MappingError(f"the mapping is for {mapping.kind}, not {kind}", file=mapping.file)
    if not os.path.isfile(source):
        raise StoreError(f"no such file: {source}")
    fmt = _format(source, mapping)
    if batch_rows < 1:
        raise ValueError("batch_rows must be at least 1")
    tables = build_tables(catalogue)
    for rule in mapping.rules:
        if rule.scope in ("declaration", "item") and rule.target not in tables.field_columns:
            raise MappingError(f"the store has no column for {rule.target!r}", file=mapping.file)
    size, head = identity(source)
    rejects_file = os.fspath(rejects_path) if rejects_path else source + ".rejects.csv"
    if fmt == "csv":  # a mapping that does not fit the file fails before anything is recorded
        with open(source, encoding=mapping.encoding, errors="surrogateescape", newline="") as f:
            header, _ = csv_rows(f, mapping)
            if mapping.kind == "declarations":
                Declarations(mapping, header, catalogue, tables.field_columns)
            else:
                Records(mapping, header, catalogue.reasons)
            group_key(mapping, header, None)

    with database_errors(engine):
        with engine.begin() as connection:
            ensure_schema(connection, catalogue)
            state = file_state(connection, tables, mapping, source, size, head)
        if state.done and not force:
            return IngestResult(
                source, mapping.kind, state.rows, state.rejected, state.added, state.skipped,
                0, state.rows, time.perf_counter() - began,
                rejects_file if state.rejected else None, already_done=True,
            )  # fmt: skip
        if state.done and force:
            with engine.begin() as connection:
                state = restart(connection, tables, state)
        return _run(
            engine, source, fmt, mapping, tables, catalogue, state, batch_rows, rejects_file,
            progress, began, use_parallel(parallel, fmt, mapping, size),
        )  # fmt: skip


def _format(source: str, mapping: IngestMapping) -> str:
    """The file's format; without a mapping it must be JSON Lines (a CSV file is an error,
    raised before anything is read or written)."""
    if mapping.rules:
        fmt = detect_format(source, mapping)
        if fmt == "jsonl" and has_no_json_line(source):
            # every row would be rejected as invalid JSON, and the last rejects file replaced
            raise MappingError(
                f"{source} is not JSON Lines (no line starts with '{{'), but the mapping reads "
                'JSON Lines: set format = "csv" in [source] for a CSV file; nothing was read '
                "or written",
                file=mapping.file,
            )
        return fmt
    suffix = os.path.splitext(source)[1].lower()
    if suffix in (".jsonl", ".ndjson", ".json") and not has_no_json_line(source):
        return "jsonl"
    sniffed = sniff_format(source)
    if sniffed == "csv" or (sniffed is None and suffix in (".csv", ".tsv")):
        raise MappingError(
            f"{source} is not JSON Lines (its first line does not start with '{{'): "
            "a CSV file needs a mapping file that says which column is which field "
            "(--mapping MAP.toml; see docs/ingest.md)"
        )
    return "jsonl"


def _run(
    engine: sa.Engine,
    source: str,
    fmt: str,
    mapping: IngestMapping,
    tables: StoreTables,
    catalogue: Catalogue,
    state: FileState,
    batch_rows: int,
    rejects_file: str,
    progress: Callable[[int, int], None] | None,
    began: float,
    parallel: bool,
) -> IngestResult:
    resumed_from = state.rows
    split: dict[str, None] = {}  # ids of declarations whose rows are apart, in file order
    # Rows make many short-lived objects without reference cycles: the cyclic collector would
    # only slow the loop down (by a third), so it runs between batches instead.
    collecting = gc.isenabled()
    gc.disable()
    raw_stream = open(source, "rb")  # noqa: SIM115 (closed in finally)
    text = io.TextIOWrapper(
        raw_stream, encoding=mapping.encoding, errors="surrogateescape", newline=""
    )
    rejects: RejectsFile | None = None
    worker: ConversionProcess | None = None
    batches: Iterator[Batch] | None = None
    try:
        header: list[str] | None = None
        if fmt == "csv":
            header, rows = csv_rows(text, mapping)
        else:
            rows = jsonl_rows(text)
        converter: Declarations | Records
        if mapping.kind == "declarations":
            converter = Declarations(mapping, header, catalogue, tables.field_columns)
        else:
            converter = Records(mapping, header, catalogue.reasons)
        rejects = RejectsFile(rejects_file, header, state.rejected if state.batches else None)
        if parallel:
            # Reading and converting run in a second process while this one writes: the two
            # halves cost about the same, and threads would share one interpreter lock.
            try:
                worker = ConversionProcess(
                    source, mapping, dict(tables.field_columns), resumed_from, batch_rows
                )
            except OSError:  # no interpreter to start (an embedded Python): convert here
                worker = None
        if worker is not None:
            text.close()
            batches = prefetch(iter(worker))
        else:
            key_of = group_key(mapping, header, converter)
            # Reading and converting run in a thread while the previous batch is written: the
            # drivers leave the GIL while the database works, so the two overlap a little.
            batches = prefetch(
                read_batches(
                    groups(rows, key_of), converter, mapping, resumed_from, batch_rows,
                    raw_stream, grouped=key_of is not None,
                )
            )  # fmt: skip
        checked = not getattr(converter, "native", False)
        for number, batch in enumerate(batches, start=1):
            _commit(engine, mapping, tables, state, batch, rejects, converter, checked)
            split.update(dict.fromkeys(batch.split))
            if number % 16 == 0:
                gc.collect(1)
            if progress is not None:
                progress(batch.position, state.rows)
        if split and engine.dialect.name == "duckdb":
            with database_errors(engine), engine.begin() as connection:
                delete_split_items(connection, tables, state.pk, list(split))
        with database_errors(engine), engine.begin() as connection:
            if split:
                assert isinstance(converter, Declarations)
                _complete_split(
                    connection, source, fmt, mapping, tables, state, rejects, converter, checked,
                    list(split),
                )  # fmt: skip
            files = tables.ingest_files
            connection.execute(
                files.update()
                .where(files.c.pk == state.pk)
                .values(status="done", finished_at=dt.datetime.now())
            )
        if engine.dialect.name == "sqlite":
            with database_errors(engine), engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
    finally:
        if engine.dialect.name == "sqlite":
            with contextlib.suppress(sa.exc.DBAPIError), engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_autocheckpoint=1000")
        if worker is not None:
            worker.close()
        if batches is not None and hasattr(batches, "close"):
            batches.close()
        if rejects is not None:
            rejects.close()
        text.close()
        if collecting:
            gc.enable()
    return IngestResult(
        source, mapping.kind, state.rows, state.rejected, state.added, state.skipped,
        state.batches, resumed_from, time.perf_counter() - began,
        rejects_file if state.rejected else None, declarations_apart=len(split),
    )  # fmt: skip


def _complete_split(
    connection: sa.Connection,
    source: str,
    fmt: str,
    mapping: IngestMapping,
    tables: StoreTables,
    state: FileState,
    rejects: RejectsFile,
    converter: Declarations,
    checked: bool,
    ids: list[str],
) -> None:
    """The declarations whose rows are apart: read again whole, stored instead of their first
    rows or rejected with all their rows, in the transaction that marks the file done."""
    records, rejected = read_split(source, fmt, mapping, converter, ids)
    batch_pk = allocate_keys(connection, tables.ingest_batches, 1)
    connection.execute(
        tables.ingest_batches.insert().values(
            pk=batch_pk, file_pk=state.pk, batch_no=state.batches + 1,
            first_row=min((r.row for r in rejected), default=state.rows), last_row=state.rows,
            rows_rejected=len(rejected), records_added=0, committed_at=dt.datetime.now(),
        )
    )  # fmt: skip
    added, skipped = replace_split(
        connection, tables, state.pk, batch_pk, converter, records, ids, checked=checked
    )
    rejects.write(rejected)
    connection.execute(
        tables.ingest_batches.update()
        .where(tables.ingest_batches.c.pk == batch_pk)
        .values(records_added=added)
    )
    files = tables.ingest_files
    connection.execute(
        files.update()
        .where(files.c.pk == state.pk)
        .values(
            rows_rejected=state.rejected + len(rejected),
            records_added=state.added + added,
            records_skipped=state.skipped + skipped,
        )
    )
    state.rejected += len(rejected)
    state.added += added
    state.skipped += skipped
    state.batches += 1


def _commit(
    engine: sa.Engine,
    mapping: IngestMapping,
    tables: StoreTables,
    state: FileState,
    batch: Batch,
    rejects: RejectsFile,
    converter: Declarations | Records,
    checked: bool,
) -> None:
    """Store one batch and the file's progress in one transaction; rejects are written first."""
    rejected = list(batch.rejected)
    with database_errors(engine), engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_PAGES}")
        batch_pk = allocate_keys(connection, tables.ingest_batches, 1)
        added = skipped = 0
        if mapping.kind == "declarations":
            assert isinstance(converter, Declarations)
            result = write_declaration_values(
                connection, converter.header_columns, converter.item_columns, batch.records,
                tables, batch_pk, checked=checked,
            )  # fmt: skip
            added, skipped = result.added, len(result.skipped)
        else:
            records = [r for _, batch_records, _ in batch.good for r in batch_records]
            if mapping.kind == "outcomes":
                result = write_outcomes(connection, records, tables, batch_pk)
            else:
                result = write_controls(connection, records, tables, batch_pk)
            added, skipped = result.added, len(result.skipped)
            unknown = set(result.unknown)
            if unknown:
                for group, _record, ident in batch.good:
                    if ident in unknown:
                        reason = f"no declaration {ident} in the store (ingest declarations first)"
                        rejected.extend(rejects_of(group, {group.rows[0].number: reason}, ident))
        rejected.sort(key=lambda r: r.row)
        rejects.write(rejected)
        connection.execute(
            tables.ingest_batches.insert().values(
                pk=batch_pk, file_pk=state.pk, batch_no=state.batches + 1,
                first_row=batch.first_row, last_row=batch.last_row, rows_rejected=len(rejected),
                records_added=added, committed_at=dt.datetime.now(),
            )
        )  # fmt: skip
        files = tables.ingest_files
        connection.execute(
            files.update()
            .where(files.c.pk == state.pk)
            .values(
                rows_committed=batch.last_row,
                rows_rejected=state.rejected + len(rejected),
                records_added=state.added + added,
                records_skipped=state.skipped + skipped,
            )
        )
    state.rows = batch.last_row
    state.rejected += len(rejected)
    state.added += added
    state.skipped += skipped
    state.batches += 1
