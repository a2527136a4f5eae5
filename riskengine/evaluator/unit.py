"""What one generated module evaluates, and the model helpers every part of code generation uses.

:class:`Unit` (a profile with the controls and message in effect), :class:`Generated` (source,
linecache name, line map), :class:`CompileError`, list and literal resolution, indicator order
and the memoised walk of expressions (:func:`nodes`). Split out of
:mod:`riskengine.evaluator.codegen`, which re-exports every name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from riskengine import model as m
from riskengine.diagnostics import Span
from riskengine.evaluator import values

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class CompileError(Exception):
    """The model cannot be compiled (an unknown name, a cycle...). The checks report these
    problems with positions first; this is the backstop for models that skipped the checks."""

    def __init__(self, message: str, span: Span | None = None) -> None:
        self.span = span
        super().__init__(message)


@attrs.frozen
class Unit:
    """What one generated module evaluates: a profile with the controls and message in effect
    (a regional fill may replace both), the named lists it can see, and the types of fields."""

    profile: m.Profile
    controls: tuple[m.Control, ...]
    message: m.Message | None
    lists: Mapping[str, m.ListLit]
    #: Type name ("number", "string", "code", "date", "boolean") of each field by full path,
    #: ``region.NAME`` included.
    types: Mapping[str, str]
    #: How the module is named in tracebacks: ``<profile LABEL FILE>``.
    label: str
    file: str
    #: Conditions at least one of which holds on any item where the profile can fire (from the
    #: index plan): the fast path skips other items at once.
    guards: tuple[m.Expr, ...] = ()
    #: The degree is a float within 0..100 whenever it is not missing (interval analysis):
    #: the fast path then skips the clamp.
    degree_in_range: bool = False


@attrs.frozen
class Generated:
    """Generated source with its linecache name and the map generated line → profile line."""

    source: str
    filename: str
    line_map: Mapping[int, int]


def prefix_text(lit: m.Literal) -> str:
    """A prefix for ``starts with``: strings as written, numbers as their decimal text."""
    if isinstance(lit, m.StringLit):
        return lit.value
    if isinstance(lit, m.NumberLit):
        return str(lit.value)
    return str(lit.value)


def literal_value(lit: m.Literal) -> Any:
    """A literal as a runtime value: numbers are floats."""
    if isinstance(lit, m.NumberLit):
        return values.number(lit.value)
    return lit.value


def resolve_list(values_: m.ListValue, lists: Mapping[str, m.ListLit]) -> m.ListLit | m.FieldRef:
    """A literal list, or the literal list a name refers to, or a regional list parameter."""
    if isinstance(values_, m.Ref):
        found = lists.get(values_.name)
        if found is None:
            raise CompileError(f"unknown list `{values_.name}`", values_.span)
        return found
    return values_


def degree_terms(expr: m.Expr, is_date: Callable[[m.Expr], bool]) -> list[tuple[str, m.Expr]]:
    """The terms of a top-level sum ``a + b - c``: ``[("+", a), ("+", b), ("-", c)]``. A
    difference of two dates (a number of days) is one term. ``is_date``: whether an
    expression is a date (:meth:`riskengine.semantics.types.Types.is_date`)."""
    out: list[tuple[str, m.Expr]] = []
    while isinstance(expr, m.Arith) and expr.op in ("+", "-") and not is_date(expr.right):
        out.append((expr.op, expr.right))
        expr = expr.left
    out.append(("+", expr))
    out.reverse()
    return out


_CHILDREN: dict[type, tuple[str, ...]] = {
    m.Neg: ("operand",), m.Not: ("operand",), m.IsMissing: ("operand",),
    m.Matches: ("operand",), m.Arith: ("left", "right"), m.Compare: ("left", "right"),
    m.And: ("left", "right"), m.Or: ("left", "right"), m.InList: ("operand", "values"),
    m.StartsWith: ("operand", "prefixes"), m.Between: ("operand", "low", "high"),
    m.Cond: ("test", "then", "otherwise"),
}  # fmt: skip
_WALKS: dict[int, tuple[Any, tuple[Any, ...]]] = {}


def nodes(expr: m.Expr | m.ListLit | None) -> tuple[Any, ...]:
    """Every node of an expression, pre-order in source order (like ``model.walk``), memoised:
    compiling reads the same expressions many times."""
    if expr is None:
        return ()
    hit = _WALKS.get(id(expr))
    if hit is not None and hit[0] is expr:
        return hit[1]
    out: list[Any] = []
    stack: list[Any] = [expr]
    while stack:
        node = stack.pop()
        out.append(node)
        cls = type(node)
        attrs_ = _CHILDREN.get(cls)
        if attrs_ is not None:
            for name in reversed(attrs_):
                stack.append(getattr(node, name))
        elif cls is m.Call:
            stack.extend(reversed(node.args))
        elif cls is m.ListLit:
            stack.extend(reversed(node.items))
    if len(_WALKS) > 100_000:
        _WALKS.clear()
    result = tuple(out)
    _WALKS[id(expr)] = (expr, result)  # the entry keeps expr alive, so its id stays unique
    return result


#: Memos keyed by expression ids that :func:`forget_walks` drops with the walks (the emitter's
#: fields read, :func:`riskengine.evaluator.emit.list_fields`).
MEMOS: list[dict[int, Any]] = []


def forget_walks() -> None:
    """Drop the memo of :func:`nodes` and those of :data:`MEMOS` (they keep the expressions
    they have seen alive)."""
    _WALKS.clear()
    for memo in MEMOS:
        memo.clear()


def _refs(expr: m.Expr | None) -> Iterable[m.Expr | m.ListLit]:
    return nodes(expr)


def expr_level(expr: m.Expr | None, indicator_levels: Mapping[str, int], history_level: int) -> int:
    """0 when an expression reads only header, regional and constant values, 1 when it reads
    the goods item (directly, through an indicator, or through item-level history)."""
    level = 0
    for node in _refs(expr):
        kind = type(node)
        if kind is m.FieldRef:
            if node.scope == "item":  # type: ignore[union-attr]
                return 1
        elif kind is m.Ref:
            level = max(level, indicator_levels.get(node.name, 0))  # type: ignore[union-attr]
        elif kind is m.HistoryRef:
            level = max(level, history_level)
    return level
