"""What the history queries share: dates as day numbers, and the subject fields in SQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from riskengine.semantics.history import HistoryTerms
from riskengine.store.engine import StoreError
from riskengine.store.source import StoreSource

__all__ = ["check_subjects", "day_number", "subject_expr"]


# --- dates -----------------------------------------------------------------------------------


class day_number(FunctionElement[int]):
    """A date as a whole number of days in each dialect (consecutive dates give consecutive
    numbers): the order key of the history windows, so that ``RANGE BETWEEN N PRECEDING AND 1
    PRECEDING`` is exactly ``[as_of - N days, as_of)``."""

    name = "day_number"
    inherit_cache = True
    type = sa.Integer()


@compiles(day_number)
def _day_number_default(element: day_number, compiler: Any, **kw: Any) -> str:
    (date,) = list(element.clauses)
    return f"(CAST({compiler.process(date, **kw)} AS DATE) - DATE '1970-01-01')"


@compiles(day_number, "sqlite")
def _day_number_sqlite(element: day_number, compiler: Any, **kw: Any) -> str:
    # julianday() of a date is N.5 (midnight); + 0.5 and truncating gives the civil day number,
    # also for a 'YYYY-MM-DD HH:MM:SS' text
    (date,) = list(element.clauses)
    return f"CAST(julianday({compiler.process(date, **kw)}) + 0.5 AS INTEGER)"


@compiles(day_number, "duckdb")
def _day_number_duckdb(element: day_number, compiler: Any, **kw: Any) -> str:
    (date,) = list(element.clauses)
    return f"date_diff('day', DATE '1970-01-01', CAST({compiler.process(date, **kw)} AS DATE))"


# --- subject expressions ---------------------------------------------------------------------


def subject_expr(
    source: StoreSource, path: str, prefix: int | None, alias: sa.FromClause
) -> sa.ColumnElement[Any]:
    """A subject field of the declaration or item row ``alias``, its prefix applied."""
    column = source.field(path, alias)
    if prefix is None:
        return column
    return sa.func.substr(column, 1, prefix)


def check_subjects(terms: HistoryTerms, source: StoreSource) -> None:
    """A clear error when ``source`` has no column for one of the block's subject fields."""
    for path, _ in terms.subjects:
        if not source.has_field(path):
            raise StoreError(f"{source.name} has no column for the history subject {path!r}")
