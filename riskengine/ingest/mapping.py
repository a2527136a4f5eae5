"""Ingest mappings: how a source file's columns become catalogue fields, and how each column's
text is cleaned and converted.

A mapping is a TOML file, or YAML (``.yaml``/``.yml``) with the same structure;
``docs/ingest.md`` describes it with examples. Errors name the file, the line of the offending
key when it can be found, and the key.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from riskengine.catalogue import Catalogue, FieldType, default_catalogue
from riskengine.ingest.convert import THOUSANDS, ConversionError, cell_converter
from riskengine.mapfile import MappingError, line_of, load_toml, read_text, suggest

__all__ = [
    "KINDS",
    "ConversionError",
    "FieldRule",
    "IngestMapping",
    "MappingError",
    "load_ingest_mapping",
    "native_mapping",
    "parse_ingest_mapping",
]

#: What a file can hold: declarations (with items), clearance outcomes, control results.
KINDS = ("declarations", "outcomes", "controls")

#: Targets of outcome and control files, with their types.
RECORD_FIELDS: dict[str, dict[str, FieldType]] = {
    "outcomes": {
        "declaration_id": FieldType.STRING,
        "completed": FieldType.BOOLEAN,
        "date": FieldType.DATE,
        "reasons": FieldType.CODE,
        # ISO 8601 date and time (2025-03-01T10:15), read in records.py (revision r0008)
        "lodged_at": FieldType.STRING,
        "released_at": FieldType.STRING,
    },
    "controls": {
        "declaration_id": FieldType.STRING,
        "procedure": FieldType.CODE,
        "date": FieldType.DATE,
        "violation_found": FieldType.BOOLEAN,
        "profile_key": FieldType.STRING,
        "random_control": FieldType.BOOLEAN,
        "revenue": FieldType.NUMBER,
    },
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "declarations": ("declaration.id", "declaration.date"),
    "outcomes": ("declaration_id", "completed", "date"),
    "controls": ("declaration_id", "procedure", "date", "violation_found"),
}

_DEFAULT_TRUE = ("1", "true", "yes", "y", "t", "так")
_DEFAULT_FALSE = ("0", "false", "no", "n", "f", "ні")
_SOURCE_KEYS = {
    "format", "delimiter", "quotechar", "encoding", "group_by", "items", "empty", "max_cell",
}  # fmt: skip
#: The longest CSV cell read by default (characters): what Python's csv module allows by default.
DEFAULT_MAX_CELL = 131_072
_DEFAULT_KEYS = {
    "date_format",
    "decimal_comma",
    "thousands",
    "true_values",
    "false_values",
    "strip",
}
_RULE_KEYS = {
    "column",
    "value",
    "date_format",
    "decimal_comma",
    "thousands",
    "true_values",
    "false_values",
    "translate",
    "on_unknown",
    "zfill",
    "strip",
    "split",
    "upper",
}
_TOP_KEYS = {"kind", "source", "defaults", "fields", "translate"}


@attrs.frozen
class FieldRule:
    """How one target field is read: from a ``column`` (or a constant ``value``), then cleaned
    (strip, upper, zfill, translate) and converted to the field's type."""

    target: str
    type: FieldType
    column: str | None
    value: Any = None
    date_formats: tuple[str, ...] = ("%Y-%m-%d",)
    decimal_comma: bool = False
    #: The thousands separators a number may have (characters; empty: none).
    thousands: str = ""
    #: The smallest value of a number (the catalogue field's ``minimum``).
    minimum: float | None = None
    true_values: tuple[str, ...] = _DEFAULT_TRUE
    false_values: tuple[str, ...] = _DEFAULT_FALSE
    translate: Mapping[str, str] | None = None
    translate_name: str | None = None
    on_unknown: str = "keep"
    zfill: int | None = None
    strip: bool = True
    upper: bool = False
    split: str | None = None

    @property
    def scope(self) -> str:
        """``declaration``, ``item``, or ``record`` (outcome and control fields)."""
        head = self.target.partition(".")[0]
        return head if head in ("declaration", "item") else "record"

    @property
    def name(self) -> str:
        """The name in the flat records: ``declarant.id`` for ``declaration.declarant.id``."""
        return self.target.partition(".")[2] if self.scope != "record" else self.target

    def converter(self, empty_is_missing: bool = True) -> Callable[[Any], Any]:
        """A function from a raw cell (text or a JSON value) to the field's value; ``None`` means
        missing. Raises :class:`ConversionError`. See :mod:`riskengine.ingest.convert`."""
        return cell_converter(self, empty_is_missing)


@attrs.frozen
class IngestMapping:
    """A parsed ingest mapping (see ``docs/ingest.md``)."""

    kind: str
    rules: tuple[FieldRule, ...]
    format: str | None = None
    delimiter: str = ","
    quotechar: str = '"'
    encoding: str = "utf-8"
    group_by: str | None = None
    items: str | None = None
    empty_is_missing: bool = True
    max_cell: int = DEFAULT_MAX_CELL
    file: str | None = None
    sha256: str = ""

    def rule(self, target: str) -> FieldRule | None:
        for rule in self.rules:
            if rule.target == target:
                return rule
        return None

    def columns(self) -> list[str]:
        """The source columns the mapping reads (the group key included)."""
        found = [r.column for r in self.rules if r.column is not None]
        if self.group_by is not None:
            found.append(self.group_by)
        return list(dict.fromkeys(found))


def _strings(value: Any, what: str, fail: Callable[[str], MappingError]) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    values = value if isinstance(value, list) else [value]
    hint = ""
    if any(isinstance(v, bool) for v in values):
        hint = ' (in YAML, quote yes, no, on, off, true and false: "yes")'
    raise fail(f"{what} must be a string or a list of strings{hint}")


def _thousands(value: Any, decimal_comma: bool, fail: Callable[[str], MappingError]) -> str:
    """The declared thousands separators as one string of characters."""
    known = ", ".join(repr(k) for k in THOUSANDS)
    chosen = _strings(value, "thousands", fail) if value != [] else ()
    found = ""
    for name in chosen:
        if name not in THOUSANDS:
            raise fail(f"thousands: {name!r} is not a thousands separator (one of {known})")
        found += THOUSANDS[name]
    mark = "," if decimal_comma else "."
    if mark in found:
        raise fail(
            f"thousands: {mark!r} is the decimal mark of this field"
            + ("" if decimal_comma else " (set decimal_comma = true for 1.234,5)")
        )
    return "".join(dict.fromkeys(found))


def _mapping_syntax(source: str, syntax: str | None) -> str:
    if syntax is not None:
        if syntax not in ("toml", "yaml"):
            raise ValueError(f"syntax must be toml or yaml, not {syntax!r}")
        return syntax
    return "yaml" if source.lower().endswith((".yaml", ".yml")) else "toml"


def _load_yaml(text: str, source: str) -> dict[str, Any]:
    """A YAML mapping as the same nested dicts TOML gives; keys must be text (a number as a
    key of a translation table is read as its text)."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise MappingError(f"invalid YAML: {problem}", file=source, line=line) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MappingError(
            "invalid mapping: the YAML document must be a mapping of sections "
            "(source:, defaults:, fields:, translate:)",
            file=source,
        )

    _check_yaml_keys(yaml.compose(text), source)

    def keys(value: Any) -> Any:
        if isinstance(value, list):
            return [keys(v) for v in value]
        if not isinstance(value, dict):
            return value
        return {str(key): keys(inner) for key, inner in value.items()}

    result: dict[str, Any] = keys(data)
    return result


def _check_yaml_keys(node: Any, source: str, where: str = "") -> None:
    """Every key of a YAML mapping must be text (or a number, read as its text): ``no:`` is a
    boolean in YAML, so a translation table of country codes would lose Norway."""
    import yaml

    if isinstance(node, yaml.SequenceNode):
        for inner in node.value:
            _check_yaml_keys(inner, source, where)
        return
    if not isinstance(node, yaml.MappingNode):
        return
    text_tags = ("tag:yaml.org,2002:str", "tag:yaml.org,2002:int")
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag not in text_tags:
            shown = key.value if isinstance(key, yaml.ScalarNode) else "?"
            raise MappingError(
                f"the key {shown} is not text (in YAML, quote keys such as yes, no, on, off, "
                f'true, false and null: "{shown}")',
                file=source,
                line=key.start_mark.line + 1,
                key=where,
            )
        _check_yaml_keys(value, source, f"{where}.{key.value}" if where else key.value)


def parse_ingest_mapping(
    text: str,
    source: str = "<mapping>",
    *,
    catalogue: Catalogue | None = None,
    kind: str | None = None,
    syntax: str | None = None,
) -> IngestMapping:
    """Parse and check an ingest mapping written in TOML, or in YAML with the same structure
    (``syntax="yaml"``; by default YAML when ``source`` ends in ``.yaml`` or ``.yml``)."""
    catalogue = catalogue or default_catalogue()

    def fail(reason: str, key: str = "", line_key: str | None = None) -> MappingError:
        line = line_of(text, line_key or key.rpartition(".")[2]) if (line_key or key) else None
        return MappingError(reason, file=source, line=line, key=key)

    if _mapping_syntax(source, syntax) == "yaml":
        data = _load_yaml(text, source)
    else:
        data = load_toml(text, source)
    for key in data:
        if key not in _TOP_KEYS:
            raise fail(f"unknown section{suggest(key, sorted(_TOP_KEYS))}", key)
    declared_kind = data.get("kind", kind or "declarations")
    if declared_kind not in KINDS:
        raise fail(f"kind must be one of {', '.join(KINDS)}, got {declared_kind!r}", "kind")
    if kind is not None and declared_kind != kind:
        raise fail(f"the mapping is for {declared_kind}, not {kind}", "kind")
    source_table = data.get("source", {})
    defaults = data.get("defaults", {})
    tables = data.get("translate", {})
    fields = data.get("fields")
    for section, value in (("source", source_table), ("defaults", defaults), ("translate", tables)):
        if not isinstance(value, dict):
            raise fail(f"[{section}] must be a table", section)
    for key in source_table:
        if key not in _SOURCE_KEYS:
            raise fail(f"unknown key{suggest(key, sorted(_SOURCE_KEYS))}", f"source.{key}")
    for key in defaults:
        if key not in _DEFAULT_KEYS:
            raise fail(f"unknown key{suggest(key, sorted(_DEFAULT_KEYS))}", f"defaults.{key}")
    for name, table in tables.items():
        if not isinstance(table, dict) or not all(isinstance(v, str | int) for v in table.values()):
            raise fail("a translation table maps source values to codes (strings)",
                       f"translate.{name}")  # fmt: skip
    if not isinstance(fields, dict) or not fields:
        raise fail("no [fields] table: map at least the required fields", "fields")

    record_types = RECORD_FIELDS.get(declared_kind, {})
    rules: list[FieldRule] = []
    for target, spec in fields.items():
        key = f"fields.{target}"

        def rule_fail(reason: str, key: str = key, target: str = target) -> MappingError:
            return fail(reason, key, target)

        minimum = None
        if declared_kind == "declarations":
            field = catalogue.get(target)
            if field is None:
                hint = catalogue.suggest(target)
                raise rule_fail(
                    "not a catalogue field" + (f"; did you mean {hint!r}?" if hint else "")
                )
            field_type = field.type
            minimum = field.minimum
        else:
            if target not in record_types:
                raise rule_fail(
                    f"not a field of {declared_kind} (known: {', '.join(record_types)})"
                    + suggest(target, list(record_types))
                )
            field_type = record_types[target]
        if isinstance(spec, str):
            spec = {"column": spec}
        if not isinstance(spec, dict):
            raise rule_fail('write a column name, or a table such as { column = "X" }')
        for option in spec:
            if option not in _RULE_KEYS:
                raise rule_fail(f"unknown option {option!r}{suggest(option, sorted(_RULE_KEYS))}")
        column = spec.get("column")
        has_value = "value" in spec
        if (column is None) == (not has_value) or (column is not None and has_value):
            raise rule_fail("give either a column or a constant value")
        if column is not None and not isinstance(column, str):
            raise rule_fail("column must be a string")
        merged = {**defaults, **spec}
        formats = _strings(merged.get("date_format", "%Y-%m-%d"), "date_format", rule_fail)
        for fmt in formats:
            if "%" not in fmt:
                raise rule_fail(f"date_format {fmt!r} has no strptime directives such as %d")
        decimal_comma = merged.get("decimal_comma", False)
        if not isinstance(decimal_comma, bool):
            raise rule_fail("decimal_comma must be true or false")
        thousands = _thousands(merged.get("thousands", []), decimal_comma, rule_fail)
        translate_name = spec.get("translate")
        translate = None
        if translate_name is not None:
            if translate_name not in tables:
                raise rule_fail(
                    f"no translation table [translate.{translate_name}]"
                    + suggest(str(translate_name), list(tables))
                )
            translate = {str(k): str(v) for k, v in tables[translate_name].items()}
        on_unknown = spec.get("on_unknown", "keep")
        if on_unknown not in ("keep", "reject", "missing"):
            raise rule_fail("on_unknown must be keep, reject or missing")
        zfill = spec.get("zfill")
        if zfill is not None and (not isinstance(zfill, int) or zfill <= 0):
            raise rule_fail("zfill must be a positive integer")
        split = spec.get("split")
        if split is not None and target != "reasons":
            raise rule_fail("split applies to reasons only")
        rule = FieldRule(
            target=target,
            type=field_type,
            column=column,
            date_formats=formats,
            decimal_comma=decimal_comma,
            thousands=thousands,
            minimum=minimum,
            true_values=_strings(merged.get("true_values", list(_DEFAULT_TRUE)), "true_values",
                                 rule_fail),
            false_values=_strings(merged.get("false_values", list(_DEFAULT_FALSE)), "false_values",
                                  rule_fail),
            translate=translate,
            translate_name=translate_name,
            on_unknown=on_unknown,
            zfill=zfill,
            strip=bool(merged.get("strip", True)),
            upper=bool(spec.get("upper", False)),
            split=split,
        )  # fmt: skip
        if has_value:
            try:
                value = rule.converter()(spec["value"])
            except ConversionError as exc:
                raise rule_fail(f"constant value: {exc}") from None
            rule = attrs.evolve(rule, value=value)
        rules.append(rule)
    for required in REQUIRED[declared_kind]:
        if required not in fields:
            raise fail(f"the mapping must give {required!r}", "fields")
    fmt = source_table.get("format")
    if fmt is not None and fmt not in ("csv", "jsonl"):
        raise fail("format must be csv or jsonl", "source.format")
    delimiter = source_table.get("delimiter", ",")
    if delimiter in ("\\t", "tab"):
        delimiter = "\t"
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise fail("delimiter must be one character", "source.delimiter")
    empty = source_table.get("empty", "missing")
    if empty not in ("missing", "empty-string"):
        raise fail("empty must be 'missing' or 'empty-string'", "source.empty")
    max_cell = source_table.get("max_cell", DEFAULT_MAX_CELL)
    if isinstance(max_cell, bool) or not isinstance(max_cell, int) or max_cell < 1:
        raise fail("max_cell must be a positive whole number of characters", "source.max_cell")
    group_by = source_table.get("group_by")
    if group_by is not None and not isinstance(group_by, str):
        raise fail("group_by names one column", "source.group_by")
    return IngestMapping(
        kind=declared_kind,
        rules=tuple(rules),
        format=fmt,
        delimiter=delimiter,
        quotechar=source_table.get("quotechar", '"'),
        encoding=source_table.get("encoding", "utf-8"),
        group_by=group_by,
        items=source_table.get("items"),
        empty_is_missing=empty == "missing",
        max_cell=max_cell,
        file=source,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )


def load_ingest_mapping(
    path: str | os.PathLike[str], *, catalogue: Catalogue | None = None, kind: str | None = None
) -> IngestMapping:
    """Read and check an ingest mapping file: TOML, or YAML when it ends in ``.yaml``/``.yml``."""
    source = os.fspath(path)
    text = read_text(source)
    return parse_ingest_mapping(text, source, catalogue=catalogue, kind=kind)


def native_mapping(kind: str = "declarations") -> IngestMapping:
    """The mapping used without ``--mapping``: JSON Lines in the input format (declarations) —
    other kinds always need a mapping."""
    if kind != "declarations":
        raise MappingError(f"ingesting {kind} needs a --mapping file (see docs/ingest.md)")
    return IngestMapping(kind="declarations", rules=(), format=None, file=None, sha256="native")
