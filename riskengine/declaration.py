"""Declarations as input data: the JSON shape, its schema, and normalisation to flat records."""

from __future__ import annotations

import datetime
import decimal
import functools
import json
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from riskengine.catalogue import Catalogue, Field, FieldType, default_catalogue
from riskengine.diagnostics import RiskEngineError
from riskengine.semantics.numbers import MAX_INPUT_NUMBER, InputNumberError, input_number

__all__ = [
    "Declaration",
    "DeclarationError",
    "JsonInputError",
    "declaration_json_schema",
    "field_reader",
    "load_json",
    "normalise_declaration",
    "schema_json",
    "shape_error",
]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_INTEGER = re.compile(r"[+-]?[0-9]+\Z")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")


class DeclarationError(RiskEngineError):
    """A declaration field holds a value of the wrong type.

    ``field`` is the catalogue path (``item.net_mass``), ``item`` the 1-based position of the goods
    item in the ``items`` list (``None`` for the header), ``reason`` what is wrong.
    """

    def __init__(self, field: str, item: int | None, reason: str) -> None:
        self.field = field
        self.item = item
        self.reason = reason
        where = f"item {item}, {field}" if item is not None else field
        super().__init__(f"{where}: {reason}")


class JsonInputError(RiskEngineError):
    """JSON input that cannot be read (the reason is the message): not JSON, ``NaN`` or
    ``Infinity``, an integer too long to convert, nesting deeper than the parser goes. ``line``
    and ``column`` (1-based) say where, for a syntax error."""

    def __init__(self, reason: str, line: int | None = None, column: int | None = None) -> None:
        self.reason = reason
        self.line = line
        self.column = column
        super().__init__(reason)


def _json_float(text: str) -> float | decimal.Decimal:
    """A JSON number with a fraction or exponent: a float, or (beyond the float range, ``1e999``)
    the exact ``Decimal``, so that the input rule says it is out of range, not infinite."""
    value = float(text)
    return value if value - value == 0 else decimal.Decimal(text)


def _json_constant(name: str) -> Any:
    raise JsonInputError(f"not valid JSON: {name} is not a JSON value")


def load_json(text: str | bytes) -> Any:
    """Parse one JSON document (a declaration, one line of a batch) without ever raising anything
    but :class:`JsonInputError`: ``NaN``/``Infinity`` are refused, ``1e999`` is read as a
    ``Decimal`` (the normaliser then says it is out of range), an integer longer than Python
    converts (4,300 digits) and arrays or objects nested deeper than the parser goes (about 1,000
    levels) are errors that say so."""
    try:
        return json.loads(text, parse_float=_json_float, parse_constant=_json_constant)
    except json.JSONDecodeError as exc:
        raise JsonInputError(f"not valid JSON: {exc.msg}", exc.lineno, exc.colno) from None
    except RecursionError:
        raise JsonInputError("not readable: arrays or objects nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise JsonInputError(f"not valid UTF-8 text: {exc.reason}") from None
    except ValueError as exc:  # int() refuses thousands of digits (sys.set_int_max_str_digits)
        if "digits" not in str(exc):
            raise JsonInputError(f"not valid JSON: {exc}") from None
        raise JsonInputError(
            f"an integer of more than {sys.get_int_max_str_digits():,} digits is out of range "
            "(a number may be at most 1e15 in magnitude)"
        ) from None


@attrs.frozen
class Declaration:
    """A normalised declaration: flat header and item records keyed by field name.

    ``header["declarant.id"]`` holds ``declaration.declarant.id``; ``items[0]["hs_code"]`` holds
    ``item.hs_code`` of the first goods item. Missing values are absent keys. Values are ``str``
    (string and code fields), ``int`` or ``float`` (number), ``datetime.date`` (date) and ``bool``
    (boolean). ``raw`` is the input as given, extra keys included; it takes no part in equality.
    Treat the mappings as read-only.
    """

    header: Mapping[str, Any]
    items: tuple[Mapping[str, Any], ...] = ()
    id: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)

    def get(self, path: str, item_index: int | None = None) -> Any:
        """The value at ``path`` or ``None`` when missing.

        ``item_index`` is the 0-based index into ``items`` for ``item.`` paths; with ``None`` an
        item path reads as missing. Header paths ignore it.
        """
        scope, _, name = path.partition(".")
        if scope == "declaration":
            return self.header.get(name)
        if scope == "item":
            if item_index is None:
                return None
            return self.items[item_index].get(name)
        raise ValueError(f"not a field path: {path!r} (expected 'declaration.' or 'item.')")


# --- the JSON schema ---------------------------------------------------------------------------


def _value_schema(field: Field) -> dict[str, Any]:
    schema: dict[str, Any]
    match field.type:
        case FieldType.NUMBER:
            schema = {
                "type": ["number", "null"],
                "minimum": -MAX_INPUT_NUMBER if field.minimum is None else field.minimum,
                "maximum": MAX_INPUT_NUMBER,
            }
        case FieldType.DATE:
            schema = {"type": ["string", "null"], "format": "date", "pattern": DATE_PATTERN}
        case FieldType.BOOLEAN:
            schema = {"type": ["boolean", "null"]}
        case FieldType.STRING | FieldType.CODE:
            schema = {"type": ["string", "null"]}
    schema["title"] = field.path
    if field.description:
        schema["description"] = field.description
    if field.example is not None:
        schema["examples"] = [_example(field)]
    return schema


def _example(field: Field) -> Any:
    """The catalogue's example (kept as text there) as a JSON value of the field's type."""
    assert field.example is not None
    try:
        if field.type is FieldType.NUMBER:
            return _number(field.example, field.minimum)
        if field.type is FieldType.BOOLEAN:
            return _boolean(field.example)
    except _Invalid:
        pass  # a user catalogue's example that does not fit its type: show it as written
    return field.example


def _object_schema(fields: list[Field], description: str) -> dict[str, Any]:
    """An open object whose nested properties follow the dotted names of ``fields``."""
    root: dict[str, Any] = {
        "type": "object",
        "description": description,
        "additionalProperties": True,
        "properties": {},
    }
    for field in fields:
        *groups, last = field.name.split(".")
        node = root
        for group in groups:
            node = node["properties"].setdefault(
                group,
                {"type": ["object", "null"], "additionalProperties": True, "properties": {}},
            )
        node["properties"][last] = _value_schema(field)
    return root


def declaration_json_schema(catalogue: Catalogue | None = None) -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of the declaration input, derived from the catalogue.

    Every field is optional and may be ``null``; objects accept extra properties.
    """
    catalogue = catalogue or default_catalogue()
    schema = _object_schema(
        catalogue.scope_fields("declaration"),
        "A customs declaration: header fields, nested by path, and the list of goods items.",
    )
    item = _object_schema(catalogue.scope_fields("item"), "One goods item of the declaration.")
    schema["properties"]["items"] = {
        "type": ["array", "null"],
        "description": "The goods items, in order: the first is item 1.",
        "items": item,
    }
    return {"$schema": SCHEMA_DIALECT, "title": "Customs declaration", **schema}


def schema_json(catalogue: Catalogue | None = None) -> str:
    """The schema as the text of ``docs/declaration.schema.json``: sorted keys, 2-space indent."""
    text = json.dumps(
        declaration_json_schema(catalogue), indent=2, sort_keys=True, ensure_ascii=False
    )
    return text + "\n"


# --- normalisation -----------------------------------------------------------------------------


class _Invalid(Exception):
    """A value does not fit its field's type; the caller adds the field and item."""


def _shown(value: Any) -> str:
    """A value as users wrote it, for messages: JSON spelling, long text cut."""
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return json.dumps(text, ensure_ascii=False)
    if isinstance(value, bool | int | float):
        return (
            json.dumps(value)
            if not isinstance(value, int) or abs(value) < 10**20
            else ("a long integer")
        )
    if isinstance(value, decimal.Decimal):
        text = str(value)
        return text if len(text) <= 40 else text[:37] + "..."
    return f"a {type(value).__name__} ({value!r})"


def _number(value: Any, minimum: float | None = None) -> int | float:
    """A number field's value by the one input rule (:func:`input_number`): finite, at most
    1e15 in magnitude, not below the field's ``minimum``."""
    if isinstance(value, str):
        text = value.strip()
        if _INTEGER.match(text):
            number: int | float | decimal.Decimal = (
                int(text) if len(text) <= 20 else (decimal.Decimal(text))
            )
        elif _NUMBER.match(text):
            number = decimal.Decimal(text)
        else:
            hint = ""
            if "," in text and _NUMBER.match(text.replace(",", ".", 1)):
                hint = " (the decimal separator is a dot)"
            raise _Invalid(f"expected a number, got {_shown(value)}{hint}")
        shown = _shown(value)
    elif isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
        raise _Invalid(f"expected a number, got {_shown(value)}")
    else:
        number, shown = value, None
    try:
        return input_number(number, minimum=minimum, shown=shown)
    except InputNumberError as exc:
        raise _Invalid(str(exc)) from None


def _number_reader(minimum: float | None) -> Callable[[Any], int | float]:
    """:func:`_number` for a field, with the common case (an ``int`` or ``float`` within the
    input rule's bounds) read inline; anything else, and every refusal, goes through
    :func:`_number` and so through :func:`input_number`."""
    low = float(-MAX_INPUT_NUMBER if minimum is None else minimum)
    high = float(MAX_INPUT_NUMBER)

    def read(value: Any) -> int | float:
        kind = type(value)
        if (kind is float or kind is int) and low <= value <= high:
            plain: int | float = value
            return plain
        return _number(value, minimum)

    return read


def _date(value: Any) -> datetime.date:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        if _DATE.match(text):
            try:
                return datetime.date.fromisoformat(text)
            except ValueError:
                raise _Invalid(f"no such date: {_shown(value)}") from None
    raise _Invalid(f"expected a date YYYY-MM-DD, got {_shown(value)}")


_TRUTH = {"true": True, "false": False}


def _boolean(value: Any) -> bool:
    if value is True or value is False:
        return value
    if isinstance(value, str):
        truth = _TRUTH.get(value.strip().lower())
        if truth is not None:
            return truth
    raise _Invalid(f"expected true or false, got {_shown(value)}")


def _text(what: str) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if type(value) is str or isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise _Invalid(f"expected {what}, got {_shown(value)}")

    return convert


_CONVERTERS: dict[FieldType, Callable[[Any], Any]] = {
    FieldType.NUMBER: _number_reader(None),
    FieldType.DATE: _date,
    FieldType.BOOLEAN: _boolean,
    FieldType.STRING: _text("a string"),
    FieldType.CODE: _text("a code (text)"),
}


@attrs.frozen
class _Step:
    """How to read one field: its flat name, the keys down to it, and its converter."""

    path: str
    name: str
    keys: tuple[str, ...]
    convert: Callable[[Any], Any]


def _converter(field: Field) -> Callable[[Any], Any]:
    """The conversion of one field's values (raises :class:`_Invalid`)."""
    if field.type is FieldType.NUMBER and field.minimum is not None:
        return _number_reader(field.minimum)
    return _CONVERTERS[field.type]


def field_reader(field: Field) -> Callable[[Any, int | None], Any]:
    """The conversion :func:`normalise_declaration` applies to a value of ``field`` (not
    ``None``), as a function of the value and the 1-based item number (``None`` for the header):
    the converted value, or :class:`DeclarationError` naming the field and item with the same
    reason. The compiled readers (``riskengine.evaluator.inputs``) call it for every value they
    do not read inline, so that both say the same about the same value."""
    convert = _converter(field)
    path = field.path

    def read(value: Any, item: int | None) -> Any:
        try:
            return convert(value)
        except _Invalid as exc:
            raise DeclarationError(path, item, str(exc)) from None

    return read


def shape_error(where: str, item: int | None, expected: str, value: Any) -> DeclarationError:
    """The error for a value of the wrong shape: ``where`` (``declaration``, ``items``, ``item``,
    a group such as ``declaration.declarant``) is not ``expected`` ("an object", "a list")."""
    return DeclarationError(where, item, f"expected {expected}, got {_shown(value)}")


@functools.lru_cache(maxsize=32)
def _plan(catalogue: Catalogue) -> tuple[tuple[_Step, ...], tuple[_Step, ...]]:
    """The reading steps of the header and of an item, built once per catalogue."""

    def steps(scope: str) -> tuple[_Step, ...]:
        return tuple(
            _Step(f.path, f.name, tuple(f.name.split(".")), _converter(f))
            for f in catalogue.scope_fields(scope)
        )

    return steps("declaration"), steps("item")


def _read(
    source: Mapping[str, Any], steps: tuple[_Step, ...], scope: str, item: int | None
) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for step in steps:
        keys = step.keys
        if len(keys) == 1:
            node = source.get(keys[0])
        else:
            node = source
            last = len(keys) - 1
            for depth, key in enumerate(keys):
                node = node.get(key)
                if node is None:
                    break
                if depth < last and not isinstance(node, Mapping):
                    group = ".".join((scope, *keys[: depth + 1]))
                    raise shape_error(group, item, "an object", node)
        if node is None:
            continue
        try:
            record[step.name] = step.convert(node)
        except _Invalid as exc:
            raise DeclarationError(step.path, item, str(exc)) from None
    return record


def normalise_declaration(
    raw: Mapping[str, Any], catalogue: Catalogue | None = None
) -> Declaration:
    """Check the types of a declaration given as plain data (parsed JSON) and flatten it.

    Numbers may be ints, floats, ``Decimal``s or numeric strings with a dot; they must be finite,
    at most 1e15 in magnitude and not below the field's catalogue ``minimum`` (0 for masses,
    values and counts: :func:`riskengine.semantics.numbers.input_number`); dates
    ``datetime.date`` or ``YYYY-MM-DD``; booleans ``true``/``false`` (also as strings); strings
    and codes text (an int is accepted and turned into text). A missing or ``null`` value is
    absent, never an error; keys the catalogue does not know are kept in ``raw`` and otherwise
    ignored.

    Raises ``DeclarationError`` naming the field path and the 1-based item number.
    """
    catalogue = catalogue or default_catalogue()
    if not isinstance(raw, Mapping):
        raise shape_error("declaration", None, "an object", raw)
    header_steps, item_steps = _plan(catalogue)
    header = _read(raw, header_steps, "declaration", None)
    raw_items = raw.get("items")
    if raw_items is None:
        raw_items = []
    elif not isinstance(raw_items, list | tuple):
        raise shape_error("items", None, "a list", raw_items)
    items = []
    for position, raw_item in enumerate(raw_items, start=1):
        if not isinstance(raw_item, Mapping):
            raise shape_error("item", position, "an object", raw_item)
        items.append(_read(raw_item, item_steps, "item", position))
    ident = header.get("id")
    if ident is None and "declaration.id" not in catalogue:
        raw_id = raw.get("id")
        ident = None if raw_id is None else str(raw_id)
    return Declaration(header=header, items=tuple(items), id=ident, raw=raw)


if __name__ == "__main__":  # regenerate docs/declaration.schema.json
    print(schema_json(), end="")
