"""Literals and line breaking: the formatter's building blocks (a small Wadler-style document
laid out to the line length)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import TypeAlias

import attrs

from riskengine import model as m

INDENT = "    "
LINE_LENGTH = 100

# ------------------------------------------------------------------------------------ literals

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}
_QUOTE_RUN = re.compile(r'"{3,}')


def format_string(text: str) -> str:
    """``text`` as a one-line string literal: backslash, quote, newline and tab escaped."""
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in text) + '"'


def block_lines(text: str) -> list[str] | None:
    """``text`` as a triple-quoted block: the opening ``\"\"\"``, the content lines (indented one
    level, relative to the line that opens the block) and the closing ``\"\"\"`` line; None when
    the builder would not read it back as exactly ``text`` (it dedents the block, empties
    lines of only spaces and drops the last line break), so a one-line string must be used."""
    if "\n" not in text or "\r" in text:
        return None
    lines = []
    for line in text.split("\n"):
        line = line.replace("\\", "\\\\").replace("\t", "\\t")
        line = _QUOTE_RUN.sub(lambda mt: '\\"' * len(mt.group(0)), line)
        if line != line.rstrip(" "):  # trailing spaces: dedent or an editor would drop them
            return None
        lines.append(line)
    written = [line for line in lines if line]
    if not written or all(line.startswith(" ") for line in written):
        return None  # dedent would take the text's own indentation away
    return ['"""', *(INDENT + line if line else "" for line in lines), INDENT + '"""']


def format_number(value: Decimal | int) -> str:
    """A number as written: ``12.50`` stays ``12.50``, ``Decimal('1E+1')`` prints ``10``."""
    if isinstance(value, int):
        return str(value)
    if not value.is_finite():
        raise ValueError(f"{value} cannot be written in a profile")
    return format(value, "f")


def format_date(value: dt.date) -> str:
    return value.isoformat()


def format_literal(lit: m.Literal | m.ListLit) -> str:
    """A literal or a list of literals, as in a list definition or a fill value."""
    match lit:
        case m.NumberLit(value=v):
            return format_number(v)
        case m.StringLit(value=v):
            return format_string(v)
        case m.DateLit(value=v):
            return format_date(v)
        case m.BoolLit(value=v):
            return "true" if v else "false"
        case m.ListLit(items=items):
            return "(" + ", ".join(format_literal(x) for x in items) + ")"
    raise TypeError(f"not a literal: {lit!r}")


# ------------------------------------------------------------------------------------ line breaking

# A small Wadler-style document, printed like black or prettier print code: a group is written
# flat when it fits in what is left of the line (up to the next place where the enclosing text
# may break), else its line breaks are taken, and its inner groups are tried again in turn. So
# the outermost level breaks first.


@attrs.frozen
class Group:
    """Flat when it fits, else every ``Line`` directly in it breaks."""

    doc: Doc


@attrs.frozen
class Nest:
    """Lines broken inside are indented one level more."""

    doc: Doc


@attrs.frozen
class Line:
    """A space (nothing when ``soft``) when flat, a new line when broken."""

    soft: bool = False


@attrs.frozen
class FillDoc:
    """Items joined by ``", "``; when broken, packed: a new line only before an item that would
    not fit, and ``trailing`` after the last item."""

    items: tuple[str, ...]
    trailing: str = ""


Doc: TypeAlias = str | Group | Nest | Line | FillDoc | list["Doc"]
LINE = Line()
SOFT = Line(soft=True)


def flat_text(doc: Doc) -> str:
    """``doc`` on one line."""
    out: list[str] = []
    todo: list[Doc] = [doc]
    while todo:  # not recursive: a deeply nested expression makes a deep document
        d = todo.pop()
        match d:
            case str():
                out.append(d)
            case list():
                todo.extend(reversed(d))
            case Group(doc=inner) | Nest(doc=inner):
                todo.append(inner)
            case Line(soft=soft):
                out.append("" if soft else " ")
            case FillDoc(items=items):
                out.append(", ".join(items))
            case _:
                raise TypeError(f"not a document: {d!r}")
    return "".join(out)


_Command = tuple[int, bool, Doc]  # indentation, broken, document


def _fits(doc: Doc, rest: list[_Command], room: int) -> bool:
    """Whether ``doc`` written flat, and then what follows it up to its next possible line
    break (``rest``, a stack whose next command is last), take at most ``room`` columns."""
    todo: list[tuple[bool, Doc]] = [(False, doc)]
    waiting = len(rest)
    while room >= 0:
        if not todo:
            if not waiting:
                return True
            waiting -= 1
            todo.append(rest[waiting][1:])
            continue
        broken, d = todo.pop()
        match d:
            case str():
                room -= len(d)
            case list():
                todo.extend((broken, x) for x in reversed(d))
            case Group(doc=inner) | Nest(doc=inner):
                todo.append((broken, inner))
            case Line(soft=soft):
                if broken:
                    return True
                room -= 0 if soft else 1
            case FillDoc(items=items):
                if broken:
                    return room >= len(items[0]) if items else True
                room -= len(flat_text(d))
    return False


def layout(doc: Doc, column: int, width: int = LINE_LENGTH) -> list[str]:
    """``doc`` written from ``column`` (lines broken ``INDENT`` deeper per nesting level): the
    lines, indentation included."""
    lines: list[str] = []
    line = [" " * column]
    pos = column
    stack: list[_Command] = [(column, True, doc)]
    while stack:
        indent, broken, d = stack.pop()
        match d:
            case str():
                line.append(d)
                pos += len(d)
            case list():
                stack.extend((indent, broken, x) for x in reversed(d))
            case Nest(doc=inner):
                stack.append((indent + len(INDENT), broken, inner))
            case Group(doc=inner):
                flat = not broken or _fits(inner, stack, width - pos)
                stack.append((indent, not flat, inner))
            case Line(soft=soft):
                if broken:
                    lines.append("".join(line))
                    line, pos = [" " * indent], indent
                elif not soft:
                    line.append(" ")
                    pos += 1
            case FillDoc(items=items, trailing=trailing):
                if not broken:
                    text = flat_text(d)
                    line.append(text)
                    pos += len(text)
                    continue
                for i, item in enumerate(items):
                    after = len(trailing) if i == len(items) - 1 else 1  # its comma
                    if i == 0:
                        line.append(item)
                        pos += len(item)
                    elif pos + 2 + len(item) + after <= width:
                        line.append(", " + item)
                        pos += 2 + len(item)
                    else:
                        line.append(",")
                        lines.append("".join(line))
                        line, pos = [" " * indent, item], indent + len(item)
                line.append(trailing)
                pos += len(trailing)
    lines.append("".join(line))
    return lines
