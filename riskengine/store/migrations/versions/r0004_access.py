"""Access rights and retention of the registry (seed 003 §2.3.2, §7.3-7.4, §11.1).

Every backend: the table ``registry_members`` (actor, role, office).

Retention, SQLite and PostgreSQL: triggers refuse a DELETE of any case-file row (profiles,
submissions, decisions, editions, clarifications, suspensions, fills) unless the profile was
terminated more than 3 years ago (its ``terminated_on`` + 3 years before today) **and** the
audit log holds its ``purge`` entry (``riskengine registry purge`` appends it before deleting);
they replace r0003's ``profile_editions_no_delete``. PostgreSQL also refuses TRUNCATE of them.
DuckDB has no triggers: there only the registry's own check holds.

PostgreSQL only:

* NOLOGIN group roles ``riskengine_analyst``, ``riskengine_risk_unit_head``,
  ``riskengine_secretary``, ``riskengine_office_filler``, ``riskengine_office_viewer``,
  ``riskengine_deployer``, ``riskengine_auditor`` and the owner ``riskengine_owner``, created if
  missing (roles are cluster-wide: another schema or database may have made them already);
* the registry's tables, its trigger functions and ``registry_members`` are owned by
  ``riskengine_owner`` (NOLOGIN), so no application role owns them: none can disable the
  triggers or row-level security or change the grants;
* grants per table and role (:data:`GRANTS`); nobody is granted UPDATE or DELETE on
  ``audit_log`` and its triggers refuse both to every role, the owner's included;
* a row's recorded actor (``audit_log.actor``, ``recorded_by``) must be the login writing it
  (``db:`` + ``current_user``; a superuser may record another name);
* row-level security on ``regional_fills``: INSERT and UPDATE only of a row whose office is one
  of the login's offices in ``registry_members`` (role ``office_filler``); SELECT of every row
  (every registry action hashes the profile's whole case file); DELETE left to the retention
  trigger.

Running this revision on PostgreSQL needs a role that may create roles and change owners (a
superuser, in practice). The downgrade gives the tables back to the migrating role and drops
what it added, except the roles (they may serve other schemas; drop them by hand).

Revision ID: r0004
Revises: r0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0004"
down_revision = "r0003"
branch_labels = None
depends_on = None

#: Case-file tables and how a row names its profile (clarifications through their edition).
CASE_FILE = {
    "profiles": "OLD.pk",
    "profile_submissions": "OLD.profile_pk",
    "commission_decisions": "OLD.profile_pk",
    "profile_editions": "OLD.profile_pk",
    "profile_clarifications": (
        "(SELECT e.profile_pk FROM profile_editions e WHERE e.pk = OLD.edition_pk)"
    ),
    "profile_suspensions": "OLD.profile_pk",
    "regional_fills": "OLD.profile_pk",
}

ROLES = (
    "analyst",
    "risk_unit_head",
    "secretary",
    "office_filler",
    "office_viewer",
    "deployer",
    "auditor",
)
OWNER = "riskengine_owner"
REGISTRY = (
    "profiles",
    "profile_submissions",
    "commission_decisions",
    "profile_editions",
    "profile_clarifications",
    "profile_suspensions",
    "regional_fills",
    "audit_log",
    "registry_members",
)

#: (privileges, tables, roles) granted on PostgreSQL; SELECT on the version and catalogue tables
#: and on the registry's tables (but the log) goes to every role.
GRANTS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "SELECT",
        ("audit_log",),
        ("risk_unit_head", "secretary", "office_filler", "deployer", "auditor"),
    ),
    ("INSERT", ("audit_log",), ("risk_unit_head", "secretary", "office_filler")),
    ("INSERT, UPDATE", ("profiles", "profile_submissions"), ("risk_unit_head",)),
    ("INSERT", ("profile_clarifications", "profile_suspensions"), ("risk_unit_head",)),
    ("DELETE", REGISTRY[:7], ("risk_unit_head",)),  # purge; the triggers decide when
    ("SELECT", ("backtest_runs",), ("risk_unit_head",)),
    ("UPDATE", ("profiles", "profile_submissions", "profile_editions"), ("secretary",)),
    ("INSERT", ("commission_decisions", "profile_editions"), ("secretary",)),
    ("INSERT", ("regional_fills",), ("office_filler",)),
    ("INSERT, UPDATE", ("backtest_runs", "scoring_results"), ("analyst",)),
)

_MEMBERS = sa.Table(
    "registry_members",
    sa.MetaData(naming_convention={"pk": "pk_%(table_name)s"}),
    sa.Column("pk", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("role", sa.String(30), nullable=False),
    sa.Column("office", sa.String(16)),
    sa.Column("recorded_at", sa.DateTime, nullable=False),
    sa.Column("recorded_by", sa.Text, nullable=False),
    comment="Who has which registry role (revision r0004): the actor as the log records it "
    "(db:LOGIN, os:USER), the role, the office of an office filler or viewer. On SQLite and "
    "DuckDB it decides the rights (no rows: the single local user may do everything); on "
    "PostgreSQL the database roles riskengine_* decide and this table maps logins to offices.",
)

_KEPT = (
    "a case file is kept while the profile is in force and 3 years after its end (seed 003 "
    "§7.3-7.4), and deleted only by riskengine registry purge"
)


def _sqlite_purgeable(pk: str) -> str:
    return (
        f"EXISTS (SELECT 1 FROM profiles p WHERE p.pk = {pk} AND p.status = 'terminated' "
        "AND p.terminated_on IS NOT NULL AND date(p.terminated_on, '+3 years') < date('now')) "
        "AND EXISTS (SELECT 1 FROM audit_log a WHERE a.action = 'purge' "
        f"AND a.object = 'profile/' || {pk})"
    )


def _sqlite_triggers() -> list[str]:
    return [
        f"CREATE TRIGGER {name}_retention BEFORE DELETE ON {name} "
        f"WHEN NOT ({_sqlite_purgeable(pk)}) "
        f"BEGIN SELECT RAISE(ABORT, 'DELETE refused on {name}: {_KEPT}'); END"
        for name, pk in CASE_FILE.items()
    ]


_PG_RETENTION = f"""
CREATE FUNCTION riskengine_retention() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    profile bigint;
    ended boolean;
BEGIN
    IF TG_TABLE_NAME = 'profiles' THEN
        profile := OLD.pk;
    ELSIF TG_TABLE_NAME = 'profile_clarifications' THEN
        SELECT e.profile_pk INTO profile FROM profile_editions e
        WHERE e.pk = (to_jsonb(OLD) ->> 'edition_pk')::bigint;
    ELSE
        profile := (to_jsonb(OLD) ->> 'profile_pk')::bigint;
    END IF;
    SELECT p.status = 'terminated' AND p.terminated_on IS NOT NULL
           AND p.terminated_on + interval '3 years' < current_date
      INTO ended FROM profiles p WHERE p.pk = profile;
    IF ended IS NOT TRUE OR NOT EXISTS (
        SELECT 1 FROM audit_log a WHERE a.action = 'purge' AND a.object = 'profile/' || profile
    ) THEN
        RAISE EXCEPTION 'DELETE refused on % (profile/%): {_KEPT}', TG_TABLE_NAME, profile
            USING ERRCODE = '42501';
    END IF;
    RETURN OLD;
END $$
"""

#: PostgreSQL: a row's recorded actor is the login writing it (a superuser may name another).
_PG_ACTOR = """
CREATE FUNCTION riskengine_actor() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF to_jsonb(NEW) ->> TG_ARGV[0] IS DISTINCT FROM 'db:' || current_user
       AND current_setting('is_superuser') <> 'on' THEN
        RAISE EXCEPTION 'INSERT refused on %: % is %, but the login is db:%',
            TG_TABLE_NAME, TG_ARGV[0], to_jsonb(NEW) ->> TG_ARGV[0], current_user
            USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
END $$
"""

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


def _pg_upgrade() -> None:
    everyone = ", ".join(f"riskengine_{r}" for r in ROLES)
    for name in (OWNER, *(f"riskengine_{r}" for r in ROLES)):
        op.execute(_PG_ROLE.format(name=name))
    op.execute(
        "DO $$ BEGIN IF NOT pg_has_role(current_user, 'riskengine_owner', 'MEMBER') THEN "
        "GRANT riskengine_owner TO CURRENT_USER; END IF; END $$"
    )
    op.execute("DROP TRIGGER IF EXISTS profile_editions_no_delete ON profile_editions")
    op.execute(_PG_RETENTION)
    op.execute(_PG_ACTOR)
    for name in REGISTRY:
        column = "actor" if name == "audit_log" else "recorded_by"
        op.execute(
            f"CREATE TRIGGER {name}_actor BEFORE INSERT ON {name} "
            f"FOR EACH ROW EXECUTE FUNCTION riskengine_actor('{column}')"
        )
    for name in CASE_FILE:
        op.execute(
            f"CREATE TRIGGER {name}_retention BEFORE DELETE ON {name} "
            "FOR EACH ROW EXECUTE FUNCTION riskengine_retention()"
        )
        op.execute(
            f"CREATE TRIGGER {name}_no_truncate BEFORE TRUNCATE ON {name} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION riskengine_refuse('{_KEPT}')"
        )
    op.execute(
        "DO $$ BEGIN EXECUTE format('GRANT USAGE ON SCHEMA %I TO "
        + everyone
        + "', current_schema()); END $$"
    )
    op.execute(
        "DO $$ BEGIN EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO riskengine_owner', "
        "current_schema()); END $$"
    )
    op.execute(
        "DO $$ BEGIN EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO "
        "riskengine_analyst', current_schema()); END $$"
    )
    op.execute("REVOKE SELECT ON audit_log FROM riskengine_analyst")
    shared = ("riskengine_schema_version", "riskengine_catalogue", *REGISTRY)
    for name in shared:
        if name != "audit_log":
            op.execute(f"GRANT SELECT ON {name} TO {everyone}")
    for privileges, tables, roles in GRANTS:
        op.execute(
            f"GRANT {privileges} ON {', '.join(tables)} TO "
            + ", ".join(f"riskengine_{r}" for r in roles)
        )
    op.execute("ALTER TABLE regional_fills ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE regional_fills FORCE ROW LEVEL SECURITY")
    own_office = (
        "EXISTS (SELECT 1 FROM registry_members m WHERE m.actor = 'db:' || current_user "
        "AND m.role = 'office_filler' AND m.office = regional_fills.office)"
    )
    op.execute("CREATE POLICY fills_read ON regional_fills FOR SELECT USING (true)")
    op.execute(
        f"CREATE POLICY fills_own_office ON regional_fills FOR INSERT WITH CHECK ({own_office})"
    )
    op.execute(
        f"CREATE POLICY fills_own_office_update ON regional_fills FOR UPDATE "
        f"USING ({own_office}) WITH CHECK ({own_office})"
    )
    op.execute("CREATE POLICY fills_purge ON regional_fills FOR DELETE USING (true)")
    for name in REGISTRY:
        op.execute(f"ALTER TABLE {name} OWNER TO {OWNER}")
    op.execute(f"ALTER FUNCTION riskengine_refuse() OWNER TO {OWNER}")
    op.execute(f"ALTER FUNCTION riskengine_retention() OWNER TO {OWNER}")
    op.execute(f"ALTER FUNCTION riskengine_actor() OWNER TO {OWNER}")


def _pg_downgrade() -> None:
    everyone = ", ".join(f"riskengine_{r}" for r in ROLES)
    for name in REGISTRY:
        op.execute(f"ALTER TABLE {name} OWNER TO CURRENT_USER")
    op.execute("ALTER FUNCTION riskengine_refuse() OWNER TO CURRENT_USER")
    for policy in ("fills_read", "fills_own_office", "fills_own_office_update", "fills_purge"):
        op.execute(f"DROP POLICY IF EXISTS {policy} ON regional_fills")
    op.execute("ALTER TABLE regional_fills NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE regional_fills DISABLE ROW LEVEL SECURITY")
    op.execute(
        "DO $$ BEGIN EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM "
        + everyone
        + "', current_schema()); "
        "EXECUTE format('REVOKE ALL ON SCHEMA %I FROM " + everyone + ", riskengine_owner', "
        "current_schema()); "
        "END $$"
    )
    for name in CASE_FILE:
        op.execute(f"DROP TRIGGER IF EXISTS {name}_retention ON {name}")
        op.execute(f"DROP TRIGGER IF EXISTS {name}_no_truncate ON {name}")
    op.execute("DROP FUNCTION IF EXISTS riskengine_retention()")
    for name in REGISTRY:
        op.execute(f"DROP TRIGGER IF EXISTS {name}_actor ON {name}")
    op.execute("DROP FUNCTION IF EXISTS riskengine_actor()")
    op.execute(
        "CREATE TRIGGER profile_editions_no_delete BEFORE DELETE ON profile_editions "
        "FOR EACH ROW EXECUTE FUNCTION riskengine_refuse('an approved edition is never deleted')"
    )


def upgrade() -> None:
    bind = op.get_bind()
    _MEMBERS.create(bind)
    if bind.dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS profile_editions_no_delete")
        for statement in _sqlite_triggers():
            op.execute(statement)
    elif bind.dialect.name == "postgresql":
        _pg_upgrade()


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in CASE_FILE:
            op.execute(f"DROP TRIGGER IF EXISTS {name}_retention")
        op.execute(
            "CREATE TRIGGER profile_editions_no_delete BEFORE DELETE ON profile_editions "
            "BEGIN SELECT RAISE(ABORT, 'an approved edition is never deleted'); END"
        )
    elif bind.dialect.name == "postgresql":
        _pg_downgrade()
    op.drop_table("registry_members")
