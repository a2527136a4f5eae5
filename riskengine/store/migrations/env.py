"""Alembic environment of the store: runs on the connection riskengine hands it (no alembic.ini)."""

from __future__ import annotations

from alembic import context

from riskengine.store import migrate  # noqa: F401  (registers Alembic's DuckDB implementation)
from riskengine.store.schema import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "riskengine's migrations run through `riskengine db init|upgrade` or "
        "riskengine.store.migrate, which hand Alembic a connection"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
