"""The local spool: decision records the store could not take, kept in a JSON Lines file.

A batch is appended and the file ``fsync``'d before :meth:`Spool.append` returns: from then on
the records survive a crash of the process or the machine. One process owns a spool file at a
time (an exclusive ``flock`` on ``FILE.lock``; a second owner is refused). A line cut short by a
crash during an append was never acknowledged: it is cut off when the spool is opened.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from riskengine.decisionlog.record import DecisionRecord, Row, row_from_json, row_to_json
from riskengine.diagnostics import RiskEngineError

__all__ = ["Spool", "SpoolError"]


class SpoolError(RiskEngineError):
    """The spool file cannot be used (locked by another process, unreadable)."""


class Spool:
    """An append-only JSON Lines file of records waiting for the store.

    Not thread-safe: the decision log's writer thread is its only user. ``count`` is the
    number of records in it (replayed ones included until :meth:`clear`).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SpoolError(f"cannot use {self.path} as the spool: {exc.strerror}") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise SpoolError(
                f"the spool {self.path} is in use by another process (each process needs its "
                "own spool file)"
            ) from None
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            os.close(self._lock_fd)
            raise SpoolError(f"cannot use {self.path} as the spool: {exc.strerror}") from None
        #: Bytes cut off a torn last line when opened (never acknowledged).
        self.torn_bytes = self._cut_torn_tail()
        self.count = self._count_lines()

    def close(self) -> None:
        os.close(self._fd)
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)

    def _cut_torn_tail(self) -> int:
        size = os.fstat(self._fd).st_size
        if size == 0:
            return 0
        end = size
        step = 65536
        while end > 0:
            start = max(0, end - step)
            chunk = os.pread(self._fd, end - start, start)
            at = chunk.rfind(b"\n")
            if at >= 0:
                keep = start + at + 1
                break
            end = start
        else:
            keep = 0
        if keep < size:
            os.ftruncate(self._fd, keep)
            os.fsync(self._fd)
        return size - keep

    def _count_lines(self) -> int:
        count = 0
        offset = 0
        while True:
            chunk = os.pread(self._fd, 1 << 20, offset)
            if not chunk:
                return count
            count += chunk.count(b"\n")
            offset += len(chunk)

    def append(self, rows: Sequence[Row]) -> None:
        """Append and fsync: when this returns the rows are on disk."""
        if not rows:
            return
        data = "".join([row_to_json(r) + "\n" for r in rows]).encode("utf-8")
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)
        self.count += len(rows)

    def size(self) -> int:
        """The file's size in bytes."""
        return os.fstat(self._fd).st_size

    def read(self, offset: int, limit: int) -> tuple[list[Row], int, int]:
        """Up to ``limit`` rows from byte ``offset``: (rows, the offset after them, lines
        that were not records and were skipped)."""
        records: list[Row] = []
        skipped = 0
        position = offset  # just after the last line taken
        read_at = offset
        buffer = b""
        while len(records) < limit:
            chunk = os.pread(self._fd, 1 << 18, read_at)
            if not chunk:
                break
            read_at += len(chunk)
            buffer += chunk
            start = 0
            while len(records) < limit:
                end = buffer.find(b"\n", start)
                if end < 0:
                    break
                line = buffer[start:end]
                start = end + 1
                position += len(line) + 1
                if not line.strip():
                    continue
                try:
                    records.append(row_from_json(line.decode("utf-8")))
                except (ValueError, KeyError, TypeError):
                    skipped += 1
            buffer = buffer[start:]
        return records, position, skipped

    def records(self) -> Iterator[DecisionRecord]:
        """Every record in the file (for inspection and tests)."""
        offset = 0
        while True:
            records, after, _ = self.read(offset, 10_000)
            yield from (DecisionRecord.from_row(r) for r in records)
            if after == offset:
                return
            offset = after

    def clear(self) -> None:
        """Empty the file (every record in it is in the store)."""
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)
        self.count = 0
