"""The profile registry: profiles, submissions with evidence, commission decisions, editions,
clarifications, suspensions, regional fills, and the hash-chained append-only audit log.

r0001 created empty placeholders ``profiles``, ``profile_editions`` and ``audit_log`` that nothing
ever wrote; this revision drops them (refusing if one holds rows) and creates the registry's
tables as :func:`riskengine.store.registry_schema.registry_tables` defines them. On SQLite and
PostgreSQL, triggers refuse UPDATE/DELETE on the audit log and any change of an approved
edition's text or number. DuckDB has no triggers (the chain's ``verify`` still detects edits)
and the registry's tables get no foreign keys there (DuckDB refuses an UPDATE of any column of a
referenced row).

The tables are built from ``registry_schema`` as it is at this revision: a later change to those
tables needs its own revision, and this one must then keep a frozen copy of today's definition.

Revision ID: r0003
Revises: r0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from riskengine.store.registry_schema import (
    POSTGRESQL_TRIGGERS,
    POSTGRESQL_UNTRIGGERS,
    REGISTRY_TABLES,
    SQLITE_TRIGGERS,
    SQLITE_UNTRIGGERS,
    registry_tables,
)
from riskengine.store.schema import NAMING_CONVENTION

revision = "r0003"
down_revision = "r0002"
branch_labels = None
depends_on = None

_PLACEHOLDERS = ("audit_log", "profile_editions", "profiles")


def _metadata(foreign_keys: bool) -> dict[str, sa.Table]:
    md = sa.MetaData(naming_convention=dict(NAMING_CONVENTION))
    sa.Table("backtest_runs", md, sa.Column("pk", sa.BigInteger, primary_key=True))
    return registry_tables(md, foreign_keys=foreign_keys)


def upgrade() -> None:
    bind = op.get_bind()
    for name in _PLACEHOLDERS:
        rows = bind.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar_one()
        if rows:
            raise RuntimeError(
                f"table {name} holds {rows} rows: r0003 replaces the empty placeholder tables of "
                "r0001 and will not drop data; move the rows away first"
            )
        op.drop_table(name)
    tables = _metadata(foreign_keys=bind.dialect.name != "duckdb")
    for name in REGISTRY_TABLES:
        tables[name].create(bind)
    if bind.dialect.name == "sqlite":
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)
    elif bind.dialect.name == "postgresql":
        for statement in POSTGRESQL_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    untriggers = {"sqlite": SQLITE_UNTRIGGERS, "postgresql": POSTGRESQL_UNTRIGGERS}
    for statement in untriggers.get(bind.dialect.name, ()):
        op.execute(statement)
    for name in reversed(REGISTRY_TABLES):
        op.drop_table(name)
    op.create_table(
        "profiles",
        sa.Column("pk", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("base_number", sa.Text),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_profiles"),
        sa.UniqueConstraint("base_number", name="uq_profiles_base_number"),
        comment="Profile registry (later): one row per profile, editions in profile_editions.",
    )
    op.create_table(
        "profile_editions",
        sa.Column("pk", sa.BigInteger, primary_key=True, autoincrement=False),
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
        sa.Column("pk", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("logged_at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("object", sa.Text),
        sa.Column("details", sa.JSON),
        sa.PrimaryKeyConstraint("pk", name="pk_audit_log"),
        comment="Append-only audit log of the registry (later).",
    )
