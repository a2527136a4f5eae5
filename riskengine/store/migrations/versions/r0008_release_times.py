"""Release times: the table ``release_times`` (declaration, ``lodged_at``, ``released_at``).

The release-time KPI (docs/kpi.md) is the time from a declaration's lodgement to its release.
Both are moments of the clearance, known only after the declaration was lodged and decided, so
they are kept beside its outcome rather than as catalogue fields a profile could read (a backtest
must not see the future). A table of their own rather than two columns of
``clearance_outcomes``: DuckDB refuses ``ALTER TABLE`` on a table that another references
(``outcome_reasons``). Stores that do not record the times have no rows, and the KPI then says
the period has no data.

Revision ID: r0008
Revises: r0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0008"
down_revision = "r0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "release_times",
        sa.Column("decl_pk", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("lodged_at", sa.DateTime),
        sa.Column("released_at", sa.DateTime),
        sa.ForeignKeyConstraint(["decl_pk"], ["declarations.pk"], name="fk_release_times_decl_pk"),
        sa.PrimaryKeyConstraint("decl_pk", name="pk_release_times"),
        comment="When each declaration was lodged and released (the release-time KPI); written "
        "with its clearance outcome.",
    )


def downgrade() -> None:
    op.drop_table("release_times")
