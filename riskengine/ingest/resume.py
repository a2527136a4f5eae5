"""Resuming an ingest: a file is recognised by its size, the SHA-256 of its head and the mapping's
SHA-256; its progress record (``ingest_files``) says how many rows are committed."""

from __future__ import annotations

import datetime as dt
import hashlib
import os

import attrs
import sqlalchemy as sa

from riskengine.ingest.mapping import IngestMapping
from riskengine.store.schema import StoreTables
from riskengine.store.writer import allocate_keys

__all__ = ["HEAD_BYTES", "FileState", "file_state", "identity", "restart"]

#: How much of the file identifies it for resuming.
HEAD_BYTES = 1 << 20


def identity(path: str) -> tuple[int, str]:
    size = os.path.getsize(path)
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        digest.update(stream.read(HEAD_BYTES))
    return size, digest.hexdigest()


@attrs.define
class FileState:
    pk: int
    rows: int
    rejected: int
    added: int
    skipped: int
    batches: int
    done: bool


def file_state(
    connection: sa.Connection,
    tables: StoreTables,
    mapping: IngestMapping,
    source: str,
    size: int,
    head: str,
) -> FileState:
    files = tables.ingest_files
    row = (
        connection.execute(
            sa.select(files)
            .where(
                files.c.kind == mapping.kind,
                files.c.size == size,
                files.c.head_sha256 == head,
                files.c.mapping_sha256 == mapping.sha256,
            )
            .order_by(files.c.pk.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    if row is not None:
        batches = connection.execute(
            sa.select(sa.func.count()).where(tables.ingest_batches.c.file_pk == row["pk"])
        ).scalar_one()
        return FileState(
            row["pk"], row["rows_committed"], row["rows_rejected"], row["records_added"],
            row["records_skipped"], batches, row["status"] == "done",
        )  # fmt: skip
    pk = allocate_keys(connection, files, 1)
    connection.execute(
        files.insert().values(
            pk=pk, kind=mapping.kind, path=source, size=size, head_sha256=head,
            mapping_sha256=mapping.sha256, status="running", rows_committed=0, rows_rejected=0,
            records_added=0, records_skipped=0, started_at=dt.datetime.now(),
        )
    )  # fmt: skip
    return FileState(pk, 0, 0, 0, 0, 0, False)


def restart(connection: sa.Connection, tables: StoreTables, state: FileState) -> FileState:
    files = tables.ingest_files
    pk = allocate_keys(connection, files, 1)
    old = connection.execute(sa.select(files).where(files.c.pk == state.pk)).mappings().one()
    values = dict(old)
    values.update(
        pk=pk, status="running", rows_committed=0, rows_rejected=0, records_added=0,
        records_skipped=0, started_at=dt.datetime.now(), finished_at=None,
    )  # fmt: skip
    connection.execute(files.insert().values(**values))
    return FileState(pk, 0, 0, 0, 0, 0, False)
