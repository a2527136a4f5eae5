"""The typed JSON decoder of an input reader: JSON text straight to the fields a set reads.

With msgspec installed (the ``fast`` extra), :func:`typed_decoder` builds, per profile set, a
msgspec decoder whose schema holds only the fields the set reads, each with the strictest type
the input rule allows: text for string and code fields, an ``int`` or ``float`` within the
input range and the field's ``minimum`` for numbers, ``YYYY-MM-DD`` for dates, ``true`` /
``false`` for booleans, objects for groups and goods items, a list for ``items``, ``null`` for
any of them. Keys it does not know are skipped in C without building Python objects. The
document is decoded into msgspec Structs (the declaration, each group, each goods item; not
tracked by the garbage collector), cheaper to make than dicts, and the records of the
:class:`Declaration` (``declarant.id`` flat, nulls and absent fields left out) are built from
their attributes by the same generated function that checks the text and decodes it
(:func:`typed_source` shows it).

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
or one that may nest more than :data:`MAX_DEPTH` levels deep (nesting deeper than the
interpreter's recursion limit is refused; :func:`may_nest_deeper` bounds it from the length and
the ``[``, the ``{`` counted too only for long texts). Text that is not UTF-8 takes the general
path too (checked before decoding when the text is not ASCII), which refuses it as before, and
so does a ``str`` with a lone surrogate (msgspec cannot encode it; the standard library reads
it).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Optional, Union

from riskengine.catalogue import Catalogue, Field, FieldType
from riskengine.declaration import Declaration
from riskengine.evaluator.making import slotted_maker
from riskengine.semantics.numbers import MAX_INPUT_NUMBER

try:
    import msgspec
except ImportError:  # pragma: no cover - msgspec is optional (the `fast` extra)
    msgspec = None  # type: ignore[assignment]

__all__ = [
    "MAX_DEPTH",
    "MAX_DIGITS",
    "make_declaration",
    "may_nest_deeper",
    "typed_decoder",
    "typed_source",
]

#: A document with more digits than this may hold an integer Python refuses to read (4,300
#: digits, ``sys.get_int_max_str_digits``): it takes the general path.
MAX_DIGITS = 4300
#: A document that may nest deeper than this takes the general path: the standard library
#: refuses nesting deeper than the recursion limit (1,000 frames less those of the caller),
#: msgspec at a depth of its own.
MAX_DEPTH = 256
_DIGITS_TEXT = tuple("0123456789")
_DIGITS_BYTES = tuple(d.encode() for d in _DIGITS_TEXT)

#: ``make_declaration(header, items, id, raw)``: a :class:`Declaration` as its initialiser makes
#: it, faster (:mod:`riskengine.evaluator.making`); what the generated readers call.
make_declaration: Callable[..., Declaration] = slotted_maker(Declaration)
#: The typing constructs, built at run time from computed members (typed ``Any`` for mypy).
_OPTIONAL: Any = Optional
_LIST: Any = list


def may_nest_deeper(length: int, arrays: int, depth: int = MAX_DEPTH) -> bool:
    """Whether a JSON document of ``length`` characters with at most ``arrays`` ``[`` in it
    may nest more than ``depth`` arrays and objects deep.

    Each array it is nested in takes two characters of its own (``[``, ``]``), each object
    five (``{``, a key of at least two, ``:``, ``}``) but the innermost (``{}``, two): ``a``
    arrays and ``o`` objects deep take ``2a + 5o - 3 <= length``, so ``a + o <= (3a + length
    + 3) / 5``. A document of 712 characters with one ``[`` cannot nest deeper than 143
    levels: one pass counting ``[`` is
    enough, where counting ``{`` too took another; the readers count ``{`` only when this
    says it may (nesting is also at most the number of ``[`` and ``{``). Text that is not JSON
    is refused by msgspec and goes to the general path whatever this says."""
    return 3 * arrays + length + 3 > 5 * depth


def _needs_general_path(data: bytes | bytearray | str) -> bool:
    """Whether a text may be one the standard library refuses where msgspec does not look:
    not UTF-8, nested too deeply, too many digits (a huge integer). The generated reader does
    the same inline for ``bytes``."""
    if isinstance(data, str):
        length = len(data)
        if length <= 2 * MAX_DEPTH:
            return False
        arrays = data.count("[")
        if may_nest_deeper(length, arrays) and arrays + data.count("{") > MAX_DEPTH:
            return True
        return length > MAX_DIGITS and sum(map(data.count, _DIGITS_TEXT)) > MAX_DIGITS
    if not isinstance(data, (bytes, bytearray)):  # not text at all: the reader says so
        return True
    if not data.isascii():
        try:
            data.decode()
        except UnicodeDecodeError:
            return True
    length = len(data)
    if length <= 2 * MAX_DEPTH:
        return False
    arrays = data.count(b"[")
    if may_nest_deeper(length, arrays) and arrays + data.count(b"{") > MAX_DEPTH:
        return True
    return length > MAX_DIGITS and _digits(data) > MAX_DIGITS


def _digits(data: bytes | bytearray) -> int:
    """How many digits ``data`` holds."""
    return sum(map(data.count, _DIGITS_BYTES))


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


def _tree(fields: Sequence[Field]) -> dict[str, Any]:
    """The fields' msgspec types nested by their groups (``declarant.id`` → ``{"declarant":
    {"id": …}}``), in catalogue order; a leaf's key is its name's last part."""
    tree: dict[str, Any] = {}
    for field in fields:
        *groups, last = field.name.split(".")
        node = tree
        for group in groups:
            node = node.setdefault(group, {})
        node[last] = _value_type(field)
    return tree


def _struct(label: str, node: dict[str, Any]) -> Any:
    """A msgspec Struct of the keys of ``node`` (a group: a nested Struct), every field
    optional (``None`` when absent or null). The attributes are ``f0``, ``f1``… renamed to the
    keys, so any key can be one; not tracked by the garbage collector (``gc=False``): it holds
    no cycles and is dropped as soon as the records are made."""
    members = []
    rename = {}
    for position, (key, value) in enumerate(node.items()):
        kind = _OPTIONAL[_struct(f"{label}_{key}", value)] if isinstance(value, dict) else value
        members.append((f"f{position}", kind, None))
        rename[f"f{position}"] = key
    return msgspec.defstruct(label, members, rename=rename, gc=False)


class _Code:
    """The generated reader's lines and fresh names."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.count = 0

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"


def _records(
    code: _Code, depth: int, node: dict[str, Any], source: str, record: str, prefix: str,
    skip: frozenset[str] = frozenset(),
) -> None:  # fmt: skip
    """Statements that copy the non-null fields of the Struct ``source`` (of ``node``) into the
    dict ``record`` under their flat names (``declarant.id``); keys in ``skip`` are left to the
    caller."""
    for position, (key, value) in enumerate(node.items()):
        if key in skip:
            continue
        attribute = f"{source}.f{position}"
        if isinstance(value, dict):
            group = code.fresh("g")
            code.emit(depth, f"{group} = {attribute}")
            code.emit(depth, f"if {group} is not None:")
            _records(code, depth + 1, value, group, record, f"{prefix}{key}.")
        else:
            code.emit(depth, f"if (v := {attribute}) is not None:")
            code.emit(depth + 1, f"{record}[{prefix + key!r}] = v")


def typed_decoder(
    catalogue: Catalogue, paths: Sequence[str]
) -> Callable[[bytes | bytearray | str], Declaration | None] | None:
    """The typed decoder of a reader of ``paths`` (``None`` without msgspec): JSON text to the
    :class:`Declaration`, or ``None`` when the text needs the general path.

    One generated function: the checks of :func:`_needs_general_path` (inline for ``bytes``),
    msgspec's decode into Structs of the fields read, then the header and item records built
    from the Structs' attributes, nulls left out (``reader.source`` shows the general reader;
    this one's source is ``typed_source(catalogue, paths)``)."""
    if msgspec is None:
        return None
    source, env = _generate(catalogue, paths)
    exec(compile(source, "<riskengine typed input>", "exec"), env)
    read: Callable[[bytes | bytearray | str], Declaration | None] = env["read"]
    return read


def typed_source(catalogue: Catalogue, paths: Sequence[str]) -> str:
    """The source of the function :func:`typed_decoder` generates (for inspection)."""
    return _generate(catalogue, paths)[0]


def _generate(catalogue: Catalogue, paths: Sequence[str]) -> tuple[str, dict[str, Any]]:
    chosen = set(paths)
    header = _tree([f for f in catalogue.scope_fields("declaration") if f.path in chosen])
    items = _tree([f for f in catalogue.scope_fields("item") if f.path in chosen])
    own_id = "declaration.id" in catalogue
    top = dict(header)
    top["items"] = _OPTIONAL[_LIST[_struct("Item", items)]]
    if not own_id:
        top["id"] = Any  # the input's own id, as the normaliser reads it
    keys = list(top)
    code = _Code()
    code.lines += [
        "def read(data):",
        "    if type(data) is bytes:",
        "        if not data.isascii():",
        "            try:",
        "                data.decode()",
        "            except UnicodeDecodeError:",
        "                return None",
        "        n = len(data)",
        f"        if n > {2 * MAX_DEPTH}:",
        "            a = data.find(b'[')  # usually the only one, that of the items",
        "            a = 1 if data.find(b'[', a + 1) < 0 else data.count(b'[')",
        f"            if 3 * a + n + 3 > {5 * MAX_DEPTH} and a + data.count(b'{{') > {MAX_DEPTH}:",
        "                return None",
        f"            if n > {MAX_DIGITS} and digits(data) > {MAX_DIGITS}:",
        "                return None",
        "    elif general(data):",
        "        return None",
        "    try:",
        "        s = decode(data)",
        "    except errors:",
        "        return None",
        "    h = {}",
    ]
    if "id" in top:  # the declaration's id (own_id: the field, else the input's, as text)
        code.emit(1, f"ident = s.f{keys.index('id')}")
        code.emit(1, "if ident is not None:")
        code.emit(2, "h['id'] = ident" if own_id else "ident = str(ident)")
    else:  # pragma: no cover - every reader reads declaration.id (ENGINE_FIELDS)
        code.emit(1, "ident = None")
    _records(code, 1, top, "s", "h", "", frozenset({"id", "items"}))
    code.emit(1, f"its = s.f{keys.index('items')}")
    code.emit(1, "d = new(Declaration)")
    code.emit(1, "set_header(d, h)")
    code.emit(1, "set_id(d, ident)")
    code.emit(1, "set_raw(d, h)")
    code.emit(1, "if not its:")
    code.emit(2, "set_items(d, ())")
    code.emit(2, "return d")
    code.emit(1, "out = []")
    code.emit(1, "for it in its:")
    code.emit(2, "r = {}")
    _records(code, 2, items, "it", "r", "")
    code.emit(2, "out.append(r)")
    code.emit(1, "set_items(d, tuple(out))")
    code.emit(1, "return d")
    schema = _struct("Declaration", top)
    env: dict[str, Any] = {
        "decode": msgspec.json.Decoder(schema).decode,
        "errors": (msgspec.DecodeError, msgspec.ValidationError, RecursionError,
                   UnicodeEncodeError),
        "general": _needs_general_path,
        "digits": _digits,
        "new": object.__new__,
        "Declaration": Declaration,
    }  # fmt: skip
    for name in ("header", "items", "id", "raw"):
        env[f"set_{name}"] = Declaration.__dict__[name].__set__
    return "\n".join(code.lines) + "\n", env
