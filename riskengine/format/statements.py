"""Statements and blocks: a profile, a fill or a list as a tree of nodes, rendered to lines."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

import attrs

from riskengine import model as m
from riskengine.diagnostics import Span
from riskengine.format.doc import (
    INDENT,
    LINE,
    LINE_LENGTH,
    Doc,
    FillDoc,
    Group,
    Nest,
    block_lines,
    flat_text,
    format_date,
    format_literal,
    format_number,
    format_string,
    layout,
)
from riskengine.format.expr import chain, expr_doc, list_doc

# ------------------------------------------------------------------------------------ layout


Render = Callable[[int], list[str]]  # the lines of a statement written from a column


@attrs.define(eq=False)
class Node:
    """One statement of the output. A leaf is its lines, laid out by ``render`` for the column
    it starts at; a block is a header line (``{`` is added) and child statements. ``span`` is
    where the statement was in the source (comments are attached by position); ``group``
    separates statement groups with a blank line."""

    head: str
    children: list[Node] | None = None
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


def _leaf(content: Doc | Render, span: Span | None = None, group: int = 0) -> Node:
    """A statement: a document laid out at its column, or a function that lays it out."""
    if callable(content):
        render = content
    else:
        doc = content

        def render(column: int) -> list[str]:
            return layout(doc, column)

    return Node("", None, _known(span), group, render)


def _block(head: str, children: list[Node], span: Span | None = None, group: int = 0) -> Node:
    return Node(head, children, _known(span), group)


def _known(span: Span | None) -> Span | None:
    return span if span is not None and span.line >= 1 else None


def _fixed(lines: list[str]) -> Render:
    """Lines that do not depend on the column (a triple-quoted block keeps its empty lines)."""
    return lambda column: [" " * column + line if line else "" for line in lines]


def _text_statement(keyword: str, text: str) -> Render:
    """``keyword "text"``, as a triple-quoted block when the text has several lines."""
    block = block_lines(text)
    if block is None:
        return _fixed([f"{keyword} {format_string(text)}"])
    return _fixed([f"{keyword} {block[0]}", *block[1:]])


def _strings_statement(keyword: str, texts: Sequence[str]) -> Render:
    """``keyword "a", "b"``: on one line when it fits, else one string per line."""
    blocks = [block_lines(t) for t in texts]

    def render(column: int) -> list[str]:
        if all(b is None for b in blocks):
            one = f"{keyword} " + ", ".join(format_string(t) for t in texts)
            if column + len(one) <= LINE_LENGTH or len(texts) == 1:
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
        if len(head) + len(format_string(text)) <= LINE_LENGTH:
            return [head + format_string(text)]
        lines: list[str] = []
        prefix, current = head, ""
        for word in _message_words(text):
            if current and len(prefix) + len(format_string(current + word)) > LINE_LENGTH:
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
                kind_doc = [kind + " when ", expr_doc(c.condition)]
            self.cells.append((c.code, format_string(c.name), flat_text(kind_doc), threshold))
            head = f"{c.code} {format_string(c.name)}"
            self.docs.append(Group([head, Nest([LINE, kind_doc, " " + threshold])]))
        self.columns: dict[int, tuple[list[int], set[int]]] = {}

    def _columns(self, column: int) -> tuple[list[int], set[int]]:
        """Column widths and the rows aligned in them, for rows starting at ``column``: first
        the rows that fit unaligned; while some of them would not fit aligned, the row whose
        removal makes the table narrowest (the later one on a tie) leaves the columns."""
        if column not in self.columns:
            cells = self.cells
            aligned = {
                i for i, row in enumerate(cells) if column + len(" ".join(row)) <= LINE_LENGTH
            }

            def widths(rows: set[int]) -> list[int]:
                return [max((len(cells[i][k]) for i in rows), default=0) for k in range(3)]

            def width(rows: set[int]) -> int:
                fixed = sum(widths(rows)) + 3  # three spaces between four cells
                return column + fixed + max((len(cells[i][3]) for i in rows), default=0)

            while width(aligned) > LINE_LENGTH:
                aligned.remove(min(aligned, key=lambda i: (width(aligned - {i}), -i)))
            self.columns[column] = (widths(aligned), aligned)
        return self.columns[column]

    def row(self, index: int) -> Render:
        def render(column: int) -> list[str]:
            widths, aligned = self._columns(column)
            if index not in aligned:
                return layout(self.docs[index], column)
            cells = self.cells[index]
            text = " ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=False))
            return [" " * column + text + " " + cells[3]]

        return render


def _controls(controls: Sequence[m.Control], span: Span | None, group: int) -> Node:
    table = _ControlTable(controls)
    children = [_leaf(table.row(i), c.span) for i, c in enumerate(controls)]
    return _block("controls", children, span, group)


def _params(params: Iterable[m.Param]) -> list[Node]:
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
        lines = layout([head, " ", body], column)
        if len(lines) == 1:
            return lines
        under = [" " * column + head, *layout(body, column + len(INDENT))]
        return under if len(lines[0]) > LINE_LENGTH or len(under) < len(lines) else lines

    return render


def _named_conditions(
    items: Iterable[m.Indicator | m.ProfileException],
) -> list[Node]:
    out = []
    for item in items:
        head = item.name
        if item.title is not None:
            head += " " + format_string(item.title)
        body = expr_doc(item.condition)
        if isinstance(item, m.Indicator) and item.unless is not None:
            body = chain(body, [("unless", expr_doc(item.unless))])
        out.append(_leaf(_condition(head + ":", body), item.span))
    return out


def _history(history: m.History, span: Span | None, group: int) -> Node:
    subjects = ", ".join(
        s.field.path + (f"[:{s.prefix}]" if s.prefix is not None else "") for s in history.subjects
    )
    head = f"history per {subjects} over {format_number(history.window_days)} days"
    children: list[Node] = []
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


def _note(note: m.Note, span: Span | None, group: int) -> Node:
    sections: list[Node] = []
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
    return list_doc(value) if isinstance(value, m.ListLit) else format_literal(value)


def _list_def(ld: m.ListDef, group: int = 0) -> Node:
    return _leaf([f"list {ld.name} = ", list_doc(ld.values)], ld.span, group)


def _filling(f: m.Filling) -> Doc:
    if f.method is m.FillingMethod.CENTRAL:
        return "filling central" + (f" by {format_string(f.unit)}" if f.unit is not None else "")
    text = f"filling regional by {format_string(f.unit or '')}"
    if not f.coordinators:
        return text
    coordinators = Nest(FillDoc(tuple(format_string(c) for c in f.coordinators)))
    return Group([text, Nest([LINE, "coordinated by ", coordinators])])


def _validity(v: m.Validity) -> str:
    return f"{format_date(v.start)} .." + (f" {format_date(v.end)}" if v.end is not None else "")


def _contact(c: m.Contact) -> Doc:
    parts: list[Doc] = []
    for word, value in (("phone", c.phone), ("fax", c.fax), ("mailbox", c.mailbox)):
        if value is not None:
            parts += [LINE, f"{word} {format_string(value)}"]
    return Group([f"contact {format_string(c.person)}", Nest(parts)])


def profile_node(p: m.Profile) -> Node:
    sp = p.spans.get
    out: list[Node] = []
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
        spheres = Group(["spheres ", Nest(FillDoc(p.spheres))])
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
        out.append(_leaf(["degree = ", expr_doc(p.degree)], sp("degree"), 6))
    if p.updates is not None:
        updates: Doc = f"updates {format_string(p.updates.how)}"
        if p.updates.by is not None:
            updates = Group([updates, Nest([LINE, f"by {format_string(p.updates.by)}"])])
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


def fill_node(f: m.Fill) -> Node:
    sp = f.spans.get
    out: list[Node] = []
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


def item_node(item: m.Profile | m.Fill | m.ListDef) -> Node:
    match item:
        case m.Profile():
            return profile_node(item)
        case m.Fill():
            return fill_node(item)
        case m.ListDef():
            return _list_def(item)
    raise TypeError(f"not a top-level item: {item!r}")


def top_level_items(source: m.SourceFile) -> Sequence[m.Profile | m.Fill | m.ListDef]:
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


def _render(node: Node, depth: int, out: list[str]) -> None:
    ind = INDENT * depth
    out.extend(ind + c for c in node.leading)
    if node.children is None:
        assert node.render is not None
        out.extend(node.render(len(ind)))
    elif not node.children and not node.closing and node.header is None:
        out.append(ind + node.head + " {}")
    else:
        out.append(ind + node.head + " {" + ("  " + node.header if node.header else ""))
        previous: Node | None = None
        for child in node.children:
            if previous is not None and child.group != previous.group:
                out.append("")
            _render(child, depth + 1, out)
            previous = child
        out.extend(ind + INDENT + c for c in node.closing)
        out.append(ind + "}")
    if node.trailing is not None:
        out[-1] += "  " + node.trailing


def render_file(root: Node) -> str:
    out: list[str] = []
    previous: Node | None = None
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
