"""Aggregates of the control results a backtest counts: per procedure and over every procedure,
with money in whole cents so that sums are exact and the same on every engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from riskengine.backtest.candidates import _flag
from riskengine.sql.compile import Col

__all__ = ["any_sums", "cents", "procedure_sums"]


class cents(FunctionElement[int]):
    """A control's revenue in whole cents, rounded half away from zero, as an integer: sums of
    it are exact on every engine (SQLite's REAL, PostgreSQL's and DuckDB's DECIMAL alike), and
    the same on each. NULL (no revenue) counts 0."""

    name = "revenue_cents"
    inherit_cache = True
    type = sa.BigInteger()


@compiles(cents)
def _cents(element: cents, compiler: Any, **kw: Any) -> str:
    # round(numeric) is half away from zero (round(double precision) would be half to even)
    (x,) = list(element.clauses)
    return f"CAST(coalesce(round(CAST({compiler.process(x, **kw)} AS NUMERIC) * 100), 0) AS BIGINT)"


@compiles(cents, "sqlite")
@compiles(cents, "duckdb")
def _cents_round(element: cents, compiler: Any, **kw: Any) -> str:
    # both round half away from zero, a REAL/DOUBLE and a DECIMAL alike
    (x,) = list(element.clauses)
    return f"CAST(coalesce(round({compiler.process(x, **kw)} * 100), 0) AS BIGINT)"


def procedure_sums(cr: sa.FromClause, codes: Sequence[str]) -> list[Col]:
    """Aggregates of control results per procedure ``codes[j]``: ``n{j}`` controls carried out,
    ``h{j}`` hits (a violation found) and ``r{j}`` revenue assessed (in cents)."""
    violation = _flag(cr.c.violation_found == sa.true())
    assessed = cents(cr.c.revenue)
    cols: list[Col] = []
    for j, code in enumerate(codes):
        is_code = cr.c.procedure == code
        cols += [
            sa.func.sum(_flag(is_code)).label(f"n{j}"),
            sa.func.sum(sa.case((is_code, violation), else_=0)).label(f"h{j}"),
            sa.func.sum(sa.case((is_code, assessed), else_=0)).label(f"r{j}"),
        ]
    return cols


def any_sums(cr: sa.FromClause) -> list[Col]:
    """Aggregates of every control result, whatever its procedure: ``n_all`` controls carried
    out, ``h_all`` hits, ``r_all`` revenue (in cents)."""
    return [
        sa.func.count().label("n_all"),
        sa.func.sum(_flag(cr.c.violation_found == sa.true())).label("h_all"),
        sa.func.sum(cents(cr.c.revenue)).label("r_all"),
    ]
