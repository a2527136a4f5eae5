"""Converted batches: groups of rows converted and cut into batches of about ``batch_rows`` rows,
read ahead in a thread. The same code runs in the ingesting process and in the child of
:mod:`riskengine.ingest.process`."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any

import attrs

from riskengine.ingest.mapping import IngestMapping
from riskengine.ingest.read import Group, Row, column_index, path_getter
from riskengine.ingest.records import Declarations, Records, text_or_none
from riskengine.ingest.rejects import Reject, rejects_of

__all__ = ["Batch", "group_key", "prefetch", "read_batches"]


@attrs.define
class Batch:
    """A converted batch: where the reading stood, its rows, the rejects and what to store
    (declarations: ``records``; outcomes and controls: ``good`` with their groups, as a record
    about an unknown declaration is rejected when it is written)."""

    position: int
    first_row: int
    last_row: int
    rejected: list[Reject]
    records: list[Any]
    good: list[tuple[Group, Any, str | None]]


def read_batches(
    groups: Iterator[Group],
    converter: Declarations | Records,
    mapping: IngestMapping,
    resumed_from: int,
    batch_rows: int,
    raw_stream: IO[bytes],
) -> Iterator[Batch]:
    """Converted groups in batches of about ``batch_rows`` rows, with the bytes read so far.

    Rows up to ``resumed_from`` (committed by an earlier run) are only read for the ids they
    hold, so a declaration repeated across the resume point is still caught. A rejected group
    becomes its rejects at once; the rows of a good declaration are let go as soon as it is
    converted (only outcomes and controls keep theirs: the writer may still reject them)."""
    declarations = mapping.kind == "declarations"
    seen: dict[Any, int] = {}
    batch: Batch | None = None
    pending_rows = 0
    for group in groups:
        rows = group.rows
        first = rows[0].number
        if rows[-1].number <= resumed_from:
            if declarations and all(r.problem is None for r in rows):
                ident = converter.key_of(rows[0])
                if ident is not None:
                    seen.setdefault(ident, first)
            continue
        record: Any
        if group.broken:
            problems = {row.number: row.problem for row in rows if row.problem is not None}
            record, ident = None, text_or_none(group.key)
        else:
            record, problems, ident = converter.convert(group)
        if record is not None and declarations and ident is not None:
            earlier = seen.get(ident)
            if earlier is not None:
                record = None
                problems = {first: (
                    f"declaration {ident} appeared before at row {earlier}: the rows of one "
                    "declaration must be consecutive"
                )}  # fmt: skip
            else:
                seen[ident] = first
        if batch is None:
            batch = Batch(0, first, 0, [], [], [])
        if record is None:
            batch.rejected.extend(rejects_of(group, problems, ident))
        elif declarations:
            batch.records.append(record)
        else:
            batch.good.append((group, record, ident))
        batch.last_row = rows[-1].number
        pending_rows += len(rows)
        if pending_rows >= batch_rows:
            batch.position = raw_stream.tell()
            yield batch
            batch, pending_rows = None, 0
    if batch is not None:
        batch.position = raw_stream.tell()
        yield batch


_DONE = object()


def prefetch(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """Iterate ``items`` in a background thread, ``depth`` items ahead. An exception in the
    thread is raised here; leaving the loop early (an error, Ctrl-C) stops the thread."""
    ahead: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put((_DONE, exc))
            return
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
        put((_DONE, None))

    thread = threading.Thread(target=work, name="riskengine-ingest-reader", daemon=True)
    thread.start()
    try:
        while True:
            item, error = ahead.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def group_key(
    mapping: IngestMapping, header: list[str] | None, converter: Declarations | Records | None
) -> Callable[[Row], Any] | None:
    column = mapping.group_by
    if column is None and mapping.kind == "outcomes":
        rule = mapping.rule("declaration_id")
        column = rule.column if rule is not None else None
    if column is None:
        return None
    if header is not None:
        index = column_index(header, column, mapping)
        return lambda row: row.cells[index].strip() or None
    get = path_getter(column)
    return lambda row: get(row.cells)
