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
from decimal import Decimal
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
    "salvage_json",
]

_SURROGATES = re.compile("[\udc80-\udcff]")


def detect_format(path: str | os.PathLike[str], mapping: IngestMapping) -> str:
    """``csv`` or ``jsonl``: the mapping's ``format``, else from the file's suffix, else from its
    first character (``{``: JSON Lines)."""
    if mapping.format is not None:
        return mapping.format
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    sniffed = sniff_format(path)
    if sniffed is not None:
        return sniffed
    raise MappingError(
        f"cannot tell the format of {os.fspath(path)!r} from its suffix or its first line: "
        'set format = "csv" or "jsonl" in [source]',
        file=mapping.file,
    )


def sniff_format(path: str | os.PathLike[str]) -> str | None:
    """``jsonl`` when the file's first non-blank character is ``{``, ``csv`` when it is
    something else, ``None`` for an empty (or unreadable) file."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(4096)
    except OSError:
        return None
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text:
        return None
    return "jsonl" if text.startswith(b"{") else "csv"


def has_no_json_line(path: str | os.PathLike[str]) -> bool:
    """Whether the file's first 4 KiB hold lines and not one of them starts with ``{``: no JSON
    Lines file at all (a CSV export), as opposed to a JSON Lines file with a broken line."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(4096)
    except OSError:
        return False
    lines = [line.strip() for line in head.removeprefix(b"\xef\xbb\xbf").splitlines()]
    lines = [line for line in lines if line]
    return bool(lines) and not any(line.startswith(b"{") for line in lines)


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


#: The reader itself reads cells up to this many characters (or twice ``max_cell``) so that a
#: row with a cell over ``max_cell`` is still read whole and rejected with its declaration; a
#: longer cell (an unclosed quote running through the file) makes the row unreadable.
READ_LIMIT = 16 << 20


def read_limit(max_cell: int) -> int:
    """The csv module's field limit for reading cells of up to ``max_cell`` characters."""
    return max(READ_LIMIT, 2 * max_cell)


def csv_rows(stream: IO[str], mapping: IngestMapping) -> tuple[list[str], Iterator[Row]]:
    """The header line and the data rows of a CSV stream. A row with a cell longer than the
    mapping's ``max_cell``, a NUL character in a mapped column, cells that are not text in the
    file's encoding or the wrong number of cells carries its ``problem`` (its cells are still
    read, so its declaration id is known)."""
    limit = read_limit(mapping.max_cell)
    if csv.field_size_limit() < limit:  # the module-wide limit is only ever raised
        csv.field_size_limit(limit)
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
    max_cell = mapping.max_cell
    wanted = set(mapping.columns())
    read_columns = {i for i, name in enumerate(header) if name in wanted}

    def oddity(cells: list[str], joined: str) -> str | None:
        """The problem of a row whose joined text is long or holds a NUL (rarely called)."""
        for index, cell in enumerate(cells):
            if len(cell) > max_cell:
                return (
                    f"column {header[index]}: a cell of {len(cell):,} characters, over the "
                    f"limit of {max_cell:,} (max_cell in [source] of the mapping)"
                )
        for index, cell in enumerate(cells):
            if index in read_columns and "\x00" in cell:
                return (
                    f"column {header[index]}: a NUL character (\\x00) in the text, which the "
                    "store cannot hold"
                )
        return None

    def rows() -> Iterator[Row]:
        number = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                number += 1
                reason = str(exc)
                if "field larger than field limit" in reason:
                    reason = (
                        f"a cell of more than {limit:,} characters (an unclosed quote?): "
                        "the row cannot be read"
                    )
                yield Row(number, reader.line_num, [], (), f"unreadable CSV: {reason}")
                continue
            if not cells:
                continue  # a blank line
            number += 1
            problem = None
            if len(cells) != width:
                problem = f"the row has {len(cells)} cells, the header has {width}"
            else:
                joined = "".join(cells)
                if len(joined) > max_cell or "\x00" in joined:
                    problem = oddity(cells, joined)
                if problem is None and not joined.isascii() and _SURROGATES.search(joined):
                    problem = "the row is not valid text in the file's encoding"
            yield Row(number, reader.line_num, cells, cells, problem)

    return header, rows()


#: JSON integers with more digits are out of the range of any number the store computes with
#: (a double reaches about 1.8e308), and Python reads at most 4,300 digits.
MAX_JSON_DIGITS = 308


class _JsonNumberError(ValueError):
    pass


def _json_int(text: str) -> int:
    digits = len(text) - text.startswith("-")
    if digits > MAX_JSON_DIGITS:
        raise _JsonNumberError(
            f"an integer of {digits:,} digits: out of the range of numbers "
            f"(at most {MAX_JSON_DIGITS} digits)"
        )
    return int(text)


def _json_float(text: str) -> float | Decimal:
    """A JSON number with a fraction or exponent: a float, or beyond the float range (``1e400``)
    the exact ``Decimal``, so that the input rule says ``1E+400 is out of range`` as ``score``
    does, not ``got inf`` for a number nobody wrote as infinity."""
    value = float(text)
    return value if value - value == 0 else Decimal(text)


def _has_nul(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _where(exc: json.JSONDecodeError) -> str:
    """``Expecting value at column 12`` (json's "Unterminated string starting at" already ends
    in "at")."""
    return f"{exc.msg.removesuffix(' at')} at column {exc.colno}"


def jsonl_rows(stream: IO[str]) -> Iterator[Row]:
    """The lines of a JSON Lines stream as rows; a line that is not a JSON object, is not valid
    UTF-8, holds an integer out of range, is nested too deeply to read or holds a NUL character
    carries its ``problem``."""
    for number, line in enumerate(stream, start=1):
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        if _SURROGATES.search(text):
            yield Row(number, number, None, (text,), "the line is not valid UTF-8 text")
            continue
        try:
            value = json.loads(text, parse_int=_json_int, parse_float=_json_float)
        except json.JSONDecodeError as exc:
            yield Row(number, number, None, (text,), f"invalid JSON: {_where(exc)}")
            continue
        except _JsonNumberError as exc:
            yield Row(number, number, None, (text,), f"invalid JSON: {exc}")
            continue
        except RecursionError:
            yield Row(number, number, None, (text,), "invalid JSON: nested too deeply to read")
            continue
        if not isinstance(value, dict):
            yield Row(number, number, None, (text,), "expected a JSON object on each line")
            continue
        if "\\u0000" in text and _has_nul(value):
            yield Row(number, number, None, (text,), (
                "a NUL character (\\u0000) in a text value, which the store cannot hold"
            ))  # fmt: skip
            continue
        yield Row(number, number, value, (text,))


_JSON_TOKEN = re.compile(
    r'\s*(?:([{}\[\],:])|("(?:[^"\\\x00-\x1f]|\\.)*")|'
    r"(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(true|false|null))"
)


def _number(text: str) -> Any:
    try:
        if re.fullmatch(r"-?\d+", text):
            return _json_int(text)
        value = _json_float(text)
    except _JsonNumberError:
        return text
    return text if isinstance(value, Decimal) else value  # beyond a float: as written


def salvage_json(text: str, paths: Sequence[str]) -> dict[str, Any] | None:
    """The values at ``paths`` (dotted keys of nested objects, e.g. ``id`` or ``head.number``)
    of a JSON Lines line that could not be read whole: a syntax error, a number out of range,
    nesting too deep to read, bytes that are not UTF-8. The line is scanned token by token up to
    its first error, without recursion; a value found before it counts (the last one when a key
    repeats, as a JSON reader keeps it). A string is its text, a number its value (its digits
    as written when out of range). Returns an object holding just the values found, at their
    paths, or ``None`` (no value found, or the line is not an object)."""
    wanted = {tuple(p.split(".")) for p in paths}
    found: dict[tuple[str, ...], Any] = {}
    keys: list[str | None] = []  # the key of each open object (None: an array, or no key yet)
    kinds: list[str] = []  # "{" or "[" per open container
    expect_key = False
    position = 0
    while position < len(text):
        match = _JSON_TOKEN.match(text, position)
        if match is None:
            break
        position = match.end()
        sign, string, number, literal = match.groups()
        if sign == "{" or sign == "[":
            if not kinds and sign == "[":
                return None  # not an object
            kinds.append(sign)
            keys.append(None)
            expect_key = sign == "{"
        elif sign in ("}", "]"):
            if not kinds:
                break
            kinds.pop()
            keys.pop()
            expect_key = False
            if not kinds:
                break  # the end of the line's value
        elif sign == ",":
            expect_key = bool(kinds) and kinds[-1] == "{"
        elif sign == ":":
            expect_key = False
        elif not kinds:
            return None  # a scalar line
        elif expect_key and string is not None:
            try:
                keys[-1] = json.loads(string)
            except ValueError:
                keys[-1] = string[1:-1]
            expect_key = False
        elif kinds[-1] == "{" and "[" not in kinds:
            path = tuple(k for k in keys if k is not None)
            if len(path) == len(keys) and path in wanted:
                if string is not None:
                    try:
                        found[path] = json.loads(string)
                    except ValueError:
                        found[path] = string[1:-1]
                else:
                    found[path] = _number(number) if number is not None else json.loads(literal)
    if not found:
        return None
    out: dict[str, Any] = {}
    for path, value in found.items():
        target = out
        for key in path[:-1]:
            target = target.setdefault(key, {})
        target[path[-1]] = value
    return out


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
    ``broken`` when one of them could not be read; ``note``: why the group is rejected although
    its own rows were read (an unreadable row next to it)."""

    __slots__ = ("broken", "key", "note", "rows")

    def __init__(
        self, rows: list[Row], key: Any, broken: bool = False, note: str | None = None
    ) -> None:
        self.rows = rows
        self.key = key
        self.broken = broken
        self.note = note


def groups(rows: Iterator[Row], key_of: Callable[[Row], Any] | None) -> Iterator[Group]:
    """Consecutive rows with the same key form a group (one declaration). A broken row whose key
    can still be read stays in its group, so the whole declaration is rejected with it. A row so
    broken that its key cannot be read (an unreadable CSV record) may belong to the declaration
    before or after it: with a key, both are rejected with it (``note``), never stored with an
    item possibly missing."""
    current: list[Row] = []
    current_key: Any = None
    broken = False
    note: str | None = None
    taint: str | None = None  # the note for the group right after an unreadable row
    for row in rows:
        key = None
        if key_of is not None:
            try:
                key = key_of(row)
            except (IndexError, KeyError, TypeError, AttributeError):
                key = None
        unreadable = key_of is not None and key is None and row.problem is not None
        if current and (key_of is None or key is None or key != current_key):
            if unreadable and current_key is not None:
                broken, note = True, note or _neighbour(row.number)
            yield Group(current, current_key, broken, note)
            current, broken, note = [], False, None
        if not current:
            if taint is not None and key is not None:
                broken, note = True, taint
            taint = None
        current.append(row)
        if row.problem is not None:
            broken = True
        if unreadable:
            taint = _neighbour(row.number)
        current_key = key
    if current:
        yield Group(current, current_key, broken, note)


def _neighbour(number: int) -> str:
    return f"row {number} next to this declaration could not be read and may belong to it"
