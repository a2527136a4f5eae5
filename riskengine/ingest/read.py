"""Reading an export: CSV and JSON Lines streamed row by row, and rows grouped into declarations.

Nothing is converted here: a :class:`Row` holds the cells as read (CSV) or the parsed object
(JSON Lines), and a row that cannot be read at all (a broken CSV line, invalid JSON, bytes that
are not text in the file's encoding) carries its ``problem`` so the pipeline rejects it.
"""

from __future__ import annotations

import csv
import difflib
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from riskengine.ingest.mapping import IngestMapping, MappingError

__all__ = [
    "Group",
    "Row",
    "close_match",
    "column_index",
    "csv_rows",
    "detect_format",
    "groups",
    "jsonl_rows",
    "path_getter",
]

_SURROGATES = re.compile("[\udc80-\udcff]")


def detect_format(path: str | os.PathLike[str], mapping: IngestMapping) -> str:
    """``csv`` or ``jsonl``: the mapping's ``format``, else from the file's suffix."""
    if mapping.format is not None:
        return mapping.format
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    raise MappingError(
        f"cannot tell the format of {os.fspath(path)!r} from its suffix: "
        'set format = "csv" or "jsonl" in [source]',
        file=mapping.file,
    )


class Row:
    """One source row (a plain slotted class: one is made per row, so it must be cheap)."""

    __slots__ = ("cells", "line", "number", "problem", "raw")

    def __init__(
        self,
        number: int,
        line: int,
        cells: Any,
        raw: Sequence[str],
        problem: str | None = None,
    ) -> None:
        self.number = number  # 1-based data row (CSV: after the header line; JSONL: line)
        self.line = line  # physical line where the row ends
        self.cells = cells  # list[str] for CSV, a parsed object for JSONL
        self.raw = raw  # the row as read, for the rejects file
        self.problem = problem


def csv_rows(stream: IO[str], mapping: IngestMapping) -> tuple[list[str], Iterator[Row]]:
    reader = csv.reader(stream, delimiter=mapping.delimiter, quotechar=mapping.quotechar)
    try:
        header = next(reader)
    except StopIteration:
        raise MappingError("the file is empty: no header line", file=mapping.file) from None
    except csv.Error as exc:
        raise MappingError(f"cannot read the header line: {exc}", file=mapping.file) from None
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0][1:]
    width = len(header)

    def rows() -> Iterator[Row]:
        number = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                number += 1
                yield Row(number, reader.line_num, [], (), f"unreadable CSV: {exc}")
                continue
            if not cells:
                continue  # a blank line
            number += 1
            problem = None
            if len(cells) != width:
                problem = f"the row has {len(cells)} cells, the header has {width}"
            else:
                joined = "".join(cells)
                if not joined.isascii() and _SURROGATES.search(joined):
                    problem = "the row is not valid text in the file's encoding"
            yield Row(number, reader.line_num, cells, cells, problem)

    return header, rows()


def jsonl_rows(stream: IO[str]) -> Iterator[Row]:
    for number, line in enumerate(stream, start=1):
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        if _SURROGATES.search(text):
            yield Row(number, number, None, (text,), "the line is not valid UTF-8 text")
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            yield Row(
                number, number, None, (text,), f"invalid JSON: {exc.msg} at column {exc.colno}"
            )
            continue
        if not isinstance(value, dict):
            yield Row(number, number, None, (text,), "expected a JSON object on each line")
            continue
        yield Row(number, number, value, (text,))


def path_getter(path: str) -> Callable[[Any], Any]:
    keys = path.split(".")
    if len(keys) == 1:
        key = keys[0]
        return lambda obj: obj.get(key) if isinstance(obj, dict) else None

    def get(obj: Any) -> Any:
        for key in keys:
            if not isinstance(obj, dict):
                return None
            obj = obj.get(key)
        return obj

    return get


def column_index(header: list[str], column: str, mapping: IngestMapping) -> int:
    try:
        return header.index(column)
    except ValueError:
        close = close_match(column, header)
        raise MappingError(
            f"the file has no column {column!r}{close} (columns: {', '.join(header[:12])}"
            + (", ..." if len(header) > 12 else "")
            + ")",
            file=mapping.file,
            key=column,
        ) from None


def close_match(word: str, options: Sequence[str]) -> str:
    """``; did you mean 'x'?`` for the option closest to ``word``, or nothing."""
    found = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {found[0]!r}?" if found else ""


class Group:
    """Consecutive rows of one declaration (a plain slotted class: one is made per group);
    ``broken`` when one of them could not be read."""

    __slots__ = ("broken", "key", "rows")

    def __init__(self, rows: list[Row], key: Any, broken: bool = False) -> None:
        self.rows = rows
        self.key = key
        self.broken = broken


def groups(rows: Iterator[Row], key_of: Callable[[Row], Any] | None) -> Iterator[Group]:
    """Consecutive rows with the same key form a group (one declaration). A broken row whose key
    can still be read stays in its group, so the whole declaration is rejected with it."""
    current: list[Row] = []
    current_key: Any = None
    broken = False
    for row in rows:
        key = None
        if key_of is not None:
            try:
                key = key_of(row)
            except (IndexError, KeyError, TypeError, AttributeError):
                key = None
        if current and (key_of is None or key is None or key != current_key):
            yield Group(current, current_key, broken)
            current = []
            broken = False
        current.append(row)
        if row.problem is not None:
            broken = True
        current_key = key
    if current:
        yield Group(current, current_key, broken)
