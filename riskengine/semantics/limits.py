"""Limits a profile must stay within so that every backend runs it, and how they are measured.

``check`` reports a located error for a profile beyond any of these (codes RE601-RE605, see
docs/diagnostics.md; the rules for users are in docs/language.md#limits); the compilers are
written so that every profile within them compiles and runs on every backend (or takes the
Python fallback of a backtest with a stated reason). Each constant says which backend needs it.

The measures (:func:`nesting_depth`, :func:`expression_size`) never recurse: the parser calls
them on expressions of any depth (10,000 nested ``not`` are read without trouble) before
anything that does recurse -- the checks, the formatter, the code generators -- sees them.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, NamedTuple

from riskengine import model as m

# Depth of nested expressions, counted by :func:`nesting_depth` (a value is 1 level; each
# operation adds one; a chain of the same operator written without parentheses is one level).
# The generated Python nests one pair of parentheses or one call per level (CPython refuses
# more than 200 nested parentheses and recurses in its compiler), and SQLite's parser has a
# fixed stack (a few hundred entries; 34 nested unary minuses overflowed it before the SQL
# compiler took care). An indicator used by name counts with its own depth: the SQL of a
# backtest writes the indicator's condition where it is used.
MAX_EXPRESSION_DEPTH = 100

# Size of a profile's expressions, counted by :func:`expression_size` over the indicators, the
# exceptions, the degree and the control conditions: every operation and value is 1, an
# indicator used by name counts its condition again and a named list its values, at every
# place they are used -- that is what the SQL of a backtest writes out (and binds: every list
# value is a bound parameter, and PostgreSQL takes at most 65,535 in one statement). It keeps
# the generated SQL and Python bounded; the width of one expression is not limited otherwise
# (long sums and conjunctions are flattened by the compilers).
MAX_PROFILE_SIZE = 10_000

# Number literals in expressions, lists and fill values: at most this many digits before the
# decimal point (every integer of 15 digits is exact as a double, which is how the evaluator and
# every SQL engine compute; a literal of 310 digits is not even a finite double) and at most
# this many after it (1e-15 is the smallest step a double still tells apart from 0 near 1).
MAX_NUMBER_INTEGER_DIGITS = 15
MAX_NUMBER_FRACTION_DIGITS = 15

# History weights: `negative max`, `per case`, the significance coefficients of the reasons and
# `positive max`, `per clean control`. The procedure's coefficients are small decimals (0.3,
# 0.8, 1.0) and history moves a degree clamped to 0..100, so 0..1000 leaves room for any
# sensible weighting; with at most 6 decimal places every weight, and every sum of them over
# millions of clearances, is exact in the history providers (Decimal) and in SQL's NUMERIC
# (a coefficient of 1.2e29 overflowed the float conversion of the store provider).
MAX_HISTORY_WEIGHT = Decimal(1000)
MAX_HISTORY_WEIGHT_DECIMALS = 6

# `over N days`: the window's first day is N days before the scoring date, computed with
# Python dates (years 1..9999) and SQL date arithmetic; ten years (3,660 days) is longer than
# any record-keeping period of the clearance systems. Larger N overflowed the date arithmetic.
MAX_HISTORY_DAYS = 3660

# `item.hs_code[:N]`: the prefix of a text field a history subject takes; SQL's substr takes a
# 32-bit integer, and no field of a declaration is near 100 characters long.
MAX_HISTORY_PREFIX = 100


# ------------------------------------------------------------------------------------ measures

_ADD = frozenset("+-")

Node = m.Expr | m.ListLit

# Binary operations: the left operand continues the chain when it is the same operation (for
# arithmetic: of the same precedence, `+ -` or `* /`).
_BINARY = frozenset((m.Arith, m.Compare, m.And, m.Or))

# The operands of the other operations (the values of `in` and `starts with` are counted apart).
_OPERANDS: dict[type, Callable[[Any], tuple[m.Expr, ...]]] = {
    m.Neg: lambda n: (n.operand,),
    m.Not: lambda n: (n.operand,),
    m.IsMissing: lambda n: (n.operand,),
    m.Matches: lambda n: (n.operand,),
    m.InList: lambda n: (n.operand,),
    m.StartsWith: lambda n: (n.operand,),
    m.Between: lambda n: (n.operand, n.low, n.high),
    m.Call: lambda n: n.args,
    m.Cond: lambda n: (n.test, n.then, n.otherwise),
}


class Scan(NamedTuple):
    """What one pass over an expression finds (see :func:`scan`)."""

    depth: int  # with every name counted as a value (1 level)
    size: int  # with every name counted as 1 and a named list as its values
    names: dict[str, tuple[int, int]]  # name -> (levels above its deepest use, uses)
    numbers: list[m.NumberLit]  # every number literal, those of lists included


# Values without operands that count nothing but themselves.
_PLAIN_VALUES = frozenset((m.FieldRef, m.StringLit, m.DateLit, m.BoolLit, m.HistoryRef))


def scan(expr: Node, list_size: Callable[[str], int] | None = None) -> Scan:
    """Depth, size, the names used and the number literals of ``expr``, in one pass that never
    recurses.

    Depth: a value (literal, field, name, history value, list) is 1; an operation is 1 more than
    its deepest operand, except that the left operand of the same chain (``+``/``-``,
    ``*``/``/``, ``and``, ``or``) counts its operands, not itself: ``a + b - c`` is 2,
    ``a + (b - c)`` is 3, ``- - x`` is 3, ``not (a and b and c)`` is 3. Parentheses by
    themselves add nothing. So the depth is the largest number of levels above a value plus 1,
    and with an indicator written in place of its name, the levels above the name plus the
    indicator's depth (:meth:`Scan.with_names`).

    Size: every operation and value is 1, a list literal its values and 1, a list given by name
    ``list_size(name)`` (default 1).
    """
    deepest = 0
    size = 0
    names: dict[str, tuple[int, int]] = {}
    numbers: list[m.NumberLit] = []
    stack: list[tuple[Node, int]] = [(expr, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        node, above = pop()
        size += 1
        kind = type(node)
        if kind in _BINARY:
            left = node.left  # type: ignore[union-attr]
            if kind is m.Arith:
                same = type(left) is m.Arith and (node.op in _ADD) == (left.op in _ADD)  # type: ignore[union-attr]
            else:
                same = kind is not m.Compare and type(left) is kind
            push((node.right, above + 1))  # type: ignore[union-attr]
            push((left, above if same else above + 1))
            continue
        if kind in _PLAIN_VALUES:
            if above >= deepest:
                deepest = above + 1
            continue
        if kind is m.Ref:
            if above >= deepest:
                deepest = above + 1
            name = node.name  # type: ignore[union-attr]
            seen = names.get(name)
            names[name] = (above, 1) if seen is None else (max(seen[0], above), seen[1] + 1)
            continue
        if kind is m.NumberLit:
            numbers.append(node)  # type: ignore[arg-type]
            if above >= deepest:
                deepest = above + 1
            continue
        if kind is m.InList or kind is m.StartsWith:
            values = node.values if kind is m.InList else node.prefixes  # type: ignore[union-attr]
            if type(values) is m.ListLit:
                items = values.items
                size += 1 + len(items)
                numbers += [x for x in items if type(x) is m.NumberLit]
            elif type(values) is m.Ref and list_size is not None:
                size += list_size(values.name)
            else:
                size += 1
            push((node.operand, above + 1))  # type: ignore[union-attr]
            continue
        if kind is m.ListLit:
            items = node.items  # type: ignore[union-attr]
            size += len(items)
            numbers += [x for x in items if type(x) is m.NumberLit]
        get = _OPERANDS.get(kind)
        if get is None:
            if above >= deepest:
                deepest = above + 1
            continue
        for operand in get(node):
            push((operand, above + 1))
    return Scan(deepest, size, names, numbers)


def with_names(found: Scan, depth_size: Callable[[str], tuple[int, int] | None]) -> tuple[int, int]:
    """Depth and size of the scanned expression with each name that ``depth_size`` knows (an
    indicator) written in place: its depth below the levels above the name, its size at each
    use."""
    depth, size = found.depth, found.size
    for name, (above, uses) in found.names.items():
        known = depth_size(name)
        if known is not None:
            depth = max(depth, above + known[0])
            size += uses * (known[1] - 1)
    return depth, size


def nesting_depth(expr: Node) -> int:
    """How deeply ``expr`` nests on its own: :attr:`Scan.depth` of :func:`scan`, by the same
    rules, without counting the rest (the parser measures every long expression with it)."""
    deepest = 0
    stack: list[tuple[Node, int]] = [(expr, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        node, above = pop()
        kind = type(node)
        if kind in _BINARY:
            left = node.left  # type: ignore[union-attr]
            if kind is m.Arith:
                same = type(left) is m.Arith and (node.op in _ADD) == (left.op in _ADD)  # type: ignore[union-attr]
            else:
                same = kind is not m.Compare and type(left) is kind
            push((node.right, above + 1))  # type: ignore[union-attr]
            push((left, above if same else above + 1))
            continue
        get = _OPERANDS.get(kind)
        if get is None:
            if above >= deepest:
                deepest = above + 1
            continue
        for operand in get(node):
            push((operand, above + 1))
    return deepest


def expression_size(expr: Node) -> int:
    """The number of operations and values in ``expr`` on its own (see :func:`scan`)."""
    return scan(expr).size


def number_digits(text: str) -> tuple[int, int]:
    """Digits written before and after the decimal point of a number literal (``12.50`` →
    (2, 2)); a sign is ignored."""
    whole, _, fraction = text.lstrip("-").partition(".")
    return len(whole), len(fraction)


def decimal_digits(value: Decimal) -> tuple[int, int]:
    """Digits of a number before and after its decimal point, as the parser keeps it
    (``Decimal("12.50")`` → (2, 2), ``Decimal("0.5")`` → (0, 1), leading zeros dropped)."""
    _sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):  # NaN or infinity: never built by the parser
        return 0, 0
    return max(0, len(digits) + exponent), max(0, -exponent)
