"""Effectiveness reviews: the table ``profile_reviews`` (seed 003 §9.4-9.5, §11.5).

One row per review decision: the commission's decision on a profile after the risk unit's
effectiveness review (``office`` NULL; keep, widen, narrow, amend or terminate, with the next
review's date), or a regional office's quarterly monitoring of its fills (``office`` set). The
rows are part of the profile's case file, so they get what r0004 gave the other case-file tables:

* SQLite and PostgreSQL: the retention trigger (a DELETE only after the profile's retention
  period and its ``purge`` log entry; PostgreSQL refuses TRUNCATE too);
* PostgreSQL: owned by ``riskengine_owner``; SELECT for every registry role, INSERT for
  ``secretary`` (the commission's decisions) and ``office_filler`` (its own office's
  monitoring), DELETE for ``risk_unit_head`` (purge; the trigger decides when); the recorded
  actor must be the login; row-level security: a row with an office only by a login that is that
  office's filler, a row without one only by a member of ``riskengine_secretary``. SELECT on
  ``decision_log`` (r0007, which got no grants) for ``risk_unit_head`` and ``secretary``: the
  review queue reads the firings from it.

A frozen copy of the table as :mod:`riskengine.store.registry_schema` defines it at this revision.

Revision ID: r0010
Revises: r0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0010"
down_revision = "r0009"
branch_labels = None
depends_on = None

TABLE = "profile_reviews"
OWNER = "riskengine_owner"
EVERYONE = (
    "analyst",
    "risk_unit_head",
    "secretary",
    "office_filler",
    "office_viewer",
    "deployer",
    "auditor",
)
_KEPT = (
    "a case file is kept while the profile is in force and 3 years after its end (seed 003 "
    "§7.3-7.4), and deleted only by riskengine registry purge"
)


def _columns(foreign_keys: bool) -> list[sa.Column[object]]:
    ref = (
        [sa.ForeignKey("profiles.pk", name="fk_profile_reviews_profile_pk")] if foreign_keys else []
    )
    return [
        sa.Column("pk", sa.BigInteger, autoincrement=False, nullable=False),
        sa.Column("profile_pk", sa.BigInteger, *ref, nullable=False),
        sa.Column("office", sa.String(16)),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("decided_on", sa.Date, nullable=False),
        sa.Column("next_review", sa.Date),
        sa.Column("minutes", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.DateTime, nullable=False),
        sa.Column("recorded_by", sa.Text, nullable=False),
    ]


def _sqlite_trigger() -> str:
    pk = "OLD.profile_pk"
    purgeable = (
        f"EXISTS (SELECT 1 FROM profiles p WHERE p.pk = {pk} AND p.status = 'terminated' "
        "AND p.terminated_on IS NOT NULL AND date(p.terminated_on, '+3 years') < date('now')) "
        "AND EXISTS (SELECT 1 FROM audit_log a WHERE a.action = 'purge' "
        f"AND a.object = 'profile/' || {pk})"
    )
    return (
        f"CREATE TRIGGER {TABLE}_retention BEFORE DELETE ON {TABLE} WHEN NOT ({purgeable}) "
        f"BEGIN SELECT RAISE(ABORT, 'DELETE refused on {TABLE}: {_KEPT}'); END"
    )


def _pg_upgrade() -> None:
    everyone = ", ".join(f"riskengine_{r}" for r in EVERYONE)
    op.execute(
        f"CREATE TRIGGER {TABLE}_actor BEFORE INSERT ON {TABLE} "
        "FOR EACH ROW EXECUTE FUNCTION riskengine_actor('recorded_by')"
    )
    op.execute(
        f"CREATE TRIGGER {TABLE}_retention BEFORE DELETE ON {TABLE} "
        "FOR EACH ROW EXECUTE FUNCTION riskengine_retention()"
    )
    op.execute(
        f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} FOR EACH STATEMENT "
        f"EXECUTE FUNCTION riskengine_refuse('{_KEPT}')"
    )
    op.execute(f"GRANT SELECT ON {TABLE} TO {everyone}")
    op.execute(f"GRANT INSERT ON {TABLE} TO riskengine_secretary, riskengine_office_filler")
    op.execute(f"GRANT DELETE ON {TABLE} TO riskengine_risk_unit_head")
    op.execute("GRANT SELECT ON decision_log TO riskengine_risk_unit_head, riskengine_secretary")
    op.execute(f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY")
    allowed = (
        "(office IS NULL AND pg_has_role(current_user, 'riskengine_secretary', 'MEMBER')) OR "
        "(office IS NOT NULL AND EXISTS (SELECT 1 FROM registry_members m "
        "WHERE m.actor = 'db:' || current_user AND m.role = 'office_filler' "
        f"AND m.office = {TABLE}.office))"
    )
    op.execute(f"CREATE POLICY reviews_read ON {TABLE} FOR SELECT USING (true)")
    op.execute(f"CREATE POLICY reviews_insert ON {TABLE} FOR INSERT WITH CHECK ({allowed})")
    op.execute(f"CREATE POLICY reviews_purge ON {TABLE} FOR DELETE USING (true)")
    op.execute(f"ALTER TABLE {TABLE} OWNER TO {OWNER}")


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        TABLE,
        *_columns(foreign_keys=bind.dialect.name != "duckdb"),
        sa.PrimaryKeyConstraint("pk", name=f"pk_{TABLE}"),
        comment="Effectiveness reviews (revision r0010): the commission's decision after the "
        "risk unit's review (seed 003 9.4-9.5; office NULL) or a regional office's quarterly "
        "monitoring of its fills (11.5; office set): keep | widen | narrow | amend | terminate, "
        "the decision's date, the next review's date, the minutes.",
    )
    op.create_index(f"ix_{TABLE}_profile_pk", TABLE, ["profile_pk"])
    if bind.dialect.name == "sqlite":
        op.execute(_sqlite_trigger())
    elif bind.dialect.name == "postgresql":
        _pg_upgrade()


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_retention")
    elif bind.dialect.name == "postgresql":
        op.execute(
            "REVOKE SELECT ON decision_log FROM riskengine_risk_unit_head, riskengine_secretary"
        )
    op.drop_index(f"ix_{TABLE}_profile_pk", TABLE)
    op.drop_table(TABLE)
