"""The formatter: a parsed file back to its one canonical text, with its comments kept."""

from __future__ import annotations

import bisect
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal

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


def _list_value(values: m.ListValue) -> str:
    match values:
        case m.ListLit():
            return format_literal(values)
        case m.Ref(name=name):
            return name
        case m.FieldRef(path=path):
            return path
    raise TypeError(f"not a list value: {values!r}")


def _expr(expr: m.Expr, need: int) -> str:
    text = _bare(expr)
    return f"({text})" if _level(expr) < need else text


def _bare(expr: m.Expr) -> str:
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
            return "-" + _expr(o, _UNARY)
        case m.Arith(op=op, left=a, right=b):
            level = _SUM if op in ("+", "-") else _PRODUCT
            return f"{_expr(a, level)} {op} {_expr(b, level + 1)}"
        case m.Compare(op=op, left=a, right=b):
            return f"{_expr(a, _SUM)} {op} {_expr(b, _SUM)}"
        case m.And(left=a, right=b):
            return f"{_expr(a, _AND)} and {_expr(b, _NOT)}"
        case m.Or(left=a, right=b):
            return f"{_expr(a, _OR)} or {_expr(b, _AND)}"
        case m.Not(operand=o):
            return "not " + _expr(o, _NOT)
        case m.InList(operand=o, values=v, negated=negated):
            word = "not in" if negated else "in"
            return f"{_expr(o, _SUM)} {word} {_list_value(v)}"
        case m.StartsWith(operand=o, prefixes=p):
            return f"{_expr(o, _SUM)} starts with {_list_value(p)}"
        case m.Between(operand=o, low=lo, high=hi):
            return f"{_expr(o, _SUM)} between {_expr(lo, _SUM)} and {_expr(hi, _SUM)}"
        case m.Matches(operand=o, pattern=pattern):
            return f"{_expr(o, _SUM)} matches {format_string(pattern)}"
        case m.IsMissing(operand=o, negated=negated):
            return f"{_expr(o, _SUM)} is {'not ' if negated else ''}missing"
        case m.Call(func=func, args=args):
            return func + "(" + ", ".join(_expr(a, _COND) for a in args) + ")"
        case m.Cond(test=t, then=a, otherwise=b):
            # A conditional inside `if` or `then` gets parentheses for the reader; `else if`
            # chains do not need them.
            return f"if {_expr(t, _OR)} then {_expr(a, _OR)} else {_expr(b, _COND)}"
    raise TypeError(f"not an expression: {expr!r}")


def format_expr(expr: m.Expr) -> str:
    """One expression in canonical form, with only the parentheses its structure needs."""
    return _expr(expr, _COND)


# ------------------------------------------------------------------------------------ layout


@attrs.define(eq=False)
class _Node:
    """One statement of the output. A leaf is its lines; a block is a header line (``{`` is
    added) and child statements. ``span`` is where the statement was in the source (comments
    are attached by position); ``group`` separates statement groups with a blank line."""

    lines: list[str]
    children: list[_Node] | None = None
    span: Span | None = None
    group: int = 0
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


def _leaf(line: str | list[str], span: Span | None = None, group: int = 0) -> _Node:
    return _Node([line] if isinstance(line, str) else line, None, _known(span), group)


def _block(head: str, children: list[_Node], span: Span | None = None, group: int = 0) -> _Node:
    return _Node([head], children, _known(span), group)


def _known(span: Span | None) -> Span | None:
    return span if span is not None and span.line >= 1 else None


def _text_statement(keyword: str, text: str) -> list[str]:
    """``keyword "text"``, as a triple-quoted block when the text has several lines."""
    block = _block_lines(text)
    if block is None:
        return [f"{keyword} {format_string(text)}"]
    return [f"{keyword} {block[0]}", *block[1:]]


def _strings_statement(keyword: str, texts: Sequence[str]) -> list[str]:
    """``keyword "a", "b"``: on one line when it fits, else one string per line."""
    blocks = [_block_lines(t) for t in texts]
    if all(b is None for b in blocks):
        one = f"{keyword} " + ", ".join(format_string(t) for t in texts)
        if len(one) + 2 * len(INDENT) <= _LINE_LENGTH or len(texts) == 1:
            return [one]
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
    return lines


def _controls(controls: Sequence[m.Control], span: Span | None, group: int) -> _Node:
    """Control forms, one per line, code, name and kind aligned in columns."""
    rows: list[list[str]] = []
    for c in controls:
        kind = "if necessary" if c.kind is m.ControlKind.IF_NECESSARY else "mandatory"
        if c.condition is not None:
            kind += " when " + format_expr(c.condition)
        rows.append([c.code, format_string(c.name), kind])
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(3)]
    children = [
        _leaf(
            " ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
            + f" from {format_number(c.threshold)}",
            c.span,
        )
        for row, c in zip(rows, controls, strict=True)
    ]
    return _block("controls", children, span, group)


def _params(params: Iterable[m.Param]) -> list[_Node]:
    out = []
    for p in params:
        line = f"{p.name}: {'list of ' if p.is_list else ''}{p.type}"
        if p.title is not None:
            line += " " + format_string(p.title)
        out.append(_leaf(line, p.span))
    return out


def _named_conditions(
    items: Iterable[m.Indicator | m.ProfileException],
) -> list[_Node]:
    out = []
    for item in items:
        line = item.name
        if item.title is not None:
            line += " " + format_string(item.title)
        line += ": " + format_expr(item.condition)
        if isinstance(item, m.Indicator) and item.unless is not None:
            line += " unless " + format_expr(item.unless)
        out.append(_leaf(line, item.span))
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


def _list_def(ld: m.ListDef, group: int = 0) -> _Node:
    return _leaf(f"list {ld.name} = {format_literal(ld.values)}", ld.span, group)


def _filling(f: m.Filling) -> str:
    if f.method is m.FillingMethod.CENTRAL:
        return "filling central" + (f" by {format_string(f.unit)}" if f.unit is not None else "")
    text = f"filling regional by {format_string(f.unit or '')}"
    if f.coordinators:
        text += " coordinated by " + ", ".join(format_string(c) for c in f.coordinators)
    return text


def _validity(v: m.Validity) -> str:
    return f"{format_date(v.start)} .." + (f" {format_date(v.end)}" if v.end is not None else "")


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
        out.append(_leaf(_filling(p.filling), sp("filling"), 1))
    if p.module is not None:
        text = f"module {p.module.name}"
        if p.module.text is not None:
            text += " " + format_string(p.module.text)
        out.append(_leaf(text, sp("module"), 1))
    if p.spheres:
        out.append(_leaf("spheres " + ", ".join(p.spheres), sp("spheres"), 1))
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
        out.append(_leaf(f"degree = {format_expr(p.degree)}", sp("degree"), 6))
    if p.updates is not None:
        text = f"updates {format_string(p.updates.how)}"
        if p.updates.by is not None:
            text += f" by {format_string(p.updates.by)}"
        out.append(_leaf(text, sp("updates"), 6))
    if p.message is not None:
        out.append(_leaf(f"message {format_string(p.message.text)}", sp("message"), 7))
    if p.controls or "controls" in p.spans:
        out.append(_controls(p.controls, sp("controls") if p.controls else None, 8))
    if p.history is not None:
        out.append(_history(p.history, sp("history"), 9))
    if p.contact is not None:
        c = p.contact
        text = f"contact {format_string(c.person)}"
        for word, value in (("phone", c.phone), ("fax", c.fax), ("mailbox", c.mailbox)):
            if value is not None:
                text += f" {word} {format_string(value)}"
        out.append(_leaf(text, sp("contact"), 10))
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
        values = [_leaf(f"{v.name} = {format_literal(v.value)}", v.span) for v in f.values]
        out.append(_block("values", values, sp("values") if f.values else None, 2))
    if f.message is not None:
        out.append(_leaf(f"message {format_string(f.message.text)}", sp("message"), 3))
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
        out.extend(ind + line if line else "" for line in node.lines)
    elif not node.children and not node.closing and node.header is None:
        out.append(ind + node.lines[0] + " {}")
    else:
        out.append(ind + node.lines[0] + " {" + ("  " + node.header if node.header else ""))
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


def _extents(node: _Node, level: int, pairs: dict[int, tuple[list[Pos], list[Pos]]]) -> None:
    """Set ``start``/``end``/``last`` of every node from its span; a block whose braces are
    found in the source text extends from its ``{`` (or its first value, if earlier) to its
    ``}``. ``pairs`` maps a nesting level to the opening and closing brace positions."""
    for child in node.children or ():
        _extents(child, level + 1, pairs)
    if node.span is not None:
        node.start = (node.span.line, node.span.column)
        node.end = (node.span.end_line, node.span.end_column)
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
    _extents(root, 0, pairs)
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
    root = _Node([], [_item_node(item) for item in _items(source)])
    if source.comments:
        _attach(root, source.comments, text)
    return _render_file(root)


def format_text(text: str, file: str = "<string>") -> str:
    """Parse ``text`` and return its canonical form; raises ProfileError on any error."""
    from riskengine.syntax import parse

    return format_source(parse(text, file), text)


def format_profile(profile: m.Profile) -> str:
    """The canonical text of one profile (without comments)."""
    return _render_file(_Node([], [_profile_node(profile)]))


def format_fill(fill: m.Fill) -> str:
    """The canonical text of one regional fill (without comments)."""
    return _render_file(_Node([], [_fill_node(fill)]))
