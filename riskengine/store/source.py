"""Where history and backtests read from: the store's own tables or a user's, by canonical names.

A :class:`StoreSource` is five SQLAlchemy selectables whose columns carry the store's canonical
names, whatever the tables behind them are called:

===================  ==========================================================================
``declarations``     ``pk`` (key joining the others), ``id``, ``date``, one column per mapped
                     header field (``declarant_id`` for ``declaration.declarant.id``)
``items``            ``decl_pk``, ``item_no``, one column per mapped item field (``hs_code``)
``outcomes``         ``decl_pk``, ``completed`` (boolean), ``date``
``outcome_reasons``  ``decl_pk``, ``reason_code``
``control_results``  ``decl_pk``, ``procedure``, ``profile_key``, ``random_control``,
                     ``violation_found``, ``revenue``, ``date``
===================  ==========================================================================

:func:`native_source` gives the store's own tables; :mod:`riskengine.byo` builds one
over existing tables from a bring-your-own-tables mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs
import sqlalchemy as sa

from riskengine.catalogue import Catalogue
from riskengine.store.engine import StoreError
from riskengine.store.schema import StoreTables, build_tables

__all__ = ["OUTCOME_COLUMNS", "StoreSource", "native_source"]

#: Canonical columns of the outcome-side selectables.
OUTCOME_COLUMNS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "outcomes": ("decl_pk", "completed", "date"),
        "outcome_reasons": ("decl_pk", "reason_code"),
        "control_results": (
            "decl_pk",
            "procedure",
            "profile_key",
            "random_control",
            "violation_found",
            "revenue",
            "date",
        ),
    }
)


@attrs.frozen(eq=False)
class StoreSource:
    """Selectables with canonical column names; ``field_columns`` maps catalogue paths to them.

    ``outcomes``, ``outcome_reasons`` and ``control_results`` may be ``None`` for a user's schema
    that holds declarations only; history then cannot be computed from it.
    """

    name: str
    declarations: sa.FromClause
    items: sa.FromClause
    field_columns: Mapping[str, str]
    outcomes: sa.FromClause | None = None
    outcome_reasons: sa.FromClause | None = None
    control_results: sa.FromClause | None = None

    def has_field(self, path: str) -> bool:
        """Whether the source maps the catalogue field ``path``."""
        return path in self.field_columns

    def field(self, path: str, alias: sa.FromClause | None = None) -> sa.ColumnElement[Any]:
        """The column of ``path`` in ``declarations``/``items`` (or in ``alias`` of one)."""
        name = self.field_columns.get(path)
        if name is None:
            raise StoreError(f"{self.name} has no column for the field {path!r}")
        if alias is None:
            alias = self.declarations if path.startswith("declaration.") else self.items
        return alias.c[name]

    def require(self, *names: str) -> tuple[sa.FromClause, ...]:
        """The outcome-side selectables ``names``; a :class:`StoreError` names a missing one."""
        found = []
        for name in names:
            value = getattr(self, name)
            if value is None:
                raise StoreError(f"{self.name} maps no {name} table: history needs it")
            found.append(value)
        return tuple(found)


def native_source(tables: StoreTables | Catalogue | None = None) -> StoreSource:
    """The store's own tables as a source (for the built-in catalogue unless told otherwise)."""
    if not isinstance(tables, StoreTables):
        tables = build_tables(tables)
    return StoreSource(
        name="the riskengine store",
        declarations=tables.declarations,
        items=tables.items,
        field_columns=tables.field_columns,
        outcomes=tables.outcomes,
        outcome_reasons=tables.outcome_reasons,
        control_results=tables.control_results,
    )
