"""`matches` in SQL: the checked pattern of :mod:`riskengine.semantics.regex` on each engine.

- SQLite: ``re_fullmatch(pattern, value)``, a function :func:`register_functions` gives every
  connection; it runs the pattern's RE2 translation, as the evaluator does.
- DuckDB: ``regexp_full_match(value, re2)``: DuckDB's own RE2 runs the same translation (it has
  no flags: classes, cases and newlines are spelt out in it).
- PostgreSQL: ``value ~ '^(?:are)$'`` with the translation in ARE syntax (Henry Spencer's
  engine, not RE2), only where that is exact and within the sizes PostgreSQL runs in linear
  time (:meth:`Regex.postgres`); otherwise the profile takes the backtest's Python fallback,
  with the reason.

The dialects differ through one SQLAlchemy ``FunctionElement`` compiled per dialect.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from riskengine.semantics.regex import PatternError, compile_pattern, sql_fullmatch


class regex_fullmatch(FunctionElement[bool]):
    """``value`` fully matches the checked pattern (``NULL`` when ``value`` is)."""

    type = sa.Boolean()
    inherit_cache = False

    def __init__(self, value: ColumnElement[Any], pattern: str, dialect_pattern: str):
        self.pattern = pattern
        self.dialect_pattern = dialect_pattern
        super().__init__(value)


@compiles(regex_fullmatch)
def _default(element: regex_fullmatch, compiler: Any, **kw: Any) -> str:
    raise sa.exc.CompileError(f"`matches` is not available on {compiler.dialect.name}")


@compiles(regex_fullmatch, "sqlite")
def _sqlite(element: regex_fullmatch, compiler: Any, **kw: Any) -> str:
    (value,) = element.clauses
    call = sa.func.re_fullmatch(sa.literal(element.pattern), value) == 1
    return str(compiler.process(call, **kw))


@compiles(regex_fullmatch, "duckdb")
def _duckdb(element: regex_fullmatch, compiler: Any, **kw: Any) -> str:
    (value,) = element.clauses
    call = sa.func.regexp_full_match(value, sa.literal(element.dialect_pattern))
    return str(compiler.process(call, **kw))


@compiles(regex_fullmatch, "postgresql")
def _postgresql(element: regex_fullmatch, compiler: Any, **kw: Any) -> str:
    (value,) = element.clauses
    call = value.op("~", is_comparison=True)(sa.literal(element.dialect_pattern))
    return str(compiler.process(call, **kw))


def sql_matches(dialect: str, value: ColumnElement[Any], pattern: str) -> tuple[Any, str]:
    """``value matches pattern`` on ``dialect`` (NULL when ``value`` is), or ``None`` and the
    reason it does not run there (then the backtest takes the Python fallback)."""
    try:
        rx = compile_pattern(pattern)
    except PatternError as exc:  # check reports it; a model built by hand may hold one
        return None, f"pattern {pattern!r}: {exc}"
    if dialect == "sqlite":
        return regex_fullmatch(value, pattern, pattern), ""
    if dialect == "duckdb":
        return regex_fullmatch(value, pattern, rx.re2), ""
    if dialect == "postgresql":
        are, reason = rx.postgres()
        if are is None:
            return None, reason
        return regex_fullmatch(value, pattern, are), ""
    return None, f"`matches` on {dialect}"


def register_functions(engine: sa.Engine) -> None:
    """Give SQLite connections of ``engine`` the functions compiled profiles call
    (``re_fullmatch``: the evaluator's linear-time `matches`, so it reads the same in SQL).
    Call it before the engine's first connection."""
    if engine.dialect.name != "sqlite":
        return

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.create_function("re_fullmatch", 2, sql_fullmatch, deterministic=True)

    sa.event.listen(engine, "connect", on_connect)
