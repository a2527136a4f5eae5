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
from riskengine.ingest.read import Group, Row, column_index, path_getter, salvage_json
from riskengine.ingest.records import Declarations, Records
from riskengine.ingest.rejects import Reject, rejects_of

__all__ = ["UNKNOWN_ID", "Batch", "group_key", "group_problems", "prefetch", "read_batches"]


@attrs.define
class Batch:
    """A converted batch: where the reading stood, its rows, the rejects and what to store
    (declarations: ``records``; outcomes and controls: ``good`` with their groups, as a record
    about an unknown declaration is rejected when it is written). ``split``: ids of declarations
    found in this batch to have rows apart from each other (stored whole at the end of the file,
    see :func:`read_batches`)."""

    position: int
    first_row: int
    last_row: int
    rejected: list[Reject]
    records: list[Any]
    good: list[tuple[Group, Any, str | None]]
    split: list[str] = attrs.Factory(list)


#: Added to the reason of a JSON Lines line that could not be read when no declaration id can be
#: found in it either (the rejects file's ``declaration`` column is then empty).
UNKNOWN_ID = "; the declaration id is unknown (none could be found in the line)"


def group_problems(
    group: Group, converter: Declarations | Records
) -> tuple[dict[int, str], str | None]:
    """The problems by row number and the declaration id of a broken group: its unreadable
    rows; or, when it is only rejected for an unreadable row next to it (``note``), its own
    problem if it has one (it says more), else the note."""
    problems = {row.number: row.problem for row in group.rows if row.problem is not None}
    if problems or group.note is None:
        ident = converter.ident_of(group)
        if ident is None:  # a JSON Lines line not read, and no id found in it: said so
            unread = {row.number for row in group.rows if row.cells is None}
            problems = {n: p + UNKNOWN_ID if n in unread else p for n, p in problems.items()}
        return problems, ident
    record, own, ident = converter.convert(group)
    if record is None and own:
        return own, ident
    return {group.rows[0].number: group.note}, ident


def read_batches(
    groups: Iterator[Group],
    converter: Declarations | Records,
    mapping: IngestMapping,
    resumed_from: int,
    batch_rows: int,
    raw_stream: IO[bytes],
    *,
    grouped: bool = False,
) -> Iterator[Batch]:
    """Converted groups in batches of about ``batch_rows`` rows, with the bytes read so far.

    Rows up to ``resumed_from`` (committed by an earlier run) are converted again but not
    emitted, so every run decides the same about every declaration. A rejected group becomes its
    rejects at once; the rows of a good declaration are let go as soon as it is converted (only
    outcomes and controls keep theirs: the writer may still reject them).

    A declaration id met again in a later group: in a ``grouped`` file (one row per item) its
    rows are not consecutive. If it was rejected, the later rows are rejected with it; if it
    was stored (or is to be stored), the id is reported in ``split`` and its later groups are
    left out: the pipeline reads them all again at the end and stores the declaration whole, or
    rejects all its rows (:mod:`riskengine.ingest.split`). Without grouping (one row or line is
    one declaration) the later one is a second declaration with the same id and is rejected.
    The later rows of an outcome whose rows are apart are rejected saying so."""
    declarations = mapping.kind == "declarations"
    seen: dict[str, int] = {}  # declaration id -> its first row
    culprits: dict[str, int] = {}  # a rejected declaration's id -> the row that failed
    split: set[str] = set()
    unreported: list[str] = []
    batch: Batch | None = None
    pending_rows = 0
    last_row = resumed_from
    hint = ""
    if mapping.rules and mapping.items is None:
        hint = " (without group_by in [source], one row is one declaration)"
    for group in groups:
        rows = group.rows
        first = rows[0].number
        skipped = rows[-1].number <= resumed_from
        record: Any = None
        problems: dict[int, str] = {}
        ident: str | None = None
        culprit: int | None = None
        left_out = False
        if not declarations:
            key = None if group.key is None else str(group.key)
            earlier = None if key is None else seen.setdefault(key, first)
            if skipped:
                continue
            if earlier is not None and earlier != first:  # outcome rows apart: said, not merged
                ident = key
                problems = {first: (
                    f"the outcome of declaration {key} was read from row {earlier} on already: "
                    "the rows of one outcome must be consecutive (these rows are not stored)"
                )}  # fmt: skip
            elif group.broken:
                problems, ident = group_problems(group, converter)
            else:
                record, problems, ident = converter.convert(group)
        else:
            if group.broken:
                problems, ident = group_problems(group, converter)
            else:
                record, problems, ident = converter.convert(group)
            if ident is not None:
                if ident in split:
                    left_out = True
                elif ident in seen and grouped:
                    earlier = culprits.get(ident)
                    if earlier is None:  # stored from its first rows: completed at the end
                        split.add(ident)
                        unreported.append(ident)
                        left_out = True
                    elif record is not None:
                        record, problems, culprit = None, {}, earlier
                elif ident in seen:
                    record = None
                    problems = {first: (
                        f"declaration {ident} appeared before at row {seen[ident]}: a second "
                        f"declaration with the same id{hint}"
                    )}  # fmt: skip
                else:
                    seen[ident] = first
                    if record is None:
                        culprits[ident] = min(problems) if problems else first
            if skipped:
                continue
        if batch is None:
            batch = Batch(0, first, 0, [], [], [])
        if left_out:
            pass
        elif record is None:
            batch.rejected.extend(rejects_of(group, problems, ident, culprit))
        elif declarations:
            batch.records.append(record)
        else:
            batch.good.append((group, record, ident))
        batch.last_row = last_row = rows[-1].number
        pending_rows += len(rows)
        if pending_rows >= batch_rows:
            batch.position = raw_stream.tell()
            batch.split, unreported = unreported, []
            yield batch
            batch, pending_rows = None, 0
    if batch is not None or unreported:
        if batch is None:  # split ids found in rows committed before: report them
            batch = Batch(0, last_row + 1, last_row, [], [], [])
        batch.position = raw_stream.tell()
        batch.split = unreported
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

    def key(row: Row) -> Any:
        if row.cells is None and row.raw:  # a line not read: its key, when it can be found
            return get(salvage_json(row.raw[0], [column]))
        return get(row.cells)

    return key
