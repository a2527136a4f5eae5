"""A profile's case file as one hash: every registry row of the profile, in order.

The audit log records this hash before and after every action (``hash_before``/``hash_after``),
so a row changed outside the registry, or a removed last log entry, shows as a case file that is
not in the state its last entry recorded (:func:`riskengine.registry.audit.verify`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import sqlalchemy as sa

from riskengine.registry.audit import canonical_json, sha256_text
from riskengine.store.schema import TABLES

__all__ = ["object_key", "profile_state", "profile_states", "table"]


def table(name: str) -> sa.Table:
    """A registry table of the built-in catalogue's metadata."""
    return TABLES.metadata.tables[name]


def object_key(profile_pk: int) -> str:
    """How the log names a profile: its registry key, fixed before a number exists."""
    return f"profile/{profile_pk}"


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat(timespec="microseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return repr(value)
    return value


#: Tables holding a profile's rows directly (``profile_pk``), and clarifications via editions.
_DIRECT = (
    "profile_submissions",
    "commission_decisions",
    "profile_editions",
    "profile_suspensions",
    "regional_fills",
    "profile_reviews",
)


def _rows(connection: sa.Connection, profile_pk: int | None) -> dict[int, dict[str, Any]]:
    files: dict[int, dict[str, Any]] = defaultdict(lambda: defaultdict(list))
    profiles = table("profiles")
    query = sa.select(*profiles.c).order_by(profiles.c.pk)
    if profile_pk is not None:
        query = query.where(profiles.c.pk == profile_pk)
    for row in connection.execute(query):
        files[int(row.pk)]["profiles"].append({k: _plain(v) for k, v in row._mapping.items()})
    for name in _DIRECT:
        t = table(name)
        query = sa.select(*t.c).order_by(t.c.pk)
        if profile_pk is not None:
            query = query.where(t.c.profile_pk == profile_pk)
        for row in connection.execute(query):
            files[int(row.profile_pk)][name].append({k: _plain(v) for k, v in row._mapping.items()})
    clar, ed = table("profile_clarifications"), table("profile_editions")
    query = (
        sa.select(ed.c.profile_pk, *clar.c)
        .join(ed, ed.c.pk == clar.c.edition_pk)
        .order_by(clar.c.pk)
    )
    if profile_pk is not None:
        query = query.where(ed.c.profile_pk == profile_pk)
    for row in connection.execute(query):
        values = dict(row._mapping)
        owner = int(values.pop("profile_pk"))
        files[owner]["profile_clarifications"].append({k: _plain(v) for k, v in values.items()})
    return files


def profile_state(connection: sa.Connection, profile_pk: int) -> str | None:
    """The hash of one profile's case file (None when the profile does not exist yet)."""
    files = _rows(connection, profile_pk)
    found = files.get(profile_pk)
    return None if found is None else sha256_text(canonical_json(found))


def profile_states(connection: sa.Connection) -> dict[str, str]:
    """The case-file hash of every profile, by its log object key."""
    return {
        object_key(pk): sha256_text(canonical_json(rows))
        for pk, rows in _rows(connection, None).items()
    }
