"""The registry's tables (revision r0003): profiles, submissions with their evidence, editions,
commission decisions, technical clarifications, suspensions, regional fills, the audit log;
(revision r0004) the members with their roles; (revision r0010) the effectiveness reviews.
r0004 also adds the retention triggers and, on PostgreSQL, the roles, grants and row-level
security (see that revision); r0010 the same for the reviews.

Together these rows are a profile's case file (seed 003 §7). Approved texts are kept verbatim
with their SHA-256; the database refuses to change them (triggers on SQLite and PostgreSQL, see
:data:`SQLITE_TRIGGERS` and :data:`POSTGRESQL_TRIGGERS`). The audit log is append-only and
hash-chained (``riskengine.registry.audit``).

Dates and texts the registry decides on are columns; lists of persons are JSON text written by
the registry (sorted keys, no spaces), so their hash is the same on every backend.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "POSTGRESQL_TRIGGERS",
    "POSTGRESQL_UNTRIGGERS",
    "REGISTRY_TABLES",
    "SQLITE_TRIGGERS",
    "SQLITE_UNTRIGGERS",
    "registry_tables",
]

#: The registry's tables in creation order (foreign keys point backwards).
REGISTRY_TABLES: tuple[str, ...] = (
    "profiles",
    "profile_submissions",
    "commission_decisions",
    "profile_editions",
    "profile_clarifications",
    "profile_suspensions",
    "regional_fills",
    "audit_log",
    "registry_members",
    "profile_reviews",
)


def _key() -> sa.Column[int]:
    return sa.Column("pk", sa.BigInteger, primary_key=True, autoincrement=False)


def _sha(name: str, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(64), nullable=nullable)


def _recorded() -> list[sa.Column[object]]:
    return [
        sa.Column("recorded_at", sa.DateTime, nullable=False),
        sa.Column("recorded_by", sa.Text, nullable=False),
    ]


def registry_tables(md: sa.MetaData, *, foreign_keys: bool = True) -> dict[str, sa.Table]:
    """Define the registry's tables in ``md`` (which must already hold ``backtest_runs``).

    ``foreign_keys=False`` leaves the references out: DuckDB refuses to UPDATE any column of a
    row another table references, and registry rows (a profile's status, an edition's end) are
    updated, so on DuckDB the registry keeps its references itself."""

    def ref(target: str) -> list[sa.ForeignKey]:
        return [sa.ForeignKey(target)] if foreign_keys else []

    profiles = sa.Table(
        "profiles",
        md,
        _key(),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("sequence", sa.Integer, unique=True),
        sa.Column("base_number", sa.Text, unique=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("terminated_on", sa.Date),
        *_recorded(),
        comment="Registry: one row per profile; sequence (ZZZZZ) and base number once approved; "
        "status submitted | returned | approved | terminated.",
    )
    submissions = sa.Table(
        "profile_submissions",
        md,
        _key(),
        sa.Column("profile_pk", sa.BigInteger, *ref("profiles.pk"), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        _sha("sha256"),
        _sha("profile_sha256"),
        sa.Column("check_summary", sa.Text, nullable=False),
        sa.Column("tests_text", sa.Text, nullable=False),
        sa.Column("tests_passed", sa.Integer, nullable=False),
        sa.Column("tests_failed", sa.Integer, nullable=False),
        sa.Column("coverage", sa.Double, nullable=False),
        sa.Column("backtest_run_pk", sa.BigInteger, *ref("backtest_runs.pk"), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        *_recorded(),
        comment="A text submitted to the commission (new profile or amendment) with its "
        "evidence: the check, the unit-test run and coverage, the backtest run; status pending | "
        "approved | returned.",
    )
    decisions = sa.Table(
        "commission_decisions",
        md,
        _key(),
        sa.Column("profile_pk", sa.BigInteger, *ref("profiles.pk"), nullable=False),
        sa.Column("submission_pk", sa.BigInteger, *ref("profile_submissions.pk")),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("number", sa.Text, nullable=False),
        sa.Column("decided_on", sa.Date, nullable=False),
        *_recorded(),
        comment="The expert commission's decisions: approve | return | amend | terminate, with "
        "the decision's number and date.",
    )
    editions = sa.Table(
        "profile_editions",
        md,
        _key(),
        sa.Column("profile_pk", sa.BigInteger, *ref("profiles.pk"), nullable=False),
        sa.Column("edition", sa.Integer, nullable=False),
        sa.Column("number", sa.Text, nullable=False, unique=True),
        sa.Column(
            "submission_pk",
            sa.BigInteger,
            *ref("profile_submissions.pk"),
            nullable=False,
        ),
        sa.Column("decision_pk", sa.BigInteger, *ref("commission_decisions.pk"), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        _sha("sha256"),
        sa.Column("approved_on", sa.Date, nullable=False),
        sa.Column("in_force_from", sa.Date, nullable=False),
        sa.Column("in_force_to", sa.Date),
        sa.Column("withdrawn", sa.Boolean, nullable=False),
        *_recorded(),
        sa.UniqueConstraint("profile_pk", "edition", name="uq_profile_editions_edition"),
        comment="Approved editions (VV): the approved text as approved, never changed (its "
        "SHA-256 beside it); in force from .. to (inclusive, to NULL = open); withdrawn when a "
        "termination came before it took effect.",
    )
    clarifications = sa.Table(
        "profile_clarifications",
        md,
        _key(),
        sa.Column("edition_pk", sa.BigInteger, *ref("profile_editions.pk"), nullable=False),
        sa.Column("ground", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        _sha("before_sha256"),
        sa.Column("text", sa.Text, nullable=False),
        _sha("sha256"),
        sa.Column("changed", sa.Text, nullable=False),
        *_recorded(),
        comment="Technical clarifications of an edition's passport (§10.2): the clarified text; "
        "the latest one is the edition's current text, the approved text stays as it was.",
    )
    suspensions = sa.Table(
        "profile_suspensions",
        md,
        _key(),
        sa.Column("profile_pk", sa.BigInteger, *ref("profiles.pk"), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("effective_on", sa.Date, nullable=False),
        sa.Column("ground", sa.String(20)),
        sa.Column("reason", sa.Text, nullable=False),
        *_recorded(),
        comment="Suspensions (with their §10.3 ground) and resumptions by the risk unit, in "
        "order; a profile is suspended on a day when its latest event by then is a suspension.",
    )
    fills = sa.Table(
        "regional_fills",
        md,
        _key(),
        sa.Column("profile_pk", sa.BigInteger, *ref("profiles.pk"), nullable=False),
        sa.Column("edition_pk", sa.BigInteger, *ref("profile_editions.pk"), nullable=False),
        sa.Column("office", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        _sha("sha256"),
        sa.Column("order_number", sa.Text, nullable=False),
        sa.Column("order_date", sa.Date, nullable=False),
        sa.Column("valid_from", sa.Date, nullable=False),
        sa.Column("valid_to", sa.Date, nullable=False),
        sa.Column("responsible", sa.Text, nullable=False),
        sa.Column("viewers", sa.Text, nullable=False),
        sa.Column("entered_on", sa.Date, nullable=False),
        sa.Column("late", sa.Boolean, nullable=False),
        *_recorded(),
        comment="A regional office's fill with its order (§11.1-11.4): the responsible persons "
        "and viewers as JSON lists; late when entered more than 2 working days after the order.",
    )
    audit_log = sa.Table(
        "audit_log",
        md,
        _key(),
        sa.Column("logged_at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("object", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        _sha("hash_before", nullable=True),
        _sha("hash_after", nullable=True),
        _sha("prev_hash"),
        _sha("entry_hash"),
        comment="Append-only, hash-chained audit log of the registry: UPDATE and DELETE are "
        "refused by triggers (SQLite, PostgreSQL).",
    )
    members = sa.Table(
        "registry_members",
        md,
        _key(),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("role", sa.String(30), nullable=False),
        sa.Column("office", sa.String(16)),
        *_recorded(),
        comment="Who has which registry role (revision r0004): the actor as the log records it "
        "(db:LOGIN, os:USER), the role, the office of an office filler or viewer. On SQLite and "
        "DuckDB it decides the rights (no rows: the single local user may do everything); on "
        "PostgreSQL the database roles riskengine_* decide and this table maps logins to offices.",
    )
    reviews = sa.Table(
        "profile_reviews",
        md,
        _key(),
        sa.Column("profile_pk", sa.BigInteger, *ref("profiles.pk"), nullable=False),
        sa.Column("office", sa.String(16)),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("decided_on", sa.Date, nullable=False),
        sa.Column("next_review", sa.Date),
        sa.Column("minutes", sa.Text, nullable=False),
        *_recorded(),
        comment="Effectiveness reviews (revision r0010): the commission's decision after the "
        "risk unit's review (seed 003 9.4-9.5; office NULL) or a regional office's quarterly "
        "monitoring of its fills (11.5; office set): keep | widen | narrow | amend | terminate, "
        "the decision's date, the next review's date, the minutes.",
    )
    sa.Index("ix_profile_submissions_profile_pk", submissions.c.profile_pk)
    sa.Index("ix_profile_reviews_profile_pk", reviews.c.profile_pk)
    sa.Index("ix_profile_editions_profile_pk", editions.c.profile_pk)
    sa.Index("ix_regional_fills_profile_pk", fills.c.profile_pk)
    return {
        t.name: t
        for t in (
            profiles,
            submissions,
            decisions,
            editions,
            clarifications,
            suspensions,
            fills,
            audit_log,
            members,
            reviews,
        )
    }


#: SQLite triggers: the log is append-only, approved texts never change, editions stay.
SQLITE_TRIGGERS: tuple[str, ...] = (
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END",
    "CREATE TRIGGER profile_editions_text_fixed BEFORE UPDATE OF text, sha256, number, edition "
    "ON profile_editions "
    "BEGIN SELECT RAISE(ABORT, 'an approved edition''s text and number never change'); END",
    "CREATE TRIGGER profile_editions_no_delete BEFORE DELETE ON profile_editions "
    "BEGIN SELECT RAISE(ABORT, 'an approved edition is never deleted'); END",
)
SQLITE_UNTRIGGERS: tuple[str, ...] = (
    "DROP TRIGGER IF EXISTS audit_log_no_update",
    "DROP TRIGGER IF EXISTS audit_log_no_delete",
    "DROP TRIGGER IF EXISTS profile_editions_text_fixed",
    "DROP TRIGGER IF EXISTS profile_editions_no_delete",
)

#: PostgreSQL triggers (they fire for every role, the table owner's included; TRUNCATE too).
POSTGRESQL_TRIGGERS: tuple[str, ...] = (
    "CREATE FUNCTION riskengine_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "RAISE EXCEPTION '% refused on %: %', TG_OP, TG_TABLE_NAME, TG_ARGV[0] "
    "USING ERRCODE = '42501'; END $$",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION riskengine_refuse('the audit log is append-only')",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION riskengine_refuse('the audit log is append-only')",
    "CREATE TRIGGER profile_editions_text_fixed BEFORE UPDATE OF text, sha256, number, edition "
    "ON profile_editions FOR EACH ROW "
    "EXECUTE FUNCTION riskengine_refuse('an approved edition''s text and number never change')",
    "CREATE TRIGGER profile_editions_no_delete BEFORE DELETE ON profile_editions "
    "FOR EACH ROW EXECUTE FUNCTION riskengine_refuse('an approved edition is never deleted')",
)
POSTGRESQL_UNTRIGGERS: tuple[str, ...] = (
    "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
    "DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
    "DROP TRIGGER IF EXISTS profile_editions_text_fixed ON profile_editions",
    "DROP TRIGGER IF EXISTS profile_editions_no_delete ON profile_editions",
    "DROP FUNCTION IF EXISTS riskengine_refuse()",
)
