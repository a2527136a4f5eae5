"""The language's operators as SQL: one construction per operator, compiled per dialect.

Every construction here computes, on SQLite, PostgreSQL and DuckDB, what the evaluator computes
in Python (docs/semantics.md, "Numbers"):

* numbers are IEEE doubles (:class:`as_double`: ``REAL`` on SQLite, ``DOUBLE PRECISION`` on
  PostgreSQL, ``DOUBLE`` on DuckDB -- SQLAlchemy's ``Float`` is single precision on DuckDB);
* an arithmetic result that is not finite (an overflow: ``1e308 * 10``, ``1e308 / 0.1``) is
  **missing** (NULL), and an underflow is the IEEE result (``1e-300 * 1e-300`` is 0). SQLite and
  DuckDB compute IEEE results, so the guarded operators turn an infinity into NULL
  (:class:`finite`); PostgreSQL raises an error on overflow and on underflow to zero instead, so
  there the guarded operators decide beforehand, exactly, with operands scaled by powers of two
  (which is exact), whether the result overflows (NULL) or underflows to zero (0);
* ``min``/``max``/``round`` are missing when an argument is; ``round`` halves away from zero as
  ``math.floor(abs(x) + 0.5)`` does;
* text compares by code point (``COLLATE "C"`` on PostgreSQL).

A value an operator reads more than once is bound once (:class:`bound`: a scalar subquery over
one row of the operands) unless it is a column or a literal, so the SQL of nested ``max``,
``round`` or guarded arithmetic grows linearly with the expression, not exponentially.

:data:`SQL_OPERATORS` keys every construction by the operator's name, for the operator table.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

Col = ColumnElement[Any]

#: The largest finite double.
DBL_MAX = sys.float_info.max


@contextlib.contextmanager
def sql_recursion(limit: int = 20_000) -> Iterator[None]:
    """Room for SQLAlchemy to build and render deeply nested expressions (its compiler recurses
    about ten frames per level; a profile may nest 100 levels, inside the query's own)."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


__all__ = [
    "DBL_MAX",
    "SQL_OPERATORS",
    "as_double",
    "between",
    "bound",
    "clamp",
    "compare",
    "days_between",
    "finite",
    "guarded",
    "month",
    "nmax",
    "nmin",
    "number",
    "reaches",
    "round_half_away",
    "sql_recursion",
]


def number(value: float | None) -> Col:
    """A number literal (a bound double; NULL for a missing or non-finite value)."""
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return as_double(sa.null())
    return sa.literal(float(value), sa.Double())


# --- doubles and non-finite values ------------------------------------------------------------


class as_double(FunctionElement[float]):
    """``x`` as an IEEE double."""

    name = "as_double"
    inherit_cache = True
    type = sa.Double()


@compiles(as_double)
def _as_double_default(element: as_double, compiler: Any, **kw: Any) -> str:
    (x,) = list(element.clauses)
    return f"CAST({compiler.process(x, **kw)} AS DOUBLE PRECISION)"


@compiles(as_double, "sqlite")
def _as_double_sqlite(element: as_double, compiler: Any, **kw: Any) -> str:
    (x,) = list(element.clauses)
    return f"CAST({compiler.process(x, **kw)} AS REAL)"


@compiles(as_double, "duckdb")
def _as_double_duckdb(element: as_double, compiler: Any, **kw: Any) -> str:
    (x,) = list(element.clauses)
    return f"CAST({compiler.process(x, **kw)} AS DOUBLE)"


class finite(FunctionElement[float]):
    """``x``, or NULL where it is infinite (or NaN): the value of an IEEE operation that
    overflowed is missing. ``x`` is read once."""

    name = "finite"
    inherit_cache = True
    type = sa.Double()


@compiles(finite)
def _finite_default(element: finite, compiler: Any, **kw: Any) -> str:
    # PostgreSQL: the guarded operators never produce an infinity (they decide beforehand)
    (x,) = list(element.clauses)
    return str(compiler.process(x, **kw))


@compiles(finite, "sqlite")
def _finite_sqlite(element: finite, compiler: Any, **kw: Any) -> str:
    # 9e999 is read as +Inf; a NaN is already NULL on SQLite
    (x,) = list(element.clauses)
    return f"nullif(nullif({compiler.process(x, **kw)}, 9e999), -9e999)"


@compiles(finite, "duckdb")
def _finite_duckdb(element: finite, compiler: Any, **kw: Any) -> str:
    # DuckDB rewrites nullif(a, b) and CASE a WHEN ... into expressions that repeat ``a``
    # (nested, exponential): the value is bound once, as a lambda's parameter
    (x,) = list(element.clauses)
    keep = _duckdb_lambda("_v", "isfinite(_v)")
    return f"list_filter([{compiler.process(x, **kw)}], {keep})[1]"


@functools.cache
def _duckdb_arrow() -> bool:
    """DuckDB before 1.3 writes a lambda ``x -> body``; later ones ``lambda x: body``."""
    try:
        import duckdb

        major, minor = (int(p) for p in duckdb.__version__.split(".")[:2])
    except (ImportError, ValueError):
        return False
    return (major, minor) < (1, 3)


def _duckdb_lambda(param: str, body: str) -> str:
    return f"{param} -> {body}" if _duckdb_arrow() else f"lambda {param}: {body}"


# --- binding a value once ---------------------------------------------------------------------


class _BoundRef(ColumnElement[Any]):
    """Column ``k`` of the innermost :class:`bound` row."""

    inherit_cache = False

    def __init__(self, k: int, type_: Any = None):
        self.k = k
        self.type = sa.types.to_instance(type_)


@compiles(_BoundRef)
def _bound_ref(element: _BoundRef, compiler: Any, **kw: Any) -> str:
    return f"_rb.v{element.k}"


class bound(FunctionElement[Any]):
    """``body(v0, v1, ...)`` with each ``values[k]`` computed once: ``(SELECT body FROM (SELECT
    values[0] AS v0, ... OFFSET 0) AS _rb)`` (the fence keeps the engine from substituting the
    values back into the body). Each value is rendered once, so the SQL of nested constructions
    that read their operands several times stays linear in the expression."""

    name = "bound"
    inherit_cache = False

    def __init__(self, values: Sequence[Col], body: Callable[..., Col], type_: Any = None):
        super().__init__(*values)
        self.values = list(values)
        refs = [_BoundRef(k, getattr(v, "type", None)) for k, v in enumerate(self.values)]
        self.body = body(*refs)
        self.type = sa.types.to_instance(type_) if type_ is not None else self.body.type


_OUTER_ONLY = ("add_to_result_map", "within_columns_clause", "within_label_clause",
               "render_label_as_label", "asfrom", "lateral")  # fmt: skip


@compiles(bound)
def _bound_default(element: bound, compiler: Any, **kw: Any) -> str:
    inner = {k: v for k, v in kw.items() if k not in _OUTER_ONLY}
    values = ", ".join(
        f"{compiler.process(v, **inner)} AS v{k}" for k, v in enumerate(element.values)
    )
    fence = "LIMIT -1 OFFSET 0" if compiler.dialect.name == "sqlite" else "OFFSET 0"
    body = compiler.process(element.body, **inner)
    return f"(SELECT {body} FROM (SELECT {values} {fence}) AS _rb)"


@compiles(bound, "duckdb")
def _bound_duckdb(element: bound, compiler: Any, **kw: Any) -> str:
    # a one-element list of one struct, mapped by a lambda: evaluated once per row, without
    # the correlated subquery DuckDB would turn into a join
    inner = {k: v for k, v in kw.items() if k not in _OUTER_ONLY}
    values = ", ".join(
        f"v{k} := {compiler.process(v, **inner)}" for k, v in enumerate(element.values)
    )
    body = compiler.process(element.body, **inner)
    return f"list_transform([struct_pack({values})], {_duckdb_lambda('_rb', body)})[1]"


def _simple(e: Any, budget: int = 2) -> bool:
    """A column, a literal, or a small wrapper of one: cheap and short to repeat."""
    if isinstance(e, sa.sql.elements.ColumnClause | sa.sql.elements.BindParameter | _BoundRef):
        return True
    if isinstance(e, sa.sql.elements.Null | sa.sql.elements.True_ | sa.sql.elements.False_):
        return True
    if budget <= 0:
        return False
    if isinstance(e, sa.sql.elements.Label | sa.sql.elements.Grouping):
        return _simple(e.element, budget)
    if isinstance(e, sa.sql.elements.Cast | sa.sql.elements.UnaryExpression):
        return _simple(e.element if isinstance(e, sa.sql.elements.UnaryExpression) else e.clause,
                       budget - 1)  # fmt: skip
    if isinstance(e, as_double | sa.sql.functions.coalesce):
        return all(_simple(c, budget - 1) for c in e.clauses)
    return False


def bind(values: Sequence[Col], body: Callable[..., Col]) -> Col:
    """``body(*values)``, binding the values that are not simple (:class:`bound`)."""
    if all(_simple(v) for v in values):
        return body(*values)
    return bound(values, body)


# --- arithmetic -------------------------------------------------------------------------------

# powers of two: scaling by them is exact, which makes the PostgreSQL guards exact
_P = {k: float(2.0**k) for k in (-537, -512, -50, 51, 512, 537, 969, 1023)}


def _c(x: float) -> Col:
    """A constant double written into the SQL (PostgreSQL only: exact round trip)."""
    return sa.literal_column(f"CAST('{x!r}' AS DOUBLE PRECISION)", sa.Double())


def _one() -> Col:
    return sa.literal_column("1.0", sa.Double())


def _zero() -> Col:
    return sa.literal_column("0.0", sa.Double())


class _paren(FunctionElement[Any]):
    """``(x)``, always: the order of evaluation is part of the rule."""

    name = "paren"
    inherit_cache = True


@compiles(_paren)
def _paren_default(element: _paren, compiler: Any, **kw: Any) -> str:
    (x,) = list(element.clauses)
    return f"({compiler.process(x, **kw)})"


def group(e: Col) -> Col:
    """``(e)``, kept as written (SQLAlchemy drops parentheses around associative operators,
    which changes how a float sum is grouped, and how deep an engine's expression tree is)."""
    out = _paren(e)
    out.type = e.type
    return out


_g = group


def _div(x: Col, y: Col) -> Col:
    """``x / y`` as written (SQLAlchemy's ``/`` adds casts of its own)."""
    return _g(x).op("/")(_g(y))


def _pg_add(x: Col, y: Col) -> Col:
    """``x + y`` on PostgreSQL, NULL where it overflows (one operand below 2^969: it cannot)."""
    big = _c(_P[969])
    half: Col = sa.literal_column("0.5", sa.Double())
    # x/2 + y/2 is exact for operands that large, and cannot overflow itself
    over = sa.func.abs(_g(x * half) + _g(y * half)) >= _c(_P[1023])
    return sa.case(
        (sa.and_(sa.func.abs(x) >= big, sa.func.abs(y) >= big),
         sa.case((over, sa.null()), else_=x + y)),
        else_=x + y,
    )  # fmt: skip


def _pg_mul(x: Col, y: Col, over: bool, under: bool) -> Col:
    """``x * y`` on PostgreSQL: NULL where it overflows, 0 where it underflows to zero."""
    ax, ay = sa.func.abs(x), sa.func.abs(y)
    one = _one()
    whens: list[tuple[Col, Col]] = []
    if over:
        # |x|, |y| > 1: x·2^-512 and y·2^-512 are exact, their product neither overflows nor
        # underflows, and it is x·y·2^-1024 rounded as x·y would be: ≥ 1 exactly on overflow
        s = _c(_P[-512])
        whens.append((
            sa.and_(ax > one, ay > one),
            sa.case((sa.func.abs(_g(x * s) * _g(y * s)) >= one, sa.null()), else_=x * y),
        ))  # fmt: skip
    if under:
        # |x|, |y| < 1: the product is 0 exactly when x·y·2^1074 ≤ 1/2
        t, u = _c(_P[-537]), _c(_P[537])
        whens.append((
            sa.and_(ax < one, ay < one, x != _zero(), y != _zero()),
            sa.case(
                (sa.and_(ax >= t, ay >= t), x * y),
                (sa.func.abs(_g(x * u) * _g(y * u)) <= sa.literal_column("0.5"), _zero()),
                else_=x * y,
            ),
        ))  # fmt: skip
    return sa.case(*whens, else_=x * y) if whens else x * y


def _pg_div(x: Col, y: Col, over: bool, under: bool) -> Col:
    """``x / y`` on PostgreSQL: NULL for a zero divisor or an overflow, 0 on underflow."""
    ax, ay = sa.func.abs(x), sa.func.abs(y)
    one = _one()
    zero = _zero()
    whens: list[tuple[Col, Col]] = [(y == zero, sa.null())]
    if over:
        # |y| < 1 < |x/y|: divide by y scaled up by 2^512 (or 2^1074 for a tiny y), exactly;
        # the quotient is x/y scaled down by the same power
        y512 = y * _c(_P[512])
        y1074 = _g(y * _c(_P[1023])) * _c(_P[51])
        whens.append((
            sa.and_(ay < one, ax > ay),
            sa.case(
                (ay >= _c(_P[-512]),
                 sa.case((sa.func.abs(_div(x, y512)) >= _c(_P[512]), sa.null()),
                         else_=_div(x, y))),
                else_=sa.case((sa.func.abs(_div(x, y1074)) >= _c(_P[-50]), sa.null()),
                              else_=_div(x, y)),
            ),
        ))  # fmt: skip
    if under:
        # |y| > 1 > |x/y|: x scaled up by 2^1074 (exact) over y is 1/2 or less exactly when
        # x / y rounds to 0
        x1074 = _g(x * _c(_P[1023])) * _c(_P[51])
        whens.append((
            sa.and_(ay > one, ax < ay, x != zero),
            sa.case(
                (ax >= _c(_P[-50]), _div(x, y)),
                (sa.func.abs(_div(x1074, y)) <= sa.literal_column("0.5"), zero),
                else_=_div(x, y),
            ),
        ))  # fmt: skip
    return sa.case(*whens, else_=_div(x, y))


class _Guarded(FunctionElement[float]):
    """An arithmetic operation whose result may overflow (or, on PostgreSQL, underflow)."""

    name = "guarded"
    inherit_cache = False
    type = sa.Double()

    def __init__(self, op: str, x: Col, y: Col, over: bool, under: bool):
        super().__init__(x, y)
        self.operator_, self.x, self.y = op, x, y
        self.may_overflow, self.may_underflow = over, under


def _ieee(op: str, x: Col, y: Col) -> Col:
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    return _div(as_double(x), sa.func.nullif(y, _zero()))


@compiles(_Guarded)
def _guarded_ieee(element: _Guarded, compiler: Any, **kw: Any) -> str:
    # SQLite, DuckDB: the IEEE operation, an infinity made missing
    return str(compiler.process(finite(_ieee(element.operator_, element.x, element.y)), **kw))


@compiles(_Guarded, "postgresql")
def _guarded_pg(element: _Guarded, compiler: Any, **kw: Any) -> str:
    op, over, under = element.operator_, element.may_overflow, element.may_underflow

    def body(x: Col, y: Col) -> Col:
        if op == "+":
            return _pg_add(x, y) if over else x + y
        if op == "-":
            return _pg_add(x, -y) if over else x - y
        if op == "*":
            return _pg_mul(x, y, over, under)
        return _pg_div(as_double(x), y, over, under)

    if op in "+-" and not over:
        return str(compiler.process(body(element.x, element.y), **kw))
    return str(compiler.process(bind([element.x, element.y], body), **kw))


def guarded(op: str, x: Col, y: Col, over: bool = True, under: bool = True) -> Col:
    """``x op y`` (``+ - * /``) with the evaluator's rule: a division by zero, or a result that
    is not finite, is missing. ``over``/``under`` say whether the operands can overflow or
    underflow at all (see :mod:`riskengine.sql.numeric`); when neither can, and the operation
    is not a division, it is the plain operation."""
    if op == "/":
        if not over and not under:
            return _ieee(op, x, y)
        return _Guarded(op, x, y, over, under)
    if not over and not under:
        return _ieee(op, x, y)
    return _Guarded(op, x, y, over, under)


# --- functions --------------------------------------------------------------------------------


class _Extreme(FunctionElement[Any]):
    """``min``/``max`` of the arguments, NULL when any is."""

    name = "extreme"
    inherit_cache = False

    def __init__(self, func: str, args: Sequence[Col]):
        super().__init__(*args)
        self.func = func
        self.args = list(args)
        self.type = self.args[0].type


@compiles(_Extreme)
def _extreme_default(element: _Extreme, compiler: Any, **kw: Any) -> str:
    greatest = sa.func.greatest if element.func == "max" else sa.func.least

    def body(*xs: Col) -> Col:
        missing = sa.or_(*[x.is_(None) for x in xs])
        return sa.case((missing, sa.null()), else_=greatest(*xs))

    return str(compiler.process(bind(element.args, body), **kw))


@compiles(_Extreme, "sqlite")
def _extreme_sqlite(element: _Extreme, compiler: Any, **kw: Any) -> str:
    # SQLite's max()/min() of several arguments is NULL when any argument is
    fn = sa.func.max if element.func == "max" else sa.func.min
    return str(compiler.process(fn(*element.args), **kw))


def nmax(*args: Col) -> Col:
    return args[0] if len(args) == 1 else _Extreme("max", args)


def nmin(*args: Col) -> Col:
    return args[0] if len(args) == 1 else _Extreme("min", args)


class round_half_away(FunctionElement[float]):
    """``round(x)``: ``floor(|x| + 0.5)`` with the sign of ``x`` (the evaluator's rule)."""

    name = "round_half_away"
    inherit_cache = True
    type = sa.Double()


@compiles(round_half_away)
def _round_default(element: round_half_away, compiler: Any, **kw: Any) -> str:
    (x,) = list(element.clauses)
    half: Col = sa.literal_column("0.5", sa.Double())

    def body(v: Col) -> Col:
        return sa.case((v < _zero(), -sa.func.floor(-v + half)), else_=sa.func.floor(v + half))

    return str(compiler.process(bind([x], body), **kw))


@compiles(round_half_away, "sqlite")
def _round_sqlite(element: round_half_away, compiler: Any, **kw: Any) -> str:
    # SQLite's round(x) is (double)(int64)(|x| + 0.5) with the sign for |x| < 2^63 (larger
    # doubles are already whole): exactly floor(|x| + 0.5)
    (x,) = list(element.clauses)
    return f"round({compiler.process(x, **kw)})"


class days_between(FunctionElement[float]):
    """``end - start`` of two dates: whole days, as a double (NULL when either is missing)."""

    name = "days_between"
    inherit_cache = True
    type = sa.Double()


@compiles(days_between)
def _days_default(element: days_between, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(CAST({end} AS DATE) - CAST({start} AS DATE) AS DOUBLE PRECISION)"


@compiles(days_between, "sqlite")
def _days_sqlite(element: days_between, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"(julianday({end}) - julianday({start}))"


@compiles(days_between, "duckdb")
def _days_duckdb(element: days_between, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(date_diff('day', CAST({start} AS DATE), CAST({end} AS DATE)) AS DOUBLE)"


class clamp(FunctionElement[float]):
    """The degree limited to 0..100; ``x`` (never NULL: a missing degree is 0) is read once."""

    name = "clamp"
    inherit_cache = True
    type = sa.Double()


@compiles(clamp)
def _clamp_default(element: clamp, compiler: Any, **kw: Any) -> str:
    (x,) = list(element.clauses)
    return f"greatest(0.0, least(100.0, {compiler.process(x, **kw)}))"


@compiles(clamp, "sqlite")
def _clamp_sqlite(element: clamp, compiler: Any, **kw: Any) -> str:
    (x,) = list(element.clauses)
    return f"max(0.0, min(100.0, {compiler.process(x, **kw)}))"


def reaches(raw: Col, threshold: float) -> Col:
    """The clamped degree (0..100; NULL stays NULL) is at least ``threshold``, tested on the
    raw degree: the evaluator's ``d >= threshold`` after its clamp, for every threshold (above
    100 nothing reaches it; at 0 or below every degree does)."""
    if threshold > 100:
        return sa.false()
    if threshold <= 0:
        return raw.is_not(None)
    return sa.func.coalesce(raw >= threshold, sa.false())


class month(FunctionElement[str]):
    """``YYYY-MM`` of a date."""

    name = "month"
    inherit_cache = True
    type = sa.String()


@compiles(month)
def _month_default(element: month, compiler: Any, **kw: Any) -> str:
    (x,) = list(element.clauses)
    return f"strftime('%Y-%m', {compiler.process(x, **kw)})"


@compiles(month, "postgresql")
def _month_pg(element: month, compiler: Any, **kw: Any) -> str:
    (x,) = list(element.clauses)
    return f"to_char({compiler.process(x, **kw)}, 'YYYY-MM')"


@compiles(month, "duckdb")
def _month_duckdb(element: month, compiler: Any, **kw: Any) -> str:
    (x,) = list(element.clauses)
    return f"strftime({compiler.process(x, **kw)}, '%Y-%m')"


# --- comparisons ------------------------------------------------------------------------------


class code_point(FunctionElement[str]):
    """Text compared by code point: ``x COLLATE "C"`` on PostgreSQL (whose default is a
    locale); SQLite's and DuckDB's default collation already is."""

    name = "code_point"
    inherit_cache = True
    type = sa.String()


@compiles(code_point)
def _code_point_default(element: code_point, compiler: Any, **kw: Any) -> str:
    (x,) = list(element.clauses)
    return str(compiler.process(x, **kw))


@compiles(code_point, "postgresql")
def _code_point_pg(element: code_point, compiler: Any, **kw: Any) -> str:
    (x,) = list(element.clauses)
    return f'({compiler.process(x, **kw)}) COLLATE "C"'


_COMPARE: Mapping[str, Callable[[Col, Col], Col]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def compare(op: str, a: Col, b: Col, text: bool = False) -> Col:
    """``a op b`` (NULL when either is missing); ``text``: an ordering by code point."""
    if text and op not in ("==", "!="):
        a = code_point(a)
    # only the operator asked for is built: `<` with a boolean literal is an error in SQLAlchemy
    return _COMPARE[op](a, b)


def between(v: Col, low: Col, high: Col, text: bool = False) -> Col:
    """``low <= v <= high``, ``v`` read once."""
    return sa.between(code_point(v) if text else v, low, high)


def _in(v: Col, items: Sequence[Any]) -> Col:
    return v.in_(list(items))


def _not_in(v: Col, items: Sequence[Any]) -> Col:
    return v.not_in(list(items))


def starts_with(v: Col, prefixes: Sequence[str]) -> Col:
    """``substr(v, 1, n) IN (...)`` per prefix length: exact, case-sensitive, no LIKE
    wildcards (NULL when ``v`` is missing; an empty prefix matches any present value)."""
    if "" in prefixes:
        return v.is_not(None)
    by_len: dict[int, set[str]] = {}
    for p in prefixes:
        by_len.setdefault(len(p), set()).add(p)
    parts = [sa.func.substr(v, 1, n).in_(sorted(ps)) for n, ps in sorted(by_len.items())]
    if not parts:
        return sa.false()
    return sa.or_(*parts) if len(parts) > 1 else parts[0]


#: Every SQL construction of the language, by operator or function name (the operator table
#: of :mod:`riskengine.semantics` attaches them): arithmetic (``guarded`` takes the operator),
#: functions, comparisons, predicates, and the degree's clamp and threshold test.
SQL_OPERATORS: Mapping[str, Callable[..., Col]] = {
    "+": lambda x, y, over=True, under=True: guarded("+", x, y, over, under),
    "-": lambda x, y, over=True, under=True: guarded("-", x, y, over, under),
    "*": lambda x, y, over=True, under=True: guarded("*", x, y, over, under),
    "/": lambda x, y, over=True, under=True: guarded("/", x, y, over, under),
    "neg": lambda x: -x,
    "days_between": days_between,
    "min": nmin,
    "max": nmax,
    "abs": sa.func.abs,
    "round": round_half_away,
    "==": lambda a, b, text=False: compare("==", a, b, text),
    "!=": lambda a, b, text=False: compare("!=", a, b, text),
    "<": lambda a, b, text=False: compare("<", a, b, text),
    "<=": lambda a, b, text=False: compare("<=", a, b, text),
    ">": lambda a, b, text=False: compare(">", a, b, text),
    ">=": lambda a, b, text=False: compare(">=", a, b, text),
    "between": between,
    "in": _in,
    "not in": _not_in,
    "starts_with": starts_with,
    "is_missing": lambda v: v.is_(None),
    "is_not_missing": lambda v: v.is_not(None),
    "clamp": clamp,
    "reaches": reaches,
    "month": month,
    "double": as_double,
    "finite": finite,
    "number": number,
}
