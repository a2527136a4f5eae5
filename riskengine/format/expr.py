"""Expressions in their canonical form: operators with the fewest parentheses, lists packed,
long chains broken at the loosest operator first."""

from __future__ import annotations

from collections.abc import Iterable

from riskengine import model as m
from riskengine.format.doc import (
    LINE,
    SOFT,
    Doc,
    FillDoc,
    Group,
    Nest,
    flat_text,
    format_literal,
    format_string,
)

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
            return list_doc(values)
        case m.Ref(name=name):
            return name
        case m.FieldRef(path=path):
            return path
    raise TypeError(f"not a list value: {values!r}")


def list_doc(values: m.ListLit) -> Doc:
    """``(a, b, c)``; when too long, the items packed on indented lines with a trailing comma
    and the ``)`` on its own line."""
    if not values.items:
        return "()"
    items = tuple(format_literal(x) for x in values.items)
    return Group(["(", Nest([SOFT, FillDoc(items, ",")]), SOFT, ")"])


def chain(first: Doc, rest: Iterable[tuple[str, Doc]]) -> Doc:
    """Operands joined by operators; when too long, one ``operator operand`` per line."""
    parts: list[Doc] = [first]
    for op, operand in rest:
        parts += [LINE, op + " ", operand]
    return Group(Nest(parts))


def _edoc(expr: m.Expr, need: int) -> Doc:
    doc = _bare(expr)
    if _level(expr) < need:
        if isinstance(doc, Group) and isinstance(doc.doc, Nest):
            # Alone between parentheses, a chain's operators need no deeper indentation.
            doc = Group(doc.doc.doc)
        return Group(["(", Nest([SOFT, doc]), SOFT, ")"])
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
            return chain(_edoc(first, level), operands)
        case m.Compare(op=op, left=a, right=b):
            return chain(_edoc(a, _SUM), [(op, _edoc(b, _SUM))])
        case m.Not(operand=o):
            return ["not ", _edoc(o, _NOT)]
        case m.InList(operand=o, values=v, negated=negated):
            return _membership(_edoc(o, _SUM), "not in" if negated else "in", v)
        case m.StartsWith(operand=o, prefixes=p):
            return _membership(_edoc(o, _SUM), "starts with", p)
        case m.Between(operand=o, low=lo, high=hi):
            bounds = chain(_edoc(lo, _SUM), [("and", _edoc(hi, _SUM))])
            return chain(_edoc(o, _SUM), [("between", bounds)])
        case m.Matches(operand=o, pattern=pattern):
            return chain(_edoc(o, _SUM), [("matches", format_string(pattern))])
        case m.IsMissing(operand=o, negated=negated):
            return chain(_edoc(o, _SUM), [("is", "not missing" if negated else "missing")])
        case m.Call(func=func, args=args):
            parts: list[Doc] = [SOFT]
            for i, a in enumerate(args):
                parts += [",", LINE] if i else []
                parts.append(_edoc(a, _COND))
            return Group([func + "(", Nest(parts), SOFT, ")"])
        case m.Cond():
            # A conditional inside `if` or `then` gets parentheses for the reader; `else if`
            # chains do not need them.
            out: list[Doc] = []
            e: m.Expr = expr
            while isinstance(e, m.Cond):
                out += ["if ", _edoc(e.test, _OR), LINE, "then ", _edoc(e.then, _OR), LINE]
                out.append("else ")
                e = e.otherwise
            out.append(_edoc(e, _COND))
            return Group(Nest(out))
    raise TypeError(f"not an expression: {expr!r}")


def _membership(operand: Doc, word: str, values: m.ListValue) -> Doc:
    """``x in (…)`` keeps ``in (`` on the line (the list wraps); ``x in name`` may break before
    ``in``."""
    if isinstance(values, m.ListLit):
        return [operand, f" {word} ", list_doc(values)]
    return chain(operand, [(word, _list_value(values))])


def format_expr(expr: m.Expr) -> str:
    """One expression in canonical form, on one line, with only the parentheses its structure
    needs."""
    return flat_text(_edoc(expr, _COND))


def expr_doc(expr: m.Expr) -> Doc:
    return _edoc(expr, _COND)
