"""The catalogue a store was initialised with: recorded in the store, versioned, read back.

``db init --catalogue my_fields.toml`` records the fields the user catalogue adds to (or replaces
in) the built-in one in the table ``riskengine_catalogue`` (revision r0002), as JSON; ``db upgrade
--catalogue`` records a new version when the catalogue changed. Every command that opens the
store then uses :func:`catalogue_in_force`: the recorded catalogue when no ``--catalogue`` is
given, the given one when it has the same fields and types, and a :class:`CatalogueMismatch`
otherwise. Only the extension is recorded: the built-in fields come with the code (a newer
riskengine's new built-in fields get their columns on ``db upgrade``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import attrs
import sqlalchemy as sa

from riskengine import classifiers
from riskengine.catalogue import Catalogue, CatalogueError, Field, FieldType, default_catalogue
from riskengine.store import reflect
from riskengine.store.engine import StoreError
from riskengine.store.schema import CATALOGUE_TABLE, build_tables

__all__ = [
    "CatalogueMismatch",
    "StoredCatalogue",
    "catalogue_in_force",
    "differences",
    "read_catalogue",
    "record_catalogue",
]

_KEYS = ("path", "type", "description", "description_uk", "example", "box", "minimum")


class CatalogueMismatch(StoreError):
    """A ``--catalogue`` that is not the one the store was initialised with."""


@attrs.frozen
class StoredCatalogue:
    """One recorded version of a store's catalogue (the built-in one extended by its fields)."""

    version: int
    catalogue: Catalogue
    source: str | None
    recorded_at: dt.datetime

    def describe(self) -> str:
        """``version 2 (my_fields.toml, recorded 2026-12-06 14:00)`` for messages."""
        if self.source is not None:
            origin = self.source
        elif _extension(self.catalogue):
            origin = f"{len(_extension(self.catalogue))} fields of your own"
        else:
            origin = "the built-in catalogue"
        return f"version {self.version} ({origin}, recorded {self.recorded_at:%Y-%m-%d %H:%M})"


def _extension(catalogue: Catalogue) -> list[Field]:
    """The fields of ``catalogue`` that the built-in catalogue lacks or defines differently."""
    builtin = default_catalogue()
    return [f for f in catalogue if builtin.get(f.path) != f]


def _entry(field: Field) -> dict[str, str | None]:
    """A field as a JSON object: the keys of a ``[[field]]`` table."""
    entry: dict[str, str | None] = {key: getattr(field, key) for key in _KEYS}
    entry["type"] = field.type.value
    return entry


def _own_reasons(catalogue: Catalogue) -> list[dict[str, str | None]]:
    """The non-completion reasons the catalogue adds to appendix 3 (``[[reason]]`` tables)."""
    builtin = classifiers.reasons().entries
    return [
        attrs.asdict(entry)
        for code, entry in catalogue.reasons.entries.items()
        if code not in builtin
    ]


def _encode(catalogue: Catalogue) -> str:
    """The recorded form (stable, so equal catalogues give equal text): the extension's fields
    as a JSON list, or, when the catalogue also adds non-completion reasons, an object
    ``{"fields": [...], "reasons": [...]}``."""
    fields = [_entry(f) for f in _extension(catalogue)]
    reasons = _own_reasons(catalogue)
    recorded: Any = {"fields": fields, "reasons": reasons} if reasons else fields
    return json.dumps(recorded, ensure_ascii=False, sort_keys=True)


def _decode(text: str, version: int) -> Catalogue:
    try:
        recorded: Any = json.loads(text)
        entries = recorded["fields"] if isinstance(recorded, dict) else recorded
        reasons = recorded.get("reasons", []) if isinstance(recorded, dict) else []
        fields = [Field(**{**e, "type": FieldType(e["type"])}) for e in entries]
        catalogue = default_catalogue().extend(Catalogue({f.path: f for f in fields}))
        if not reasons:
            return catalogue
        base = classifiers.reasons()
        own = {e["code"]: classifiers.ClassifierEntry(**e) for e in reasons}
        extended = attrs.evolve(base, entries={**base.entries, **own})
        return Catalogue({f.path: f for f in catalogue}, reasons=extended)
    except (ValueError, TypeError, KeyError, CatalogueError) as exc:
        raise StoreError(
            f"the store's catalogue (version {version}) cannot be read: {exc}; record it again "
            "with `riskengine db upgrade --catalogue FILE`"
        ) from None


def _table() -> sa.Table:
    return build_tables().catalogues


def read_catalogue(connection: sa.Connection) -> StoredCatalogue | None:
    """The catalogue in force in the store (its highest version), or ``None`` when none was
    recorded (a store created before revision r0002 and not re-initialised since)."""
    if not reflect.has_table(connection, CATALOGUE_TABLE):
        return None
    table = _table()
    row = connection.execute(
        sa.select(table.c.version, table.c.fields, table.c.source, table.c.recorded_at)
        .order_by(table.c.version.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    catalogue = _decode(row.fields, row.version)
    return StoredCatalogue(row.version, catalogue, row.source, row.recorded_at)


def differences(wanted: Catalogue, stored: Catalogue) -> list[str]:
    """What tells two catalogues apart for the store: fields added, missing or of another type
    (descriptions, examples and boxes do not matter to the store)."""
    found = []
    for field in wanted:
        other = stored.get(field.path)
        if other is None:
            found.append(f"{field.path} is new")
        elif other.type is not field.type:
            found.append(f"{field.path} is {field.type}, the store's is {other.type}")
    found.extend(f"{f.path} is missing" for f in stored if f.path not in wanted)
    own = {r["code"]: r for r in _own_reasons(wanted)}
    kept = {r["code"]: r for r in _own_reasons(stored)}
    found.extend(f"reason {code} is new" for code in own if code not in kept)
    found.extend(f"reason {code} is missing" for code in kept if code not in own)
    found.extend(
        f"reason {code} is named differently"
        for code in own
        if code in kept and own[code] != kept[code]
    )
    return found


def record_catalogue(
    connection: sa.Connection, catalogue: Catalogue, source: str | None = None
) -> StoredCatalogue:
    """Record ``catalogue`` as the store's, as a new version unless it equals the one in force
    (same fields, types and descriptions). Runs in the caller's transaction."""
    current = read_catalogue(connection)
    if current is not None and _encode(current.catalogue) == _encode(catalogue):
        return current
    text = _encode(catalogue)
    version = 1 if current is None else current.version + 1
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    connection.execute(
        sa.insert(_table()).values(
            version=version,
            fields=text,
            sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
            source=source,
            recorded_at=now,
        )
    )
    return StoredCatalogue(version, catalogue, source, now)


def catalogue_in_force(
    connection: sa.Connection | None, given: Catalogue | None, source: str | None = None
) -> Catalogue:
    """The catalogue to use with the store: the given one (``--catalogue``, named ``source``) or
    the recorded one; both, when they differ in fields or types, is a :class:`CatalogueMismatch`.

    ``connection`` is ``None`` for a store that does not exist yet: the given catalogue, else the
    built-in one.
    """
    stored = read_catalogue(connection) if connection is not None else None
    if stored is None:
        return given or default_catalogue()
    if given is None:
        return stored.catalogue
    found = differences(given, stored.catalogue)
    if not found:
        return given
    shown = "; ".join(found[:5]) + ("; ..." if len(found) > 5 else "")
    name = source or "the given catalogue"
    raise CatalogueMismatch(
        f"--catalogue {name} is not the catalogue the store was initialised with, "
        f"{stored.describe()}: {shown}. Leave out --catalogue to use the store's, or run "
        f"`riskengine db upgrade --catalogue {name}` to change the store's catalogue"
    )
