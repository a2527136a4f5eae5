"""Administering the registry: members and their roles (grant, revoke), and the retention purge.

**Retention** (seed 003 §7.3-7.4): a case file is kept while the profile is in force and at least
3 years after it ends. A profile's force ends with the commission's termination (its last day);
an approved profile whose period ran out is not ended until the commission terminates it (it can
still be amended), and a profile never approved is kept. :func:`purge` deletes a terminated
profile's case file once 3 years have passed since its last day, after appending the log entry
that records it (the case file's hash, the approved texts' hashes, the rows deleted). The
database refuses any other DELETE of case-file rows (revision r0004's triggers on SQLite and
PostgreSQL): the profile must be terminated 3 years ago and the log must hold its purge entry.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from riskengine.registry.access import PG_ROLE_PREFIX, actor_name, check_role
from riskengine.registry.access import members as member_rows
from riskengine.registry.audit import append
from riskengine.registry.base import action, insert, profile_row
from riskengine.registry.evidence import RegistryError
from riskengine.registry.state import object_key, table

__all__ = ["RETENTION_YEARS", "grant", "kept_until", "purge", "revoke", "today"]

#: Years a case file is kept after the profile's force ends (§7.3-7.4).
RETENTION_YEARS = 3


def today() -> dt.date:
    """The current date in UTC (as SQLite's ``date('now')`` sees it)."""
    return dt.datetime.now(dt.UTC).date()


def kept_until(last_day: dt.date) -> dt.date:
    """The last day a case file must be kept: 3 years after the profile's last day (29 February
    plus 3 years is 1 March, as SQLite counts it)."""
    try:
        return last_day.replace(year=last_day.year + RETENTION_YEARS)
    except ValueError:
        return dt.date(last_day.year + RETENTION_YEARS, 3, 1)


def _quoted(connection: sa.Connection, name: str) -> str:
    return str(connection.dialect.identifier_preparer.quote_identifier(name))


def _pg_run(connection: sa.Connection, statement: str) -> None:
    """A GRANT or REVOKE of a group role; the database's refusal (no such login, no right to
    grant the role) as a :class:`RegistryError` (the transaction is rolled back)."""
    try:
        connection.execute(sa.text(statement))
    except sa.exc.DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        raise RegistryError(f"PostgreSQL refused `{statement}`: {reason}") from None


def grant(
    store: sa.Engine, login: str, role: str, *, office: str | None = None, actor: str | None = None
) -> str:
    """Give ``login`` the registry role ``role`` (for ``office``); returns the member's actor
    name. On PostgreSQL also ``GRANT riskengine_<role> TO login`` (the login must exist; the
    administrator needs the right to grant roles). The first member of a SQLite or DuckDB
    store must be an ``admin``."""
    check_role(role, office)
    with action(store, "grant", actor) as act:
        c = act.connection
        who = actor_name(c, login)
        act.object = f"member/{who}"
        postgresql = c.dialect.name == "postgresql"
        if postgresql and role == "admin":
            raise RegistryError(
                "on PostgreSQL the registry's administrator is a database role that may create "
                "roles and owns riskengine_owner's tables; it is made with SQL, not granted here"
            )
        existing = member_rows(c)
        if not existing and role != "admin" and not postgresql:
            raise RegistryError(
                "the first member must be an admin (otherwise nobody could grant the next "
                f"role): `riskengine registry grant {act.actor.removeprefix('os:')} admin` first"
            )
        if any(x.actor == who and x.role == role and x.office == office for x in existing):
            place = f" for {office}" if office else ""
            raise RegistryError(f"{who} already has the role {role}{place}")
        if postgresql:
            _pg_run(c, f"GRANT {PG_ROLE_PREFIX}{role} TO {_quoted(c, who.removeprefix('db:'))}")
        insert(c, "registry_members", act, actor=who, role=role, office=office)
        act.details = {"member": who, "role": role, "office": office}
    return who


def revoke(
    store: sa.Engine, login: str, role: str, *, office: str | None = None, actor: str | None = None
) -> str:
    """Take the role ``role`` (for ``office``) from ``login``; returns the member's actor name.
    Refused when it would leave a SQLite or DuckDB store with members but no admin."""
    check_role(role, office)
    t = table("registry_members")
    with action(store, "revoke", actor) as act:
        c = act.connection
        who = actor_name(c, login)
        act.object = f"member/{who}"
        existing = member_rows(c)
        if not any(x.actor == who and x.role == role and x.office == office for x in existing):
            place = f" for {office}" if office else ""
            raise RegistryError(f"{who} does not have the role {role}{place}")
        rest = [
            x for x in existing if not (x.actor == who and x.role == role and x.office == office)
        ]
        if c.dialect.name != "postgresql" and rest and not any(x.role == "admin" for x in rest):
            raise RegistryError(
                f"{who} is the last admin: revoking it would leave nobody able to grant roles "
                "(grant admin to someone else first, or revoke every other role first)"
            )
        same = t.c.office.is_(None) if office is None else t.c.office == office
        c.execute(sa.delete(t).where(t.c.actor == who, t.c.role == role, same))
        if c.dialect.name == "postgresql" and not any(
            x.actor == who and x.role == role for x in rest
        ):
            _pg_run(c, f"REVOKE {PG_ROLE_PREFIX}{role} FROM {_quoted(c, who.removeprefix('db:'))}")
        act.details = {"member": who, "role": role, "office": office}
    return who


#: The case-file tables in the order a purge deletes them (references point backwards).
_PURGE_ORDER = (
    "profile_reviews",
    "profile_clarifications",
    "regional_fills",
    "profile_suspensions",
    "profile_editions",
    "commission_decisions",
    "profile_submissions",
    "profiles",
)


def _where(name: str, profile_pk: int) -> Any:
    t = table(name)
    if name == "profiles":
        return t.c.pk == profile_pk
    if name == "profile_clarifications":
        eds = table("profile_editions")
        return t.c.edition_pk.in_(sa.select(eds.c.pk).where(eds.c.profile_pk == profile_pk))
    return t.c.profile_pk == profile_pk


def purge(store: sa.Engine, number: str, *, actor: str | None = None) -> dict[str, Any]:
    """Delete the case file of the terminated profile ``number`` once its retention period has
    passed (more than 3 years after its last day); returns the log entry's details.

    The log entry comes first (the database refuses the deletions without it): the case file's
    hash before (``hash_before``; ``hash_after`` is empty), the approved texts' hashes, the rows
    deleted by table. The log's earlier entries of the profile stay."""
    with action(store, "purge", actor) as act:
        c = act.connection
        p = profile_row(c, number)
        if p.status != "terminated" or p.terminated_on is None:
            raise RegistryError(
                f"{p.base_number} is {p.status}: a case file is kept while the profile is in "
                f"force and {RETENTION_YEARS} years after its end (§7.3-7.4); only a terminated "
                "profile's case file can be purged"
            )
        until = kept_until(p.terminated_on)
        if today() <= until:
            raise RegistryError(
                f"{p.base_number} ended on {p.terminated_on}: its case file is kept until {until} "
                f"({RETENTION_YEARS} years after its end, §7.3-7.4); purge refused"
            )
        act.profile_pk = p.pk
        eds = table("profile_editions")
        texts = {
            str(n): str(h)
            for n, h in c.execute(
                sa.select(eds.c.number, eds.c.sha256)
                .where(eds.c.profile_pk == p.pk)
                .order_by(eds.c.edition)
            )
        }
        rows = {
            name: int(
                c.execute(
                    sa.select(sa.func.count()).select_from(table(name)).where(_where(name, p.pk))
                ).scalar_one()
            )
            for name in _PURGE_ORDER
        }
        if not rows["profile_reviews"]:  # r0010's table, listed when it held rows (the log's
            del rows["profile_reviews"]  # entries of earlier purges keep their form)
        last_keys = {
            name: c.execute(
                sa.select(sa.func.max(table(name).c.pk)).where(_where(name, p.pk))
            ).scalar()
            for name in _PURGE_ORDER
        }
        details: dict[str, Any] = {
            "number": p.base_number,
            "name": p.name,
            "last_day": p.terminated_on.isoformat(),
            "kept_until": until.isoformat(),
            "editions": texts,
            "rows": rows,
            "last_keys": {k: int(v) for k, v in last_keys.items() if v is not None},
        }
        append(
            c,
            actor=act.actor,
            action="purge",
            obj=object_key(p.pk),
            details=details,
            hash_before=act.before,
            hash_after=None,
            at=act.at,
        )
        act.logged = True
        for name in _PURGE_ORDER:
            c.execute(sa.delete(table(name)).where(_where(name, p.pk)))
    return details
