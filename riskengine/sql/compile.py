"""The SQL backend: profile expressions → SQLAlchemy Core, with the evaluator's missing-value rules.

Every predicate compiles to a boolean that is never NULL (``COALESCE(pred, FALSE)``), so SQL's
three-valued logic collapses to the evaluator's two-valued one: a comparison with a missing value
is false, and ``not`` of it is true. Values (numbers, strings, dates) stay NULL when missing and
propagate through arithmetic; division by zero is NULL (``NULLIF``). Only bound parameters are
used for values; column names come from the caller's resolver (schema or validated mapping).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from riskengine import model as m
from riskengine.diagnostics import RiskEngineError
from riskengine.semantics.regex_sql import register_functions as register_functions
from riskengine.semantics.regex_sql import sql_matches

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
    row's subject (NULL or absent → 0).
    """

    field: Callable[[str], Col]
    dialect: str
    lists: Mapping[str, m.ListLit] = attrs.field(factory=dict)
    negative_history: Col | None = None
    positive_history: Col | None = None
    text_fields: frozenset[str] = frozenset()  # string/code fields: compared by code point
    date_fields: frozenset[str] = frozenset()  # date fields (empty: the default catalogue's)


class ExprCompiler:
    """Compiles the expressions of one profile (region values already substituted)."""

    def __init__(self, profile: m.Profile, scope: SqlScope):
        self.profile = profile
        self.scope = scope
        self.lists: dict[str, m.ListLit] = dict(scope.lists)
        self.lists.update({ld.name: ld.values for ld in profile.lists})
        self.indicators = {ind.name: ind for ind in profile.indicators}
        self._indicator_sql: dict[str, Col] = {}
        self._active: list[str] = []

    # ------------------------------------------------------------------ booleans (never NULL)
    def boolean(self, expr: m.Expr) -> Col:
        match expr:
            case m.And(left=a, right=b):
                return sa.and_(self.boolean(a), self.boolean(b))
            case m.Or(left=a, right=b):
                return sa.or_(self.boolean(a), self.boolean(b))
            case m.Not(operand=a):
                return sa.not_(self.boolean(a))
            case m.Ref(name=name):
                return self.indicator(name, expr)
            case m.BoolLit(value=flag):
                return sa.true() if flag else sa.false()
            case m.IsMissing(operand=a, negated=neg):
                v = self.value(a)
                return v.is_not(None) if neg else v.is_(None)
            case m.Compare(op=op, left=a, right=b):
                return _nn(self.compare(op, self.value(a), self.value(b), a, b))
            case m.Between(operand=o, low=lo, high=hi):
                v = self.value(o)
                return _nn(
                    sa.and_(
                        self.compare(">=", v, self.value(lo), o, lo),
                        self.compare("<=", v, self.value(hi), o, hi),
                    )
                )
            case m.InList(operand=o, values=lv, negated=neg):
                items = self.list_items(lv)
                v = self.value(o)
                if not items:
                    return sa.false() if not neg else _nn(v.is_not(None))
                pred = v.not_in(items) if neg else v.in_(items)
                return _nn(pred)
            case m.StartsWith(operand=o, prefixes=lv):
                return self.starts_with(self.value(o), [str(x) for x in self.list_items(lv)])
            case m.Matches(operand=o, pattern=pattern):
                return self.matches(self.value(o), pattern, expr)
            case m.FieldRef():  # a boolean field as a condition: missing is false
                return _nn(self.value(expr) == sa.true())
            case m.Cond():
                return self._cond_bool(expr)
            case _:
                raise SqlUnsupported(f"`{type(expr).__name__}` is not a condition", expr.span)

    def _cond_bool(self, expr: m.Cond) -> Col:
        return sa.or_(
            sa.and_(self.boolean(expr.test), self.boolean(expr.then)),
            sa.and_(sa.not_(self.boolean(expr.test)), self.boolean(expr.otherwise)),
        )

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
            case m.NumberLit(value=num):
                return sa.literal(_number(num), sa.Float())
            case m.StringLit(value=text):
                return sa.literal(text, sa.String())
            case m.DateLit(value=day):
                return sa.literal(day, sa.Date())
            case m.BoolLit(value=flag):
                return sa.true() if flag else sa.false()
            case m.FieldRef(path=path):
                if path.startswith("region."):
                    raise SqlUnsupported(f"`{path}` has no value here (no fill applied)", expr.span)
                return self.scope.field(path)
            case m.HistoryRef(kind=kind):
                return self.history(kind)
            case m.Neg(operand=a):
                return -self.value(a)
            case m.Arith(op="-", left=a, right=b) if self._is_date(a) and self._is_date(b):
                return _days_between(self.value(b), self.value(a), self.scope.dialect)
            case m.Arith(op=op, left=a, right=b):
                return self.arith(op, self.number(a), self.number(b))
            case m.Call(func=func, args=args):
                return self.call(func, [self.number(a) for a in args], expr)
            case m.Cond(test=t, then=a, otherwise=b):
                return sa.case((self.boolean(t), self.value(a)), else_=self.value(b))
            case _:
                # a condition used as a value: 1 when true, 0 when false
                return sa.case((self.boolean(expr), 1.0), else_=0.0)

    def number(self, expr: m.Expr) -> Col:
        """A numeric operand: booleans (indicators, comparisons) count 1/0."""
        if isinstance(
            expr,
            m.Ref
            | m.And
            | m.Or
            | m.Not
            | m.Compare
            | m.InList
            | m.StartsWith
            | m.Between
            | m.Matches
            | m.IsMissing
            | m.BoolLit,
        ):
            return sa.case((self.boolean(expr), 1.0), else_=0.0)
        return self.value(expr)

    def history(self, kind: m.HistoryKind) -> Col:
        col = (
            self.scope.negative_history
            if kind is m.HistoryKind.NEGATIVE
            else self.scope.positive_history
        )
        if col is None:
            return sa.literal(0.0, sa.Float())
        return sa.func.coalesce(col, 0.0)

    def arith(self, op: str, a: Col, b: Col) -> Col:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        # Float division everywhere (no integer division on SQLite/PostgreSQL), NULL for /0.
        return sa.cast(a, sa.Float()) / sa.func.nullif(b, 0.0)

    def call(self, func: str, args: Sequence[Col], where: m.Expr) -> Col:
        if func in ("min", "max"):
            result = args[0]
            for other in args[1:]:
                pick_left = result <= other if func == "min" else result >= other
                result = sa.case(
                    (sa.or_(result.is_(None), other.is_(None)), sa.null()),
                    (pick_left, result),
                    else_=other,
                )
            return result
        if func == "abs":
            return sa.func.abs(args[0])
        if func == "round" and len(args) == 1:
            return _round_half_away(args[0], self.scope.dialect)
        raise SqlUnsupported(f"function `{func}` with {len(args)} arguments", where.span)

    def compare(self, op: str, a: Col, b: Col, ea: m.Expr, eb: m.Expr) -> Col:
        # Code-point order for text on every engine (PostgreSQL defaults to a locale).
        if (
            op in ("<", "<=", ">", ">=")
            and self.scope.dialect == "postgresql"
            and (self._is_text(ea) or self._is_text(eb))
        ):
            a = a.collate("C")
            b = b.collate("C")
        # only the operator asked for is built: `<` with a boolean literal is an error in SQLAlchemy
        return _COMPARE[op](a, b)

    def _is_date(self, expr: m.Expr) -> bool:
        """A date literal, a date field, or an ``if`` choosing between them (as the evaluator)."""
        match expr:
            case m.DateLit():
                return True
            case m.FieldRef(path=path):
                return path in (self.scope.date_fields or _catalogue_dates())
            case m.Cond(then=a):
                return self._is_date(a)
        return False

    def _is_text(self, expr: m.Expr) -> bool:
        if isinstance(expr, m.StringLit):
            return True
        return isinstance(expr, m.FieldRef) and expr.path in self.scope.text_fields

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
        by_len: dict[int, list[str]] = {}
        for p in prefixes:
            by_len.setdefault(len(p), []).append(p)
        if "" in prefixes:
            return _nn(v.is_not(None))
        parts = [sa.func.substr(v, 1, n).in_(sorted(set(ps))) for n, ps in sorted(by_len.items())]
        if not parts:
            return sa.false()
        return _nn(sa.or_(*parts)) if len(parts) > 1 else _nn(parts[0])

    def matches(self, v: Col, pattern: str, where: m.Expr) -> Col:
        pred, reason = sql_matches(self.scope.dialect, v, pattern)  # semantics.regex_sql
        if pred is None:
            raise SqlUnsupported(reason, where.span)
        return _nn(pred)


_COMPARE: Mapping[str, Callable[[Col, Col], Col]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


@functools.cache
def _catalogue_dates() -> frozenset[str]:
    from riskengine.catalogue import FieldType, default_catalogue

    return frozenset(f.path for f in default_catalogue() if f.type is FieldType.DATE)


def _days_between(start: Col, end: Col, dialect: str) -> Col:
    """``end - start`` in days, as a float (NULL when either is missing)."""
    if dialect == "sqlite":
        return sa.func.julianday(end) - sa.func.julianday(start)
    if dialect == "duckdb":
        return sa.cast(sa.func.date_diff("day", start, end), sa.Float())
    if dialect == "postgresql":
        return sa.cast(sa.cast(end, sa.Date()) - sa.cast(start, sa.Date()), sa.Float())
    raise SqlUnsupported(f"the difference of two dates on {dialect}")


def _nn(pred: Col) -> Col:
    """A predicate that is false, never NULL, when an operand is missing."""
    return sa.func.coalesce(pred, sa.false())


def _number(v: Decimal) -> float:
    return float(v)


def _python(lit: m.Literal) -> Any:
    if isinstance(lit, m.NumberLit):
        return float(lit.value)
    return lit.value


def _round_half_away(x: Col, dialect: str) -> Col:
    """round(x) to an integer, halves away from zero, on every engine (as the evaluator)."""
    up: Col
    down: Col
    if dialect == "sqlite":
        up = sa.cast(sa.cast(x + 0.5, sa.Integer()), sa.Float())
        down = -sa.cast(sa.cast(-x + 0.5, sa.Integer()), sa.Float())
    else:
        up = sa.func.floor(x + 0.5)
        down = -sa.func.floor(-x + 0.5)
    return sa.case((x.is_(None), sa.null()), (x >= 0, up), else_=down)


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
        sa.or_(*[comp.boolean(e.condition) for e in profile.exceptions])
        if profile.exceptions
        else sa.false()
    )
    if profile.degree is None:
        raw: Col = sa.literal_column("0.0", sa.Float())
    else:
        raw = sa.func.coalesce(comp.number(profile.degree), sa.literal_column("0.0"))
    degree = clamp(raw, scope.dialect)
    controls = []
    conditions = []
    for control in profile.controls:
        condition = None if control.condition is None else comp.boolean(control.condition)
        conditions.append((control, condition))
        applies = degree >= float(control.threshold)
        if condition is not None:
            applies = sa.and_(applies, condition)
        controls.append((control, sa.and_(sa.not_(excluded), applies)))
    fires = sa.or_(*[c for _, c in controls]) if controls else sa.false()
    return ProfileSql(
        profile, indicators, excluded, degree, tuple(controls), fires, raw, tuple(conditions)
    )


def clamp(raw: Col, dialect: str) -> Col:
    """``raw`` limited to 0..100, evaluating ``raw`` once (a CASE would repeat it)."""
    zero: Col = sa.literal_column("0.0")
    hundred: Col = sa.literal_column("100.0")
    if dialect == "sqlite":  # SQLite's scalar max()/min() of several arguments
        return sa.func.max(zero, sa.func.min(hundred, raw))
    return sa.func.greatest(zero, sa.func.least(hundred, raw))
