"""History at production speed (issue 13): indexes for the single lookup, and change notices.

A single history lookup (``riskengine.store.history.online``) reads one subject's events dated
in ``[as_of - N days, as_of)``. The subject is a column of ``declarations`` (or ``items``), the
event's date a column of ``clearance_outcomes`` / ``control_results``, so the lookup takes two
index ranges:

* the subject's declaration keys from ``(subject, pk)`` (``(hs_code, decl_pk)`` on items), in
  the index alone: this revision replaces the single-column subject indexes of the catalogue
  sync by these (same leading column: every query that used the old one can use the new);
* each key's events of the window from ``(decl_pk, completed, date)`` on ``clearance_outcomes``
  and ``(decl_pk, violation_found, date)`` on ``control_results`` (replacing
  ``ix_control_results_decl_pk``), again without reading a row that does not count.

On PostgreSQL, statement-level triggers on ``clearance_outcomes``, ``outcome_reasons`` and
``control_results`` send ``NOTIFY riskengine_history`` with ``schema:decl_pk,decl_pk,...`` (or
``schema:*`` when the keys do not fit in a notification) when rows are inserted, updated or
deleted, whoever writes them (riskengine's writer, ``COPY``, another tool). Notifications are
delivered at commit, so a service replica's history cache (``LISTEN riskengine_history``) drops
exactly the subjects a committed write touched. SQLite is one process: the writer's own hook
does it there (docs/store.md). DuckDB has no triggers and no notifications.

A store initialised before this revision gets the new indexes for the subject columns it has;
on a fresh store those columns (and their indexes) come from the catalogue sync that follows.

Revision ID: r0005
Revises: r0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "r0005"
down_revision = "r0004"
branch_labels = None
depends_on = None

# ---- frozen copy of what this revision creates

#: (table, subject column, key column) of the built-in subject fields.
SUBJECT_INDEXES: tuple[tuple[str, str, str], ...] = (
    ("declarations", "declarant_id", "pk"),
    ("declarations", "importer_id", "pk"),
    ("items", "hs_code", "decl_pk"),
)
EVENT_INDEXES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "ix_clearance_outcomes_decl_pk_completed_date",
        "clearance_outcomes",
        ("decl_pk", "completed", "date"),
    ),
    (
        "ix_control_results_decl_pk_violation_found_date",
        "control_results",
        ("decl_pk", "violation_found", "date"),
    ),
)
NOTIFIED_TABLES: tuple[str, ...] = ("clearance_outcomes", "outcome_reasons", "control_results")
CHANNEL = "riskengine_history"

#: The notice: ``schema:pk,pk,...`` of the rows a statement changed, ``schema:*`` when the keys
#: would not fit in a notification's payload (8,000 bytes).
POSTGRESQL_FUNCTION = (
    "CREATE FUNCTION riskengine_history_notify() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "DECLARE keys text; BEGIN "
    "SELECT string_agg(DISTINCT decl_pk::text, ',') INTO keys FROM changed; "
    "IF keys IS NULL THEN RETURN NULL; END IF; "
    "IF length(keys) > 7000 THEN keys := '*'; END IF; "
    f"PERFORM pg_notify('{CHANNEL}', TG_TABLE_SCHEMA || ':' || keys); "
    "RETURN NULL; END $$"
)


def _postgresql_triggers() -> list[str]:
    statements = [POSTGRESQL_FUNCTION]
    for table in NOTIFIED_TABLES:
        for event, transition in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
            statements.append(
                f"CREATE TRIGGER {table}_history_{event.lower()} AFTER {event} ON {table} "
                f"REFERENCING {transition} TABLE AS changed FOR EACH STATEMENT "
                "EXECUTE FUNCTION riskengine_history_notify()"
            )
    return statements


def _postgresql_untriggers() -> list[str]:
    statements = [
        f"DROP TRIGGER IF EXISTS {table}_history_{event} ON {table}"
        for table in NOTIFIED_TABLES
        for event in ("insert", "update", "delete")
    ]
    return [*statements, "DROP FUNCTION IF EXISTS riskengine_history_notify()"]


# ---- end of the frozen copy


def _indexes(table: str) -> set[str]:
    from riskengine.store import reflect

    return reflect.index_names(op.get_bind(), table)


def _columns(table: str) -> set[str]:
    from riskengine.store import reflect

    return set(reflect.columns(op.get_bind(), table))


def upgrade() -> None:
    bind = op.get_bind()
    for table, column, key in SUBJECT_INDEXES:
        if column not in _columns(table):
            continue  # a fresh store: the catalogue sync adds the column and this index
        present = _indexes(table)
        if f"ix_{table}_{column}" in present:
            op.drop_index(f"ix_{table}_{column}", table_name=table)
        if f"ix_{table}_{column}_{key}" not in present:
            op.create_index(f"ix_{table}_{column}_{key}", table, [column, key])
    for name, table, columns in EVENT_INDEXES:
        op.create_index(name, table, list(columns))
    op.drop_index("ix_control_results_decl_pk", table_name="control_results")
    if bind.dialect.name == "postgresql":
        for statement in _postgresql_triggers():
            op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for statement in _postgresql_untriggers():
            op.execute(statement)
    op.create_index("ix_control_results_decl_pk", "control_results", ["decl_pk"])
    for name, table, _ in EVENT_INDEXES:
        op.drop_index(name, table_name=table)
    for table, column, key in SUBJECT_INDEXES:
        if column not in _columns(table):
            continue
        present = _indexes(table)
        if f"ix_{table}_{column}_{key}" in present:
            op.drop_index(f"ix_{table}_{column}_{key}", table_name=table)
        if f"ix_{table}_{column}" not in present:
            op.create_index(f"ix_{table}_{column}", table, [column])
