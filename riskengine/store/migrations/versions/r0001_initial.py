"""The store's first schema: declarations, items, outcomes, controls, runs, registry, ingest.

Catalogue columns other than ``declaration.id`` and ``declaration.date`` are not created here:
the catalogue sync that follows every upgrade adds them (see ``riskengine.store.migrate``), so
this revision produces the same tables whatever the catalogue.

Revision ID: r0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "r0001"
down_revision = None
branch_labels = None
depends_on = None


def _text() -> sa.types.TypeEngine[Any]:
    return sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def _pk() -> sa.Column[int]:
    return sa.Column("pk", sa.BigInteger, primary_key=True, autoincrement=False)


def upgrade() -> None:
    op.create_table(
        "ingest_files",
        _pk(),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("head_sha256", sa.String(64), nullable=False),
        sa.Column("mapping_sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("rows_committed", sa.BigInteger, nullable=False),
        sa.Column("rows_rejected", sa.BigInteger, nullable=False),
        sa.Column("records_added", sa.BigInteger, nullable=False),
        sa.Column("records_skipped", sa.BigInteger, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.PrimaryKeyConstraint("pk", name="pk_ingest_files"),
    )
    op.create_table(
        "ingest_batches",
        _pk(),
        sa.Column("file_pk", sa.BigInteger, nullable=False),
        sa.Column("batch_no", sa.Integer, nullable=False),
        sa.Column("first_row", sa.BigInteger, nullable=False),
        sa.Column("last_row", sa.BigInteger, nullable=False),
        sa.Column("rows_rejected", sa.BigInteger, nullable=False),
        sa.Column("records_added", sa.BigInteger, nullable=False),
        sa.Column("committed_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_ingest_batches"),
        sa.ForeignKeyConstraint(["file_pk"], ["ingest_files.pk"], name="fk_ingest_batches_file_pk"),
    )
    op.create_table(
        "declarations",
        _pk(),
        sa.Column("id", _text(), nullable=False, comment="declaration.id"),
        sa.Column("date", sa.Date, nullable=False, comment="declaration.date"),
        sa.Column("ingest_batch", sa.BigInteger),
        sa.PrimaryKeyConstraint("pk", name="pk_declarations"),
        sa.UniqueConstraint("id", name="uq_declarations_id"),
        comment="Declaration headers: one column per catalogue header field.",
    )
    op.create_table(
        "items",
        sa.Column("decl_pk", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("item_no", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("ingest_batch", sa.BigInteger),
        sa.PrimaryKeyConstraint("decl_pk", "item_no", name="pk_items"),
        sa.ForeignKeyConstraint(["decl_pk"], ["declarations.pk"], name="fk_items_decl_pk"),
        comment="Goods items: one column per catalogue item field; item_no counts from 1.",
    )
    op.create_table(
        "clearance_outcomes",
        sa.Column("decl_pk", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("completed", sa.Boolean, nullable=False),
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("ingest_batch", sa.BigInteger),
        sa.PrimaryKeyConstraint("decl_pk", name="pk_clearance_outcomes"),
        sa.ForeignKeyConstraint(
            ["decl_pk"], ["declarations.pk"], name="fk_clearance_outcomes_decl_pk"
        ),
        comment="How each clearance ended: completed, or not (reasons in outcome_reasons).",
    )
    op.create_table(
        "outcome_reasons",
        sa.Column("decl_pk", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("reason_code", sa.String(8), nullable=False),
        sa.PrimaryKeyConstraint("decl_pk", "reason_code", name="pk_outcome_reasons"),
        sa.ForeignKeyConstraint(
            ["decl_pk"], ["clearance_outcomes.decl_pk"], name="fk_outcome_reasons_decl_pk"
        ),
        comment="Non-completion reasons, appendix 3 codes ('0201'); several per outcome.",
    )
    op.create_table(
        "control_results",
        _pk(),
        sa.Column("decl_pk", sa.BigInteger, nullable=False),
        sa.Column("procedure", sa.String(16), nullable=False),
        sa.Column("profile_key", sa.Text),
        sa.Column("random_control", sa.Boolean, nullable=False),
        sa.Column("violation_found", sa.Boolean, nullable=False),
        sa.Column("revenue", sa.Numeric(18, 2)),
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("ingest_batch", sa.BigInteger),
        sa.PrimaryKeyConstraint("pk", name="pk_control_results"),
        sa.ForeignKeyConstraint(
            ["decl_pk"], ["declarations.pk"], name="fk_control_results_decl_pk"
        ),
        sa.UniqueConstraint("decl_pk", "procedure", "date", name="uq_control_results_natural"),
        comment="Controls carried out: which procedure, ordered by which profile (or at random).",
    )
    op.create_table(
        "backtest_runs",
        _pk(),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("engine", sa.String(40), nullable=False),
        sa.Column("parameters", sa.JSON),
        sa.Column("profile_hashes", sa.JSON),
        sa.Column("results", sa.JSON),
        sa.PrimaryKeyConstraint("pk", name="pk_backtest_runs"),
    )
    op.create_table(
        "scoring_results",
        _pk(),
        sa.Column("run_pk", sa.BigInteger),
        sa.Column("decl_pk", sa.BigInteger, nullable=False),
        sa.Column("profile_key", sa.Text, nullable=False),
        sa.Column("profile_sha256", sa.String(64)),
        sa.Column("degree", sa.Double, nullable=False),
        sa.Column("items", sa.JSON),
        sa.Column("controls", sa.JSON),
        sa.Column("scored_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_scoring_results"),
        sa.ForeignKeyConstraint(["run_pk"], ["backtest_runs.pk"], name="fk_scoring_results_run_pk"),
        sa.ForeignKeyConstraint(
            ["decl_pk"], ["declarations.pk"], name="fk_scoring_results_decl_pk"
        ),
    )
    op.create_table(
        "profiles",
        _pk(),
        sa.Column("base_number", sa.Text),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_profiles"),
        sa.UniqueConstraint("base_number", name="uq_profiles_base_number"),
        comment="Profile registry (later): one row per profile, editions in profile_editions.",
    )
    op.create_table(
        "profile_editions",
        _pk(),
        sa.Column("profile_pk", sa.BigInteger, nullable=False),
        sa.Column("edition", sa.Integer),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_profile_editions"),
        sa.ForeignKeyConstraint(
            ["profile_pk"], ["profiles.pk"], name="fk_profile_editions_profile_pk"
        ),
        sa.UniqueConstraint("profile_pk", "sha256", name="uq_profile_editions_source"),
    )
    op.create_table(
        "audit_log",
        _pk(),
        sa.Column("logged_at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("object", sa.Text),
        sa.Column("details", sa.JSON),
        sa.PrimaryKeyConstraint("pk", name="pk_audit_log"),
        comment="Append-only audit log of the registry (later).",
    )
    op.create_index("ix_declarations_date", "declarations", ["date"])
    op.create_index("ix_clearance_outcomes_date", "clearance_outcomes", ["date"])
    op.create_index("ix_control_results_decl_pk", "control_results", ["decl_pk"])
    op.create_index("ix_control_results_date", "control_results", ["date"])
    op.create_index("ix_scoring_results_run_pk", "scoring_results", ["run_pk"])


def downgrade() -> None:
    for table in (
        "audit_log",
        "profile_editions",
        "profiles",
        "scoring_results",
        "backtest_runs",
        "control_results",
        "outcome_reasons",
        "clearance_outcomes",
        "items",
        "declarations",
        "ingest_batches",
        "ingest_files",
    ):
        op.drop_table(table)
