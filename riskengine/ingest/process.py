"""Converting in a second process: the subprocess protocol of a parallel ingest.

The parent writes while a ``python -c`` child reads and converts; the job crosses as a pickle on
the child's standard input, each batch comes back as a length-prefixed ``marshal`` message.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
from collections.abc import Iterator
from typing import Any

from riskengine.ingest.batches import Batch, group_key, read_batches
from riskengine.ingest.mapping import IngestMapping
from riskengine.ingest.read import csv_rows, groups
from riskengine.ingest.records import Declarations
from riskengine.ingest.rejects import Reject
from riskengine.store.engine import StoreError

__all__ = ["PARALLEL_MIN_BYTES", "ConversionProcess", "conversion_worker", "use_parallel"]


#: Files from this size on are converted in a second process (when there is a second core):
#: starting it costs a few tenths of a second.
PARALLEL_MIN_BYTES = 16 << 20


def use_parallel(parallel: bool | None, fmt: str, mapping: IngestMapping, size: int) -> bool:
    """Whether to convert in a second process: CSV declarations with a mapping only (the
    records then cross as plain values). ``parallel=None`` decides by the file's size and the
    number of cores."""
    possible = fmt == "csv" and mapping.kind == "declarations" and bool(mapping.rules)
    if parallel is None:
        return possible and size >= PARALLEL_MIN_BYTES and (os.cpu_count() or 1) > 1
    return parallel and possible


class ConversionProcess:
    """Reads and converts a CSV file of declarations in a child process, batch by batch.

    The child is a plain ``python -c`` of :func:`conversion_worker` (not ``multiprocessing``,
    which would import the caller's main script again). It gets the job as a pickle on its
    standard input and runs the same code as the single-process path (:func:`read_batches`,
    the packing of rejects); each batch comes back on its standard output as one length-prefixed
    ``marshal`` message: the bytes read, the first and last row, the rejects as tuples, the
    records (ids, header values, item values — text, numbers, booleans, dates as ISO text) and
    the ids of declarations found to have rows apart (completed by the parent at the end).
    Iterating yields the batches in file order; an error in the child is raised here as a
    :class:`StoreError`; :meth:`close` stops the child.
    """

    def __init__(
        self,
        source: str,
        mapping: IngestMapping,
        field_columns: dict[str, str],
        resumed_from: int,
        batch_rows: int,
    ) -> None:
        import pickle
        import subprocess
        import sys
        import tempfile

        import riskengine

        package_root = os.path.dirname(os.path.dirname(os.path.abspath(riskengine.__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        code = "from riskengine.ingest.process import conversion_worker; conversion_worker()"
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", code],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.errors,
                env=env,
            )
        except OSError:
            self.errors.close()
            raise
        job = (source, mapping, field_columns, resumed_from, batch_rows)
        assert self.process.stdin is not None and self.process.stdout is not None
        self.output = self.process.stdout
        try:
            self.process.stdin.write(pickle.dumps(job))
            self.process.stdin.close()
        except OSError:
            pass  # the child is gone already: reading says why

    def _failed(self) -> StoreError:
        import subprocess

        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self.errors.seek(0)
        lines = self.errors.read().decode("utf-8", "replace").strip().splitlines()
        detail = f": {lines[-1]}" if lines else ""
        return StoreError(
            "the process converting the file stopped unexpectedly "
            f"(exit code {self.process.returncode}){detail}"
        )

    def __iter__(self) -> Iterator[Batch]:
        import marshal

        read = self.output.read
        while True:
            size = read(8)
            if len(size) < 8:
                raise self._failed()
            length = int.from_bytes(size, "little")
            data = read(length)
            if len(data) < length:
                raise self._failed()
            message = marshal.loads(data)
            if message[0] == "done":
                return
            if message[0] == "error":
                raise StoreError(f"converting the file failed: {message[1]}")
            _, position, first_row, last_row, rejected, records, split = message
            yield Batch(
                position, first_row, last_row, [Reject(*r) for r in rejected], records, [],
                list(split),
            )  # fmt: skip

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.output.close()
        self.errors.close()


def conversion_worker() -> None:
    """The child of :class:`ConversionProcess`: a pickled job on stdin, batches on stdout."""
    import marshal
    import pickle
    import sys
    import traceback

    gc.disable()  # rows make no reference cycles; nothing here is long-lived
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # stdout carries the batches: anything printed goes to stderr

    def send(message: tuple[Any, ...]) -> None:
        data = marshal.dumps(message)
        out.write(len(data).to_bytes(8, "little"))
        out.write(data)
        out.flush()

    try:
        source, mapping, field_columns, resumed_from, batch_rows = pickle.load(sys.stdin.buffer)
        with open(source, "rb") as raw_stream:
            text = io.TextIOWrapper(
                raw_stream, encoding=mapping.encoding, errors="surrogateescape", newline=""
            )
            header, rows = csv_rows(text, mapping)
            converter = Declarations(mapping, header, None, field_columns)
            key_of = group_key(mapping, header, converter)
            batches = read_batches(
                groups(rows, key_of), converter, mapping, resumed_from, batch_rows, raw_stream,
                grouped=key_of is not None,
            )  # fmt: skip
            for batch in batches:
                rejected = [(r.row, r.line, r.declaration, r.reason, r.raw) for r in batch.rejected]
                send(("batch", batch.position, batch.first_row, batch.last_row, rejected,
                      batch.records, batch.split))  # fmt: skip
        send(("done",))
    except (BrokenPipeError, KeyboardInterrupt):
        pass  # the parent is gone or was interrupted: nothing to report to
    except BaseException as exc:  # reported to the parent, which raises it
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        with contextlib.suppress(OSError):
            send(("error", detail))
    with contextlib.suppress(OSError):
        out.close()  # a parent that is gone makes no noise at exit
