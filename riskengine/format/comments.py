"""Comments: attached to the statements they belong to, by position in the source text."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence

from riskengine import model as m
from riskengine.format.statements import Node

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
    node: Node,
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


def attach(root: Node, comments: Sequence[m.Comment], text: str | None) -> None:
    """Give each comment a place: trailing (same line, after a statement), after a block's
    ``{`` (same line), leading (before the nearest following statement of the innermost
    enclosing block), or before the closing ``}`` of that block (end of file at the top)."""
    pairs: dict[int, tuple[list[Pos], list[Pos]]] = {}
    for level, opened, closed in _brace_pairs(text) if text is not None else []:
        pairs.setdefault(level, ([], []))[0].append(opened)
        pairs[level][1].append(closed)
    _extents(root, 0, pairs, _closing(text) if text is not None else lambda end: end)
    ends: dict[int, list[tuple[int, int, Node]]] = {}
    opens: dict[int, list[tuple[int, Node]]] = {}
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


def _attach_inside(block: Node, here: Pos, body: str) -> None:
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


def _first_after(block: Node, here: Pos, depth: int) -> tuple[tuple[Pos, int], Node] | None:
    """The statement under ``block`` that starts first after ``here`` (of a block and its own
    first statement, the block), with its sort key."""
    best: tuple[tuple[Pos, int], Node] | None = None
    for child in block.children or ():
        found: tuple[tuple[Pos, int], Node] | None = None
        if child.start is not None and child.start > here:
            found = ((child.start, depth), child)  # nothing under it starts before it
        elif child.children and child.last is not None and child.last > here:
            found = _first_after(child, here, depth + 1)
        if found is not None and (best is None or found[0] < best[0]):
            best = found
    return best
