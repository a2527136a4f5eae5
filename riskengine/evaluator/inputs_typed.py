"""The typed JSON decoder of an input reader: JSON text straight to the fields a set reads.

With msgspec installed (the ``fast`` extra), :func:`typed_decoder` builds, per profile set, a
msgspec decoder whose schema holds only the fields the set reads, each with the strictest type
the input rule allows: text for string and code fields, an ``int`` or ``float`` within the
input range and the field's ``minimum`` for numbers, ``YYYY-MM-DD`` for dates, ``true`` /
``false`` for booleans, objects for groups and goods items, a list for ``items``, ``null`` for
any of them. Keys it does not know are skipped in C without building Python objects. The
decoded document is then flattened into the :class:`Declaration` records (``declarant.id``),
nulls left out.

Anything this schema does not accept — a number written as text, an integer for a code, a date
with spaces, a wrong type, text that is not JSON — is not an error here: the decoder returns
``None`` and the reader decodes the text again on its general path (orjson or the standard
library, then the compiled conversion), which accepts what ``normalise_declaration`` accepts and
refuses with its words. Every value the schema accepts is one the general path converts to the
same value, so both paths give the same declaration (``tests/test_evaluator_inputs.py``).

msgspec checks the syntax of the parts it skips as strictly as the standard library (a bad
escape, a control character, ``NaN``, a trailing comma are refused there too, and so go to the
general path, which says why). It does not share the standard library's own limits, so a
document that could reach them takes the general path without trying: one with more than
:data:`MAX_DIGITS` digits in all (an integer of more than 4,300 digits is refused by Python),
or more than :data:`MAX_BRACKETS` brackets and braces (nesting deeper than the interpreter's
recursion limit is refused). Text that is not UTF-8 takes the general path too (checked
before decoding when the text is not ASCII), which refuses it as before.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Optional, TypedDict, Union

from riskengine.catalogue import Catalogue, Field, FieldType
from riskengine.declaration import Declaration
from riskengine.evaluator.making import slotted_maker
from riskengine.semantics.numbers import MAX_INPUT_NUMBER

try:
    import msgspec
except ImportError:  # pragma: no cover - msgspec is optional (the `fast` extra)
    msgspec = None  # type: ignore[assignment]

__all__ = ["MAX_BRACKETS", "MAX_DIGITS", "make_declaration", "typed_decoder"]

#: A document with more digits than this may hold an integer Python refuses to read (4,300
#: digits, ``sys.get_int_max_str_digits``): it takes the general path.
MAX_DIGITS = 4300
#: A document with more ``[`` and ``{`` than this may nest deeper than the standard library
#: reads (the recursion limit, 1,000 frames less those of the caller): the general path.
MAX_BRACKETS = 256
_DIGITS_TEXT = tuple("0123456789")
_DIGITS_BYTES = tuple(d.encode() for d in _DIGITS_TEXT)
#: The typing constructs, built at run time from computed members (typed ``Any`` for mypy).
_TYPED_DICT: Any = TypedDict

#: ``make_declaration(header, items, id, raw)``: a :class:`Declaration` as its initialiser makes
#: it, faster (:mod:`riskengine.evaluator.making`); what the generated readers call.
make_declaration: Callable[..., Declaration] = slotted_maker(Declaration)
_OPTIONAL: Any = Optional
_LIST: Any = list


def _needs_general_path(data: bytes | bytearray | str) -> bool:
    """Whether a text may be one the standard library refuses where msgspec does not look:
    not UTF-8, too many brackets (nesting), too many digits (a huge integer)."""
    if isinstance(data, str):
        if len(data) <= MAX_BRACKETS:
            return False
        if data.count("[") + data.count("{") > MAX_BRACKETS:
            return True
        return len(data) > MAX_DIGITS and sum(map(data.count, _DIGITS_TEXT)) > MAX_DIGITS
    if not data.isascii():
        try:
            data.decode()
        except UnicodeDecodeError:
            return True
    if len(data) <= MAX_BRACKETS:
        return False
    if data.count(b"[") + data.count(b"{") > MAX_BRACKETS:
        return True
    return len(data) > MAX_DIGITS and sum(map(data.count, _DIGITS_BYTES)) > MAX_DIGITS


def _value_type(field: Field) -> Any:
    match field.type:
        case FieldType.STRING | FieldType.CODE:
            return Optional[str]  # noqa: UP045 - a runtime type for msgspec
        case FieldType.BOOLEAN:
            return Optional[bool]  # noqa: UP045
        case FieldType.DATE:
            return Optional[dt.date]  # noqa: UP045
        case FieldType.NUMBER:
            low = -MAX_INPUT_NUMBER if field.minimum is None else field.minimum
            whole = Annotated[int, msgspec.Meta(ge=math.ceil(low), le=MAX_INPUT_NUMBER)]
            real = Annotated[float, msgspec.Meta(ge=float(low), le=float(MAX_INPUT_NUMBER))]
            return Optional[Union[whole, real]]  # noqa: UP007, UP045
    raise AssertionError(field.type)  # pragma: no cover


def _schema(name: str, fields: Sequence[Field]) -> Any:
    """A TypedDict of the fields' names, nested by their groups (all keys optional)."""
    tree: dict[str, Any] = {}
    for field in fields:
        *groups, last = field.name.split(".")
        node = tree
        for group in groups:
            node = node.setdefault(group, {})
        node[last] = _value_type(field)

    def build(label: str, node: dict[str, Any]) -> Any:
        members = {
            key: (Optional[build(f"{label}_{key}", value)] if isinstance(value, dict) else value)  # noqa: UP045
            for key, value in node.items()
        }
        return _TYPED_DICT(label, members, total=False)

    return build(name, tree)


def _flatten_code(fields: Sequence[Field], source: str, lines: list[str], depth: int) -> bool:
    """Statements that move the grouped fields of ``source`` to their flat names (``declarant``
    → ``declarant.id``); returns whether there are any."""
    pad = "    " * depth
    groups: dict[str, list[Field]] = {}
    for field in fields:
        if "." in field.name:
            groups.setdefault(field.name.split(".")[0], []).append(field)
    for group, members in groups.items():
        lines.append(f"{pad}g = {source}.pop({group!r}, None)")
        lines.append(f"{pad}if g is not None:")
        for field in members:
            path = field.name.split(".")[1:]
            expr = "g"
            for key in path[:-1]:
                expr = f"({expr}.get({key!r}) or EMPTY)"
            lines.append(f"{pad}    v = {expr}.get({path[-1]!r})")
            lines.append(f"{pad}    if v is not None:")
            lines.append(f"{pad}        {source}[{field.name!r}] = v")
    return bool(groups)


def typed_decoder(
    catalogue: Catalogue, paths: Sequence[str]
) -> Callable[[bytes | bytearray | str], Declaration | None] | None:
    """The typed decoder of a reader of ``paths`` (``None`` without msgspec): JSON text to the
    :class:`Declaration`, or ``None`` when the text needs the general path."""
    if msgspec is None:
        return None
    chosen = set(paths)
    header = [f for f in catalogue.scope_fields("declaration") if f.path in chosen]
    items = [f for f in catalogue.scope_fields("item") if f.path in chosen]
    top = _schema("Header", header)
    item = _schema("Item", items)
    members = dict(top.__annotations__)
    members["items"] = _OPTIONAL[_LIST[item]]
    if "declaration.id" not in catalogue:
        members["id"] = Any  # the input's own id, as the normaliser reads it
    schema = _TYPED_DICT("Declaration", members, total=False)
    decode = msgspec.json.Decoder(schema).decode
    errors = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)

    lines = ["def finish(d):", "    its = d.pop('items', None)"]
    if "declaration.id" not in catalogue:
        lines += ["    ident = d.pop('id', None)", "    if ident is not None:",
                  "        ident = str(ident)"]  # fmt: skip
    _flatten_code(header, "d", lines, 1)
    lines += [
        "    if None in d.values():",
        "        d = {k: v for k, v in d.items() if v is not None}",
    ]
    if "declaration.id" in catalogue:
        lines.append("    ident = d.get('id')")
    lines += ["    if not its:", "        return Declaration(d, (), ident, d)", "    out = []",
              "    for it in its:"]  # fmt: skip
    _flatten_code(items, "it", lines, 2)
    lines += [
        "        if None in it.values():",
        "            it = {k: v for k, v in it.items() if v is not None}",
        "        out.append(it)",
        "    return Declaration(d, tuple(out), ident, d)",
    ]
    env: dict[str, Any] = {"Declaration": make_declaration, "EMPTY": {}}
    exec(compile("\n".join(lines) + "\n", "<riskengine typed input>", "exec"), env)
    finish: Callable[[dict[str, Any]], Declaration] = env["finish"]

    def read(data: bytes | bytearray | str) -> Declaration | None:
        if _needs_general_path(data):
            return None
        try:
            decoded = decode(data)
        except errors:
            return None
        return finish(decoded)

    return read
