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
  (with the mapping's SHA-256), and the rejects file is cut back to the committed rows.

Rows of one declaration must be consecutive in a one-row-per-item export (``group_by``).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import gc
import hashlib
import io
import json
import operator
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import attrs
import sqlalchemy as sa

from riskengine.catalogue import Catalogue, FieldType, default_catalogue
from riskengine.classifiers import reasons as reason_classifier
from riskengine.declaration import DeclarationError, normalise_declaration
from riskengine.store.engine import StoreError, database_errors
from riskengine.store.mapping import (
    ConversionError,
    FieldRule,
    IngestMapping,
    MappingError,
    native_mapping,
)
from riskengine.store.migrate import ensure_schema
from riskengine.store.schema import StoreTables, build_tables
from riskengine.store.writer import (
    ControlRecord,
    OutcomeRecord,
    allocate_keys,
    write_controls,
    write_declaration_values,
    write_outcomes,
)

__all__ = ["IngestResult", "Reject", "detect_format", "ingest_file"]

#: SQLite: WAL pages between checkpoints while ingesting (64 MiB of 4 KiB pages; SQLite's
#: default is 1,000). Each checkpoint writes pages back and syncs the database file; a busy
#: index page is written once per checkpoint, so fewer checkpoints write much less.
SQLITE_WAL_PAGES = 16_384

#: How much of the file identifies it for resuming.
HEAD_BYTES = 1 << 20
DEFAULT_BATCH_ROWS = 20_000
_SURROGATES = re.compile("[\udc80-\udcff]")


@attrs.frozen
class Reject:
    """A source row that was not stored: where it is, which declaration, why, and the row."""

    row: int
    line: int
    declaration: str | None
    reason: str
    raw: tuple[str, ...]


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

    @property
    def rows_per_second(self) -> float:
        """Rows read by this run per second."""
        done = self.rows - self.resumed_from
        return done / self.seconds if self.seconds > 0 else 0.0


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


def _identity(path: str) -> tuple[int, str]:
    size = os.path.getsize(path)
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        digest.update(stream.read(HEAD_BYTES))
    return size, digest.hexdigest()


# --- reading rows -----------------------------------------------------------------------------


class _Row:
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


def _csv_rows(stream: IO[str], mapping: IngestMapping) -> tuple[list[str], Iterator[_Row]]:
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

    def rows() -> Iterator[_Row]:
        number = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                number += 1
                yield _Row(number, reader.line_num, [], (), f"unreadable CSV: {exc}")
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
            yield _Row(number, reader.line_num, cells, cells, problem)

    return header, rows()


def _jsonl_rows(stream: IO[str]) -> Iterator[_Row]:
    for number, line in enumerate(stream, start=1):
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        if _SURROGATES.search(text):
            yield _Row(number, number, None, (text,), "the line is not valid UTF-8 text")
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            yield _Row(
                number, number, None, (text,), f"invalid JSON: {exc.msg} at column {exc.colno}"
            )
            continue
        if not isinstance(value, dict):
            yield _Row(number, number, None, (text,), "expected a JSON object on each line")
            continue
        yield _Row(number, number, value, (text,))


def _path_getter(path: str) -> Callable[[Any], Any]:
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


# --- rows to records --------------------------------------------------------------------------


#: What a compiled row converter may raise for a value it cannot read; the row is then read
#: again value by value with each field's full converter, which says what is wrong.
_FALLBACK = (ConversionError, ValueError, TypeError, AttributeError, OverflowError, KeyError)


def _storage_value(rule: FieldRule, value: Any, iso_dates: bool) -> Any:
    """A converted value as the writer stores it: dates as ISO text with ``iso_dates``."""
    if iso_dates and rule.type is FieldType.DATE and isinstance(value, dt.date):
        return value.isoformat()
    return value


class _Reader:
    """Reads the values of mapped fields from one row, compiled once per file.

    ``rules`` is the order of the values: the fields read from a column (mapping order), then
    the constants. With ``iso_dates`` a date comes out as ISO text (``2024-01-31``), which is
    how SQLite stores it and what crosses to the writing process cheaply.

    For CSV the conversions are compiled into one generated Python function per row kind
    (:func:`_compile_csv`): no per-cell callables for plain text, numbers, dates (cached) and
    booleans. When it meets a value it cannot read it gives up, and :meth:`_slow` reads the row
    value by value with each field's own converter (``FieldRule.converter``), whose result and
    message are the reference: the compiled function only ever returns what those give.
    """

    def __init__(
        self,
        rules: Sequence[FieldRule],
        mapping: IngestMapping,
        header: list[str] | None,
        *,
        iso_dates: bool = True,
    ) -> None:
        empty_missing = mapping.empty_is_missing
        read_rules = [r for r in rules if r.column is not None]
        constant_rules = [r for r in rules if r.column is None]
        self.read_rules = read_rules
        self.rules = [*read_rules, *constant_rules]
        self.constants = tuple(_storage_value(r, r.value, iso_dates) for r in constant_rules)
        self.csv = header is not None
        self.converters = [r.converter(empty_missing) for r in read_rules]
        self.iso_positions = [
            i for i, r in enumerate(read_rules) if iso_dates and r.type is FieldType.DATE
        ]
        self.pick_all = self._picker([r.column or "" for r in read_rules], mapping, header)
        self.fast: Callable[[Any], tuple[Any, ...]] | None = None
        if header is not None:
            indices = [_column_index(header, r.column or "", mapping) for r in read_rules]
            self.fast = _compile_csv(
                read_rules, indices, self.converters, self.constants, empty_missing, iso_dates
            )

    @staticmethod
    def _picker(
        columns: list[str], mapping: IngestMapping, header: list[str] | None
    ) -> Callable[[Any], tuple[Any, ...]]:
        if header is None:
            getters = [_path_getter(c) for c in columns]
            return lambda obj: tuple(get(obj) for get in getters)
        indices = [_column_index(header, c, mapping) for c in columns]
        if not indices:
            return lambda _cells: ()
        if len(indices) == 1:
            only = indices[0]
            return lambda cells: (cells[only],)
        return operator.itemgetter(*indices)

    def read(self, cells: Any) -> tuple[Sequence[Any], str | None]:
        """The converted values (in ``rules`` order), or the first problem as
        ``column (field): reason``."""
        if self.fast is not None:
            try:
                return self.fast(cells), None
            except _FALLBACK:
                return self._slow(cells)
        try:
            values = [f(v) for f, v in zip(self.converters, self.pick_all(cells), strict=True)]
        except _FALLBACK:
            return self._slow(cells)
        for i in self.iso_positions:
            if values[i] is not None:
                values[i] = values[i].isoformat()
        return (*values, *self.constants), None

    def _slow(self, cells: Any) -> tuple[Sequence[Any], str | None]:
        """Each value through its field's full converter; the first failure is the problem."""
        values = []
        for rule, convert, value in zip(
            self.read_rules, self.converters, self.pick_all(cells), strict=True
        ):
            try:
                values.append(convert(value))
            except ConversionError as exc:
                return (), f"column {rule.column} ({rule.target}): {exc}"
        for i in self.iso_positions:
            if values[i] is not None:
                values[i] = values[i].isoformat()
        return (*values, *self.constants), None

    def raw(self, cells: Any) -> tuple[Any, ...]:
        """The raw cells the reader reads (to compare rows of one declaration)."""
        return self.pick_all(cells)


def _compile_csv(
    rules: Sequence[FieldRule],
    indices: Sequence[int],
    converters: Sequence[Callable[[Any], Any]],
    constants: Sequence[Any],
    empty_missing: bool,
    iso_dates: bool,
) -> Callable[[list[str]], tuple[Any, ...]]:
    """One Python function from a CSV row's cells to the values of ``rules`` (then
    ``constants``), generated as source like the evaluator's profiles.

    Plain fields (stripped, an empty cell missing) are inlined: text as ``c[i].strip() or
    None`` (with ``upper``, ``zfill`` and translation tables inline too), numbers through
    ``float`` (a decimal comma replaced first), dates through a per-field cache of the text as
    read (dates repeat heavily), booleans through a table of the accepted texts; other fields
    call their converter. Anything unusual — thousands separators, a value that does not
    convert, an unknown code with ``on_unknown = "reject"`` — raises, and the caller reads the
    row again with the converters. The function's source is kept in ``__source__``."""
    env: dict[str, Any] = {"float": float, "ValueError": ValueError}
    body: list[str] = []
    results: list[str] = []
    numbers: list[str] = []
    for k, (rule, index, convert) in enumerate(zip(rules, indices, converters, strict=True)):
        cell = f"c[{index}]"
        v = f"v{k}"
        results.append(v)
        env[f"F{k}"] = convert
        plain = rule.strip and empty_missing
        textual = rule.type in (FieldType.STRING, FieldType.CODE)
        if plain and textual:
            if not (rule.upper or rule.zfill or rule.translate is not None):
                body.append(f"{v} = {cell}.strip() or None")
                continue
            expr = "x"
            if rule.upper:
                expr += ".upper()"
            if rule.zfill:
                expr += f".zfill({int(rule.zfill)})"
            body.append(f"x = {cell}.strip()")
            if rule.translate is None:
                body.append(f"{v} = {expr} if x else None")
                continue
            env[f"T{k}"] = dict(rule.translate)
            lookup = {
                "keep": f"T{k}.get(y, y)",
                "missing": f"T{k}.get(y)",
                "reject": f"T{k}[y]",  # KeyError: the converter says which code is unknown
            }[rule.on_unknown]
            body += ["if x:", f"    y = {expr}", f"    {v} = {lookup}", "else:", f"    {v} = None"]
            continue
        plain_typed = plain and not (rule.upper or rule.zfill or rule.translate is not None)
        if plain_typed and rule.type is FieldType.NUMBER:
            read = 'x.replace(",", ".")' if rule.decimal_comma else "x"
            body += [f"x = {cell}", f"{v} = float({read}) if x else None"]
            numbers.append(v)
            continue
        if plain_typed and rule.type is FieldType.DATE:
            cache: dict[str, Any] = {}
            env[f"D{k}"] = cache
            env[f"G{k}"] = _cached_date(convert, cache, iso_dates)
            body += [f"x = {cell}", f"{v} = D{k}.get(x)", f"if {v} is None:", f"    {v} = G{k}(x)"]
            continue
        if plain_typed and rule.type is FieldType.BOOLEAN:
            truth: dict[str, bool | None] = {t.lower(): True for t in rule.true_values}
            truth.update({f.lower(): False for f in rule.false_values})
            truth[""] = None  # an empty cell is missing
            env[f"B{k}"] = truth
            env["UNSEEN"] = _UNSEEN
            body += [
                f"x = {cell}",
                f"{v} = B{k}.get(x, UNSEEN)",
                f"if {v} is UNSEEN:",
                f"    {v} = F{k}(x)",
            ]
            continue
        body.append(f"{v} = F{k}({cell})")
        if iso_dates and rule.type is FieldType.DATE:
            body += [f"if {v} is not None:", f"    {v} = {v}.isoformat()"]
    if numbers:  # float() reads "inf" and "nan": leave those to the converter's message
        total = " + ".join(f"({n} or 0.0)" for n in numbers)
        body += [f"t = {total}", "if t - t != 0.0:", "    raise ValueError"]
    for k, value in enumerate(constants):
        env[f"K{k}"] = value
        results.append(f"K{k}")
    lines = ["def convert(c):", *("    " + line for line in body)]
    lines.append(f"    return ({', '.join(results)}{',' if len(results) == 1 else ''})")
    source = "\n".join(lines) + "\n"
    exec(compile(source, "<riskengine ingest mapping>", "exec"), env)
    function: Callable[[list[str]], tuple[Any, ...]] = env["convert"]
    function.__source__ = source  # type: ignore[attr-defined]
    return function


_UNSEEN = object()


def _cached_date(
    convert: Callable[[Any], Any], cache: dict[str, Any], iso_dates: bool
) -> Callable[[str], Any]:
    """The date converter behind a compiled row function's cache: converts, remembers."""

    def read(text: str) -> Any:
        value = convert(text)
        if value is None:
            return None
        if iso_dates:
            value = value.isoformat()
        if len(cache) >= 50_000:
            cache.clear()
        cache[text] = value
        return value

    return read


def _column_index(header: list[str], column: str, mapping: IngestMapping) -> int:
    try:
        return header.index(column)
    except ValueError:
        close = difflib_close(column, header)
        raise MappingError(
            f"the file has no column {column!r}{close} (columns: {', '.join(header[:12])}"
            + (", ..." if len(header) > 12 else "")
            + ")",
            file=mapping.file,
            key=column,
        ) from None


def difflib_close(word: str, options: Sequence[str]) -> str:
    import difflib

    found = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {found[0]!r}?" if found else ""


class _Group:
    """Consecutive rows of one declaration (a plain slotted class: one is made per group);
    ``broken`` when one of them could not be read."""

    __slots__ = ("broken", "key", "rows")

    def __init__(self, rows: list[_Row], key: Any, broken: bool = False) -> None:
        self.rows = rows
        self.key = key
        self.broken = broken


#: The problems of a good group (shared: never changed).
_NO_PROBLEMS: dict[int, str] = {}

#: A declaration for the writer: (id, header values, [item values, ...]).
_Record = tuple[str, Sequence[Any], list[Sequence[Any]]]


class _Declarations:
    """Turns groups of rows into declaration values for the writer, or rejects."""

    def __init__(
        self, mapping: IngestMapping, header: list[str] | None, catalogue: Catalogue | None,
        field_columns: Mapping[str, str],
    ) -> None:  # fmt: skip
        self.mapping = mapping
        self.native = not mapping.rules
        self.catalogue = catalogue
        if self.native:
            assert catalogue is not None
            fields = [f for f in catalogue if f.path in field_columns]
            self.header_paths = [f.path for f in fields if f.scope == "declaration"]
            self.item_paths = [f.path for f in fields if f.scope == "item"]
        else:
            items_header = None if mapping.items is not None else header
            self.header_reader = _Reader(
                [r for r in mapping.rules if r.scope == "declaration"], mapping, header
            )
            self.item_reader = _Reader(
                [r for r in mapping.rules if r.scope == "item"], mapping, items_header
            )
            self.header_rules = self.header_reader.rules
            self.item_rules = self.item_reader.rules
            self.header_paths = [r.target for r in self.header_rules]
            self.item_paths = [r.target for r in self.item_rules]
            self.items_of = _path_getter(mapping.items) if mapping.items else None
            id_rule = mapping.rule("declaration.id")
            assert id_rule is not None
            self.id_reader = _Reader([id_rule], mapping, header)
        self.header_columns = [field_columns[p] for p in self.header_paths]
        self.item_columns = [field_columns[p] for p in self.item_paths]
        self.id_index = self.header_paths.index("declaration.id")
        self.date_index = self.header_paths.index("declaration.date")
        self.header_names = [p.partition(".")[2] for p in self.header_paths]
        self.item_names = [p.partition(".")[2] for p in self.item_paths]

    def convert(self, group: _Group) -> tuple[_Record | None, dict[int, str], str | None]:
        """``(record, problems by row number, declaration id)``; record is None when rejected."""
        if self.native:
            return self._native(group)
        rows = group.rows
        first = rows[0]
        header, problem = self.header_reader.read(first.cells)
        ident = header[self.id_index] if problem is None else None
        if problem is not None:
            return None, {first.number: problem}, self._id_of(first)
        if ident is None:
            return None, {first.number: "declaration.id is missing"}, None
        if header[self.date_index] is None:
            return None, {first.number: "declaration.date is missing"}, ident
        items: list[Sequence[Any]] = []
        if self.items_of is not None:
            nested = self.items_of(first.cells)
            if nested is not None and not isinstance(nested, list):
                return None, {first.number: f"{self.mapping.items!r} is not a list"}, ident
            for position, element in enumerate(nested or [], start=1):
                values, problem = self.item_reader.read(element)
                if problem is not None:
                    return None, {first.number: f"item {position}, {problem}"}, ident
                items.append(values)
            return (ident, header, items), {}, ident
        pick_header = self.header_reader.pick_all
        raw_header = pick_header(first.cells) if len(rows) > 1 else ()
        read_item = self.item_reader.read
        for row in rows:
            if row is not first:
                other = pick_header(row.cells)
                if other != raw_header:
                    read_rules = [r for r in self.header_rules if r.column is not None]
                    for rule, a, b in zip(read_rules, raw_header, other, strict=True):
                        if a != b:
                            return None, {row.number: (
                                f"column {rule.column} ({rule.target}) differs from row "
                                f"{first.number} of the same declaration: {b!r} vs {a!r}"
                            )}, ident  # fmt: skip
            if not self.item_rules:
                continue
            values, problem = read_item(row.cells)
            if problem is not None:
                return None, {row.number: problem}, ident
            if values.count(None) != len(values):  # a row whose item fields are all empty
                items.append(values)
        return (ident, header, items), _NO_PROBLEMS, ident

    def _id_of(self, row: _Row) -> str | None:
        """The declaration id of a row whose other values do not convert, if it converts."""
        values, problem = self.id_reader.read(row.cells)
        return values[0] if problem is None and values else None

    def _native(self, group: _Group) -> tuple[_Record | None, dict[int, str], str | None]:
        row = group.rows[0]
        raw = row.cells
        ident = raw.get("id") if isinstance(raw, dict) else None
        shown = None if ident is None else str(ident)
        try:
            declaration = normalise_declaration(raw, self.catalogue)
        except DeclarationError as exc:
            return None, {row.number: str(exc)}, shown
        header = declaration.header
        if header.get("id") is None:
            return None, {row.number: "declaration.id is missing"}, shown
        if header.get("date") is None:
            return None, {row.number: "declaration.date is missing"}, header["id"]
        values = [header.get(n) for n in self.header_names]
        items: list[Sequence[Any]] = [
            [item.get(n) for n in self.item_names] for item in declaration.items
        ]
        ident = str(header["id"])
        return (ident, values, items), {}, ident

    def key_of(self, row: _Row) -> Any:
        """The declaration id of a row (for rows skipped on resume), ``None`` if unreadable."""
        if self.native:
            return row.cells.get("id") if isinstance(row.cells, dict) else None
        values, problem = self.header_reader.read(row.cells)
        return None if problem is not None else values[self.id_index]


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


class _Records:
    """Outcome and control rows to records."""

    def __init__(self, mapping: IngestMapping, header: list[str] | None) -> None:
        self.mapping = mapping
        self.reader = _Reader(mapping.rules, mapping, header, iso_dates=False)
        self.names = [r.target for r in self.reader.rules]
        self.split = {r.target: r.split for r in mapping.rules}.get("reasons")
        self.classifier = reason_classifier()

    def _values(self, row: _Row) -> tuple[dict[str, Any] | None, str | None]:
        values, problem = self.reader.read(row.cells)
        if problem is not None:
            return None, problem
        record = dict(zip(self.names, values, strict=True))
        for name in ("declaration_id", "date") + (
            ("procedure", "violation_found") if self.mapping.kind == "controls" else ("completed",)
        ):
            if record.get(name) is None:
                return None, f"{name} is missing"
        return record, None

    def _reasons(self, record: dict[str, Any]) -> tuple[tuple[str, ...], str | None]:
        value = record.get("reasons")
        if value is None:
            return (), None
        parts = value.split(self.split) if self.split else [value]
        codes = []
        for part in parts:
            code = part.strip()
            if not code:
                continue
            if code not in self.classifier:
                hint = self.classifier.suggest(code)
                return (), (
                    f"unknown non-completion reason {code!r} (appendix 3)"
                    + (f"; did you mean {hint!r}?" if hint else "")
                )
            entry = self.classifier.get(code)
            codes.append(entry.code if entry is not None else code)
        return tuple(codes), None

    def convert(self, group: _Group) -> tuple[list[Any] | None, dict[int, str], str | None]:
        records: list[Any] = []
        first: dict[str, Any] | None = None
        reasons: list[str] = []
        ident = _text_or_none(group.key)
        for row in group.rows:
            record, problem = self._values(row)
            if problem is not None or record is None:
                return None, {row.number: problem or "unreadable"}, ident
            ident = record["declaration_id"]
            if self.mapping.kind == "controls":
                records.append(
                    ControlRecord(
                        declaration_id=record["declaration_id"],
                        procedure=record["procedure"],
                        date=record["date"],
                        violation_found=record["violation_found"],
                        profile_key=record.get("profile_key"),
                        random_control=bool(record.get("random_control") or False),
                        revenue=_decimal(record.get("revenue")),
                    )
                )
                continue
            codes, problem = self._reasons(record)
            if problem is not None:
                return None, {row.number: problem}, ident
            if first is None:
                first = record
            else:
                for name in ("completed", "date"):
                    if record[name] != first[name]:
                        return None, {row.number: (
                            f"{name} differs from row {group.rows[0].number} of the same "
                            f"declaration: {record[name]!r} vs {first[name]!r}"
                        )}, ident  # fmt: skip
            reasons.extend(codes)
        if self.mapping.kind == "outcomes":
            assert first is not None
            if first["completed"] and reasons:
                return None, {group.rows[0].number: (
                    "a completed clearance has no non-completion reasons: "
                    + ", ".join(reasons)
                )}, ident  # fmt: skip
            records.append(
                OutcomeRecord(
                    first["declaration_id"],
                    first["completed"],
                    first["date"],
                    tuple(dict.fromkeys(reasons)),
                )
            )
        return records, {}, ident

    def key_of(self, row: _Row) -> Any:
        return None


def _decimal(value: Any) -> Any:
    from decimal import Decimal

    if value is None:
        return None
    return Decimal(str(value))


def _groups(rows: Iterator[_Row], key_of: Callable[[_Row], Any] | None) -> Iterator[_Group]:
    """Consecutive rows with the same key form a group (one declaration). A broken row whose key
    can still be read stays in its group, so the whole declaration is rejected with it."""
    current: list[_Row] = []
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
            yield _Group(current, current_key, broken)
            current = []
            broken = False
        current.append(row)
        if row.problem is not None:
            broken = True
        current_key = key
    if current:
        yield _Group(current, current_key, broken)


# --- the rejects file ------------------------------------------------------------------------


class _RejectsFile:
    """``row,line,declaration,reason,<the raw row>``: opened on the first reject."""

    def __init__(self, path: str, header: list[str] | None, resumed_from: int) -> None:
        self.path = path
        self.header = header
        self.stream: IO[str] | None = None
        self.writer: Any = None
        self.count = 0
        if os.path.exists(path):
            if resumed_from:
                self._cut(resumed_from)
            else:
                os.remove(path)

    def _cut(self, keep_up_to: int) -> None:
        """Drop rejects of rows after ``keep_up_to`` (written before an interruption)."""
        with open(path := self.path, encoding="utf-8", errors="surrogateescape",
                  newline="") as stream:  # fmt: skip
            rows = list(csv.reader(stream))
        kept = [rows[0]] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= keep_up_to]
        with open(path, "w", encoding="utf-8", errors="surrogateescape", newline="") as stream:
            csv.writer(stream).writerows(kept)
        self.count = len(kept) - 1

    def write(self, rejects: Sequence[Reject]) -> None:
        if not rejects:
            return
        if self.stream is None:
            exists = os.path.exists(self.path) and os.path.getsize(self.path) > 0
            # the raw row is written back byte for byte, even where it is not valid UTF-8
            self.stream = open(  # noqa: SIM115 (closed by close())
                self.path, "a", encoding="utf-8", errors="surrogateescape", newline=""
            )
            self.writer = csv.writer(self.stream)
            if not exists:
                raw = self.header if self.header is not None else ["raw"]
                self.writer.writerow(["row", "line", "declaration", "reason", *raw])
        for reject in rejects:
            self.writer.writerow(
                [reject.row, reject.line, reject.declaration or "", reject.reason, *reject.raw]
            )
            self.count += 1
        assert self.stream is not None
        self.stream.flush()
        os.fsync(self.stream.fileno())

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()


# --- the ingest loop ---------------------------------------------------------------------


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
    fmt = detect_format(source, mapping)
    if fmt == "csv" and not mapping.rules:
        raise MappingError("a CSV file needs a --mapping (see docs/ingest.md)")
    if batch_rows < 1:
        raise ValueError("batch_rows must be at least 1")
    tables = build_tables(catalogue)
    for rule in mapping.rules:
        if rule.scope in ("declaration", "item") and rule.target not in tables.field_columns:
            raise MappingError(f"the store has no column for {rule.target!r}", file=mapping.file)
    if not os.path.isfile(source):
        raise StoreError(f"no such file: {source}")
    size, head = _identity(source)
    rejects_file = os.fspath(rejects_path) if rejects_path else source + ".rejects.csv"
    if fmt == "csv":  # a mapping that does not fit the file fails before anything is recorded
        with open(source, encoding=mapping.encoding, errors="surrogateescape", newline="") as f:
            header, _ = _csv_rows(f, mapping)
            if mapping.kind == "declarations":
                _Declarations(mapping, header, catalogue, tables.field_columns)
            else:
                _Records(mapping, header)
            _group_key(mapping, header, None)

    with database_errors(engine):
        with engine.begin() as connection:
            ensure_schema(connection, catalogue)
            state = _file_state(connection, tables, mapping, source, size, head)
        if state.done and not force:
            return IngestResult(
                source, mapping.kind, state.rows, state.rejected, state.added, state.skipped,
                0, state.rows, time.perf_counter() - began,
                rejects_file if state.rejected else None, already_done=True,
            )  # fmt: skip
        if state.done and force:
            with engine.begin() as connection:
                state = _restart(connection, tables, state)
        return _run(
            engine, source, fmt, mapping, tables, catalogue, state, batch_rows, rejects_file,
            progress, began, _use_parallel(parallel, fmt, mapping, size),
        )  # fmt: skip


@attrs.define
class _FileState:
    pk: int
    rows: int
    rejected: int
    added: int
    skipped: int
    batches: int
    done: bool


def _file_state(
    connection: sa.Connection,
    tables: StoreTables,
    mapping: IngestMapping,
    source: str,
    size: int,
    head: str,
) -> _FileState:
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
        return _FileState(
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
    return _FileState(pk, 0, 0, 0, 0, 0, False)


def _restart(connection: sa.Connection, tables: StoreTables, state: _FileState) -> _FileState:
    files = tables.ingest_files
    pk = allocate_keys(connection, files, 1)
    old = connection.execute(sa.select(files).where(files.c.pk == state.pk)).mappings().one()
    values = dict(old)
    values.update(
        pk=pk, status="running", rows_committed=0, rows_rejected=0, records_added=0,
        records_skipped=0, started_at=dt.datetime.now(), finished_at=None,
    )  # fmt: skip
    connection.execute(files.insert().values(**values))
    return _FileState(pk, 0, 0, 0, 0, 0, False)


def _run(
    engine: sa.Engine,
    source: str,
    fmt: str,
    mapping: IngestMapping,
    tables: StoreTables,
    catalogue: Catalogue,
    state: _FileState,
    batch_rows: int,
    rejects_file: str,
    progress: Callable[[int, int], None] | None,
    began: float,
    parallel: bool,
) -> IngestResult:
    resumed_from = state.rows
    # Rows make many short-lived objects without reference cycles: the cyclic collector would
    # only slow the loop down (by a third), so it runs between batches instead.
    collecting = gc.isenabled()
    gc.disable()
    raw_stream = open(source, "rb")  # noqa: SIM115 (closed in finally)
    text = io.TextIOWrapper(
        raw_stream, encoding=mapping.encoding, errors="surrogateescape", newline=""
    )
    rejects: _RejectsFile | None = None
    worker: _ConversionProcess | None = None
    batches: Iterator[_Batch] | None = None
    try:
        header: list[str] | None = None
        if fmt == "csv":
            header, rows = _csv_rows(text, mapping)
        else:
            rows = _jsonl_rows(text)
        converter: _Declarations | _Records
        if mapping.kind == "declarations":
            converter = _Declarations(mapping, header, catalogue, tables.field_columns)
        else:
            converter = _Records(mapping, header)
        rejects = _RejectsFile(rejects_file, header, resumed_from)
        if parallel:
            # Reading and converting run in a second process while this one writes: the two
            # halves cost about the same, and threads would share one interpreter lock.
            try:
                worker = _ConversionProcess(
                    source, mapping, dict(tables.field_columns), resumed_from, batch_rows
                )
            except OSError:  # no interpreter to start (an embedded Python): convert here
                worker = None
        if worker is not None:
            text.close()
            batches = _prefetch(iter(worker))
        else:
            key_of = _group_key(mapping, header, converter)
            # Reading and converting run in a thread while the previous batch is written: the
            # drivers leave the GIL while the database works, so the two overlap a little.
            batches = _prefetch(
                _batches(
                    _groups(rows, key_of), converter, mapping, resumed_from, batch_rows,
                    raw_stream,
                )
            )  # fmt: skip
        checked = not getattr(converter, "native", False)
        for number, batch in enumerate(batches, start=1):
            _commit(engine, mapping, tables, state, batch, rejects, converter, checked)
            if number % 16 == 0:
                gc.collect(1)
            if progress is not None:
                progress(batch.position, state.rows)
        with database_errors(engine), engine.begin() as connection:
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
        rejects_file if state.rejected else None,
    )  # fmt: skip


@attrs.define
class _Batch:
    """A converted batch: where the reading stood, its rows, the rejects and what to store
    (declarations: ``records``; outcomes and controls: ``good`` with their groups, as a record
    about an unknown declaration is rejected when it is written)."""

    position: int
    first_row: int
    last_row: int
    rejected: list[Reject]
    records: list[Any]
    good: list[tuple[_Group, Any, str | None]]


def _batches(
    groups: Iterator[_Group],
    converter: _Declarations | _Records,
    mapping: IngestMapping,
    resumed_from: int,
    batch_rows: int,
    raw_stream: IO[bytes],
) -> Iterator[_Batch]:
    """Converted groups in batches of about ``batch_rows`` rows, with the bytes read so far.

    Rows up to ``resumed_from`` (committed by an earlier run) are only read for the ids they
    hold, so a declaration repeated across the resume point is still caught. A rejected group
    becomes its rejects at once; the rows of a good declaration are let go as soon as it is
    converted (only outcomes and controls keep theirs: the writer may still reject them)."""
    declarations = mapping.kind == "declarations"
    seen: dict[Any, int] = {}
    batch: _Batch | None = None
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
            record, ident = None, _text_or_none(group.key)
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
            batch = _Batch(0, first, 0, [], [], [])
        if record is None:
            batch.rejected.extend(_rejects_of(group, problems, ident))
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


def _prefetch(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
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


def _group_key(
    mapping: IngestMapping, header: list[str] | None, converter: _Declarations | _Records | None
) -> Callable[[_Row], Any] | None:
    column = mapping.group_by
    if column is None and mapping.kind == "outcomes":
        rule = mapping.rule("declaration_id")
        column = rule.column if rule is not None else None
    if column is None:
        return None
    if header is not None:
        index = _column_index(header, column, mapping)
        return lambda row: row.cells[index].strip() or None
    get = _path_getter(column)
    return lambda row: get(row.cells)


def _commit(
    engine: sa.Engine,
    mapping: IngestMapping,
    tables: StoreTables,
    state: _FileState,
    batch: _Batch,
    rejects: _RejectsFile,
    converter: _Declarations | _Records,
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
            assert isinstance(converter, _Declarations)
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
                        rejected.extend(_rejects_of(group, {group.rows[0].number: reason}, ident))
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


# --- converting in a second process ----------------------------------------------------------

#: Files from this size on are converted in a second process (when there is a second core):
#: starting it costs a few tenths of a second.
PARALLEL_MIN_BYTES = 16 << 20


def _use_parallel(parallel: bool | None, fmt: str, mapping: IngestMapping, size: int) -> bool:
    """Whether to convert in a second process: CSV declarations with a mapping only (the
    records then cross as plain values). ``parallel=None`` decides by the file's size and the
    number of cores."""
    possible = fmt == "csv" and mapping.kind == "declarations" and bool(mapping.rules)
    if parallel is None:
        return possible and size >= PARALLEL_MIN_BYTES and (os.cpu_count() or 1) > 1
    return parallel and possible


class _ConversionProcess:
    """Reads and converts a CSV file of declarations in a child process, batch by batch.

    The child is a plain ``python -c`` of :func:`_conversion_worker` (not ``multiprocessing``,
    which would import the caller's main script again). It gets the job as a pickle on its
    standard input and runs the same code as the single-process path (:func:`_batches`,
    the packing of rejects); each batch comes back on its standard output as one length-prefixed
    ``marshal`` message: the bytes read, the first and last row, the rejects as tuples and the
    records (ids, header values, item values — text, numbers, booleans, dates as ISO text).
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
        code = "from riskengine.store.ingest import _conversion_worker; _conversion_worker()"
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

    def __iter__(self) -> Iterator[_Batch]:
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
            _, position, first_row, last_row, rejected, records = message
            yield _Batch(position, first_row, last_row, [Reject(*r) for r in rejected], records, [])

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.output.close()
        self.errors.close()


def _conversion_worker() -> None:
    """The child of :class:`_ConversionProcess`: a pickled job on stdin, batches on stdout."""
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
            header, rows = _csv_rows(text, mapping)
            converter = _Declarations(mapping, header, None, field_columns)
            key_of = _group_key(mapping, header, converter)
            batches = _batches(
                _groups(rows, key_of), converter, mapping, resumed_from, batch_rows, raw_stream
            )
            for batch in batches:
                rejected = [(r.row, r.line, r.declaration, r.reason, r.raw) for r in batch.rejected]
                send(("batch", batch.position, batch.first_row, batch.last_row, rejected,
                      batch.records))  # fmt: skip
        send(("done",))
    except (BrokenPipeError, KeyboardInterrupt):
        pass  # the parent is gone or was interrupted: nothing to report to
    except BaseException as exc:  # reported to the parent, which raises it
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        with contextlib.suppress(OSError):
            send(("error", detail))
    with contextlib.suppress(OSError):
        out.close()  # a parent that is gone makes no noise at exit


def _rejects_of(group: _Group, problems: dict[int, str], ident: str | None) -> list[Reject]:
    """Every row of a rejected group: the failing row with its reason, the others pointing at
    it."""
    culprit = min(problems) if problems else group.rows[0].number
    out = []
    for row in group.rows:
        reason = problems.get(row.number)
        if reason is None:
            reason = f"rejected with its declaration (see row {culprit})"
        out.append(Reject(row.number, row.line, ident, reason, tuple(row.raw)))
    return out
