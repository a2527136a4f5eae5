"""Declarations whose rows are apart from each other in a one-row-per-item export (``A, B, A``).

The first pass (:func:`~riskengine.ingest.batches.read_batches`) stores such a declaration from
its first rows, notices its id again later, and leaves its later rows out. At the end of the
file the pipeline reads the file again for those ids only (:func:`read_split`), and in one
transaction (with the file's ``done`` status) replaces what the first pass stored of them with
the whole declaration, or rejects all its rows (:func:`replace_split`). So a declaration is
stored whole or not at all once the ingest is done; only while it runs (or after it was
interrupted, until it is resumed) can the store hold the first rows of one. Files without such
declarations are read once.
"""

from __future__ import annotations

import io
from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from riskengine.ingest.batches import group_key, group_problems
from riskengine.ingest.mapping import IngestMapping
from riskengine.ingest.read import Group, csv_rows, groups, jsonl_rows
from riskengine.ingest.records import Declarations
from riskengine.ingest.rejects import Reject, rejects_of
from riskengine.store.schema import StoreTables
from riskengine.store.writer import DeclarationValues, write_declaration_values

__all__ = ["delete_split_items", "read_split", "replace_split"]


def read_split(
    source: str, fmt: str, mapping: IngestMapping, converter: Declarations, ids: Collection[str]
) -> tuple[list[DeclarationValues], list[Reject]]:
    """Read the file again and put together every row of the declarations ``ids``: the whole
    declarations to store, and the rejects (every row of a declaration with a bad row or whose
    rows disagree on a header value)."""
    wanted = set(ids)
    parts: dict[str, list[Group]] = {}
    with open(source, "rb") as raw_stream:
        text = io.TextIOWrapper(
            raw_stream, encoding=mapping.encoding, errors="surrogateescape", newline=""
        )
        header: list[str] | None = None
        if fmt == "csv":
            header, rows = csv_rows(text, mapping)
        else:
            rows = jsonl_rows(text)
        for group in groups(rows, group_key(mapping, header, converter)):
            ident = converter.ident_of(group)
            if ident in wanted:
                parts.setdefault(ident, []).append(group)
    records: list[DeclarationValues] = []
    rejected: list[Reject] = []
    for ident, found in parts.items():
        whole = Group([row for group in found for row in group.rows], found[0].key)
        record: Any = None
        problems: dict[int, str] = {}
        for group in found:
            if group.broken:
                problems.update(group_problems(group, converter)[0])
        if not problems:
            record, problems, _ = converter.convert(whole)
        if record is None:
            rejected.extend(rejects_of(whole, problems, ident))
        else:
            records.append(record)
    rejected.sort(key=lambda r: r.row)
    return records, rejected


def delete_split_items(
    connection: sa.Connection, tables: StoreTables, file_pk: int, ids: Collection[str]
) -> list[int]:
    """Delete the items of what this ingest stored of the declarations ``ids``; their keys.
    (DuckDB cannot delete a declaration in the transaction that deleted its items: there this
    runs in a transaction of its own first, and an interruption between the two leaves those
    declarations without items until the ingest is resumed.)"""
    declarations, items, batches = tables.declarations, tables.items, tables.ingest_batches
    mine = sa.select(batches.c.pk).where(batches.c.file_pk == file_pk)
    keys = list(
        connection.execute(
            sa.select(declarations.c.pk).where(
                declarations.c.id.in_(sorted(ids)), declarations.c.ingest_batch.in_(mine)
            )
        ).scalars()
    )
    if keys:
        connection.execute(items.delete().where(items.c.decl_pk.in_(keys)))
    return keys


def replace_split(
    connection: sa.Connection,
    tables: StoreTables,
    file_pk: int,
    batch_pk: int,
    converter: Declarations,
    records: list[DeclarationValues],
    ids: Collection[str],
    *,
    checked: bool,
) -> tuple[int, int]:
    """Delete what this ingest (``file_pk``) stored of the declarations ``ids`` and store
    ``records`` (the whole ones). A declaration stored before this ingest stays as it was (its id
    is skipped, as always). Returns the changes to the file's counts: ``(added, skipped)`` —
    the first pass counted the first rows of each id as added (when this ingest stored them) or
    as skipped (when the id was stored before)."""
    declarations = tables.declarations
    keys = delete_split_items(connection, tables, file_pk, ids)
    if keys:
        connection.execute(declarations.delete().where(declarations.c.pk.in_(keys)))
    result = write_declaration_values(
        connection, converter.header_columns, converter.item_columns, records, tables, batch_pk,
        checked=checked,
    )  # fmt: skip
    counted_skipped = len(set(ids)) - len(keys)
    return result.added - len(keys), len(result.skipped) - counted_skipped
