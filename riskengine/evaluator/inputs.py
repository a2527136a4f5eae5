"""The input path of a profile set: plain data or JSON text → the declaration the set reads.

``normalise_declaration`` (``riskengine/declaration.py``) reads every field of the catalogue,
about fifty, for the header and for every goods item. A loaded profile set reads far fewer: the
fields its profiles refer to. :class:`InputReader` is compiled once per profile set (lazily, on
the first declaration given as data) into one generated Python function, like the ingest's row
converters (``riskengine/ingest/convert.py``), that reads only

* the fields the profiles refer to — indicators and their ``unless``, exceptions, the degree,
  control conditions and messages (the profile's and every fill's), history subjects
  (:func:`profile_fields`);
* the fields the engine itself reads: ``declaration.id`` (the result's id),
  ``declaration.date`` (the as-of date when none is given), ``declaration.office`` (regional
  fills) and ``declaration.regime`` (:data:`ENGINE_FIELDS`), when the catalogue has them.

Each such field is converted exactly as ``normalise_declaration`` converts it: the common case
(text for a text field, an ``int``/``float`` within the input range for a number, ``true`` /
``false``, a date already seen) inline, anything else through
:func:`riskengine.declaration.field_reader`, the normaliser's own conversion, which returns the
same value or raises the same :class:`DeclarationError` (field, item, reason). Structure is
checked as before: the declaration and every goods item must be objects, ``items`` a list, a
group such as ``declarant`` an object when a field read from it is present. Fields no profile
reads are **not read**: they are neither converted nor checked, and the records hold only the
fields read (``Declaration.raw`` keeps the input as given). A bad value in such a field cannot
change a decision; to check every catalogue field anyway, normalise with
``normalise_declaration`` and score the :class:`Declaration`.

JSON text is decoded with ``orjson`` when it is installed (a dependency of riskengine; about
five times faster than the standard library here) and with the standard library otherwise. The
two agree on every document both accept, except that orjson reads an integer beyond 64 bits as
a float; whenever orjson refuses a document or the reader refuses what orjson decoded, the
document is decoded again by :func:`riskengine.declaration.load_json` and read again, so that
what is accepted and every error message are exactly the standard library's
(``tests/test_evaluator_inputs.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from riskengine import model as m
from riskengine.catalogue import Catalogue, Field, FieldType
from riskengine.declaration import (
    Declaration,
    DeclarationError,
    field_reader,
    load_json,
    shape_error,
)
from riskengine.evaluator.inputs_typed import make_declaration, typed_decoder
from riskengine.semantics.numbers import MAX_INPUT_NUMBER

try:  # the fast decoder; the standard library reads the same documents, slower
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a dependency; tests force the fallback
    _orjson = None  # type: ignore[assignment]

__all__ = [
    "ENGINE_FIELDS",
    "InputReader",
    "dump_json",
    "json_decoder",
    "profile_fields",
]

#: Fields the engine reads whatever the profiles read: the result's id, the default as-of date,
#: the office that chooses regional fills, and the regime (random selection per office and
#: regime). Read only when the catalogue has them.
ENGINE_FIELDS: tuple[str, ...] = (
    "declaration.id",
    "declaration.date",
    "declaration.office",
    "declaration.regime",
)

#: The types of an input's own ``id`` (a catalogue without ``declaration.id``) that orjson and
#: the standard library decode alike (any other: a number or a container, read again by the
#: standard library, whose ``str`` of it is the id).
_TEXT_IDS = (str, type(None), bool)

#: How many distinct date texts a reader remembers (then it starts again).
DATE_CACHE = 4096


def json_decoder() -> str:
    """The JSON decoder in use: ``"orjson"`` or ``"json"`` (the standard library)."""
    return "json" if _orjson is None else "orjson"


def _expression_fields(expr: m.Expr | None, out: set[str]) -> None:
    if expr is None:
        return
    for node in m.walk(expr):
        if isinstance(node, m.FieldRef):
            out.add(node.path)
        elif isinstance(node, m.InList) and isinstance(node.values, m.FieldRef):
            out.add(node.values.path)
        elif isinstance(node, m.StartsWith) and isinstance(node.prefixes, m.FieldRef):
            out.add(node.prefixes.path)


def _message_fields(message: m.Message | None, out: set[str]) -> None:
    if message is not None:
        out.update(p.path for p in message.parts if isinstance(p, m.FieldRef))


def profile_fields(profile: m.Profile, fills: Iterable[m.Fill] = ()) -> set[str]:
    """Every field path (``declaration.…``, ``item.…``; regional parameters too) that scoring
    ``profile`` with ``fills`` may read: its expressions, messages, control conditions and
    history subjects. ``tests/test_evaluator_inputs.py`` checks it against a walk of the whole
    model, so that a new place a field can appear in is not missed."""
    out: set[str] = set()
    for ind in profile.indicators:
        _expression_fields(ind.condition, out)
        _expression_fields(ind.unless, out)
    for exc in profile.exceptions:
        _expression_fields(exc.condition, out)
    _expression_fields(profile.degree, out)
    for control in profile.controls:
        _expression_fields(control.condition, out)
    _message_fields(profile.message, out)
    if profile.history is not None:
        out.update(s.field.path for s in profile.history.subjects)
    for fill in fills:
        _message_fields(fill.message, out)
        for control in fill.controls:
            _expression_fields(control.condition, out)
    return out


# --- code generation ---------------------------------------------------------------------------


class _Writer:
    """The generated function's lines and the names it uses."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.env: dict[str, Any] = {
            "Mapping": Mapping,
            "dict": dict,
            "type": type,
            "isinstance": isinstance,
            "list": list,
            "tuple": tuple,
            "str": str,
            "int": int,
            "float": float,
            "Declaration": make_declaration,
            "_shape": shape_error,
        }
        self.count = 0

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def name(self, prefix: str, value: Any) -> str:
        self.count += 1
        key = f"{prefix}{self.count}"
        self.env[key] = value
        return key


def _value(
    w: _Writer, depth: int, field: Field, target: str, item: str, dates: str, v: str = "v"
) -> None:
    """Convert ``v`` (not ``None``) into ``target`` (``record[name]``, or a local): inline when
    common, else through the normaliser's own conversion."""
    slow = w.name("C", field_reader(field))
    match field.type:
        case FieldType.STRING | FieldType.CODE:
            w.emit(depth, f"{target} = {v} if type({v}) is str else {slow}({v}, {item})")
        case FieldType.NUMBER:
            low = float(-MAX_INPUT_NUMBER if field.minimum is None else field.minimum)
            high = float(MAX_INPUT_NUMBER)
            w.emit(depth, f"t = type({v})")
            w.emit(
                depth,
                f"{target} = {v} if (t is float or t is int) and {low!r} <= {v} <= {high!r} "
                f"else {slow}({v}, {item})",
            )
        case FieldType.BOOLEAN:
            w.emit(depth, f"{target} = {v} if {v} is True or {v} is False else {slow}({v}, {item})")
        case FieldType.DATE:
            w.emit(depth, f"if type({v}) is str:")
            w.emit(depth + 1, f"x = {dates}.get({v})")
            w.emit(depth + 1, "if x is None:")
            w.emit(depth + 2, f"x = {slow}({v}, {item})")
            w.emit(depth + 2, f"if len({dates}) >= {DATE_CACHE}:")
            w.emit(depth + 3, f"{dates}.clear()")
            w.emit(depth + 2, f"{dates}[{v}] = x")
            w.emit(depth + 1, f"{target} = x")
            w.emit(depth, "else:")
            w.emit(depth + 1, f"{target} = {slow}({v}, {item})")


def _scope(
    w: _Writer,
    depth: int,
    fields: Sequence[Field],
    source: str,
    record: str,
    item: str,
    scope: str,
    dates: str,
    into: Callable[[Field], str] | None = None,
    native: bool = False,
) -> None:
    """Read ``fields`` (one scope, in catalogue order) from the mapping ``source`` into the
    dict ``record`` (with ``into``: each into the local variable ``into(field)``, ``None``
    when absent); a group (``declarant`` of ``declarant.id``) is fetched and checked once,
    just before the first field read through it, where the normaliser checks it.

    ``native``: Cython source for :mod:`riskengine.evaluator.native` (with ``into`` only):
    ``source`` and every group are read as exact dicts (a group of another type raises
    ``_NotNative``: the Python function reads it), and the tests are written the way Cython
    compiles them to C (``type(v)``, a float's ``<double>``)."""

    def get(mapping: str, key: str) -> str:
        return f"(<dict>{mapping}).get({key})" if native else f"{mapping}.get({key})"

    groups: dict[tuple[str, ...], str] = {}
    for field in fields:
        keys = field.name.split(".")
        parent = source
        for cut in range(1, len(keys)):
            prefix = tuple(keys[:cut])
            local = groups.get(prefix)
            if local is None:
                local = f"g{len(groups)}"
                groups[prefix] = local
                key = repr(prefix[-1])
                fetch = (
                    get(parent, key)
                    if parent == source
                    else f"None if {parent} is None else {get(parent, key)}"
                )
                w.emit(depth, f"{local} = {fetch}")
                where = repr(".".join((scope, *prefix)))
                if native:
                    w.emit(depth, f"if {local} is not None and type({local}) is not dict:")
                    w.emit(depth + 1, "raise _NotNative")
                else:
                    w.emit(
                        depth,
                        f"if {local} is not None and type({local}) is not dict "
                        f"and not isinstance({local}, Mapping):",
                    )
                    w.emit(depth + 1, f"raise _shape({where}, {item}, 'an object', {local})")
            parent = local
        last = repr(keys[-1])
        v = "v" if into is None else into(field)
        if parent == source:
            w.emit(depth, f"{v} = {get(source, last)}")
        else:
            w.emit(depth, f"{v} = None if {parent} is None else {get(parent, last)}")
        if into is not None:
            _local_value(w, depth, field, v, item, dates, native)
            continue
        w.emit(depth, f"if {v} is not None:")
        _value(w, depth + 1, field, f"{record}[{field.name!r}]", item, dates, v)


def _local_value(
    w: _Writer, depth: int, field: Field, v: str, item: str, dates: str, native: bool = False
) -> None:
    """Convert the local ``v`` (``None`` when absent) in place, as :func:`_value` converts a
    value: the common case costs one test (``native``: as :func:`_scope` says)."""
    cls = f"type({v})" if native else f"{v}.__class__"
    match field.type:
        case FieldType.STRING | FieldType.CODE:
            slow = w.name("C", field_reader(field))
            w.emit(depth, f"if {cls} is not str and {v} is not None:")
            w.emit(depth + 1, f"{v} = {slow}({v}, {item})")
        case FieldType.NUMBER:
            low = float(-MAX_INPUT_NUMBER if field.minimum is None else field.minimum)
            high = float(MAX_INPUT_NUMBER)
            x = f"<double>{v}" if native else v  # a float's C double: the same comparisons
            w.emit(depth, f"if {cls} is not float or not {low!r} <= {x} <= {high!r}:")
            w.emit(depth + 1, f"if {v} is not None:")
            _value(w, depth + 2, field, v, item, dates, v)
        case FieldType.BOOLEAN:
            slow = w.name("C", field_reader(field))
            w.emit(depth, f"if {v} is not True and {v} is not False and {v} is not None:")
            w.emit(depth + 1, f"{v} = {slow}({v}, {item})")
        case FieldType.DATE:
            w.emit(depth, f"if {v} is not None:")
            _value(w, depth + 1, field, v, item, dates, v)


def _generate(catalogue: Catalogue, paths: frozenset[str]) -> tuple[str, dict[str, Any]]:
    w = _Writer()
    dates = w.name("DATES", {})
    header = [f for f in catalogue.scope_fields("declaration") if f.path in paths]
    items = [f for f in catalogue.scope_fields("item") if f.path in paths]
    w.emit(0, "def read(raw):")
    w.emit(1, "if type(raw) is not dict and not isinstance(raw, Mapping):")
    w.emit(2, "raise _shape('declaration', None, 'an object', raw)")
    w.emit(1, "h = {}")
    _scope(w, 1, header, "raw", "h", "None", "declaration", dates)
    w.emit(1, "its = raw.get('items')")
    w.emit(1, "if its is None:")
    w.emit(2, "records = ()")
    w.emit(1, "elif type(its) is list or isinstance(its, (list, tuple)):")
    w.emit(2, "out = []")
    w.emit(2, "n = 0")
    w.emit(2, "for it in its:")
    w.emit(3, "n += 1")
    w.emit(3, "if type(it) is not dict and not isinstance(it, Mapping):")
    w.emit(4, "raise _shape('item', n, 'an object', it)")
    w.emit(3, "r = {}")
    _scope(w, 3, items, "it", "r", "n", "item", dates)
    w.emit(3, "out.append(r)")
    w.emit(2, "records = tuple(out)")
    w.emit(1, "else:")
    w.emit(2, "raise _shape('items', None, 'a list', its)")
    if "declaration.id" in catalogue:
        w.emit(1, "ident = h.get('id')")
    else:  # as the normaliser: the input's own "id", as text
        w.emit(1, "ident = raw.get('id')")
        w.emit(1, "if ident is not None:")
        w.emit(2, "ident = str(ident)")
    w.emit(1, "return Declaration(h, records, ident, raw)")
    return "\n".join(w.lines) + "\n", w.env


class InputReader:
    """Reads declarations given as plain data or JSON text into the :class:`Declaration` a
    profile set reads: only ``fields`` (catalogue paths, in catalogue order) are read and
    converted, exactly as :func:`riskengine.declaration.normalise_declaration` converts them.

    ``read(raw)`` takes parsed data (a mapping), ``read_json(data)`` JSON text (``bytes`` or
    ``str``). Both raise :class:`DeclarationError` (field, item, reason) as the normaliser does
    for the fields read, and ``read_json`` :class:`JsonInputError` for text that is not JSON.
    The generated source is ``reader.source``. Thread-safe: the only state is a cache of dates.
    ``Declaration.raw`` is the input mapping (``read``), the decoded document (``read_json`` on
    its general path) or the header record (``read_json`` through msgspec's typed schema, which
    never builds the document's other keys).
    """

    def __init__(self, catalogue: Catalogue, paths: Iterable[str]) -> None:
        wanted = frozenset(paths).union(ENGINE_FIELDS)
        self.catalogue = catalogue
        self.fields: tuple[str, ...] = tuple(f.path for f in catalogue if f.path in wanted)
        self.source, env = _generate(catalogue, frozenset(self.fields))
        exec(compile(self.source, "<riskengine input reader>", "exec"), env)
        self.read: Callable[[Any], Declaration] = env["read"]
        self._typed = typed_decoder(catalogue, self.fields)
        #: Whether the id is a field (else the input's own ``id``, as text, whatever its type)
        self._id_field = "declaration.id" in catalogue

    @classmethod
    def for_profiles(
        cls, catalogue: Catalogue, profiles: Iterable[tuple[m.Profile, Iterable[m.Fill]]]
    ) -> InputReader:
        """The reader of a set of profiles (each with its fills)."""
        paths: set[str] = set()
        for profile, fills in profiles:
            paths |= profile_fields(profile, fills)
        return cls(catalogue, paths)

    def __repr__(self) -> str:
        return f"<InputReader of {len(self.fields)} fields>"

    def decode(self, data: Any) -> dict[str, Any] | None:
        """JSON text decoded by orjson, when :meth:`read_json` would read what orjson gives
        (an object; an id it decodes as the standard library does); ``None`` otherwise (text
        that is not JSON included). :meth:`read_json`'s second step, and the fused path's
        (:mod:`riskengine.evaluator.fused`), which reads the data itself."""
        if _orjson is None or not isinstance(data, (bytes, bytearray, str)):
            return None
        try:
            raw = _orjson.loads(data)
        except _orjson.JSONDecodeError:
            return None  # the standard library says why (or reads it: a lone surrogate)
        if type(raw) is not dict:
            return None  # not a declaration: the standard library's document says so
        # the input's own id as text: orjson's 1e30 for a 31-digit integer would differ
        if self._id_field or type(raw.get("id")) in _TEXT_IDS:
            return raw
        return None

    def read_json(self, data: bytes | bytearray | str) -> Declaration:
        """One declaration from JSON text (see the module's documentation for the decoders);
        anything but ``bytes``, ``bytearray`` or ``str`` is a ``TypeError``."""
        typed = self._typed
        if typed is not None:
            found = typed(data)
            if found is not None:
                return found
        if not isinstance(data, (bytes, bytearray, str)):
            raise TypeError(
                f"JSON text is bytes or str, not {type(data).__name__}"
                + (": score data with Engine.score" if isinstance(data, Mapping) else "")
            )
        raw = self.decode(data)
        if raw is not None:
            try:
                return self.read(raw)
            except DeclarationError:
                pass  # read again as the standard library decodes it: the same message
        if isinstance(data, bytearray):
            data = bytes(data)
        return self.read(load_json(data))


def dump_json(data: Any) -> bytes:
    """JSON-ready ``data`` (``ScoreResult.to_dict()``) as compact UTF-8 JSON bytes, with
    orjson when it is installed (the standard library otherwise, or when orjson refuses a
    value: text with a lone surrogate, then written as an escape)."""
    if _orjson is not None:
        try:
            return _orjson.dumps(data)
        except TypeError:
            pass
    try:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:  # a lone surrogate: escaped, so the bytes stay UTF-8
        return json.dumps(data, separators=(",", ":")).encode()
