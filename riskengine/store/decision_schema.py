"""The decision log's table (revision r0007): one row per scoring decision of production scoring.

Not ``scoring_results`` (r0001): that table was laid out for backtest runs, one row per *fired
profile* of a declaration already in the store (``decl_pk`` is a non-null reference to
``declarations``, keys are chosen by the writer as ``max(pk) + 1``); nothing writes it today. A
clearance system's declaration is scored when it is lodged, long before (if ever) it is
ingested, every decision is logged (green ones too), and several service replicas write at
once. So the decision log is its own table, keyed by what makes a decision unique: the
declaration's id and the bundle revision it was scored with (a replay of the same record is
then ignored, never doubled).
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["DECISION_LOG_TABLE", "decision_log_table"]

DECISION_LOG_TABLE = "decision_log"


def decision_log_table(md: sa.MetaData) -> sa.Table:
    """Define ``decision_log`` in ``md`` (which has the store's naming convention)."""
    text = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
    table = sa.Table(
        DECISION_LOG_TABLE,
        md,
        sa.Column("declaration_id", text, primary_key=True),
        sa.Column("bundle_revision", text, primary_key=True),
        sa.Column("declaration_date", sa.Date),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("office", text),
        sa.Column("regime", text),
        sa.Column("selected", sa.Boolean, nullable=False),
        sa.Column("lane", sa.String(8), nullable=False),
        sa.Column("random_selected", sa.Boolean),
        sa.Column("fired", sa.JSON, nullable=False),
        sa.Column("controls", sa.JSON, nullable=False),
        sa.Column("scored_at", sa.DateTime, nullable=False),
        comment="Production scoring decisions, one per (declaration, bundle revision): profiles "
        "fired with degree and controls, lane, random selection (riskengine.decisionlog).",
        sqlite_with_rowid=False,  # one B-tree keyed by the primary key: faster inserts
    )
    sa.Index("ix_decision_log_declaration_date", table.c.declaration_date)
    return table
