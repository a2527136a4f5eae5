"""Converting a row's cells to typed values with a mapping's field rules, compiled once per file.

:class:`Reader` reads the mapped fields of one row; for CSV it runs a generated Python function
(:func:`compile_csv`) and falls back to each field's own converter for a value it cannot read.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Sequence
from typing import Any

from riskengine.catalogue import FieldType
from riskengine.ingest.mapping import ConversionError, FieldRule, IngestMapping
from riskengine.ingest.read import column_index, path_getter

__all__ = ["Reader", "compile_csv"]


#: What a compiled row converter may raise for a value it cannot read; the row is then read
#: again value by value with each field's full converter, which says what is wrong.
_FALLBACK = (ConversionError, ValueError, TypeError, AttributeError, OverflowError, KeyError)


def _storage_value(rule: FieldRule, value: Any, iso_dates: bool) -> Any:
    """A converted value as the writer stores it: dates as ISO text with ``iso_dates``."""
    if iso_dates and rule.type is FieldType.DATE and isinstance(value, dt.date):
        return value.isoformat()
    return value


class Reader:
    """Reads the values of mapped fields from one row, compiled once per file.

    ``rules`` is the order of the values: the fields read from a column (mapping order), then
    the constants. With ``iso_dates`` a date comes out as ISO text (``2024-01-31``), which is
    how SQLite stores it and what crosses to the writing process cheaply.

    For CSV the conversions are compiled into one generated Python function per row kind
    (:func:`compile_csv`): no per-cell callables for plain text, numbers, dates (cached) and
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
            indices = [column_index(header, r.column or "", mapping) for r in read_rules]
            self.fast = compile_csv(
                read_rules, indices, self.converters, self.constants, empty_missing, iso_dates
            )

    @staticmethod
    def _picker(
        columns: list[str], mapping: IngestMapping, header: list[str] | None
    ) -> Callable[[Any], tuple[Any, ...]]:
        if header is None:
            getters = [path_getter(c) for c in columns]
            return lambda obj: tuple(get(obj) for get in getters)
        indices = [column_index(header, c, mapping) for c in columns]
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


def compile_csv(
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
