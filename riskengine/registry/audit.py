"""The registry's audit log: append-only, hash-chained, verified entry by entry.

Each entry's hash is the SHA-256 of its canonical JSON form: its key, time, actor, action,
object, details, the object's state hash before and after the action, and the previous entry's
hash (:data:`GENESIS` for the first). Changing, removing or reordering an entry breaks the chain
at that entry, and :func:`verify` names it. Removing the *last* entries leaves a valid chain:
:func:`verify` catches that by comparing each profile's current case-file state with the state
hash its last entry recorded (see ``riskengine.registry.state``).
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import sqlalchemy as sa

from riskengine.store.schema import TABLES

__all__ = ["GENESIS", "AuditEntry", "Verification", "append", "canonical_json", "entries", "verify"]

#: The previous-entry hash of the first entry.
GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the same bytes for the same value everywhere."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@attrs.frozen
class AuditEntry:
    """One entry of the log as stored."""

    pk: int
    logged_at: dt.datetime
    actor: str
    action: str
    object: str
    details: str
    hash_before: str | None
    hash_after: str | None
    prev_hash: str
    entry_hash: str

    def computed_hash(self) -> str:
        """The hash this entry's content gives (equal to ``entry_hash`` unless edited)."""
        return entry_hash(
            self.pk,
            self.logged_at,
            self.actor,
            self.action,
            self.object,
            self.details,
            self.hash_before,
            self.hash_after,
            self.prev_hash,
        )


def entry_hash(
    pk: int,
    logged_at: dt.datetime,
    actor: str,
    action: str,
    obj: str,
    details: str,
    hash_before: str | None,
    hash_after: str | None,
    prev_hash: str,
) -> str:
    """The SHA-256 of an entry's canonical form."""
    content = [
        pk,
        logged_at.replace(tzinfo=None).isoformat(timespec="microseconds"),
        actor,
        action,
        obj,
        details,
        hash_before,
        hash_after,
        prev_hash,
    ]
    return sha256_text(canonical_json(content))


def os_actor() -> str:
    """The operating-system user, as recorded on SQLite and DuckDB (not authenticated)."""
    try:
        return "os:" + getpass.getuser()
    except Exception:  # no user name in this environment
        return "os:unknown"


def current_actor(connection: sa.Connection) -> str:
    """Who acts: the database login on PostgreSQL (``db:NAME``, authenticated by the server),
    the operating-system user elsewhere (``os:NAME``, recorded, not authenticated)."""
    if connection.dialect.name == "postgresql":
        user = connection.execute(sa.text("SELECT current_user")).scalar_one()
        return f"db:{user}"
    return os_actor()


def now() -> dt.datetime:
    """The current UTC time without time zone, to the microsecond (how the log stores it)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def append(
    connection: sa.Connection,
    *,
    actor: str,
    action: str,
    obj: str,
    details: Mapping[str, Any],
    hash_before: str | None,
    hash_after: str | None,
    at: dt.datetime | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction (all-or-nothing with the action)."""
    log = TABLES.audit_log
    last = connection.execute(
        sa.select(log.c.pk, log.c.entry_hash).order_by(log.c.pk.desc()).limit(1)
    ).first()
    pk = 1 if last is None else int(last.pk) + 1
    prev = GENESIS if last is None else str(last.entry_hash)
    logged_at = at or now()
    text = canonical_json(dict(details))
    digest = entry_hash(pk, logged_at, actor, action, obj, text, hash_before, hash_after, prev)
    row = {
        "pk": pk,
        "logged_at": logged_at,
        "actor": actor,
        "action": action,
        "object": obj,
        "details": text,
        "hash_before": hash_before,
        "hash_after": hash_after,
        "prev_hash": prev,
        "entry_hash": digest,
    }
    connection.execute(sa.insert(log), row)
    return AuditEntry(**row)  # type: ignore[arg-type]


def entries(connection: sa.Connection, obj: str | None = None) -> list[AuditEntry]:
    """The log in order (of one object when ``obj`` is given)."""
    log = TABLES.audit_log
    query = sa.select(*log.c).order_by(log.c.pk)
    if obj is not None:
        query = query.where(log.c.object == obj)
    return [AuditEntry(**row._mapping) for row in connection.execute(query)]


@attrs.frozen
class Verification:
    """The result of :func:`verify`: ``problem`` is None when the chain holds; else it names the
    first entry found wrong (``entry``: its key, or the key where one is missing)."""

    entries: int
    problem: str | None = None
    entry: int | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_chain(log: Sequence[AuditEntry]) -> Verification:
    """Walk the chain: keys 1, 2, 3, … each entry's hash matches its content and its
    predecessor's hash. The first failure is named."""
    prev = GENESIS
    expected = 1
    for entry in log:
        if entry.pk != expected:
            if entry.pk > expected:
                return Verification(
                    len(log),
                    f"entry {expected} is missing: the log goes from entry {expected - 1} to "
                    f"entry {entry.pk} (removed)",
                    expected,
                )
            return Verification(len(log), f"entry {entry.pk} appears twice", entry.pk)
        if entry.computed_hash() != entry.entry_hash:
            return Verification(
                len(log),
                f"entry {entry.pk} ({entry.action} {entry.object}) was edited: its content no "
                "longer matches its hash",
                entry.pk,
            )
        if entry.prev_hash != prev:
            return Verification(
                len(log),
                f"entry {entry.pk} ({entry.action} {entry.object}) does not follow entry "
                f"{entry.pk - 1}: the chain was reordered or rewritten there",
                entry.pk,
            )
        prev = entry.entry_hash
        expected += 1
    return Verification(len(log))


def verify(connection: sa.Connection) -> Verification:
    """Verify the hash chain and that every profile's case file is in the state its last log
    entry recorded (which detects removed last entries and changes made around the registry)."""
    from riskengine.registry.state import profile_states

    log = entries(connection)
    result = verify_chain(log)
    if not result.ok:
        return result
    last: dict[str, AuditEntry] = {}
    for entry in log:
        last[entry.object] = entry
    states = profile_states(connection)
    for key, state in states.items():
        found = last.get(key)
        if found is None:
            return Verification(
                len(log), f"profile {key} is in the registry but no log entry records it", None
            )
        if found.hash_after != state:
            return Verification(
                len(log),
                f"the case file of {key} is not in the state entry {found.pk} "
                f"({found.action}) recorded: it was changed outside the registry, or the "
                "entries after it were removed",
                found.pk,
            )
    return result
