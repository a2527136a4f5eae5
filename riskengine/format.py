"""The formatter: a parsed file back to its one canonical text, with its comments kept."""

from __future__ import annotations

import bisect
import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import TypeAlias

import attrs

from riskengine import model as m
from riskengine.diagnostics import Span

__all__ = [
    "format_expr",
    "format_fill",
    "format_profile",
    "format_source",
    "format_string",
    "format_text",
]

INDENT = "    "
_LINE_LENGTH = 100

# ------------------------------------------------------------------------------------ literals

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}
_QUOTE_RUN = re.compile(r'"{3,}')


def format_string(text: str) -> str:
    """``text`` as a one-line string literal: backslash, quote, newline and tab escaped."""
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in text) + '"'


def _block_lines(text: str) -> list[str] | None:
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
class _Group:
    """Flat when it fits, else every ``_Line`` directly in it breaks."""

    doc: Doc


@attrs.frozen
class _Nest:
    """Lines broken inside are indented one level more."""

    doc: Doc


@attrs.frozen
class _Line:
    """A space (nothing when ``soft``) when flat, a new line when broken."""

    soft: bool = False


@attrs.frozen
class _Fill:
    """Items joined by ``", "``; when broken, packed: a new line only before an item that would
    not fit, and ``trailing`` after the last item."""

    items: tuple[str, ...]
    trailing: str = ""


Doc: TypeAlias = str | _Group | _Nest | _Line | _Fill | list["Doc"]
_LINE = _Line()
_SOFT = _Line(soft=True)


def _flat(doc: Doc) -> str:
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
            case _Group(doc=inner) | _Nest(doc=inner):
                todo.append(inner)
            case _Line(soft=soft):
                out.append("" if soft else " ")
            case _Fill(items=items):
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
            case _Group(doc=inner) | _Nest(doc=inner):
                todo.append((broken, inner))
            case _Line(soft=soft):
                if broken:
                    return True
                room -= 0 if soft else 1
            case _Fill(items=items):
                if broken:
                    return room >= len(items[0]) if items else True
                room -= len(_flat(d))
    return False


def _layout(doc: Doc, column: int, width: int = _LINE_LENGTH) -> list[str]:
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
            case _Nest(doc=inner):
                stack.append((indent + len(INDENT), broken, inner))
            case _Group(doc=inner):
                flat = not broken or _fits(inner, stack, width - pos)
                stack.append((indent, not flat, inner))
            case _Line(soft=soft):
                if broken:
                    lines.append("".join(line))
                    line, pos = [" " * indent], indent
                elif not soft:
                    line.append(" ")
                    pos += 1
            case _Fill(items=items, trailing=trailing):
                if not broken:
                    text = _flat(d)
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


# ------------------------------------------------------------------------------------ expressions

# Binding strength, loosest first, following the grammar: an operand whose level is below the
# level its position requires is put in parentheses.
_COND, _OR, _AND, _NOT, _PRED, _SUM, _PRODUCT, _UNARY, _ATOM = range(9)


def _level(expr: m.Expr) -> int:
    match expr:
        case m.Cond():
            return _COND
        case m.Or():
            return _OR
        case m.And():
            return _AND
        case m.Not():
            return _NOT
        case m.Compare() | m.InList() | m.StartsWith() | m.Between() | m.Matches() | m.IsMissing():
            return _PRED
        case m.Arith(op=op):
            return _SUM if op in ("+", "-") else _PRODUCT
        case m.Neg():
            return _UNARY
        case m.NumberLit(value=v) if v.is_signed():
            return _UNARY  # written `-1`: a sign and a number
        case _:
            return _ATOM


def _list_value(values: m.ListValue) -> Doc:
    match values:
        case m.ListLit():
            return _list_doc(values)
        case m.Ref(name=name):
            return name
        case m.FieldRef(path=path):
            return path
    raise TypeError(f"not a list value: {values!r}")


def _list_doc(values: m.ListLit) -> Doc:
    """``(a, b, c)``; when too long, the items packed on indented lines with a trailing comma
    and the ``)`` on its own line."""
    if not values.items:
        return "()"
    items = tuple(format_literal(x) for x in values.items)
    return _Group(["(", _Nest([_SOFT, _Fill(items, ",")]), _SOFT, ")"])


def _chain(first: Doc, rest: Iterable[tuple[str, Doc]]) -> Doc:
    """Operands joined by operators; when too long, one ``operator operand`` per line."""
    parts: list[Doc] = [first]
    for op, operand in rest:
        parts += [_LINE, op + " ", operand]
    return _Group(_Nest(parts))


def _edoc(expr: m.Expr, need: int) -> Doc:
    doc = _bare(expr)
    if _level(expr) < need:
        if isinstance(doc, _Group) and isinstance(doc.doc, _Nest):
            # Alone between parentheses, a chain's operators need no deeper indentation.
            doc = _Group(doc.doc.doc)
        return _Group(["(", _Nest([_SOFT, doc]), _SOFT, ")"])
    return doc


def _operands(expr: m.Arith | m.And | m.Or) -> tuple[m.Expr, list[tuple[str, m.Expr]]]:
    """A left-nested chain of one operator level (``a or b or c``, ``a - b + c``): its first
    operand, then each operator with its right operand."""
    level = _level(expr)
    rest: list[tuple[str, m.Expr]] = []
    e: m.Expr = expr
    while isinstance(e, m.Arith | m.And | m.Or) and _level(e) == level:
        op = e.op if isinstance(e, m.Arith) else "and" if isinstance(e, m.And) else "or"
        rest.append((op, e.right))
        e = e.left
    return e, rest[::-1]


def _bare(expr: m.Expr) -> Doc:
    match expr:
        case m.NumberLit() | m.StringLit() | m.DateLit() | m.BoolLit():
            return format_literal(expr)
        case m.FieldRef(path=path):
            return path
        case m.Ref(name=name):
            return name
        case m.HistoryRef(kind=kind):
            return kind.value
        case m.Neg(operand=o):
            return ["-", _edoc(o, _UNARY)]
        case m.Arith() | m.And() | m.Or():
            # The left operand of the same level needs no parentheses, the right one does.
            level = _level(expr)
            first, rest = _operands(expr)
            operands: list[tuple[str, Doc]] = []
            for op, right in rest:  # a loop, not a generator: one frame less per nesting level
                operands.append((op, _edoc(right, level + 1)))
            return _chain(_edoc(first, level), operands)
        case m.Compare(op=op, left=a, right=b):
            return _chain(_edoc(a, _SUM), [(op, _edoc(b, _SUM))])
        case m.Not(operand=o):
            return ["not ", _edoc(o, _NOT)]
        case m.InList(operand=o, values=v, negated=negated):
            return _membership(_edoc(o, _SUM), "not in" if negated else "in", v)
        case m.StartsWith(operand=o, prefixes=p):
            return _membership(_edoc(o, _SUM), "starts with", p)
        case m.Between(operand=o, low=lo, high=hi):
            bounds = _chain(_edoc(lo, _SUM), [("and", _edoc(hi, _SUM))])
            return _chain(_edoc(o, _SUM), [("between", bounds)])
        case m.Matches(operand=o, pattern=pattern):
            return _chain(_edoc(o, _SUM), [("matches", format_string(pattern))])
        case m.IsMissing(operand=o, negated=negated):
            return _chain(_edoc(o, _SUM), [("is", "not missing" if negated else "missing")])
        case m.Call(func=func, args=args):
            parts: list[Doc] = [_SOFT]
            for i, a in enumerate(args):
                parts += [",", _LINE] if i else []
                parts.append(_edoc(a, _COND))
            return _Group([func + "(", _Nest(parts), _SOFT, ")"])
        case m.Cond():
            # A conditional inside `if` or `then` gets parentheses for the reader; `else if`
            # chains do not need them.
            out: list[Doc] = []
            e: m.Expr = expr
            while isinstance(e, m.Cond):
                out += ["if ", _edoc(e.test, _OR), _LINE, "then ", _edoc(e.then, _OR), _LINE]
                out.append("else ")
                e = e.otherwise
            out.append(_edoc(e, _COND))
            return _Group(_Nest(out))
    raise TypeError(f"not an expression: {expr!r}")


def _membership(operand: Doc, word: str, values: m.ListValue) -> Doc:
    """``x in (…)`` keeps ``in (`` on the line (the list wraps); ``x in name`` may break before
    ``in``."""
    if isinstance(values, m.ListLit):
        return [operand, f" {word} ", _list_doc(values)]
    return _chain(operand, [(word, _list_value(values))])


def format_expr(expr: m.Expr) -> str:
    """One expression in canonical form, on one line, with only the parentheses its structure
    needs."""
    return _flat(_edoc(expr, _COND))


def _expr_doc(expr: m.Expr) -> Doc:
    return _edoc(expr, _COND)


# ------------------------------------------------------------------------------------ layout


Render = Callable[[int], list[str]]  # the lines of a statement written from a column


@attrs.define(eq=False)
class _Node:
    """One statement of the output. A leaf is its lines, laid out by ``render`` for the column
    it starts at; a block is a header line (``{`` is added) and child statements. ``span`` is
    where the statement was in the source (comments are attached by position); ``group``
    separates statement groups with a blank line."""

    head: str
    children: list[_Node] | None = None
    span: Span | None = None
    group: int = 0
    render: Render | None = None
    leading: list[str] = attrs.Factory(list)
    trailing: str | None = None
    header: str | None = None  # a comment after a block's `{`
    closing: list[str] = attrs.Factory(list)
    # Source extent, set when comments are attached: (line, column) of start and end, and of a
    # block's `{` when the source text is known.
    start: tuple[int, int] | None = None
    end: tuple[int, int] | None = None
    opened: tuple[int, int] | None = None
    last: tuple[int, int] | None = None  # the latest end in the node and under it


def _leaf(content: Doc | Render, span: Span | None = None, group: int = 0) -> _Node:
    """A statement: a document laid out at its column, or a function that lays it out."""
    if callable(content):
        render = content
    else:
        doc = content

        def render(column: int) -> list[str]:
            return _layout(doc, column)

    return _Node("", None, _known(span), group, render)


def _block(head: str, children: list[_Node], span: Span | None = None, group: int = 0) -> _Node:
    return _Node(head, children, _known(span), group)


def _known(span: Span | None) -> Span | None:
    return span if span is not None and span.line >= 1 else None


def _fixed(lines: list[str]) -> Render:
    """Lines that do not depend on the column (a triple-quoted block keeps its empty lines)."""
    return lambda column: [" " * column + line if line else "" for line in lines]


def _text_statement(keyword: str, text: str) -> Render:
    """``keyword "text"``, as a triple-quoted block when the text has several lines."""
    block = _block_lines(text)
    if block is None:
        return _fixed([f"{keyword} {format_string(text)}"])
    return _fixed([f"{keyword} {block[0]}", *block[1:]])


def _strings_statement(keyword: str, texts: Sequence[str]) -> Render:
    """``keyword "a", "b"``: on one line when it fits, else one string per line."""
    blocks = [_block_lines(t) for t in texts]

    def render(column: int) -> list[str]:
        if all(b is None for b in blocks):
            one = f"{keyword} " + ", ".join(format_string(t) for t in texts)
            if column + len(one) <= _LINE_LENGTH or len(texts) == 1:
                return _fixed([one])(column)
        lines: list[str] = []
        for i, (text, block) in enumerate(zip(texts, blocks, strict=True)):
            prefix = f"{keyword} " if i == 0 else INDENT
            pad = "" if i == 0 else INDENT
            if block is None:
                lines.append(prefix + format_string(text))
            else:
                lines.append(prefix + block[0])
                lines.extend(pad + line if line else "" for line in block[1:])
            if i < len(texts) - 1:
                lines[-1] += ","
        return _fixed(lines)(column)

    return render


# Where a message may be cut: the builder reads `{{`, `}}`, `{…}` and a lone brace as one unit.
_MESSAGE_UNIT = re.compile(r"\{\{|\}\}|\{[^{}]*\}|[{}]")


def _message_words(text: str) -> list[str]:
    """``text`` cut after each run of spaces outside a placeholder or a doubled brace: the
    pieces join back to ``text``."""
    protected = bytearray(len(text))
    for mt in _MESSAGE_UNIT.finditer(text):
        protected[mt.start() : mt.end()] = b"\x01" * (mt.end() - mt.start())
    words, start = [], 0
    for i in range(1, len(text)):
        if text[i - 1] == " " and not protected[i - 1] and text[i] != " ":
            words.append(text[start:i])
            start = i
    words.append(text[start:])
    return words


def _message(text: str) -> Render:
    """``message "text"``; when too long, the text split at spaces into adjacent strings (the
    parser joins them), each continuation string on its own line, one level deeper."""

    def render(column: int) -> list[str]:
        head = " " * column + "message "
        if len(head) + len(format_string(text)) <= _LINE_LENGTH:
            return [head + format_string(text)]
        lines: list[str] = []
        prefix, current = head, ""
        for word in _message_words(text):
            if current and len(prefix) + len(format_string(current + word)) > _LINE_LENGTH:
                lines.append(prefix + format_string(current))
                prefix, current = " " * (column + len(INDENT)), ""
            current += word
        lines.append(prefix + format_string(current))
        return lines

    return render


class _ControlTable:
    """Control forms, one per line, code, name and kind aligned in columns. Rows that would not
    fit in the line length when aligned are left out of the columns and wrapped on their own:
    code and name, then the kind, its ``when`` condition and ``from`` on the next line."""

    def __init__(self, controls: Sequence[m.Control]) -> None:
        self.cells: list[tuple[str, str, str, str]] = []
        self.docs: list[Doc] = []
        for c in controls:
            kind = "if necessary" if c.kind is m.ControlKind.IF_NECESSARY else "mandatory"
            threshold = f"from {format_number(c.threshold)}"
            kind_doc: Doc = kind
            if c.condition is not None:
                kind_doc = [kind + " when ", _expr_doc(c.condition)]
            self.cells.append((c.code, format_string(c.name), _flat(kind_doc), threshold))
            head = f"{c.code} {format_string(c.name)}"
            self.docs.append(_Group([head, _Nest([_LINE, kind_doc, " " + threshold])]))
        self.columns: dict[int, tuple[list[int], set[int]]] = {}

    def _columns(self, column: int) -> tuple[list[int], set[int]]:
        """Column widths and the rows aligned in them, for rows starting at ``column``: first
        the rows that fit unaligned; while some of them would not fit aligned, the row whose
        removal makes the table narrowest (the later one on a tie) leaves the columns."""
        if column not in self.columns:
            cells = self.cells
            aligned = {
                i for i, row in enumerate(cells) if column + len(" ".join(row)) <= _LINE_LENGTH
            }

            def widths(rows: set[int]) -> list[int]:
                return [max((len(cells[i][k]) for i in rows), default=0) for k in range(3)]

            def width(rows: set[int]) -> int:
                fixed = sum(widths(rows)) + 3  # three spaces between four cells
                return column + fixed + max((len(cells[i][3]) for i in rows), default=0)

            while width(aligned) > _LINE_LENGTH:
                aligned.remove(min(aligned, key=lambda i: (width(aligned - {i}), -i)))
            self.columns[column] = (widths(aligned), aligned)
        return self.columns[column]

    def row(self, index: int) -> Render:
        def render(column: int) -> list[str]:
            widths, aligned = self._columns(column)
            if index not in aligned:
                return _layout(self.docs[index], column)
            cells = self.cells[index]
            text = " ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=False))
            return [" " * column + text + " " + cells[3]]

        return render


def _controls(controls: Sequence[m.Control], span: Span | None, group: int) -> _Node:
    table = _ControlTable(controls)
    children = [_leaf(table.row(i), c.span) for i, c in enumerate(controls)]
    return _block("controls", children, span, group)


def _params(params: Iterable[m.Param]) -> list[_Node]:
    out = []
    for p in params:
        line = f"{p.name}: {'list of ' if p.is_list else ''}{p.type}"
        if p.title is not None:
            line += " " + format_string(p.title)
        out.append(_leaf(line, p.span))
    return out


def _condition(head: str, body: Doc) -> Render:
    """``head body`` (an indicator or exception): the condition starts after the head and
    wraps; it goes under the head, one level deeper, when the first line would not fit or when
    that takes fewer lines."""

    def render(column: int) -> list[str]:
        lines = _layout([head, " ", body], column)
        if len(lines) == 1:
            return lines
        under = [" " * column + head, *_layout(body, column + len(INDENT))]
        return under if len(lines[0]) > _LINE_LENGTH or len(under) < len(lines) else lines

    return render


def _named_conditions(
    items: Iterable[m.Indicator | m.ProfileException],
) -> list[_Node]:
    out = []
    for item in items:
        head = item.name
        if item.title is not None:
            head += " " + format_string(item.title)
        body = _expr_doc(item.condition)
        if isinstance(item, m.Indicator) and item.unless is not None:
            body = _chain(body, [("unless", _expr_doc(item.unless))])
        out.append(_leaf(_condition(head + ":", body), item.span))
    return out


def _history(history: m.History, span: Span | None, group: int) -> _Node:
    subjects = ", ".join(
        s.field.path + (f"[:{s.prefix}]" if s.prefix is not None else "") for s in history.subjects
    )
    head = f"history per {subjects} over {format_number(history.window_days)} days"
    children: list[_Node] = []
    neg = history.negative
    if neg is not None:
        neg_head = f"negative max {format_number(neg.max)}"
        if neg.per_case != 1:
            neg_head += f" per case {format_number(neg.per_case)}"
        reasons = [_leaf(f"{r.code}: {format_number(r.coefficient)}", r.span) for r in neg.reasons]
        children.append(_block(neg_head, reasons, neg.span))
    pos = history.positive
    if pos is not None:
        children.append(
            _leaf(
                f"positive max {format_number(pos.max)} per clean control "
                f"{format_number(pos.step)}",
                pos.span,
            )
        )
    return _block(head, children, span, group)


def _note(note: m.Note, span: Span | None, group: int) -> _Node:
    sections: list[_Node] = []
    for key in m.NOTE_SECTIONS:
        if key == "basis":
            if note.basis:
                sections.append(_leaf(_strings_statement("basis", note.basis)))
            continue
        text = getattr(note, key)
        if text is not None:
            sections.append(_leaf(_text_statement(key, text)))
    # A note's span points into its braces only when it has a section (else it is a fallback).
    return _block("note", sections, span if sections else None, group)


def _value_doc(value: m.Literal | m.ListLit) -> Doc:
    return _list_doc(value) if isinstance(value, m.ListLit) else format_literal(value)


def _list_def(ld: m.ListDef, group: int = 0) -> _Node:
    return _leaf([f"list {ld.name} = ", _list_doc(ld.values)], ld.span, group)


def _filling(f: m.Filling) -> Doc:
    if f.method is m.FillingMethod.CENTRAL:
        return "filling central" + (f" by {format_string(f.unit)}" if f.unit is not None else "")
    text = f"filling regional by {format_string(f.unit or '')}"
    if not f.coordinators:
        return text
    coordinators = _Nest(_Fill(tuple(format_string(c) for c in f.coordinators)))
    return _Group([text, _Nest([_LINE, "coordinated by ", coordinators])])


def _validity(v: m.Validity) -> str:
    return f"{format_date(v.start)} .." + (f" {format_date(v.end)}" if v.end is not None else "")


def _contact(c: m.Contact) -> Doc:
    parts: list[Doc] = []
    for word, value in (("phone", c.phone), ("fax", c.fax), ("mailbox", c.mailbox)):
        if value is not None:
            parts += [_LINE, f"{word} {format_string(value)}"]
    return _Group([f"contact {format_string(c.person)}", _Nest(parts)])


def _profile_node(p: m.Profile) -> _Node:
    sp = p.spans.get
    out: list[_Node] = []
    # Groups of the passport form; a blank line separates them.
    if p.approved is not None:
        out.append(_leaf(f"approved {format_date(p.approved)}", sp("approved"), 1))
    if p.edition_approved is not None:
        out.append(
            _leaf(f"edition approved {format_date(p.edition_approved)}", sp("edition_approved"), 1)
        )
    if p.in_force is not None:
        out.append(_leaf(f"in force {_validity(p.in_force)}", sp("in_force"), 1))
    if p.edition_in_force is not None:
        out.append(
            _leaf(f"edition in force {format_date(p.edition_in_force)}", sp("edition_in_force"), 1)
        )
    if p.filling is not None:
        # `filling central` has no token of its own: its span is the profile name's.
        span = sp("filling") if p.filling.unit is not None else None
        out.append(_leaf(_filling(p.filling), span, 1))
    if p.module is not None:
        text = f"module {p.module.name}"
        if p.module.text is not None:
            text += " " + format_string(p.module.text)
        out.append(_leaf(text, sp("module"), 1))
    if p.spheres:
        spheres = _Group(["spheres ", _Nest(_Fill(p.spheres))])
        out.append(_leaf(spheres, sp("spheres"), 1))
    out.extend(_list_def(ld, 2) for ld in p.lists)
    if p.params or "params" in p.spans:
        out.append(_block("regional", _params(p.params), sp("params") if p.params else None, 3))
    if p.indicators or "indicators" in p.spans:
        span = sp("indicators") if p.indicators else None
        out.append(_block("indicators", _named_conditions(p.indicators), span, 4))
    if p.exceptions or "exceptions" in p.spans:
        span = sp("exceptions") if p.exceptions else None
        out.append(_block("exceptions", _named_conditions(p.exceptions), span, 5))
    if p.degree is not None:
        out.append(_leaf(["degree = ", _expr_doc(p.degree)], sp("degree"), 6))
    if p.updates is not None:
        updates: Doc = f"updates {format_string(p.updates.how)}"
        if p.updates.by is not None:
            updates = _Group([updates, _Nest([_LINE, f"by {format_string(p.updates.by)}"])])
        out.append(_leaf(updates, sp("updates"), 6))
    if p.message is not None:
        out.append(_leaf(_message(p.message.text), sp("message"), 7))
    if p.controls or "controls" in p.spans:
        out.append(_controls(p.controls, sp("controls") if p.controls else None, 8))
    if p.history is not None:
        out.append(_history(p.history, sp("history"), 9))
    if p.contact is not None:
        out.append(_leaf(_contact(p.contact), sp("contact"), 10))
    if p.review is not None:
        out.append(_leaf(f"review by {format_date(p.review)}", sp("review"), 10))
    if p.note is not None:
        out.append(_note(p.note, sp("note"), 11))
    number = str(p.number) if p.number is not None else "draft"
    return _block(f"profile {number} {format_string(p.name)}", out, p.span)


def _fill_node(f: m.Fill) -> _Node:
    sp = f.spans.get
    out: list[_Node] = []
    if f.office is not None:
        text = f"office {f.office}"
        if f.office_name is not None:
            text += " " + format_string(f.office_name)
        out.append(_leaf(text, sp("office"), 1))
    if f.order is not None:
        text = f"order {format_string(f.order.number)} of {format_date(f.order.date)}"
        out.append(_leaf(text, sp("order"), 1))
    if f.valid is not None:
        v = f.valid
        end = v.end if v.end is not None else v.start
        out.append(_leaf(f"valid {format_date(v.start)} .. {format_date(end)}", sp("valid"), 1))
    if f.values or "values" in f.spans:
        values = [_leaf([f"{v.name} = ", _value_doc(v.value)], v.span) for v in f.values]
        out.append(_block("values", values, sp("values") if f.values else None, 2))
    if f.message is not None:
        out.append(_leaf(_message(f.message.text), sp("message"), 3))
    if f.controls or "controls" in f.spans:
        out.append(_controls(f.controls, sp("controls") if f.controls else None, 4))
    return _block(f"fill for {f.profile}", out, f.span)


def _item_node(item: m.Profile | m.Fill | m.ListDef) -> _Node:
    match item:
        case m.Profile():
            return _profile_node(item)
        case m.Fill():
            return _fill_node(item)
        case m.ListDef():
            return _list_def(item)
    raise TypeError(f"not a top-level item: {item!r}")


def _items(source: m.SourceFile) -> Sequence[m.Profile | m.Fill | m.ListDef]:
    """Top-level items in source order when ``items`` agrees with the typed tuples, else lists,
    profiles, fills (a model built or changed by hand)."""
    items = source.items
    if (
        tuple(x for x in items if isinstance(x, m.Profile)) == source.profiles
        and tuple(x for x in items if isinstance(x, m.Fill)) == source.fills
        and tuple(x for x in items if isinstance(x, m.ListDef)) == source.lists
    ):
        return items
    return (*source.lists, *source.profiles, *source.fills)


# ------------------------------------------------------------------------------------ rendering


def _render(node: _Node, depth: int, out: list[str]) -> None:
    ind = INDENT * depth
    out.extend(ind + c for c in node.leading)
    if node.children is None:
        assert node.render is not None
        out.extend(node.render(len(ind)))
    elif not node.children and not node.closing and node.header is None:
        out.append(ind + node.head + " {}")
    else:
        out.append(ind + node.head + " {" + ("  " + node.header if node.header else ""))
        previous: _Node | None = None
        for child in node.children:
            if previous is not None and child.group != previous.group:
                out.append("")
            _render(child, depth + 1, out)
            previous = child
        out.extend(ind + INDENT + c for c in node.closing)
        out.append(ind + "}")
    if node.trailing is not None:
        out[-1] += "  " + node.trailing


def _render_file(root: _Node) -> str:
    out: list[str] = []
    previous: _Node | None = None
    for item in root.children or ():
        both_lists = (
            previous is not None
            and previous.children is None
            and item.children is None
            and not item.leading
        )
        if previous is not None and not both_lists:
            out.append("")
        _render(item, 0, out)
        previous = item
    if root.closing:
        if out:
            out.append("")
        out.extend(root.closing)
    return "\n".join(out) + "\n" if out else ""


# ------------------------------------------------------------------------------------ comments

Pos = tuple[int, int]


def _brace_pairs(text: str) -> list[tuple[int, Pos, Pos]]:
    """Every ``{ … }`` pair outside strings and comments: (nesting level, ``{``, end of ``}``),
    positions as (line, column), 1-based like the parser's, ordered by the opening brace."""
    pairs: list[tuple[int, Pos, Pos]] = []
    stack: list[tuple[int, Pos]] = []  # (index in pairs, open position)
    line, line_start, i, n = 1, 0, 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line, line_start = line + 1, i + 1
        elif ch == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        elif ch == '"':
            quote = '"""' if text.startswith('"""', i) else '"'
            j = i + len(quote)
            while j < n and not text.startswith(quote, j):
                j += 2 if text[j] == "\\" else 1
            end = min(n, j + len(quote))
            breaks = text.count("\n", i, end)
            if breaks:
                line += breaks
                line_start = text.rfind("\n", i, end) + 1
            i = end
            continue
        elif ch == "{":
            pairs.append((len(stack) + 1, (line, i - line_start + 1), (0, 0)))
            stack.append((len(pairs) - 1, (line, i - line_start + 1)))
        elif ch == "}" and stack:
            index, opened = stack.pop()
            pairs[index] = (pairs[index][0], opened, (line, i - line_start + 2))
        i += 1
    return [p for p in pairs if p[2] != (0, 0)]


_MISSING = re.compile(r"is(?:\s+not)?\s+missing\b")


def _closing(text: str) -> Callable[[Pos], Pos]:
    """A statement's span ends at its last value or name; this gives the end after what may
    follow it in ``text`` (``)`` and a trailing comma, ``is [not] missing``), across white space
    and comments."""
    starts = [0, *(i + 1 for i, ch in enumerate(text) if ch == "\n")]

    def closing(end: Pos) -> Pos:
        line, column = end
        if not 1 <= line <= len(starts):
            return end
        i = starts[line - 1] + column - 1
        while i < len(text):
            ch = text[i]
            if ch == "#":
                j = text.find("\n", i)
                i = len(text) if j < 0 else j
                continue
            if ch in " \t\r\n,":
                i += 1
                continue
            if ch == ")":
                i += 1
            elif mt := _MISSING.match(text, i):
                i = mt.end()
            else:
                break
            line = bisect.bisect_right(starts, i - 1)
            end = (line, i - starts[line - 1] + 1)
        return end

    return closing


def _extents(
    node: _Node,
    level: int,
    pairs: dict[int, tuple[list[Pos], list[Pos]]],
    closing: Callable[[Pos], Pos],
) -> None:
    """Set ``start``/``end``/``last`` of every node from its span; a statement extends over
    the ``)`` that close it (``closing``); a block whose braces are found in the source text
    extends from its ``{`` (or its first value, if earlier) to its ``}``. ``pairs`` maps a
    nesting level to the opening and closing brace positions."""
    for child in node.children or ():
        _extents(child, level + 1, pairs, closing)
    if node.span is not None:
        node.start = (node.span.line, node.span.column)
        node.end = (node.span.end_line, node.span.end_column)
        if node.children is None:
            node.end = closing(node.end)
    if node.children is not None and level > 0:
        known = [c for c in node.children if c.start is not None and c.end is not None]
        if node.start is None and known:
            node.start = min(c.start for c in known if c.start is not None)
            node.end = max(c.end for c in known if c.end is not None)
        opens, closes = pairs.get(level, ([], []))
        # The block's braces: the first pair of its level that closes after its first value.
        i = bisect.bisect_right(closes, node.start) if node.start is not None else len(closes)
        if node.start is not None and i < len(closes):
            node.start = min(node.start, opens[i])
            node.end = closes[i]
            node.opened = opens[i]
    ends = [c.last for c in node.children or () if c.last is not None]
    if node.end is not None:
        ends.append(node.end)
    node.last = max(ends, default=None)


def _attach(root: _Node, comments: Sequence[m.Comment], text: str | None) -> None:
    """Give each comment a place: trailing (same line, after a statement), after a block's
    ``{`` (same line), leading (before the nearest following statement of the innermost
    enclosing block), or before the closing ``}`` of that block (end of file at the top)."""
    pairs: dict[int, tuple[list[Pos], list[Pos]]] = {}
    for level, opened, closed in _brace_pairs(text) if text is not None else []:
        pairs.setdefault(level, ([], []))[0].append(opened)
        pairs[level][1].append(closed)
    _extents(root, 0, pairs, _closing(text) if text is not None else lambda end: end)
    ends: dict[int, list[tuple[int, int, _Node]]] = {}
    opens: dict[int, list[tuple[int, _Node]]] = {}
    stack = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if node.end is not None and node is not root:
            ends.setdefault(node.end[0], []).append((node.end[1], depth, node))
        if node.opened is not None:
            opens.setdefault(node.opened[0], []).append((node.opened[1], node))
        stack.extend((child, depth + 1) for child in node.children or ())
    for comment in sorted(comments, key=lambda c: (c.span.line, c.span.column)):
        body = comment.text.rstrip()
        line, column = here = (comment.span.line, comment.span.column)
        same_line = [e for e in ends.get(line, ()) if e[0] <= column]
        if same_line:  # after a statement: it trails the one ending last (innermost on a tie)
            max(same_line, key=lambda e: e[:2])[2].trailing = body
            continue
        headers = [o for o in opens.get(line, ()) if o[0] < column]
        if headers:  # right after a block's `{`: it stays there
            max(headers, key=lambda o: o[0])[1].header = body
            continue
        _attach_inside(root, here, body)


def _attach_inside(block: _Node, here: Pos, body: str) -> None:
    while True:  # down to the innermost block around the comment
        inner = None
        for child in block.children or ():
            if child.start is not None and child.end is not None and child.start < here < child.end:
                inner = child
                break
        if inner is None:
            break
        if inner.children is None:  # inside a multi-line statement: put it before
            inner.leading.append(body)
            return
        block = inner
    following = _first_after(block, here, 1)
    if following is not None:
        following[1].leading.append(body)
    else:
        block.closing.append(body)


def _first_after(block: _Node, here: Pos, depth: int) -> tuple[tuple[Pos, int], _Node] | None:
    """The statement under ``block`` that starts first after ``here`` (of a block and its own
    first statement, the block), with its sort key."""
    best: tuple[tuple[Pos, int], _Node] | None = None
    for child in block.children or ():
        found: tuple[tuple[Pos, int], _Node] | None = None
        if child.start is not None and child.start > here:
            found = ((child.start, depth), child)  # nothing under it starts before it
        elif child.children and child.last is not None and child.last > here:
            found = _first_after(child, here, depth + 1)
        if found is not None and (best is None or found[0] < best[0]):
            best = found
    return best


# ------------------------------------------------------------------------------------ public API


def format_source(source: m.SourceFile, text: str | None = None) -> str:
    """The canonical text of a parsed file, its comments kept.

    Pass ``text``, the source the model was parsed from, to place comments written after the
    last statement of a block exactly (before that block's ``}``); without it, the model's
    spans (which end at a block's last value) put such comments after the block."""
    root = _Node("", [_item_node(item) for item in _items(source)])
    if source.comments:
        _attach(root, source.comments, text)
    return _render_file(root)


def format_text(text: str, file: str = "<string>") -> str:
    """Parse ``text`` and return its canonical form; raises ProfileError on any error."""
    from riskengine.syntax import parse

    return format_source(parse(text, file), text)


def format_profile(profile: m.Profile) -> str:
    """The canonical text of one profile (without comments)."""
    return _render_file(_Node("", [_profile_node(profile)]))


def format_fill(fill: m.Fill) -> str:
    """The canonical text of one regional fill (without comments)."""
    return _render_file(_Node("", [_fill_node(fill)]))
