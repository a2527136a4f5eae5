"""Python's own engine for the translated patterns it provably runs in linear time.

RE2 costs about 2 µs a call however short the text (the call into the extension and UTF-8
encoding); Python's ``re`` tests a short code in a few tenths of that. A translated pattern
(explicit classes, no flags, no assertions) is handed to ``re`` only when its backtracking is
bounded: at most one unbounded repetition, of a single class, and at most
:data:`MAX_CHOICES` ways to try everything else (alternatives times the spread of bounded
repetitions). Backtracking then tries at most ``(n + 1) * MAX_CHOICES`` ways, each of at most
the pattern's length: linear in the text ``n``. ``[^\\n]*X[^\\n]*`` and ``(?s:.)*X(?s:.)*``
(what ``.*word.*`` becomes) are matched as "no character outside the class, and ``X`` somewhere"
(``re.search``), which is the same (every character of ``X`` is in the class) and linear.
Everything else runs on RE2 (:mod:`riskengine.semantics.regex`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from riskengine.semantics.regex import (
    Alt,
    Assert,
    Chars,
    Node,
    Ranges,
    Repeat,
    Seq,
    _complement,
    _contains,
    _emit,
    _minus,
    _union,
)

#: The most ways to try the bounded choices of a pattern run on Python's engine.
MAX_CHOICES = 256
#: ``.*X.*`` runs as a search for ``X`` only with this few ways to try ``X`` at a position:
#: Python tests every position, RE2 reads each character once (an alternation of six words
#: spelt out case-insensitively: 8 µs with ``re`` against 3.6 µs with RE2 on 50 characters).
MAX_SEARCH_CHOICES = 4
#: The longest translated pattern run on Python's engine.
MAX_SOURCE = 4_000
_SURROGATES: Ranges = ((0xD800, 0xDFFF),)


def _py_ranges(ranges: Ranges) -> Ranges:
    """A class as Python reads it on the text RE2 gets: a lone surrogate reads as U+FFFD."""
    ranges = _minus(ranges, _SURROGATES)
    return _union(ranges, _SURROGATES) if _contains(ranges, 0xFFFD) else ranges


def _py_chars(ranges: Ranges) -> str:
    ranges = _py_ranges(ranges)
    if not ranges:
        return "[^\\x00-\\U0010ffff]"
    body = "".join(f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in ranges)
    return f"[{body}]"


class _NotSafe(Exception):
    pass


def _no_assert(n: Assert) -> str:
    raise _NotSafe


def _choices(n: Node) -> tuple[int, int]:
    """(ways to try the bounded choices, number of unbounded repetitions) of ``n``; raises
    :class:`_NotSafe` outside the subset."""
    if isinstance(n, Chars):
        return 1, 0
    if isinstance(n, Seq):
        ways, free = 1, 0
        for item in n.items:
            w, f = _choices(item)
            ways, free = ways * w, free + f
        return ways, free
    if isinstance(n, Alt):
        parts = [_choices(item) for item in n.items]
        return sum(w for w, _ in parts), sum(f for _, f in parts)
    if isinstance(n, Repeat):
        inner = _choices(n.item)
        if isinstance(n.item, Chars):
            if n.hi is None:
                return 1, 1
            return n.hi - n.lo + 1, 0
        if n.hi == n.lo and inner == (1, 0):
            return 1, 0
    raise _NotSafe


def _chars_of(n: Node) -> Ranges:
    if isinstance(n, Chars):
        return n.ranges
    if isinstance(n, Repeat):
        return _chars_of(n.item)
    if isinstance(n, Seq | Alt):
        out: Ranges = ()
        for item in n.items:
            out = _union(out, _chars_of(item))
        return out
    raise _NotSafe


def _bounded(n: Node, free_allowed: int, most: int = MAX_CHOICES) -> bool:
    try:
        ways, free = _choices(n)
    except _NotSafe:
        return False
    return ways <= most and free <= free_allowed


def python_matcher(tree: Node) -> Callable[[str], bool] | None:
    """A function matching the translated ``tree`` with Python's ``re`` in linear time, or
    ``None`` when that is not proven (then RE2 matches it)."""
    try:
        if isinstance(tree, Seq) and len(tree.items) >= 3:
            head, tail, middle = tree.items[0], tree.items[-1], Seq(tree.items[1:-1])
            if (
                isinstance(head, Repeat)
                and head == tail
                and isinstance(head.item, Chars)
                and (head.lo, head.hi) == (0, None)
                and _bounded(middle, 0, MAX_SEARCH_CHOICES)
                and not _minus(_chars_of(middle), head.item.ranges)
            ):
                outside = _complement(_py_ranges(head.item.ranges))
                source = _emit(middle, _py_chars, _no_assert, 1000)
                if len(source) > MAX_SOURCE or len(outside) > 16:
                    return None
                search = re.compile(source).search
                if not outside:
                    return lambda text: search(text) is not None
                bad = re.compile(_py_chars(outside)).search
                return lambda text: bad(text) is None and search(text) is not None
        if not _bounded(tree, 1):
            return None
        source = _emit(tree, _py_chars, _no_assert, 1000)
        if len(source) > MAX_SOURCE:
            return None
        full = re.compile(source).fullmatch
        return lambda text: full(text) is not None
    except _NotSafe:
        return None
