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
_MUL = frozenset("*/")


def _chains(parent: m.Expr | m.ListLit, child: m.Expr | m.ListLit) -> bool:
    """Whether ``child``, the left operand of ``parent``, continues the same chain (``a + b - c``
    or ``a and b and c`` written without parentheses): the compilers write it flat."""
    if isinstance(parent, m.Arith) and isinstance(child, m.Arith):
        group = _ADD if parent.op in _ADD else _MUL
        return child.op in group
    return (isinstance(parent, m.And) and isinstance(child, m.And)) or (
        isinstance(parent, m.Or) and isinstance(child, m.Or)
    )


def nesting_depth(expr: m.Expr | m.ListLit, ref_depth: Callable[[m.Ref], int] | None = None) -> int:
    """How deeply ``expr`` nests, iteratively (any depth is fine).

    A value (literal, field, name, history value, list) is 1; an operation is 1 more than its
    deepest operand, except that the left operand of the same chain (``+``/``-``, ``*``/``/``,
    ``and``, ``or``) counts its operands, not itself: ``a + b - c`` is 2, ``a + (b - c)`` is 3,
    ``- - x`` is 3, ``not (a and b and c)`` is 3. Parentheses by themselves add nothing.
    ``ref_depth`` gives the depth of a name (an indicator written in place); default 1.
    """
    depth: dict[int, int] = {}
    stack: list[tuple[m.Expr | m.ListLit, bool]] = [(expr, False)]
    while stack:
        node, ready = stack.pop()
        kids = () if isinstance(node, m.ListLit) else m.children(node)
        if not kids:
            if isinstance(node, m.Ref) and ref_depth is not None:
                depth[id(node)] = ref_depth(node)
            else:
                depth[id(node)] = 1
            continue
        if not ready:
            stack.append((node, True))
            stack.extend((k, False) for k in kids)
            continue
        deepest = 0
        for i, k in enumerate(kids):
            d = depth[id(k)]
            if i == 0 and _chains(node, k):
                d -= 1
            deepest = max(deepest, d)
        depth[id(node)] = deepest + 1
    return depth[id(expr)]


def expression_size(
    expr: m.Expr | m.ListLit,
    ref_size: Callable[[m.Ref], int] | None = None,
    list_size: Callable[[m.Ref | m.FieldRef], int] | None = None,
) -> int:
    """The number of operations and values in ``expr``, iteratively. ``ref_size`` gives the
    size of a name used as a condition (an indicator written in place), ``list_size`` the size
    of a list given by name (its values); both default to 1."""
    total = 0
    stack: list[m.Expr | m.ListLit] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, m.InList | m.StartsWith):
            values = node.values if isinstance(node, m.InList) else node.prefixes
            stack.append(node.operand)
            total += 1
            if isinstance(values, m.ListLit):
                total += 1 + len(values.items)
            else:
                total += list_size(values) if list_size is not None else 1
            continue
        if isinstance(node, m.Ref) and ref_size is not None:
            total += ref_size(node)
            continue
        total += 1
        if isinstance(node, m.ListLit):
            total += len(node.items)
            continue
        stack.extend(m.children(node))
    return total


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
