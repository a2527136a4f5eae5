"""The decision log: every scoring recorded in the store, batched, off the scoring path, and
nothing lost when the store is away.

``record`` (any number of scoring threads) only checks the result and appends it to a bounded
in-memory queue. One writer thread takes the queue in batches and writes each batch to the store
in one transaction; when the store cannot take a batch, the batch is appended to the local spool
file and fsync'd instead, and the log goes on spooling until the store is back (tried every
``retry_interval`` seconds, and when the log starts); then the spool is replayed into the store
and emptied. A record is written at most once per (declaration id, bundle revision): the
table's primary key and ``ON CONFLICT DO NOTHING`` make every replay harmless.

**Acknowledged** means: the transaction that inserted the record's batch has committed in the
store, or the record's line in the spool file has been written and fsync'd. :meth:`flush`
returns ``True`` once every record recorded before the call is acknowledged; an acknowledged
record survives a crash (SIGKILL, power loss after the fsync) and reaches the store exactly
once. A record not yet acknowledged when the process dies is lost with it, as any work in
memory is.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import sqlalchemy as sa

from riskengine.decisionlog.record import (
    DecisionRecord,
    Entry,
    RecordError,
    Row,
    RowBuilder,
    entry_from_result,
)
from riskengine.decisionlog.sink import StoreSink
from riskengine.decisionlog.spool import Spool
from riskengine.declaration import Declaration
from riskengine.evaluator.engine import ScoreResult

time_ns = time.time_ns

__all__ = ["DecisionBatch", "DecisionLog", "LogFull", "LogStats"]

logger = logging.getLogger("riskengine.decisionlog")

#: How SQLite, PostgreSQL and DuckDB say that a table does not exist.
_NO_TABLE = ("no such table", "does not exist")


class LogFull(RecordError):
    """``record(..., block=False)`` found the queue full: the decision was not recorded."""


@attrs.frozen
class LogStats:
    """A snapshot of the log's counters.

    ``queued``: recorded, not yet acknowledged; ``spooled``: in the spool, not yet in the store;
    ``written``: inserted into the store (straight or replayed); ``replayed``: of those, from
    the spool; ``duplicates``: records the store already had (ignored); ``spool_appends``:
    records written to the spool; ``failures``: store writes that failed (each batch then
    spooled); ``skipped_lines``: spool lines that were not records (cut off by a crash before
    they were acknowledged); ``blocked``: times ``record`` waited for room in a full queue;
    ``refused``: records refused with :class:`LogFull`; ``store_up``: whether the last store
    write worked; ``last_error``: the last failure.
    """

    queued: int
    spooled: int
    written: int
    replayed: int
    duplicates: int
    spool_appends: int
    failures: int
    skipped_lines: int
    blocked: int
    refused: int
    store_up: bool
    last_error: str | None

    @property
    def backlog(self) -> int:
        """Records not in the store yet: queued + spooled (the gauge for /metrics)."""
        return self.queued + self.spooled

    def summary(self) -> str:
        """The counters an operator reads at shutdown, in words: ``3 written to the store (0
        replayed from the spool, 1 already there), 0 waiting in the spool, 0 failed store
        writes`` (and the last error while records wait in the spool)."""
        text = (
            f"{self.written:,} written to the store ({self.replayed:,} replayed from the spool, "
            f"{self.duplicates:,} already there), {self.spooled:,} waiting in the spool, "
            f"{self.failures:,} failed store writes"
        )
        if self.queued:
            text += f", {self.queued:,} not written"
        if self.spooled and self.last_error:
            text += f"; the store's last error: {self.last_error}"
        return text


class DecisionBatch:
    """Decisions gathered while a batch is scored, queued together by
    :meth:`DecisionLog.record_batch`. :meth:`add` checks a decision and takes at once what its
    record needs of the declaration (office, regime, date), so that the declaration itself need
    not be kept until the batch ends (measured on the service's batches of 1,000 at 1,000
    profiles: keeping them cost 6-10 µs a declaration in memory traffic). One recording time for
    the batch. Not thread-safe: one per batch."""

    __slots__ = ("entries", "revision", "when")

    def __init__(self, revision: str | None) -> None:
        self.revision = revision
        self.when = time_ns()
        self.entries: list[Entry] = []

    def add(
        self, result: ScoreResult, declaration: Declaration | Mapping[str, Any] | None = None
    ) -> None:
        """Add a decision (:class:`RecordError` when it cannot be logged, as
        :meth:`DecisionLog.record`)."""
        self.entries.append(entry_from_result(result, declaration, self.revision, self.when))

    def __len__(self) -> int:
        return len(self.entries)


class DecisionLog:
    """Records scoring decisions in the store's ``decision_log`` (see the module's doc).

    ``url`` or ``engine``: the store (SQLite, PostgreSQL or DuckDB; at schema r0007 or later).
    ``spool``: the spool file (one per process). ``revision``: the bundle revision recorded when
    a result carries none (``ScoreResult.bundle_revision``). ``batch_size``: records per store
    transaction; ``max_queue``: records held in memory before :meth:`record` waits;
    ``flush_interval``: the longest a record waits for its batch; ``retry_interval``: seconds
    between attempts while the store is away.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        spool: str | os.PathLike[str],
        engine: sa.Engine | None = None,
        revision: str | None = None,
        batch_size: int = 1000,
        max_queue: int = 100_000,
        flush_interval: float = 0.2,
        retry_interval: float = 5.0,
    ) -> None:
        if batch_size < 1 or max_queue < batch_size:
            raise ValueError("batch_size must be at least 1 and max_queue at least batch_size")
        self.revision = revision
        self._batch_size = batch_size
        self._max_queue = max_queue
        self._flush_interval = flush_interval
        self._retry_interval = retry_interval
        self._spool = Spool(spool)
        try:
            self._sink = StoreSink(url, engine=engine)
        except BaseException:
            self._spool.close()
            raise
        self._items: collections.deque[Entry | threading.Event] = collections.deque()
        self._held: list[Row] = []  # a batch neither the store nor the spool took
        self._builder = RowBuilder()
        self._inflight = 0
        self._wake = threading.Event()
        self._room = threading.Condition()
        self._closing = False
        self._closed = False
        self._store_up = True
        self._next_try = 0.0
        self._replay_offset = 0
        self._replayed_lines = 0
        self._counts = collections.Counter[str]()
        self._last_error: str | None = None
        if self._spool.torn_bytes:
            self._counts["skipped_lines"] += 1
        self._thread = threading.Thread(target=self._run, name="riskengine-decision-log")
        self._thread.daemon = True
        self._thread.start()
        atexit.register(self.close)  # an interpreter that exits normally acknowledges all

    # -- the scoring side
    def record(
        self,
        result: ScoreResult,
        declaration: Declaration | Mapping[str, Any] | None = None,
        *,
        revision: str | None = None,
        block: bool = True,
    ) -> None:
        """Queue the decision ``result`` for the log; returns at once (no I/O).

        ``declaration``: the declaration scored (a :class:`Declaration` or its JSON data), for
        its office, regime and date. ``revision`` overrides the log's for this record; the
        result's own ``bundle_revision`` comes first. Raises :class:`RecordError` when the
        result has no declaration id, there is no revision, or the log is closed. Waits only
        when ``max_queue`` records are waiting (the writer cannot keep up even by spooling);
        with ``block=False`` (an event loop that must not wait) it raises :class:`LogFull`
        instead, and the decision is not recorded.
        """
        if self._closing:
            raise RecordError("the decision log is closed")
        # the scoring thread only checks and takes references: the row is built by the writer
        entry = entry_from_result(result, declaration, revision or self.revision, time_ns())
        items = self._items
        if len(items) >= self._max_queue:
            if not block:
                self._counts["refused"] += 1
                raise LogFull(f"the decision log holds {len(items)} records waiting for the store")
            self._wait_for_room()
        items.append(entry)  # atomic: no lock on the scoring thread
        if len(items) >= self._batch_size and not self._wake.is_set():
            self._wake.set()  # Event.set takes a lock: once per batch is enough

    def record_many(
        self,
        decisions: Iterable[tuple[ScoreResult, Declaration | Mapping[str, Any] | None]],
        *,
        revision: str | None = None,
    ) -> None:
        """Queue a batch's decisions, ``(result, declaration)`` each, as :meth:`record` queues
        one, for less per decision. All or nothing: a result that cannot be logged
        (:class:`RecordError`) is found before any is queued. Waits while the queue is full, a
        ``batch_size`` of records at a time."""
        batch = self.batch(revision=revision)
        for result, declaration in decisions:
            batch.add(result, declaration)
        self.record_batch(batch)

    def batch(self, *, revision: str | None = None) -> DecisionBatch:
        """An empty :class:`DecisionBatch` to fill while scoring and queue with
        :meth:`record_batch`."""
        return DecisionBatch(revision or self.revision)

    def record_batch(self, batch: DecisionBatch) -> None:
        """Queue the decisions of ``batch`` (see :meth:`record_many`)."""
        if self._closing:
            raise RecordError("the decision log is closed")
        entries = batch.entries
        items = self._items
        step = self._batch_size
        for start in range(0, len(entries), step):
            if len(items) >= self._max_queue:
                self._wait_for_room()
            items.extend(entries[start : start + step])
        if len(items) >= step and not self._wake.is_set():
            self._wake.set()

    def _wait_for_room(self) -> None:
        self._counts["blocked"] += 1
        with self._room:
            while len(self._items) >= self._max_queue and not self._closed:
                self._wake.set()
                self._room.wait(0.05)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record recorded before this call is acknowledged (in the store or
        fsync'd in the spool); ``False`` when ``timeout`` seconds passed first."""
        if self._closed:
            return True  # close() acknowledged everything
        marker = threading.Event()
        self._items.append(marker)
        self._wake.set()
        return marker.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Acknowledge everything recorded (store, else spool), stop the writer, release the
        spool. Recording afterwards raises."""
        if self._closed:
            return
        self._closing = True
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RecordError(f"the decision log did not finish writing within {timeout} s")
        if self._items or self._held:  # recorded while the writer was stopping
            self._drain()
            if self._held:
                self._closing = False
                raise RecordError(
                    f"the decision log cannot acknowledge {len(self._held)} records: "
                    f"{self._last_error}"
                )
        self._closed = True
        atexit.unregister(self.close)
        self._sink.close()
        self._spool.close()

    def __enter__(self) -> DecisionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self) -> list[DecisionRecord]:
        """Every record in the store's ``decision_log`` (for tests and small audits; query the
        table for anything bigger)."""
        return self._sink.read()

    @property
    def backlog(self) -> int:
        """Records not in the store yet (queued + spooled): the gauge for ``/metrics``."""
        return self.stats().backlog

    def stats(self) -> LogStats:
        """The counters now (see :class:`LogStats`)."""
        c = self._counts
        queued = sum(1 for x in list(self._items) if not isinstance(x, threading.Event))
        return LogStats(
            queued=queued + self._inflight + len(self._held),
            spooled=self._spool.count - self._replayed_lines,
            written=c["written"],
            replayed=c["replayed"],
            duplicates=c["duplicates"],
            spool_appends=c["spool_appends"],
            failures=c["failures"],
            skipped_lines=c["skipped_lines"],
            blocked=c["blocked"],
            refused=c["refused"],
            store_up=self._store_up,
            last_error=self._last_error,
        )

    # -- the writer thread
    def _run(self) -> None:
        while True:
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            closing = self._closing
            try:
                self._drain()
                self._replay()
            except Exception as exc:  # a bug must not stop the writer: keep going, say it
                logger.exception("decision log writer: unexpected error")
                self._last_error = f"{type(exc).__name__}: {exc}"
            if closing and not self._items and not self._held:
                return

    def _drain(self) -> None:
        if self._held:
            held, self._held = self._held, []
            self._deliver(held)
        items = self._items
        while items and not self._held:
            entries: list[Entry] = []
            markers: list[threading.Event] = []
            while len(entries) < self._batch_size:
                try:
                    entry = items.popleft()
                except IndexError:
                    break
                if isinstance(entry, threading.Event):
                    markers.append(entry)
                    break
                entries.append(entry)
            self._inflight = len(entries)
            with self._room:
                self._room.notify_all()
            records = self._builder.rows(entries)
            self._deliver(records)
            self._inflight = 0
            if self._held:  # not acknowledged: the flush markers wait for the next round
                items.extendleft(reversed(markers))
                return
            for marker in markers:
                marker.set()

    def _deliver(self, records: list[Row]) -> None:
        """Acknowledge a batch: into the store, else into the spool, else hold it."""
        if not records:
            return
        retry = time.monotonic() >= self._next_try and self._spool_empty()
        if (self._store_up or retry) and self._write(records, replay=False):
            return
        try:
            self._spool.append(records)
        except OSError as exc:
            error = f"cannot write the spool {self._spool.path}: {exc}"
            if error != self._last_error:  # said once, not at every retry
                logger.error("decision log: %s (holding %d records in memory)", error, len(records))
            self._last_error = error
            self._held = records
            return
        self._counts["spool_appends"] += len(records)

    def _spool_empty(self) -> bool:
        return self._spool.count - self._replayed_lines == 0

    def _write(self, records: list[Row], *, replay: bool) -> bool:
        try:
            new = self._sink.write(records)
        except Exception as exc:  # unreachable, refused, missing table: spool and retry later
            self._counts["failures"] += 1
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if "decision_log" in reason and any(m in reason for m in _NO_TABLE):
                reason += " (a store older than revision r0007 needs `riskengine db upgrade`)"
            self._last_error = reason
            if self._store_up:
                logger.warning("decision log: the store is unavailable, spooling: %s", reason)
            self._store_up = False
            self._next_try = time.monotonic() + self._retry_interval
            self._sink.reset()
            return False
        if not self._store_up:
            logger.info("decision log: the store is back")
        self._store_up = True
        self._counts["written"] += new
        self._counts["duplicates"] += len(records) - new
        if replay:
            self._counts["replayed"] += new
        return True

    def _replay(self) -> None:
        """Move spooled records into the store, a batch at a time, while it takes them and new
        records are not piling up."""
        spool = self._spool
        while not self._spool_empty():
            if not self._store_up and time.monotonic() < self._next_try:
                return
            records, after, skipped = spool.read(self._replay_offset, self._batch_size)
            if records and not self._write(records, replay=True):
                return
            self._counts["skipped_lines"] += skipped
            self._replayed_lines += len(records) + skipped
            stuck = after == self._replay_offset
            self._replay_offset = after
            if stuck or after >= spool.size():
                spool.clear()
                self._replay_offset = 0
                self._replayed_lines = 0
                return
            if len(self._items) >= self._batch_size:
                return
