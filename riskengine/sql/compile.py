"""The SQL backend: profile expressions → SQLAlchemy Core, with the evaluator's rules.

Every predicate compiles to a boolean that is never NULL (``COALESCE(pred, FALSE)``), so SQL's
three-valued logic collapses to the evaluator's two-valued one: a comparison with a missing value
is false, and ``not`` of it is true. Values (numbers, strings, dates) stay NULL when missing and
propagate through arithmetic. Numbers are doubles; a division by zero or a result that is not
finite is NULL (missing), on every engine (the constructions of :mod:`riskengine.semantics.sql`,
guarded where :mod:`riskengine.sql.numeric` says an operation can overflow). Field types come
from the typed annotation pass (:func:`riskengine.semantics.types.annotate`) with the catalogue
in force (``SqlScope.types``), the same pass the evaluator's code generator reads.

The SQL stays linear in the profile: ``- -x`` and ``not not p`` fold, sums and conjunctions are
flattened, values read twice are bound once. Only bound parameters are used for values; column
names come from the caller's resolver (schema or validated mapping).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from riskengine import model as m
from riskengine.diagnostics import RiskEngineError
from riskengine.semantics import sql as ops
from riskengine.semantics.regex_sql import register_functions as register_functions
from riskengine.semantics.regex_sql import sql_matches
from riskengine.semantics.types import NUMBER, Types, annotate
from riskengine.sql import numeric as num
from riskengine.sql.numeric import NOT_CONSTANT, Mag

Col = ColumnElement[Any]


class SqlUnsupported(RiskEngineError):
    """Part of a profile cannot run as SQL on this engine; the backtest falls back to Python."""

    def __init__(self, reason: str, span: Any = None):
        self.reason = reason
        self.span = span
        super().__init__(reason)


@attrs.frozen
class SqlScope:
    """What a profile's names mean in one query.

    ``field`` maps a catalogue path (``item.hs_code``) to a column of the row source (one row
    per goods item, header columns repeated). ``lists`` holds the named lists visible to the
    profile (file-level and profile-level). History columns are the set-based history of the
    row's subject (NULL or absent → 0). ``types`` gives each field's type name in the catalogue
    in force (:func:`riskengine.semantics.types.field_types`; ``None``: the built-in catalogue).
    """

    field: Callable[[str], Col]
    dialect: str
    lists: Mapping[str, m.ListLit] = attrs.field(factory=dict)
    negative_history: Col | None = None
    positive_history: Col | None = None
    types: Mapping[str, str] | None = None


@attrs.frozen
class _Num:
    """A compiled number: its SQL, the bounds of its magnitude, its value when constant."""

    sql: Col
    mag: Mag
    const: Any = NOT_CONSTANT


def _const(value: Any) -> _Num:
    if value is None:
        return _Num(ops.number(None), Mag.of(0.0), None)
    return _Num(ops.number(float(value)), Mag.of(value), value)


#: Predicates: used as numbers they count 1 when true, 0 when false.
_PREDICATES = (
    m.Ref, m.And, m.Or, m.Not, m.Compare, m.InList, m.StartsWith, m.Between, m.Matches,
    m.IsMissing, m.BoolLit,
)  # fmt: skip


class ExprCompiler:
    """Compiles the expressions of one profile (region values already substituted)."""

    def __init__(self, profile: m.Profile, scope: SqlScope):
        self.profile = profile
        self.scope = scope
        # the typed annotation pass, with the catalogue in force (as the evaluator reads it)
        self.types: Types = annotate(profile, scope.types, scope.lists)
        self.lists: dict[str, m.ListLit] = dict(scope.lists)
        self.lists.update({ld.name: ld.values for ld in profile.lists})
        self.indicators = {ind.name: ind for ind in profile.indicators}
        self._indicator_sql: dict[str, Col] = {}
        self._active: list[str] = []
        history = profile.history
        self._history_max = {
            m.HistoryKind.NEGATIVE: float(history.negative.max)
            if history is not None and history.negative is not None
            else 0.0,
            m.HistoryKind.POSITIVE: float(history.positive.max)
            if history is not None and history.positive is not None
            else 0.0,
        }

    # ------------------------------------------------------------------ booleans (never NULL)
    def boolean(self, expr: m.Expr) -> Col:
        negated = False
        while isinstance(expr, m.Not):  # `not not p` is p
            negated = not negated
            expr = expr.operand
        out = self._boolean(expr)
        return sa.not_(out) if negated else out

    def _boolean(self, expr: m.Expr) -> Col:
        match expr:
            case m.And() | m.Or():
                kind = type(expr)
                parts = [self.boolean(p) for p in _flatten(expr, kind)]
                return _balanced(parts, sa.and_ if kind is m.And else sa.or_)
            case m.Ref(name=name):
                return self.indicator(name, expr)
            case m.BoolLit(value=flag):
                return sa.true() if flag else sa.false()
            case m.IsMissing(operand=a, negated=neg):
                v = self.value(a)
                return v.is_not(None) if neg else v.is_(None)
            case m.Compare(op=op, left=a, right=b):
                return _nn(ops.compare(op, self.value(a), self.value(b), self._text(a, b)))
            case m.Between(operand=o, low=lo, high=hi):
                v, low, high = self.value(o), self.value(lo), self.value(hi)
                return _nn(ops.between(v, low, high, self._text(o, lo, hi)))
            case m.InList(operand=o, values=lv, negated=neg):
                items = self.list_items(lv)
                v = self.value(o)
                if not items:
                    return sa.false() if not neg else _nn(v.is_not(None))
                return _nn(ops.SQL_OPERATORS["not in" if neg else "in"](v, items))
            case m.StartsWith(operand=o, prefixes=lv):
                return self.starts_with(self.value(o), [str(x) for x in self.list_items(lv)])
            case m.Matches(operand=o, pattern=pattern):
                return self.matches(self.value(o), pattern, expr)
            case m.FieldRef():  # a boolean field as a condition: missing is false
                return _nn(self.value(expr) == sa.true())
            case m.Cond(test=t, then=a, otherwise=b):
                # each part is read once (never NULL: both branches are predicates)
                return sa.case((self.boolean(t), self.boolean(a)), else_=self.boolean(b))
            case _:
                raise SqlUnsupported(f"`{type(expr).__name__}` is not a condition", expr.span)

    def indicator(self, name: str, where: m.Expr) -> Col:
        cached = self._indicator_sql.get(name)
        if cached is not None:
            return cached
        ind = self.indicators.get(name)
        if ind is None:
            raise SqlUnsupported(f"unknown indicator `{name}`", where.span)
        if name in self._active:
            raise SqlUnsupported(f"indicator `{name}` refers to itself", where.span)
        self._active.append(name)
        try:
            sql = self.boolean(ind.condition)
            if ind.unless is not None:
                sql = sa.and_(sql, sa.not_(self.boolean(ind.unless)))
        finally:
            self._active.pop()
        self._indicator_sql[name] = sql
        return sql

    # ------------------------------------------------------------------ values (NULL = missing)
    def value(self, expr: m.Expr) -> Col:
        match expr:
            case m.StringLit(value=text):
                return sa.literal(text, sa.String())
            case m.DateLit(value=day):
                return sa.literal(day, sa.Date())
            case m.BoolLit(value=flag):
                return sa.true() if flag else sa.false()
            case m.FieldRef() if self.types.of(expr) is not NUMBER:
                return self._field(expr)
            case m.Cond(test=t, then=a, otherwise=b) if self.types.of(a) is not NUMBER:
                return sa.case((self.boolean(t), self.value(a)), else_=self.value(b))
            case m.Call(func="min" | "max", args=args) if args and (
                self.types.is_text(args[0]) or self.types.is_date(args[0])
            ):
                values = [self.value(a) for a in args]
                pick = ops.nmin if expr.func == "min" else ops.nmax
                return pick(*values)
        # numbers; a condition used as a value is 1 when true, 0 when false
        return self.number(expr).sql

    def _field(self, expr: m.FieldRef) -> Col:
        if expr.path.startswith("region."):
            raise SqlUnsupported(f"`{expr.path}` has no value here (no fill applied)", expr.span)
        return self.scope.field(expr.path)

    def number(self, expr: m.Expr) -> _Num:
        """A numeric operand: booleans (indicators, comparisons) count 1/0."""
        match expr:
            case m.NumberLit(value=v):
                return _const(_number(v))
            case m.BoolLit(value=flag):
                return _const(1.0 if flag else 0.0)
            case _ if isinstance(expr, _PREDICATES):
                return _Num(sa.case((self.boolean(expr), 1.0), else_=0.0), num.FLAG)
            case m.FieldRef():
                col = self._field(expr)
                if not isinstance(col.type, sa.Double):
                    col = ops.as_double(col)  # an exact or single-precision column: a double
                return _Num(col, num.UNKNOWN)
            case m.HistoryRef(kind=kind):
                return _Num(self.history(kind), Mag(num.TINY, self._history_max[kind]))
            case m.Neg():
                negated = False
                while isinstance(expr, m.Neg):  # `- -x` is x
                    negated = not negated
                    expr = expr.operand
                inner = self.number(expr)
                if not negated:
                    return inner
                if inner.const is not NOT_CONSTANT:
                    return _const(num.fold("neg", inner.const))
                return _Num(-inner.sql, inner.mag)
            case m.Arith(op="-", right=b) if self.types.is_date(b):
                return self._days(expr)
            case m.Arith(op="+" | "-"):
                return self._sum(expr)
            case m.Arith(op=op, left=a, right=b):
                return self.arith(op, self.number(a), self.number(b))
            case m.Call(func=func, args=args):
                return self.call(func, [self.number(a) for a in args], expr)
            case m.Cond(test=t, then=a, otherwise=b):
                x, y = self.number(a), self.number(b)
                return _Num(sa.case((self.boolean(t), x.sql), else_=y.sql), x.mag.join(y.mag))
            case _:
                raise SqlUnsupported(f"`{type(expr).__name__}` is not a number", expr.span)

    def _days(self, expr: m.Arith) -> _Num:
        a, b = expr.left, expr.right
        if isinstance(a, m.DateLit) and isinstance(b, m.DateLit):
            return _const((a.value - b.value).days)
        return _Num(ops.days_between(self.value(b), self.value(a)), num.DAYS)

    def _sum(self, expr: m.Arith) -> _Num:
        """A chain ``a + b - c ...`` (the left spine, as the evaluator groups it): added left
        to right, or as a balanced tree when every term is a whole number and the total is
        exact (then the grouping cannot change the result, and the SQL stays shallow)."""
        terms: list[tuple[str, m.Expr]] = []
        node: m.Expr = expr
        while (
            isinstance(node, m.Arith)
            and node.op in ("+", "-")
            and not (node.op == "-" and self.types.is_date(node.right))
        ):
            terms.append((node.op, node.right))
            node = node.left
        terms.append(("+", node))
        terms.reverse()
        parts = [(op, self.number(e)) for op, e in terms]
        exact = all(p.mag.integral for _, p in parts) and sum(p.mag.hi for _, p in parts) < 2.0**53
        constant = all(p.const is not NOT_CONSTANT for _, p in parts)
        if exact and len(parts) > 2 and not constant:
            signed = [p if op == "+" else _Num(-p.sql, p.mag) for op, p in parts]
            return self._balanced_sum(signed)
        acc = parts[0][1]
        for op, p in parts[1:]:
            acc = self.arith(op, acc, p)
        return acc

    def _balanced_sum(self, parts: Sequence[_Num]) -> _Num:
        if len(parts) == 1:
            return parts[0]
        mid = len(parts) // 2
        left, right = self._balanced_sum(parts[:mid]), self._balanced_sum(parts[mid:])
        return _Num(
            ops.group(left.sql) + ops.group(right.sql), num.result("+", left.mag, right.mag)
        )

    def history(self, kind: m.HistoryKind) -> Col:
        col = (
            self.scope.negative_history
            if kind is m.HistoryKind.NEGATIVE
            else self.scope.positive_history
        )
        if col is None:
            return ops.number(0.0)
        return sa.func.coalesce(col, ops.number(0.0))

    def arith(self, op: str, a: _Num, b: _Num) -> _Num:
        if a.const is not NOT_CONSTANT and b.const is not NOT_CONSTANT:
            return _const(num.fold(op, a.const, b.const))
        over, under = num.guards(op, a.mag, b.mag)
        return _Num(ops.guarded(op, a.sql, b.sql, over, under), num.result(op, a.mag, b.mag))

    def call(self, func: str, args: Sequence[_Num], where: m.Expr) -> _Num:
        if func in ("min", "max") and args:
            if all(a.const is not NOT_CONSTANT for a in args):
                return _const(num.fold(func, *[a.const for a in args]))
            mag = args[0].mag
            for a in args[1:]:
                mag = mag.join(a.mag)
            pick = ops.nmin if func == "min" else ops.nmax
            return _Num(pick(*[a.sql for a in args]), mag)
        if func == "abs" and len(args) == 1:
            (a,) = args
            if a.const is not NOT_CONSTANT:
                return _const(num.fold("abs", a.const))
            return _Num(sa.func.abs(a.sql), a.mag)
        if func == "round" and len(args) == 1:
            (a,) = args
            if a.const is not NOT_CONSTANT:
                return _const(num.fold("round", a.const))
            return _Num(ops.round_half_away(a.sql), num.rounded(a.mag))
        raise SqlUnsupported(f"function `{func}` with {len(args)} arguments", where.span)

    def _text(self, *exprs: m.Expr) -> bool:
        """Text compared with text: by code point on every engine."""
        return any(self.types.is_text(e) for e in exprs)

    def list_items(self, lv: m.ListValue) -> list[Any]:
        if isinstance(lv, m.ListLit):
            lit = lv
        elif isinstance(lv, m.Ref):
            found = self.lists.get(lv.name)
            if found is None:
                raise SqlUnsupported(f"unknown list `{lv.name}`", lv.span)
            lit = found
        else:
            raise SqlUnsupported(f"`{lv.path}` has no value here (no fill applied)", lv.span)
        return [_python(x) for x in lit.items]

    def starts_with(self, v: Col, prefixes: list[str]) -> Col:
        """``substr(v, 1, n) IN (...)`` per prefix length: exact, case-sensitive, no LIKE
        wildcards, and a flat expression however many prefixes there are."""
        return _nn(ops.starts_with(v, prefixes))

    def matches(self, v: Col, pattern: str, where: m.Expr) -> Col:
        pred, reason = sql_matches(self.scope.dialect, v, pattern)  # semantics.regex_sql
        if pred is None:
            raise SqlUnsupported(reason, where.span)
        return _nn(pred)


def _flatten(expr: m.Expr, kind: type) -> list[m.Expr]:
    """The operands of nested ``and`` (or ``or``) nodes, in order, without recursion."""
    out: list[m.Expr] = []
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, m.And | m.Or) and isinstance(node, kind):
            stack.append(node.right)
            stack.append(node.left)
        else:
            out.append(node)
    return out


def _balanced(parts: Sequence[Col], join: Callable[..., Col], width: int = 16) -> Col:
    """``join(*parts)`` as a balanced tree of groups of at most ``width``: the same value (and
    and or are associative), and a shallow expression for engines that limit its depth."""
    if len(parts) == 1:
        return parts[0]
    if len(parts) <= width:
        return join(*parts)
    step = -(-len(parts) // width)
    groups = [_balanced(parts[k : k + step], join, width) for k in range(0, len(parts), step)]
    return join(*[ops.group(g) for g in groups])


def _nn(pred: Col) -> Col:
    """A predicate that is false, never NULL, when an operand is missing."""
    return sa.func.coalesce(pred, sa.false())


def _number(v: Any) -> float:
    return float(v)


def _python(lit: m.Literal) -> Any:
    if isinstance(lit, m.NumberLit):
        return float(lit.value)
    return lit.value


def sql_date(value: dt.date) -> Col:
    return sa.literal(value, sa.Date())


@attrs.frozen
class ProfileSql:
    """One profile as SQL expressions over a row source of goods items.

    ``degree`` is clamped to 0..100 (a missing degree is 0); ``excluded`` is true when a
    profile exception holds for the row; ``fires`` is true when the row is not excluded and at
    least one control applies.
    """

    profile: m.Profile
    indicators: Mapping[str, Col]
    excluded: Col
    degree: Col
    controls: tuple[tuple[m.Control, Col], ...]
    fires: Col
    raw_degree: Col  # before clamping; a missing degree is 0
    conditions: tuple[tuple[m.Control, Col | None], ...]  # each control's own condition


def compile_profile(profile: m.Profile, scope: SqlScope) -> ProfileSql:
    """Compile one profile (a regional one after :func:`riskengine.regional.apply_fill`)."""
    comp = ExprCompiler(profile, scope)
    indicators = {ind.name: comp.indicator(ind.name, ind.condition) for ind in profile.indicators}
    excluded: Col = (
        _balanced([comp.boolean(e.condition) for e in profile.exceptions], sa.or_)
        if profile.exceptions
        else sa.false()
    )
    if profile.degree is None:
        raw: Col = sa.literal_column("0.0", sa.Double())
    else:
        raw = sa.func.coalesce(comp.number(profile.degree).sql, sa.literal_column("0.0"))
    degree = ops.clamp(raw)  # 0..100, raw read once
    controls = []
    conditions = []
    for control in profile.controls:
        condition = None if control.condition is None else comp.boolean(control.condition)
        conditions.append((control, condition))
        applies = ops.reaches(raw, float(control.threshold))
        if condition is not None:
            applies = sa.and_(applies, condition)
        controls.append((control, sa.and_(sa.not_(excluded), applies)))
    fires = sa.or_(*[c for _, c in controls]) if controls else sa.false()
    return ProfileSql(
        profile, indicators, excluded, degree, tuple(controls), fires, raw, tuple(conditions)
    )
