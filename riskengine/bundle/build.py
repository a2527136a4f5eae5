"""Building a bundle from the registry: what goes in, the revision, the audit entry, the file.

One transaction reads the registry, refuses a log that does not verify, checks the packed texts
as the clearance software will load them, takes the next revision and appends the ``bundle``
entry to the audit log; the file is written beside its destination first and moved into place
only once that transaction has committed (nothing is left behind when the build is refused).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import sqlalchemy as sa

from riskengine import classifiers
from riskengine.bundle.errors import BundleError
from riskengine.bundle.fileformat import (
    EditionEntry,
    FillEntry,
    Manifest,
    sha256_bytes,
    write_bundle,
)
from riskengine.bundle.keys import key_id, load_private_key
from riskengine.bundle.load import check_members
from riskengine.catalogue import Catalogue
from riskengine.registry.access import require
from riskengine.registry.audit import append, canonical_json, current_actor, now
from riskengine.registry.audit import verify as verify_log
from riskengine.registry.state import table
from riskengine.store.access import require_schema
from riskengine.store.catalogue import read_catalogue
from riskengine.store.engine import database_errors
from riskengine.store.schema import TABLES

__all__ = ["ACTION", "BuildResult", "build", "encode_catalogue", "encode_classifier", "file_of"]

#: The audit log's action name of a build (object ``bundle/REVISION``).
ACTION = "bundle"


@attrs.frozen
class BuildResult:
    """A bundle written: its path, revision, manifest, and the log entry recording it."""

    path: Path
    revision: int
    manifest: Manifest
    log_entry: int


def file_of(number: str) -> str:
    """The member of an edition: ``profiles/`` and its number with ``/`` as ``_``."""
    return "profiles/" + number.replace("/", "_") + ".rp"


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode("utf-8")


def encode_catalogue(catalogue: Catalogue) -> bytes:
    """Every field of the catalogue (built-in and the store's own), in catalogue order."""
    fields = []
    for f in catalogue:
        entry = attrs.asdict(f)
        entry["type"] = f.type.value
        fields.append(entry)
    return _json_bytes({"fields": fields})


def encode_classifier(found: classifiers.Classifier) -> bytes:
    """A classifier: key, titles, source and its entries in the document's order."""
    return _json_bytes(
        {
            "key": found.key,
            "title_uk": found.title_uk,
            "title_en": found.title_en,
            "source": found.source,
            "entries": [attrs.asdict(e) for e in found.entries.values()],
        }
    )


def _periods(
    events: list[tuple[str, dt.date]],
) -> tuple[tuple[dt.date, dt.date | None], ...]:
    """A profile's suspension periods from its events in order: from a suspension to the day
    before its resumption; open while not resumed."""
    out: list[tuple[dt.date, dt.date | None]] = []
    start: dt.date | None = None
    for kind, day in events:
        if kind == "suspend":
            start = day
        elif start is not None:
            if day > start:
                out.append((start, day - dt.timedelta(days=1)))
            start = None
    if start is not None:
        out.append((start, None))
    return tuple(out)


def _current_texts(connection: sa.Connection, editions: list[int]) -> dict[int, str]:
    """The latest clarification of each edition that has one (one query: what
    :func:`riskengine.registry.operations.current_text` gives edition by edition)."""
    clar = table("profile_clarifications")
    out: dict[int, str] = {}
    if editions:
        rows = connection.execute(
            sa.select(clar.c.edition_pk, clar.c.text)
            .where(clar.c.edition_pk.in_(editions))
            .order_by(clar.c.pk)
        )
        for edition_pk, text in rows:
            out[int(edition_pk)] = str(text)  # the last one wins
    return out


def _events(connection: sa.Connection, profiles: list[int]) -> dict[int, list[tuple[str, dt.date]]]:
    s = table("profile_suspensions")
    out: dict[int, list[tuple[str, dt.date]]] = {pk: [] for pk in profiles}
    if profiles:
        rows = connection.execute(
            sa.select(s.c.profile_pk, s.c.kind, s.c.effective_on)
            .where(s.c.profile_pk.in_(profiles))
            .order_by(s.c.pk)
        )
        for profile_pk, kind, day in rows:
            out[int(profile_pk)].append((str(kind), day))
    return out


def _next_revision(connection: sa.Connection) -> int:
    log = TABLES.audit_log
    top = 0
    for (details,) in connection.execute(sa.select(log.c.details).where(log.c.action == ACTION)):
        try:
            top = max(top, int(json.loads(details)["revision"]))
        except (ValueError, KeyError, TypeError):  # pragma: no cover - written by build only
            continue
    return top + 1


def _content(
    connection: sa.Connection, as_of: dt.date
) -> tuple[list[EditionEntry], list[FillEntry], dict[str, bytes], int | None]:
    """The editions in force on ``as_of`` or after, their fills still valid, the catalogue and
    the classifiers, as manifest entries and members."""
    eds, fills = table("profile_editions"), table("regional_fills")
    rows = connection.execute(
        sa.select(
            eds.c.pk,
            eds.c.profile_pk,
            eds.c.number,
            eds.c.text,
            eds.c.sha256,
            eds.c.in_force_from,
            eds.c.in_force_to,
        )
        .where(
            eds.c.withdrawn == sa.false(),
            sa.or_(eds.c.in_force_to.is_(None), eds.c.in_force_to >= as_of),
        )
        .order_by(eds.c.number)
    ).all()
    members: dict[str, bytes] = {}
    editions: list[EditionEntry] = []
    numbers: dict[int, str] = {}
    clarified = _current_texts(connection, [int(row.pk) for row in rows])
    events = _events(connection, sorted({int(row.profile_pk) for row in rows}))
    for row in rows:
        text = clarified.get(int(row.pk), str(row.text)).encode("utf-8")
        name = file_of(str(row.number))
        members[name] = text
        digest = sha256_bytes(text)
        editions.append(
            EditionEntry(
                str(row.number),
                name,
                digest,
                str(row.sha256),
                digest != row.sha256,
                row.in_force_from,
                row.in_force_to,
                _periods(events[int(row.profile_pk)]),
            )
        )
        numbers[int(row.pk)] = str(row.number)
    entries: list[FillEntry] = []
    if numbers:
        found = connection.execute(
            sa.select(*fills.c)
            .where(fills.c.edition_pk.in_(sorted(numbers)), fills.c.valid_to >= as_of)
            .order_by(fills.c.pk)
        ).all()
        for f in found:
            name = f"fills/{int(f.pk)}.rp"
            text = str(f.text).encode("utf-8")
            members[name] = text
            entries.append(
                FillEntry(
                    int(f.pk),
                    numbers[int(f.edition_pk)],
                    str(f.office),
                    str(f.order_number),
                    f.order_date,
                    f.valid_from,
                    f.valid_to,
                    name,
                    sha256_bytes(text),
                    bool(f.late),
                )
            )
    stored = read_catalogue(connection)
    catalogue = stored.catalogue if stored is not None else None
    from riskengine.catalogue import default_catalogue

    cat = catalogue or default_catalogue()
    members["catalogue.json"] = encode_catalogue(cat)
    members["classifiers/reasons.json"] = encode_classifier(cat.reasons)
    members["classifiers/units.json"] = encode_classifier(classifiers.units())
    members["classifiers/spheres.json"] = encode_classifier(classifiers.spheres())
    return editions, entries, members, None if stored is None else stored.version


def build(
    store: sa.Engine,
    as_of: dt.date,
    key: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    actor: str | None = None,
) -> BuildResult:
    """Build and sign the bundle of the approved set as of ``as_of`` into ``out``.

    It packs the approved editions in force on ``as_of`` or coming into force after it (their
    current texts, their registry in-force periods and suspension periods), the regional fills
    of those editions still valid on ``as_of``, the store's catalogue and the classifiers, with
    a manifest signed by the private key file ``key``. The build is an audited registry action
    (``bundle``, object ``bundle/REVISION``); the revision is the store's previous highest + 1.
    Refused (nothing recorded or written) when the audit log does not verify or a packed text
    does not load."""
    private = load_private_key(key)
    target = Path(out)
    if target.is_dir():
        raise BundleError(f"{target} is a folder: give the bundle's file name")
    tmp: str | None = None
    try:
        with database_errors(store), store.begin() as connection:
            require_schema(connection)
            # the deployer's right (docs/registry.md, Access rights)
            require(connection, actor or current_actor(connection), "bundle")
            checked = verify_log(connection)
            if not checked.ok:
                raise BundleError(
                    f"the registry's audit log does not verify ({checked.problem}): no bundle "
                    "is built from it"
                )
            editions, fills, members, version = _content(connection, as_of)
            check_members(editions, fills, members, as_of)
            revision = _next_revision(connection)
            who = actor or current_actor(connection)
            at = now().replace(microsecond=0)
            digests = {name: sha256_bytes(data) for name, data in sorted(members.items())}
            entry = append(
                connection,
                actor=who,
                action=ACTION,
                obj=f"bundle/{revision}",
                details={
                    "revision": revision,
                    "as_of": as_of.isoformat(),
                    "editions": [e.number for e in editions],
                    "fills": [f.key for f in fills],
                    "members_sha256": sha256_bytes(canonical_json(digests).encode("utf-8")),
                },
                hash_before=None,
                hash_after=None,
                at=at,
            )
            manifest = Manifest(
                revision=revision,
                created_at=at,
                created_by=who,
                as_of=as_of,
                key=key_id(private),
                log_entry=entry.pk,
                log_hash=entry.entry_hash,
                catalogue_version=version,
                editions=tuple(editions),
                fills=tuple(fills),
                members=digests,
            )
            tmp = _write_temporary(target, manifest, members, private)
    except BaseException as exc:
        if tmp is not None:  # the transaction did not commit: no file either
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, sa.exc.IntegrityError):
            raise BundleError(
                "the build was refused by the database: another registry action ran at the "
                "same time; nothing was recorded, try again"
            ) from None
        raise
    try:
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise BundleError(
            f"{target}: cannot write the bundle ({exc.strerror}); revision {revision} is "
            "recorded in the log without its file: build again"
        ) from None
    return BuildResult(target, revision, manifest, entry.pk)


def _write_temporary(
    target: Path, manifest: Manifest, members: Mapping[str, bytes], private: Any
) -> str:
    """The bundle written to a temporary file beside ``target`` (removed on failure)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise BundleError(f"{target}: cannot write the bundle ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as stream:
            write_bundle(stream, manifest, members, private)
        os.chmod(tmp, 0o644)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp
