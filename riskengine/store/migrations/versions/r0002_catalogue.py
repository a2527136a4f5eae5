"""The catalogue a store was initialised with: ``riskengine_catalogue``, one row per version.

``db init --catalogue`` records the user catalogue (the fields it adds to or replaces in the
built-in one, as JSON); ``db upgrade --catalogue`` records a new version. Commands then read the
catalogue from the store instead of needing ``--catalogue`` again (``riskengine.store.catalogue``).
A store upgraded from r0001 has no row until a ``db init``/``db upgrade --catalogue`` records one.

Revision ID: r0002
Revises: r0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0002"
down_revision = "r0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "riskengine_catalogue",
        sa.Column("version", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("recorded_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_riskengine_catalogue"),
        comment="The field catalogue the store was initialised with (the fields added to or "
        "replacing the built-in ones, as JSON); the highest version is in force.",
    )


def downgrade() -> None:
    op.drop_table("riskengine_catalogue")
