"""The field catalogue: which declaration and goods-item fields profiles may read, with types."""

from __future__ import annotations

import difflib
import enum
import functools
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from importlib import resources
from types import MappingProxyType
from typing import Any

import attrs

from riskengine import classifiers
from riskengine.classifiers import REASON_TABLES, Classifier, ReasonTableError, extend_reasons
from riskengine.diagnostics import RiskEngineError
from riskengine.semantics.numbers import MAX_INPUT_NUMBER

__all__ = [
    "MAX_COLUMN_BYTES",
    "SCOPES",
    "Catalogue",
    "CatalogueError",
    "Field",
    "FieldType",
    "catalogue_with",
    "default_catalogue",
    "load_catalogue",
]

#: The two scopes a field path starts with: the declaration header and the goods item.
SCOPES: tuple[str, ...] = ("declaration", "item")

_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TABLE_HEADER = re.compile(r"^\s*\[\[\s*field\s*\]\]")
_TOML_POSITION = re.compile(r"\(at line (\d+), column \d+\)")
_KEYS = frozenset({"path", "type", "description", "description_uk", "example", "box", "minimum"})
#: Header names that the input format already uses for something else.
_RESERVED_HEADER = frozenset({"items"})
#: The longest column name a field may have, in bytes: a field's column in the store is its path
#: without the scope, dots turned into underscores (``declaration.declarant.id`` →
#: ``declarant_id``), and PostgreSQL keeps 63 bytes of an identifier (NAMEDATALEN − 1), cutting
#: the rest off silently. SQLite and DuckDB have no practical limit; the strictest backend decides,
#: so a catalogue works on every store.
MAX_COLUMN_BYTES = 63


class CatalogueError(RiskEngineError):
    """A field catalogue is invalid. ``file``, ``line`` and ``field`` say where, when known."""

    def __init__(
        self,
        reason: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = reason
        self.file = file
        self.line = line
        self.field = field
        where = ""
        if file is not None:
            where = f"{file}:{line}: " if line is not None else f"{file}: "
        what = f"field {field!r}: " if field is not None else ""
        super().__init__(f"{where}{what}{reason}")


class FieldType(enum.Enum):
    """The type of a field's value."""

    STRING = "string"
    NUMBER = "number"
    DATE = "date"
    BOOLEAN = "boolean"
    CODE = "code"  # an identifier-like string from a code list: HS code, country, office...

    def __str__(self) -> str:
        return self.value

    def comparable_with(self, other: FieldType) -> bool:
        """Whether values of the two types may be compared: the same type, or string with code."""
        return self is other or (self in _TEXTUAL and other in _TEXTUAL)


_TEXTUAL = frozenset({FieldType.STRING, FieldType.CODE})


def _path_problem(path: str) -> str | None:
    """Why ``path`` is not a valid field path, or ``None`` when it is."""
    segments = path.split(".")
    if segments[0] not in SCOPES:
        return "the path must start with 'declaration.' or 'item.'"
    if len(segments) < 2:
        return "the path names a scope but no field"
    for segment in segments[1:]:
        if not _SEGMENT.match(segment):
            return (
                f"bad path segment {segment!r}: use letters, digits and '_',"
                " not starting with a digit"
            )
    if segments[0] == "declaration" and segments[1] in _RESERVED_HEADER:
        return f"'declaration.{segments[1]}' is reserved: the goods items are in 'item.'"
    column = "_".join(segments[1:])
    size = len(column.encode("utf-8"))
    if size > MAX_COLUMN_BYTES:
        return (
            f"the field's store column {column!r} would be {size} bytes long; column names "
            f"hold at most {MAX_COLUMN_BYTES} bytes (PostgreSQL's identifier limit): "
            "shorten the path"
        )
    return None


def _check_path(field: Field, attribute: attrs.Attribute[str], path: str) -> None:
    problem = _path_problem(path)
    if problem is not None:
        raise CatalogueError(problem, field=path)


@attrs.frozen
class Field:
    """One field of the declaration: its path (``item.hs_code``), type and descriptions."""

    path: str = attrs.field(validator=_check_path)
    type: FieldType
    description: str = ""
    description_uk: str = ""
    example: str | None = None
    #: The box (графа) of the declaration form where the value is declared, e.g. "33".
    box: str | None = None
    #: The smallest value a number field takes in input data (``0`` for masses, values and
    #: counts); a declaration or an ingested row with a smaller value is rejected.
    minimum: float | None = None

    @property
    def scope(self) -> str:
        """``"declaration"`` for header fields, ``"item"`` for goods-item fields."""
        return self.path.partition(".")[0]

    @property
    def name(self) -> str:
        """The path without its scope: ``"declarant.id"`` for ``declaration.declarant.id``."""
        return self.path.partition(".")[2]


def _freeze(fields: Mapping[str, Field]) -> Mapping[str, Field]:
    return MappingProxyType(dict(fields))


def _conflicts(fields: Mapping[str, Field]) -> list[tuple[str, str]]:
    """Pairs (field, other) where ``other`` is nested under ``field``: one cannot be both."""
    found = []
    for path in fields:
        parts = path.split(".")
        for cut in range(2, len(parts)):
            prefix = ".".join(parts[:cut])
            if prefix in fields:
                found.append((prefix, path))
    return found


def _appendix_3() -> Classifier:
    return classifiers.reasons()


@attrs.frozen
class Catalogue:
    """The known fields by path, in file order. Immutable; ``extend`` returns a new catalogue.

    ``reasons``: the non-completion reasons that outcomes and profiles may use — appendix 3,
    extended by the ``[[reason]]`` tables of a catalogue file (a service's own classifier)."""

    fields: Mapping[str, Field] = attrs.field(converter=_freeze)
    reasons: Classifier = attrs.field(factory=_appendix_3, eq=False, repr=False, kw_only=True)

    def __attrs_post_init__(self) -> None:
        for path, field in self.fields.items():
            if path != field.path:
                raise CatalogueError(f"catalogue key {path!r} differs from the field's path")
        for group, nested in _conflicts(self.fields):
            raise CatalogueError(
                f"{nested!r} is nested under it: a field cannot also be a group of fields",
                field=group,
            )

    def __hash__(self) -> int:
        return hash(tuple(self.fields))

    def __len__(self) -> int:
        return len(self.fields)

    def __iter__(self) -> Iterator[Field]:
        return iter(self.fields.values())

    def __contains__(self, path: object) -> bool:
        return path in self.fields

    def get(self, path: str) -> Field | None:
        """The field with this path, or ``None`` when the catalogue has no such field."""
        return self.fields.get(path)

    def scope_fields(self, scope: str) -> list[Field]:
        """The fields of one scope (``"declaration"`` or ``"item"``), in catalogue order."""
        return [f for f in self.fields.values() if f.scope == scope]

    def suggest(self, path: str) -> str | None:
        """The known path closest to ``path``, for "did you mean"; ``None`` if nothing is close.

        Names are compared within the same scope first (``item.hs_cod`` → ``item.hs_code``), then
        in the other scope (``item.declarant.aeo`` → ``declaration.declarant.aeo``).
        """
        if path in self.fields:
            return path
        scope, _, name = path.partition(".")
        if scope in SCOPES and name:
            ordered = [scope] + [s for s in SCOPES if s != scope]
            for candidate_scope in ordered:
                found = _closest(name, {f.name: f.path for f in self.scope_fields(candidate_scope)})
                if found is not None:
                    return found
            return None
        found = _closest(path, {p: p for p in self.fields})
        if found is not None:
            return found
        # No scope at all ("hs_code", "declarant.aeo"): compare with the names.
        return _closest(path, {f.name: f.path for f in self.fields.values()})

    def extend(self, other: Catalogue) -> Catalogue:
        """A new catalogue: these fields plus ``other``'s; a field of ``other`` replaces the one
        with the same path entirely (type, descriptions, example, box) and keeps its position."""
        merged = dict(self.fields)
        merged.update(other.fields)
        reasons = self.reasons
        if other.reasons is not reasons and other.reasons is not classifiers.reasons():
            reasons = (
                other.reasons
                if reasons is classifiers.reasons()
                else attrs.evolve(
                    reasons,
                    entries=MappingProxyType(
                        dict(sorted({**reasons.entries, **other.reasons.entries}.items()))
                    ),
                )
            )
        return Catalogue(merged, reasons=reasons)


def _closest(word: str, candidates: Mapping[str, str]) -> str | None:
    """The value of the candidate whose key is closest to ``word`` (case-insensitively)."""
    by_lower = {key.lower(): value for key, value in candidates.items()}
    matches = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[matches[0]] if matches else None


def _table_lines(text: str, name: str = "field") -> list[int]:
    """1-based line numbers of the ``[[name]]`` headers, in order."""
    header = _TABLE_HEADER if name == "field" else re.compile(rf"^\s*\[\[\s*{name}\s*\]\]")
    return [n for n, line in enumerate(text.splitlines(), start=1) if header.match(line)]


def _text(value: Any) -> str:
    """A TOML scalar as text: examples and boxes may be written as numbers or dates."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parse(text: str, source: str) -> Catalogue:
    """Read a catalogue in the ``[[field]]`` layout; ``source`` names the file in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_POSITION.search(str(exc))
        line = int(match.group(1)) if match else None
        raise CatalogueError(f"invalid TOML: {exc}", file=source, line=line) from None
    unknown = sorted(set(data) - {"field", *REASON_TABLES})
    if unknown:
        raise CatalogueError(
            f"unknown top-level key {unknown[0]!r}: fields are [[field]] tables, a service's "
            "own non-completion reasons [[reason]] (and [[reason_group]]) tables",
            file=source,
        )
    try:
        reasons = extend_reasons(
            classifiers.reasons(),
            data.get("reason_group"),
            data.get("reason"),
            {name: _table_lines(text, name) for name in REASON_TABLES},
        )
    except ReasonTableError as exc:
        raise CatalogueError(exc.reason, file=source, line=exc.line) from None
    tables = data.get("field", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise CatalogueError("'field' must be an array of tables: write [[field]]", file=source)
    lines = _table_lines(text)
    fields: dict[str, Field] = {}
    for index, table in enumerate(tables):
        line = lines[index] if index < len(lines) else None
        field = _field(table, source, line, index)
        if field.path in fields:
            raise CatalogueError("duplicate path", file=source, line=line, field=field.path)
        fields[field.path] = field
    try:
        return Catalogue(fields, reasons=reasons)
    except CatalogueError as exc:
        line = lines[list(fields).index(exc.field)] if exc.field in fields else None
        raise CatalogueError(exc.reason, file=source, line=line, field=exc.field) from None


def _field(table: Mapping[str, Any], source: str, line: int | None, index: int) -> Field:
    path = table.get("path")
    if not isinstance(path, str):
        what = "has no 'path'" if path is None else "has a 'path' that is not a string"
        raise CatalogueError(f"field #{index + 1} {what}", file=source, line=line)

    def fail(reason: str) -> CatalogueError:
        return CatalogueError(reason, file=source, line=line, field=path)

    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise fail(f"unknown key {unknown[0]!r} (known keys: {', '.join(sorted(_KEYS))})")
    problem = _path_problem(path)
    if problem is not None:
        raise fail(problem)
    type_name = table.get("type")
    if type_name is None:
        raise fail("no 'type' (one of: " + ", ".join(t.value for t in FieldType) + ")")
    try:
        field_type = FieldType(type_name)
    except ValueError:
        names = [t.value for t in FieldType]
        hint = ""
        close = difflib.get_close_matches(str(type_name).lower(), names, n=1)
        if close:
            hint = f"; did you mean {close[0]!r}?"
        raise fail(f"unknown type {type_name!r} (one of: {', '.join(names)}){hint}") from None
    for key in ("description", "description_uk"):
        if not isinstance(table.get(key, ""), str):
            raise fail(f"{key!r} must be a string")
    for key in ("example", "box"):
        if isinstance(table.get(key), dict | list):
            raise fail(f"{key!r} must be a single value")
    example = table.get("example")
    box = table.get("box")
    minimum = table.get("minimum")
    if minimum is not None:
        if field_type is not FieldType.NUMBER:
            raise fail("'minimum' applies to number fields only")
        if isinstance(minimum, bool) or not isinstance(minimum, int | float):
            raise fail("'minimum' must be a number")
        if not -MAX_INPUT_NUMBER <= minimum <= MAX_INPUT_NUMBER:
            raise fail("'minimum' must be a finite number of at most 1e15 in magnitude")
    return Field(
        path=path,
        type=field_type,
        description=table.get("description", ""),
        description_uk=table.get("description_uk", ""),
        example=None if example is None else _text(example),
        box=None if box is None else _text(box),
        minimum=minimum,
    )


@functools.cache
def default_catalogue() -> Catalogue:
    """The built-in catalogue shipped in ``riskengine/data/fields.toml`` (loaded once)."""
    resource = resources.files("riskengine").joinpath("data", "fields.toml")
    return _parse(resource.read_text(encoding="utf-8"), "riskengine/data/fields.toml")


def load_catalogue(path: str | os.PathLike[str]) -> Catalogue:
    """A user catalogue from a TOML file in the ``[[field]]`` layout of the built-in one."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as stream:
            text = stream.read().decode("utf-8")
    except OSError as exc:
        raise CatalogueError(f"cannot read the file: {exc.strerror or exc}", file=source) from None
    except UnicodeDecodeError as exc:
        raise CatalogueError(f"not UTF-8 text: {exc.reason}", file=source) from None
    return _parse(text, source)


def catalogue_with(extra: str | os.PathLike[str] | None) -> Catalogue:
    """The built-in catalogue, extended by the user catalogue ``extra`` when one is given."""
    if extra is None:
        return default_catalogue()
    user = load_catalogue(extra)
    try:
        return default_catalogue().extend(user)
    except CatalogueError as exc:
        raise CatalogueError(exc.reason, file=os.fspath(extra), field=exc.field) from None
