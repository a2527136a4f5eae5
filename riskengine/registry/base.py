"""What every registry action shares: the transaction with its audit entry, keys, look-ups."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import sqlalchemy as sa

from riskengine.registry.access import require
from riskengine.registry.audit import append, current_actor, now
from riskengine.registry.evidence import RegistryError
from riskengine.registry.state import object_key, profile_state, table
from riskengine.store.engine import database_errors
from riskengine.store.migrate import ensure_schema

__all__ = [
    "Action",
    "ProfileRow",
    "action",
    "insert",
    "next_key",
    "one",
    "profile_row",
    "working_days_after",
]


class Action:
    """An action under way: its connection, who acts, when, and the log entry's details.

    Setting :attr:`profile_pk` (before the action writes anything of that profile) records the
    case file's state before the action."""

    def __init__(self, connection: sa.Connection, actor: str, at: dt.datetime) -> None:
        self.connection = connection
        self.actor = actor
        self.at = at
        self.details: dict[str, Any] = {}
        self.before: str | None = None
        self._profile_pk: int | None = None
        #: The log object of an action on no profile (``member/ACTOR``).
        self.object: str | None = None
        #: Set by an action that appended its own log entry (purge logs before it deletes).
        self.logged = False

    @property
    def profile_pk(self) -> int | None:
        return self._profile_pk

    @profile_pk.setter
    def profile_pk(self, pk: int) -> None:
        if self._profile_pk is None:
            self.before = profile_state(self.connection, pk)
        self._profile_pk = pk


@contextmanager
def _concurrent(name: str) -> Iterator[None]:
    """Two actions at once may both take the same new key or number; the database's unique
    constraints refuse the second, which is reported as such (nothing of it was written)."""
    try:
        yield
    except sa.exc.IntegrityError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        raise RegistryError(
            f"{name} refused by the database ({reason}): another registry action ran at the "
            "same time; nothing was written, try again"
        ) from None


@contextmanager
def action(store: sa.Engine, name: str, actor: str | None) -> Iterator[Action]:
    """One registry action in one transaction: the caller sets ``profile_pk`` and ``details``;
    on success the log entry with the case file's state before and after is appended in the
    same transaction, on any error nothing is written.

    First of all the actor's right to ``name`` is checked (:func:`~riskengine.registry.access.
    require`): a refusal names the actor, the role needed and the action."""
    with _concurrent(name), database_errors(store), store.begin() as connection:
        who = actor or current_actor(connection)
        if connection.dialect.name == "postgresql":  # the login's rights decide what it sees
            _same_login(connection, who)
            require(connection, who, name)
            ensure_schema(connection)
        else:  # the rights are rows of the store
            ensure_schema(connection)
            require(connection, who, name)
        act = Action(connection, who, now())
        yield act
        if act.logged:
            return
        if act.object is not None:
            append(
                connection,
                actor=who,
                action=name,
                obj=act.object,
                details=act.details,
                hash_before=None,
                hash_after=None,
                at=act.at,
            )
            return
        if act.profile_pk is None:  # pragma: no cover - every action names its profile
            raise RegistryError(f"{name}: no profile")
        append(
            connection,
            actor=who,
            action=name,
            obj=object_key(act.profile_pk),
            details=act.details,
            hash_before=act.before,
            hash_after=profile_state(connection, act.profile_pk),
            at=act.at,
        )


def _same_login(connection: sa.Connection, actor: str) -> None:
    """On PostgreSQL the actor is the login: naming another is refused (the database's triggers
    would refuse the rows), except to a superuser."""
    login = current_actor(connection)
    if actor == login:
        return
    superuser = connection.execute(sa.text("SELECT current_setting('is_superuser')")).scalar()
    if superuser != "on":
        raise RegistryError(
            f"on PostgreSQL the actor is the database login {login}: actor={actor!r} is refused"
        )


def next_key(connection: sa.Connection, name: str) -> int:
    """``max(pk) + 1`` of a registry table, inside the writing transaction; a purged key is
    never given again (the log keeps naming it: each purge entry records the highest key it
    deleted of each table)."""
    t = table(name)
    top = int(connection.execute(sa.select(sa.func.max(t.c.pk))).scalar() or 0)
    log = table("audit_log")
    for details in connection.execute(
        sa.select(log.c.details).where(log.c.action == "purge")
    ).scalars():
        top = max(top, int(json.loads(details).get("last_keys", {}).get(name) or 0))
    return top + 1


def insert(connection: sa.Connection, table_name: str, act: Action, **values: Any) -> int:
    """Insert one row with a new key and the action's time and actor; returns the key."""
    pk = next_key(connection, table_name)
    row = {"pk": pk, "recorded_at": act.at, "recorded_by": act.actor, **values}
    connection.execute(sa.insert(table(table_name)), row)
    return pk


@attrs.frozen
class ProfileRow:
    pk: int
    name: str
    sequence: int | None
    base_number: str | None
    status: str
    terminated_on: dt.date | None


def profile_row(connection: sa.Connection, number: str) -> ProfileRow:
    """The registry profile a number names (``WW/XX/YYYY/ZZZZZ`` or with ``-VV``)."""
    base = number.strip().rsplit("-", 1)[0] if number.count("-") else number.strip()
    t = table("profiles")
    row = connection.execute(
        sa.select(
            t.c.pk, t.c.name, t.c.sequence, t.c.base_number, t.c.status, t.c.terminated_on
        ).where(t.c.base_number == base)
    ).first()
    if row is None:
        gone = purged(connection, base)
        if gone is not None:
            raise RegistryError(gone)
        raise RegistryError(f"the registry has no approved profile {number}")
    return ProfileRow(*row)


def purged(connection: sa.Connection, base_number: str) -> str | None:
    """How a purged profile is reported: its purge's log entry (None if not purged)."""
    log = table("audit_log")
    for pk, at, details in connection.execute(
        sa.select(log.c.pk, log.c.logged_at, log.c.details)
        .where(log.c.action == "purge")
        .order_by(log.c.pk)
    ):
        if f'"number":"{base_number}"' in details:
            return (
                f"the case file of {base_number} was purged on {at:%Y-%m-%d} after its "
                f"retention period (log entry {pk}); the log keeps its entries"
            )
    return None


def one(connection: sa.Connection, query: sa.Select[Any], missing: Callable[[], str]) -> Any:
    """The first row of ``query`` or a :class:`RegistryError` with ``missing()``."""
    row = connection.execute(query).first()
    if row is None:
        raise RegistryError(missing())
    return row


def working_days_after(day: dt.date, days: int) -> dt.date:
    """The date ``days`` working days (Monday to Friday) after ``day``; public holidays are not
    known to riskengine and count as working days."""
    out = day
    while days:
        out += dt.timedelta(days=1)
        if out.weekday() < 5:
            days -= 1
    return out
