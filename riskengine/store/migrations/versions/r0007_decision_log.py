"""The decision log: ``decision_log``, one row per scoring decision (riskengine.decisionlog).

A frozen copy of :mod:`riskengine.store.decision_schema` as it is at this revision (change the
table with a new revision, never here). The primary key (declaration id, bundle revision) is
what makes writing a record twice harmless: writers insert with ``ON CONFLICT DO NOTHING``.
``scoring_results`` (r0001, one row per fired profile of a stored declaration, for backtest
runs; nothing writes it today) is left as it is.

Revision ID: r0007
Revises: r0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0007"
down_revision = "r0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    text = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
    op.create_table(
        "decision_log",
        sa.Column("declaration_id", text, nullable=False),
        sa.Column("bundle_revision", text, nullable=False),
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
        sa.PrimaryKeyConstraint("declaration_id", "bundle_revision", name="pk_decision_log"),
        comment="Production scoring decisions, one per (declaration, bundle revision): profiles "
        "fired with degree and controls, lane, random selection (riskengine.decisionlog).",
        sqlite_with_rowid=False,  # one B-tree keyed by the primary key: faster inserts
    )
    op.create_index("ix_decision_log_declaration_date", "decision_log", ["declaration_date"])


def downgrade() -> None:
    op.drop_index("ix_decision_log_declaration_date", "decision_log")
    op.drop_table("decision_log")
