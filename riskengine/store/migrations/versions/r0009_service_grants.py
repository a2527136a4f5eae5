"""Grants for the tables added after r0004, and the scoring service's role (PostgreSQL only).

Revision r0004 granted rights on the tables that existed then; ``decision_log`` (r0007) and
``release_times`` (r0008) belong to the migrating role and nobody else had rights on them. On
PostgreSQL this revision adds:

* the NOLOGIN group role ``riskengine_service``, created if missing (roles are cluster-wide;
  two migrations creating it at once are harmless), for the login of a production scoring
  service or replica (``riskengine serve``, or an application scoring with
  ``StoreHistoryProvider`` and ``DecisionLog``). It may use the schema; read what scoring with
  history reads — the version and catalogue tables, ``declarations``, ``items``,
  ``clearance_outcomes``, ``outcome_reasons``, ``control_results``; and INSERT into
  ``decision_log``, nothing else: the log's writer inserts with ``ON CONFLICT DO NOTHING``
  (COPY goes into a temporary table of the session first), so it needs neither UPDATE nor
  DELETE nor SELECT on the log. ``LISTEN riskengine_history`` needs no grant. It is not a
  registry role: it reads no registry table and writes none;
* SELECT on ``decision_log`` for ``riskengine_analyst`` (who reads every table but the audit
  log), ``riskengine_risk_unit_head`` (monitors the profiles in force) and
  ``riskengine_auditor`` (audits what was decided); nobody but the service may insert, and
  nobody is granted UPDATE or DELETE;
* SELECT on ``release_times`` for ``riskengine_analyst`` (the release-time KPI). It is written
  by the ingest with the clearance outcomes, as the migrating role that owns every data table:
  no group role writes data tables, so nothing is granted for writing.

SQLite and DuckDB: nothing (they have no roles). The downgrade revokes these grants and leaves
the role (it may serve other schemas; drop it by hand).

Revision ID: r0009
Revises: r0008
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "r0009"
down_revision = "r0008"
branch_labels = None
depends_on = None

SERVICE = "riskengine_service"

#: What a scoring service reads: the version and catalogue tables and the history tables.
SERVICE_READS = (
    "riskengine_schema_version",
    "riskengine_catalogue",
    "declarations",
    "items",
    "clearance_outcomes",
    "outcome_reasons",
    "control_results",
)

#: (privileges, table, roles) granted on PostgreSQL by this revision.
GRANTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("INSERT", "decision_log", (SERVICE,)),
    (
        "SELECT",
        "decision_log",
        ("riskengine_analyst", "riskengine_risk_unit_head", "riskengine_auditor"),
    ),
    ("SELECT", "release_times", ("riskengine_analyst",)),
)

_PG_ROLE = """
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{name}') THEN
        BEGIN
            CREATE ROLE {name} NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created by a migration running at the same time
        END;
    END IF;
END $$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_PG_ROLE.format(name=SERVICE))
    op.execute(
        "DO $$ BEGIN EXECUTE format('GRANT USAGE ON SCHEMA %I TO "
        + SERVICE
        + "', current_schema()); END $$"
    )
    op.execute(f"GRANT SELECT ON {', '.join(SERVICE_READS)} TO {SERVICE}")
    for privileges, table, roles in GRANTS:
        op.execute(f"GRANT {privileges} ON {table} TO {', '.join(roles)}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for _, table, roles in GRANTS:
        op.execute(f"REVOKE ALL ON {table} FROM {', '.join(roles)}")
    op.execute(f"REVOKE ALL ON {', '.join(SERVICE_READS)} FROM {SERVICE}")
    op.execute(
        "DO $$ BEGIN EXECUTE format('REVOKE ALL ON SCHEMA %I FROM "
        + SERVICE
        + "', current_schema()); END $$"
    )
