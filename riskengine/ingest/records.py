"""Rows to records: a row's mapped values (:class:`Reader`), and groups of rows to declaration
values for the writer, or outcome and control records, or rejects with the row and reason."""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from riskengine.catalogue import Catalogue, FieldType
from riskengine.classifiers import Classifier
from riskengine.classifiers import reasons as reason_classifier
from riskengine.declaration import DeclarationError, normalise_declaration
from riskengine.ingest.convert import ConversionError, cell_converter, compile_row
from riskengine.ingest.mapping import FieldRule, IngestMapping
from riskengine.ingest.read import Group, Row, column_index, path_getter, salvage_json
from riskengine.store.writer import ControlRecord, OutcomeRecord

__all__ = ["NO_PROBLEMS", "Declarations", "Reader", "Record", "Records", "text_or_none"]


class Reader:
    """Reads the values of mapped fields from one row, compiled once per file.

    ``rules`` is the order of the values: the fields read from a column (mapping order), then
    the constants. With ``iso_dates`` a date comes out as ISO text (``2024-01-31``), which is
    how SQLite stores it and what crosses to the writing process cheaply.

    A CSV row goes through one generated function (:func:`~riskengine.ingest.convert.compile_row`),
    a JSON object through each field's converter; both run the same conversion source
    (:func:`~riskengine.ingest.convert.cell_code`). When a value does not convert,
    :meth:`per_cell` reads the row again cell by cell to say which column is wrong.
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
        self.converters = [
            cell_converter(r, empty_missing, iso_dates=iso_dates) for r in read_rules
        ]
        self.pick_all = self._picker([r.column or "" for r in read_rules], mapping, header)
        self.fast: Callable[[Any], tuple[Any, ...]] | None = None
        if header is not None:
            indices = [column_index(header, r.column or "", mapping) for r in read_rules]
            self.fast = compile_row(
                read_rules, indices, self.constants, empty_is_missing=empty_missing,
                iso_dates=iso_dates,
            )  # fmt: skip

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
        ``column X (field): reason``."""
        try:
            if self.fast is not None:
                return self.fast(cells), None
            values = [f(v) for f, v in zip(self.converters, self.pick_all(cells), strict=True)]
        except ConversionError:
            return self.per_cell(cells)
        return (*values, *self.constants), None

    def per_cell(self, cells: Any) -> tuple[Sequence[Any], str | None]:
        """Each value through its field's converter; the first failure is the problem."""
        values = []
        for rule, convert, value in zip(
            self.read_rules, self.converters, self.pick_all(cells), strict=True
        ):
            try:
                values.append(convert(value))
            except ConversionError as exc:
                return (), f"column {rule.column} ({rule.target}): {exc}"
        return (*values, *self.constants), None


def _storage_value(rule: FieldRule, value: Any, iso_dates: bool) -> Any:
    """A constant as the writer stores it: a date as ISO text with ``iso_dates``."""
    if iso_dates and rule.type is FieldType.DATE and isinstance(value, dt.date):
        return value.isoformat()
    return value


NO_PROBLEMS: dict[int, str] = {}

#: A declaration for the writer: (id, header values, [item values, ...]).
Record = tuple[str, Sequence[Any], list[Sequence[Any]]]


class Declarations:
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
            self.id_path = "id"
        else:
            items_header = None if mapping.items is not None else header
            self.header_reader = Reader(
                [r for r in mapping.rules if r.scope == "declaration"], mapping, header
            )
            self.item_reader = Reader(
                [r for r in mapping.rules if r.scope == "item"], mapping, items_header
            )
            self.header_rules = self.header_reader.rules
            self.item_rules = self.item_reader.rules
            self.header_paths = [r.target for r in self.header_rules]
            self.item_paths = [r.target for r in self.item_rules]
            self.items_of = path_getter(mapping.items) if mapping.items else None
            id_rule = mapping.rule("declaration.id")
            assert id_rule is not None
            self.id_reader = Reader([id_rule], mapping, header)
            self.id_path = id_rule.column or ""
        self.header_columns = [field_columns[p] for p in self.header_paths]
        self.item_columns = [field_columns[p] for p in self.item_paths]
        self.id_index = self.header_paths.index("declaration.id")
        self.date_index = self.header_paths.index("declaration.date")
        self.header_names = [p.partition(".")[2] for p in self.header_paths]
        self.item_names = [p.partition(".")[2] for p in self.item_paths]

    def convert(self, group: Group) -> tuple[Record | None, dict[int, str], str | None]:
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
        return (ident, header, items), NO_PROBLEMS, ident

    def _id_of(self, row: Row) -> str | None:
        """The declaration id of a row whose other values do not convert, if it converts."""
        values, problem = self.id_reader.read(row.cells)
        return values[0] if problem is None and values else None

    def _native(self, group: Group) -> tuple[Record | None, dict[int, str], str | None]:
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

    def ident_of(self, group: Group) -> str | None:
        """The declaration id of a group that is rejected unconverted (a broken row), when its
        first row has one: read as it would be converted, else the raw key."""
        row = group.rows[0]
        cells = row.cells
        if cells is None and row.raw:  # a JSON Lines line not read: its id, when it can be found
            cells = salvage_json(row.raw[0], [self.id_path])
        if self.native:
            ident = cells.get("id") if isinstance(cells, dict) else None
            return None if ident is None else str(ident)
        if cells:
            try:
                values, problem = self.id_reader.read(cells)
            except (IndexError, KeyError, TypeError, AttributeError):
                values, problem = (), "unreadable"
            if problem is None and values:
                return text_or_none(values[0])
        return text_or_none(group.key)


def text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


class Records:
    """Outcome and control rows to records."""

    def __init__(
        self, mapping: IngestMapping, header: list[str] | None, reasons: Classifier | None = None
    ) -> None:
        self.mapping = mapping
        self.reader = Reader(mapping.rules, mapping, header, iso_dates=False)
        self.names = [r.target for r in self.reader.rules]
        self.split = {r.target: r.split for r in mapping.rules}.get("reasons")
        #: appendix 3, extended by the catalogue's own reasons when one is in force
        self.classifier = reasons or reason_classifier()
        extended = len(self.classifier) > len(reason_classifier())
        self._where = "appendix 3" + (" or the catalogue's [[reason]] tables" if extended else "")

    def _values(self, row: Row) -> tuple[dict[str, Any] | None, str | None]:
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
                    f"unknown non-completion reason {code!r} ({self._where})"
                    + (f"; did you mean {hint!r}?" if hint else "")
                )
            entry = self.classifier.get(code)
            codes.append(entry.code if entry is not None else code)
        return tuple(codes), None

    def convert(self, group: Group) -> tuple[list[Any] | None, dict[int, str], str | None]:
        records: list[Any] = []
        first: dict[str, Any] | None = None
        reasons: list[str] = []
        ident = text_or_none(group.key)
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
            if problem is None:
                problem = _release_times(record)
            if problem is not None:
                return None, {row.number: problem}, ident
            if first is None:
                first = record
            else:
                for name in ("completed", "date", "lodged_at", "released_at"):
                    if record.get(name) != first.get(name):
                        return None, {row.number: (
                            f"{name} differs from row {group.rows[0].number} of the same "
                            f"declaration: {record.get(name)!r} vs {first.get(name)!r}"
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
                    first.get("lodged_at"),
                    first.get("released_at"),
                )
            )
        return records, {}, ident

    def ident_of(self, group: Group) -> str | None:
        """The declaration id of a rejected group: its key, else (a JSON Lines line not read)
        the id found in the line, as read from a good row."""
        row = group.rows[0]
        if group.key is not None or row.cells is not None or not row.raw:
            return text_or_none(group.key)
        rule = self.mapping.rule("declaration_id")
        if rule is None or rule.column is None:
            return None
        found = salvage_json(row.raw[0], [rule.column])
        if found is None:
            return None
        values, problem = Reader([rule], self.mapping, None).read(found)
        return text_or_none(values[0]) if problem is None and values else None


def _release_times(record: dict[str, Any]) -> str | None:
    """Read an outcome's ``lodged_at``/``released_at`` (ISO 8601 text) into datetimes, in
    ``record``; a problem (not a date and time, released before lodged) or ``None``."""
    import datetime as dt

    for name in ("lodged_at", "released_at"):
        text = record.get(name)
        if text is None or isinstance(text, dt.datetime):
            continue
        try:
            moment = dt.datetime.fromisoformat(str(text).strip())
        except ValueError:
            return f"{name}: expected an ISO 8601 date and time (2025-03-01T10:15), got {text!r}"
        record[name] = moment.replace(tzinfo=None) if moment.tzinfo is None else (
            moment.astimezone(dt.UTC).replace(tzinfo=None))  # fmt: skip
    lodged, released = record.get("lodged_at"), record.get("released_at")
    if lodged is not None and released is not None and released < lodged:
        return f"released_at {released.isoformat()} is before lodged_at {lodged.isoformat()}"
    return None


def _decimal(value: Any) -> Any:
    from decimal import Decimal

    if value is None:
        return None
    return Decimal(str(value))
