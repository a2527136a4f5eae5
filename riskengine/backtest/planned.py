"""The profiles of a backtest and where each runs: pushed down to SQL, or in Python.

:func:`plan` compiles every profile for the engine (with the field types of the catalogue in
force) and marks those the engine cannot run, with the reason the report shows.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from riskengine import model as m
from riskengine.regional import apply_fill
from riskengine.semantics.sql import sql_recursion
from riskengine.semantics.types import field_types
from riskengine.sql.compile import (
    ProfileSql,
    SqlScope,
    SqlUnsupported,
    compile_profile,
    register_functions,
)

if TYPE_CHECKING:
    from riskengine.catalogue import Catalogue


@attrs.frozen
class PlannedProfile:
    """A profile as the backtest runs it: its key, the model, and where it is evaluated."""

    key: str
    profile: m.Profile
    fills: tuple[m.Fill, ...] = ()
    lists: Mapping[str, m.ListLit] = attrs.field(factory=dict)  # file-level named lists
    pushdown: bool = True
    reason: str | None = None  # why it cannot run in SQL
    #: each field's type in the catalogue in force (:func:`riskengine.semantics.types.field_types`;
    #: ``None``: the built-in catalogue), for the SQL compiler and the Python fallback
    types: Mapping[str, str] | None = None


def plan(
    profiles: Sequence[PlannedProfile],
    dialect: str,
    catalogue: Catalogue | None = None,
    *,
    trial: bool = True,
) -> list[PlannedProfile]:
    """Decide per profile whether it runs in SQL, by compiling it against a dummy row source
    with the field types of ``catalogue`` (the built-in one when ``None``; the planned profiles
    carry them). On SQLite a deep profile is also prepared, as the query nests it: SQLite's
    parser and expression tree have fixed depths, and a profile beyond them runs in Python.

    ``trial=False`` skips that preparation on SQLite (DuckDB keeps it): for a caller that runs
    the one-pass query at once and plans again with the trials only if SQLite refuses to
    prepare it (:func:`riskengine.backtest.run.run_backtest`); the trials compile every deep
    profile a second time, and almost every query prepares."""
    with sql_recursion():
        return _plan(profiles, dialect, field_types(catalogue), trial)


def _plan(
    profiles: Sequence[PlannedProfile],
    dialect: str,
    types: Mapping[str, str],
    trial: bool = True,
) -> list[PlannedProfile]:
    planned = []
    margin = _nesting(len(profiles))
    # typed NULLs for the fields: the SQL that an engine's parser is given when a deep profile
    # is tried on it (:func:`_prepared`) is this compilation's
    null_field = _null_field(types)
    for pp in profiles:
        pp = attrs.evolve(pp, types=types)
        dummy = SqlScope(field=null_field, dialect=dialect, lists=pp.lists, types=types)
        try:
            variants = (
                [apply_fill(pp.profile, f) for f in pp.fills]
                if pp.profile.is_regional
                else [pp.profile]
            )
            for variant in variants:
                compiled = compile_profile(variant, dummy)
                if (
                    dialect in _LOCAL
                    and (trial or dialect != "sqlite")
                    and profile_depth(variant, weighted=True) > _SAFE_DEPTH
                ):
                    _prepared(dialect, variant, compiled, pp.lists, types, margin)
            planned.append(attrs.evolve(pp, pushdown=True, reason=None))
        except SqlUnsupported as exc:
            planned.append(attrs.evolve(pp, pushdown=False, reason=exc.reason))
        except KeyError as exc:  # a fill without a value for a parameter: missing in Python
            reason = f"a fill gives no value for a parameter ({exc.args[0] if exc.args else exc})"
            planned.append(attrs.evolve(pp, pushdown=False, reason=reason))
        except RecursionError:
            reason = "the profile's expressions are nested too deeply to build its SQL"
            planned.append(attrs.evolve(pp, pushdown=False, reason=reason))
    return planned


#: Profiles whose expressions nest at most this deep (:func:`profile_depth`, weighted by
#: what each level costs SQLite's parser) compile to SQL that SQLite's parser (a stack of 100
#: entries) and expression trees (1000 deep), and DuckDB's expression trees (1000 deep),
#: accept however the query nests them. Deeper ones are tried on an in-memory database of the
#: engine first (:data:`_LOCAL`).
_SAFE_DEPTH = 40

#: What one level of nesting costs SQLite's parser stack, about (measured: 100 parentheses,
#: 40 nested functions, 20 nested CASEs overflow it, and 7 levels of guarded arithmetic in
#: the one-pass query of 300 profiles); generous: a profile above it is only prepared first.
_WEIGHT = {"Cond": 12, "Call": 12, "Arith": 12, "Neg": 4}

#: In-memory databases of the engines whose limits are checked by preparing the SQL.
_LOCAL = {"sqlite": "sqlite://", "duckdb": "duckdb:///:memory:"}


def _nesting(n_profiles: int) -> int:
    """How many CASE levels the one-pass query wraps a profile's expressions in (the binary
    tree of :func:`riskengine.backtest.candidates.by_n` and the variant choice)."""
    return 3 + max(0, math.ceil(math.log2(max(n_profiles, 1) / 8)))


def profile_depth(profile: m.Profile, weighted: bool = False) -> int:
    """The deepest nesting of the profile's expressions, indicators expanded where used;
    ``weighted``: each level counted with its cost to SQLite's parser (:data:`_WEIGHT`)."""
    memo: dict[str, int] = {}
    indicators = {ind.name: ind for ind in profile.indicators}

    def depth(expr: m.Expr | None, seen: tuple[str, ...] = ()) -> int:
        if expr is None:
            return 0
        best = 0
        stack: list[tuple[Any, int]] = [(expr, 1)]
        while stack:
            node, d = stack.pop()
            if isinstance(node, m.Ref) and node.name in indicators and node.name not in seen:
                if node.name not in memo:
                    ind = indicators[node.name]
                    memo[node.name] = max(
                        depth(ind.condition, (*seen, node.name)),
                        depth(ind.unless, (*seen, node.name)) + 1,
                    )
                best = max(best, d + memo[node.name])
                continue
            best = max(best, d)
            step = _WEIGHT.get(type(node).__name__, 1) if weighted else 1
            for child in _children(node):
                stack.append((child, d + step))
        return best

    exprs: list[m.Expr | None] = [profile.degree]
    exprs += [e.condition for e in profile.exceptions]
    exprs += [c.condition for c in profile.controls]
    exprs += [ind.condition for ind in profile.indicators]
    return max((depth(e) for e in exprs), default=0)


def _children(node: Any) -> list[Any]:
    match node:
        case m.Neg(operand=a) | m.Not(operand=a) | m.IsMissing(operand=a):
            return [a]
        case m.Matches(operand=a) | m.InList(operand=a) | m.StartsWith(operand=a):
            return [a]
        case m.Arith(left=a, right=b) | m.Compare(left=a, right=b):
            return [a, b]
        case m.And(left=a, right=b) | m.Or(left=a, right=b):
            return [a, b]
        case m.Between(operand=a, low=b, high=c) | m.Cond(test=a, then=b, otherwise=c):
            return [a, b, c]
        case m.Call(args=args):
            return list(args)
    return []


@functools.cache
def _local(dialect: str) -> sa.Engine:
    engine = sa.create_engine(_LOCAL[dialect])
    register_functions(engine)
    if dialect == "duckdb":

        @sa.event.listens_for(engine, "connect")
        def _depth(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute(f"SET max_expression_depth TO {DUCKDB_EXPRESSION_DEPTH}")

    return engine


#: DuckDB's limit on the depth of an expression for the backtest's queries (its default,
#: 1000, is below what a guarded profile of depth 100 nests to).
DUCKDB_EXPRESSION_DEPTH = 10_000


#: Profiles already prepared on an in-memory engine: the reason they cannot run, or ``None``
#: (a backtest plans its profiles twice: for the report, and when it runs).
_PREPARED: dict[Any, str | None] = {}


def _prepared(
    dialect: str,
    profile: m.Profile,
    compiled: ProfileSql,
    lists: Mapping[str, m.ListLit],
    types: Mapping[str, str],
    margin: int,
) -> None:
    """:func:`_prepares`, remembered per profile, lists, field types and margin."""
    key = (dialect, profile, tuple(sorted(lists.items())), tuple(sorted(types.items())), margin)
    if key not in _PREPARED:
        if len(_PREPARED) > 1024:
            _PREPARED.clear()
        try:
            _prepares(dialect, compiled, margin)
            _PREPARED[key] = None
        except SqlUnsupported as exc:
            _PREPARED[key] = exc.reason
    reason = _PREPARED[key]
    if reason is not None:
        raise SqlUnsupported(reason)


def _null_field(types: Mapping[str, str]) -> Callable[[str], Any]:
    """Each field as a NULL of its SQL type (a double for numbers, text otherwise)."""

    def field(path: str) -> Any:
        return sa.cast(sa.null(), sa.Double() if types.get(path) == "number" else sa.String())

    return field


def _prepares(dialect: str, compiled: ProfileSql, margin: int) -> None:
    """Raise :class:`SqlUnsupported` when the engine cannot read the profile's expressions
    (compiled over typed NULLs) nested ``margin`` CASE levels deep, as the one-pass query
    nests them: one statement selects them all."""
    exprs = [compiled.raw_degree, compiled.excluded, compiled.fires]
    exprs += [c for _, c in compiled.conditions if c is not None]
    wrapped = []
    for expr in exprs:
        for _ in range(margin):
            expr = sa.case((sa.literal_column("1") == 1, expr), else_=sa.null())
        wrapped.append(expr)
    try:
        with _local(dialect).connect() as conn:
            conn.execution_options(compiled_cache=None).execute(sa.select(*wrapped))
    except sa.exc.DBAPIError as exc:
        problem = str(exc.orig) if exc.orig is not None else str(exc)
        name = {"sqlite": "SQLite", "duckdb": "DuckDB"}[dialect]
        raise SqlUnsupported(
            f"{name} cannot read the profile's SQL, its expressions nest too deeply "
            f"({problem.splitlines()[0]})"
        ) from None
