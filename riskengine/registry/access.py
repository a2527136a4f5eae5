"""Access rights (seed 003 §2.3.2, §7.4, §11.1): which role may do which registry action.

One question, :func:`require`: *may ACTOR do ACTION (for OFFICE)?* Every registry action asks it
inside its transaction before it writes; a refusal is a :class:`RegistryError` naming the actor,
the role needed and the action, and nothing is written.

Where the answer comes from:

* **PostgreSQL** — the database login (authenticated by the server) and its membership of the
  group roles ``riskengine_<role>`` created by revision r0004; an office filler's offices are
  rows of ``registry_members``. The database enforces the same rules itself (grants, row-level
  security on ``regional_fills``), so going around riskengine with ``psql`` is stopped too. A
  superuser bypasses grants and row-level security in PostgreSQL, so riskengine lets it act too.
* **SQLite and DuckDB** — ``registry_members`` rows (actor → role, office). The actor is the
  operating-system user, recorded and **not authenticated**. With no member rows the single local
  user may do everything; the first ``grant`` must make someone ``admin``.
"""

from __future__ import annotations

import re

import attrs
import sqlalchemy as sa

from riskengine.registry.evidence import RegistryError
from riskengine.registry.state import table

__all__ = [
    "PG_ROLE_PREFIX",
    "RIGHTS",
    "ROLES",
    "Member",
    "actor_name",
    "members",
    "require",
    "roles_of",
]

#: The registry's roles and what each may do.
ROLES: dict[str, str] = {
    "analyst": "drafts, unit tests and backtests (no registry action)",
    "risk_unit_head": "submit, clarify, suspend, resume, purge",
    "secretary": "approve, return, amend, terminate, review (the commission's decisions)",
    "office_filler": "fill and monitor, for the member's own office only",
    "office_viewer": "reads an office's fills",
    "deployer": "bundles of the approved set",
    "auditor": "reads and verifies the audit log (log, verify)",
    "admin": "grant and revoke roles",
}

#: The role each registry action needs.
RIGHTS: dict[str, str] = {
    "submit": "risk_unit_head",
    "clarify": "risk_unit_head",
    "suspend": "risk_unit_head",
    "resume": "risk_unit_head",
    "purge": "risk_unit_head",
    "approve": "secretary",
    "return": "secretary",
    "amend": "secretary",
    "terminate": "secretary",
    "review": "secretary",
    "fill": "office_filler",
    "monitor": "office_filler",
    "bundle": "deployer",
    "log": "auditor",
    "verify": "auditor",
    "grant": "admin",
    "revoke": "admin",
}

#: Roles held for one office (a member row names the office).
OFFICE_ROLES = frozenset({"office_filler", "office_viewer"})

#: The PostgreSQL group role of a registry role: ``riskengine_<role>``.
PG_ROLE_PREFIX = "riskengine_"

_LOGIN = re.compile(r"[A-Za-z_][A-Za-z0-9_$.@-]{0,62}")
_OFFICE = re.compile(r"[A-Za-z0-9_.-]{1,16}")


@attrs.frozen
class Member:
    actor: str
    role: str
    office: str | None


def actor_name(connection: sa.Connection, login: str) -> str:
    """The actor a login names on this backend: ``db:LOGIN`` on PostgreSQL, ``os:USER``
    elsewhere (a prefix already given must be that backend's)."""
    prefix = "db:" if connection.dialect.name == "postgresql" else "os:"
    name = login.strip()
    if name[:3] in ("db:", "os:"):
        if name[:3] != prefix:
            raise RegistryError(
                f"{name}: on {connection.dialect.name} an actor is {prefix}NAME "
                f"({'the database login' if prefix == 'db:' else 'the operating-system user'})"
            )
        name = name[3:]
    if not _LOGIN.fullmatch(name):
        raise RegistryError(f"{login!r} is not a login or user name")
    return prefix + name


def check_role(role: str, office: str | None) -> None:
    """Refuse an unknown role, an office role without an office, an office elsewhere."""
    if role not in ROLES:
        raise RegistryError(f"{role!r} is not a registry role; the roles are " + ", ".join(ROLES))
    if role in OFFICE_ROLES and office is None:
        raise RegistryError(f"the role {role} is held for an office: give --office CODE")
    if role not in OFFICE_ROLES and office is not None:
        raise RegistryError(f"the role {role} is not held for an office (no --office)")
    if office is not None and not _OFFICE.fullmatch(office):
        raise RegistryError(f"{office!r} is not a customs office code (letters, digits, up to 16)")


def members(connection: sa.Connection) -> list[Member]:
    """The member rows, by actor, role, office."""
    t = table("registry_members")
    rows = connection.execute(
        sa.select(t.c.actor, t.c.role, t.c.office).order_by(t.c.actor, t.c.role, t.c.office)
    )
    return [Member(*row) for row in rows]


def _pg_login(connection: sa.Connection) -> tuple[str, bool]:
    row = connection.execute(
        sa.text("SELECT current_user, current_setting('is_superuser') = 'on'")
    ).one()
    return str(row[0]), bool(row[1])


def roles_of(connection: sa.Connection, actor: str) -> list[Member]:
    """The roles ``actor`` holds (on PostgreSQL: the current login's, whatever ``actor`` says;
    its office roles come from ``registry_members``)."""
    if connection.dialect.name != "postgresql":
        return [x for x in members(connection) if x.actor == actor]
    login, _ = _pg_login(connection)
    held = connection.execute(
        sa.text(
            "SELECT substr(rolname, :n) FROM pg_roles WHERE rolname LIKE 'riskengine\\_%' "
            "AND rolname <> 'riskengine_owner' AND pg_has_role(current_user, oid, 'MEMBER') "
            "ORDER BY rolname"
        ),
        {"n": len(PG_ROLE_PREFIX) + 1},
    ).scalars()
    readable = connection.execute(
        sa.text(
            "SELECT has_schema_privilege(current_schema(), 'USAGE') "
            "AND to_regclass('registry_members') IS NOT NULL "
            "AND has_table_privilege(to_regclass('registry_members'), 'SELECT')"
        )
    ).scalar()
    rows = members(connection) if readable else []
    offices = [x for x in rows if x.actor == f"db:{login}"]
    # riskengine_owner and riskengine_service (r0009, the scoring service) are no registry roles
    out = [
        Member(f"db:{login}", str(role), None)
        for role in held
        if role in ROLES and role not in OFFICE_ROLES
    ]
    return out + [x for x in offices if x.role in OFFICE_ROLES]


def _pg_may(connection: sa.Connection, role: str, office: str | None) -> bool:
    login, superuser = _pg_login(connection)
    if superuser:
        return True
    if role == "admin":  # who may write the member table: its owner's members
        return bool(
            connection.execute(
                sa.text(
                    "SELECT has_table_privilege(current_user, to_regclass('registry_members'), "
                    "'INSERT')"
                )
            ).scalar_one()
        )
    member = connection.execute(
        sa.text("SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = :r"),
        {"r": PG_ROLE_PREFIX + role},
    ).scalar()
    if not member:
        return False
    if role not in OFFICE_ROLES or office is None:
        return True
    return any(x.role == role and x.office == office for x in roles_of(connection, f"db:{login}"))


def require(connection: sa.Connection, actor: str, action: str, office: str | None = None) -> None:
    """Refuse (:class:`RegistryError`) unless ``actor`` may do ``action`` (for ``office``).

    ``office=None`` for an office action asks whether the actor holds the role for any office
    (the action checks again once it knows the office)."""
    role = RIGHTS[action]
    if connection.dialect.name == "postgresql":
        if _pg_may(connection, role, office):
            return
        who = f"db:{_pg_login(connection)[0]}"
    else:
        everyone = members(connection)
        if not everyone:  # no member rows: the single local user may do everything
            return
        mine = [x for x in everyone if x.actor == actor]
        if any(x.role == role and (office is None or x.office == office) for x in mine):
            return
        who = actor
    held = roles_of(connection, actor) if connection.dialect.name == "postgresql" else mine
    has = ", ".join(_shown(x) for x in held)
    needed = f"the role {role}" + (f" for office {office}" if office is not None else "")
    raise RegistryError(
        f"{who} may not {action}: it needs {needed}; {who} has "
        + (f"the roles {has}" if has else "no registry role")
    )


def _shown(member: Member) -> str:
    return member.role if member.office is None else f"{member.role} for {member.office}"
