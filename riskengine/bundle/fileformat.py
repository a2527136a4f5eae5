"""The bundle file: a zip archive of a signed manifest and the members it lists by SHA-256.

```text
manifest.json          the manifest (UTF-8 JSON, below)
manifest.sig           the Ed25519 signature of manifest.json's exact bytes, base64, one line
catalogue.json         the declaration fields the store remembers
classifiers/*.json     the classifiers: reasons (appendix 3, with the service's own), units, spheres
profiles/*.rp          the current text of each edition (number with / as _)
fills/*.rp             each regional fill's text (its registry key)
```

Verification (:func:`read_bundle`) checks the signature first, then that the archive holds
exactly the members the manifest lists (besides the two manifest files), each with its SHA-256.
Nothing of a member is used before that.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import io
import json
import os
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from riskengine.bundle.errors import BundleError
from riskengine.bundle.keys import PublicKeySource, key_id, load_public_key

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "SIGNATURE",
    "Bundle",
    "EditionEntry",
    "FillEntry",
    "Manifest",
    "read_bundle",
    "read_manifest",
    "sha256_bytes",
    "write_bundle",
]

FORMAT = "riskengine-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
#: Larger members are refused before they are read (a bundle is texts and small JSON files).
MAX_MEMBER = 64 * 1024 * 1024
#: Every member's date in the archive: the same content gives the same member bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _date(value: Any, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise BundleError(f"the manifest's {where} is not a date: {value!r}", MANIFEST) from None


def _opt_date(value: Any, where: str) -> dt.date | None:
    return None if value is None else _date(value, where)


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


@attrs.frozen
class EditionEntry:
    """An edition in the bundle: its number, member file, the SHA-256 of its current text and of
    its approved text, whether a clarification changed it, the registry's in-force period and
    its profile's suspension periods ``(first, last or None)``."""

    number: str
    file: str
    sha256: str
    approved_sha256: str
    clarified: bool
    in_force_from: dt.date
    in_force_to: dt.date | None
    suspended: tuple[tuple[dt.date, dt.date | None], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "file": self.file,
            "sha256": self.sha256,
            "approved_sha256": self.approved_sha256,
            "clarified": self.clarified,
            "in_force": [_iso(self.in_force_from), _iso(self.in_force_to)],
            "suspended": [[_iso(a), _iso(b)] for a, b in self.suspended],
        }

    @classmethod
    def from_json(cls, data: Any) -> EditionEntry:
        try:
            where = f"edition {data['number']}"
            return cls(
                str(data["number"]),
                str(data["file"]),
                str(data["sha256"]),
                str(data["approved_sha256"]),
                bool(data["clarified"]),
                _date(data["in_force"][0], where),
                _opt_date(data["in_force"][1], where),
                tuple((_date(a, where), _opt_date(b, where)) for a, b in data.get("suspended", [])),
            )
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise BundleError(f"the manifest's edition {data!r:.80} is malformed: {exc}") from None


@attrs.frozen
class FillEntry:
    """A regional fill in the bundle: its registry key, the edition it fills, the office, the
    order, its validity, its member file and SHA-256, whether it was entered late (§11.4)."""

    key: int
    number: str
    office: str
    order_number: str
    order_date: dt.date
    valid_from: dt.date
    valid_to: dt.date
    file: str
    sha256: str
    late: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "number": self.number,
            "office": self.office,
            "order": [self.order_number, _iso(self.order_date)],
            "valid": [_iso(self.valid_from), _iso(self.valid_to)],
            "file": self.file,
            "sha256": self.sha256,
            "late": self.late,
        }

    @classmethod
    def from_json(cls, data: Any) -> FillEntry:
        try:
            where = f"fill {data['key']}"
            return cls(
                int(data["key"]),
                str(data["number"]),
                str(data["office"]),
                str(data["order"][0]),
                _date(data["order"][1], where),
                _date(data["valid"][0], where),
                _date(data["valid"][1], where),
                str(data["file"]),
                str(data["sha256"]),
                bool(data.get("late", False)),
            )
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise BundleError(f"the manifest's fill {data!r:.80} is malformed: {exc}") from None


@attrs.frozen
class Manifest:
    """What the signature covers: the format, the revision, who built it and when (UTC), the
    as-of date, the key id, the audit-log entry recording the build, the catalogue's version,
    the editions, the fills and the SHA-256 of every member."""

    revision: int
    created_at: dt.datetime
    created_by: str
    as_of: dt.date
    key: str
    log_entry: int | None
    log_hash: str | None
    catalogue_version: int | None
    editions: tuple[EditionEntry, ...]
    fills: tuple[FillEntry, ...]
    members: Mapping[str, str]
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": self.format_version,
            "revision": self.revision,
            "created_at": self.created_at.isoformat(timespec="seconds") + "Z",
            "created_by": self.created_by,
            "as_of": self.as_of.isoformat(),
            "key": self.key,
            "log": {"entry": self.log_entry, "hash": self.log_hash},
            "catalogue_version": self.catalogue_version,
            "editions": [e.to_json() for e in self.editions],
            "fills": [f.to_json() for f in self.fills],
            "members": dict(sorted(self.members.items())),
        }

    def encode(self) -> bytes:
        """The manifest's bytes (indented JSON, sorted members): what is signed."""
        return (json.dumps(self.to_json(), ensure_ascii=False, indent=2) + "\n").encode("utf-8")

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        try:
            raw = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BundleError(f"{MANIFEST} is not JSON: {exc}", MANIFEST) from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise BundleError(f"{MANIFEST} is not a riskengine bundle manifest", MANIFEST)
        version = raw.get("format_version")
        if version != FORMAT_VERSION:
            raise BundleError(
                f"the bundle's format version is {version!r}; this riskengine reads version "
                f"{FORMAT_VERSION}",
                MANIFEST,
            )
        try:
            created = raw["created_at"].removesuffix("Z")
            members = raw["members"]
            if not isinstance(members, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in members.items()
            ):
                raise ValueError("members must map names to SHA-256 digests")
            log = raw.get("log") or {}
            return cls(
                revision=int(raw["revision"]),
                created_at=dt.datetime.fromisoformat(created),
                created_by=str(raw["created_by"]),
                as_of=_date(raw["as_of"], "as_of"),
                key=str(raw["key"]),
                log_entry=None if log.get("entry") is None else int(log["entry"]),
                log_hash=None if log.get("hash") is None else str(log["hash"]),
                catalogue_version=(
                    None if raw.get("catalogue_version") is None else int(raw["catalogue_version"])
                ),
                editions=tuple(EditionEntry.from_json(e) for e in raw["editions"]),
                fills=tuple(FillEntry.from_json(f) for f in raw["fills"]),
                members=dict(members),
                format_version=version,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BundleError(f"{MANIFEST} is malformed: {exc}", MANIFEST) from None


@attrs.frozen
class Bundle:
    """A verified bundle: its manifest and its members' bytes by name."""

    path: str
    manifest: Manifest
    members: Mapping[str, bytes] = attrs.field(repr=False)

    def text(self, name: str) -> str:
        """A member as UTF-8 text."""
        try:
            return self.members[name].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BundleError(f"member {name} is not UTF-8 text ({exc.reason})", name) from None

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.text(name))
        except ValueError as exc:
            raise BundleError(f"member {name} is not JSON: {exc}", name) from None


def _info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def write_bundle(
    stream: io.BufferedIOBase | Any,
    manifest: Manifest,
    members: Mapping[str, bytes],
    key: Ed25519PrivateKey,
) -> None:
    """Write the archive to ``stream``: the manifest, its signature, then the members in the
    manifest's order (sorted by name)."""
    data = manifest.encode()
    signature = base64.b64encode(key.sign(data)) + b"\n"
    with zipfile.ZipFile(stream, "w") as archive:
        archive.writestr(_info(MANIFEST), data)
        archive.writestr(_info(SIGNATURE), signature)
        for name in sorted(members):
            archive.writestr(_info(name), members[name])


def _open(path: str | os.PathLike[str]) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except FileNotFoundError:
        raise BundleError(f"{os.fspath(path)}: no such file") from None
    except OSError as exc:
        raise BundleError(f"{os.fspath(path)}: cannot read: {exc.strerror}") from None
    except zipfile.BadZipFile:
        raise BundleError(
            f"{os.fspath(path)} is not a bundle (not a zip archive; `riskengine bundle build` "
            "writes one)"
        ) from None


def _member(archive: zipfile.ZipFile, name: str, path: str) -> bytes:
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise BundleError(f"{path}: member {name} is missing", name) from None
    if info.file_size > MAX_MEMBER:
        raise BundleError(f"{path}: member {name} is larger than {MAX_MEMBER} bytes", name)
    try:
        return archive.read(info)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:  # CRC, inflation
        raise BundleError(
            f"{path}: member {name} is damaged ({exc}): it was changed after signing", name
        ) from None


def read_manifest(path: str | os.PathLike[str]) -> tuple[Manifest, bytes, bytes]:
    """The manifest, its bytes and its signature's bytes, *not verified* (for ``inspect``)."""
    shown = os.fspath(path)
    with _open(path) as archive:
        data = _member(archive, MANIFEST, shown)
        signature = _member(archive, SIGNATURE, shown)
    return Manifest.decode(data), data, signature


def read_bundle(path: str | os.PathLike[str], public_key: PublicKeySource) -> Bundle:
    """Read and verify a bundle: the signature of the manifest with ``public_key``, then the
    archive's members against the manifest (none missing, none extra, each SHA-256 equal).
    Raises :class:`BundleError` naming the bad signature or the first bad member."""
    shown = os.fspath(path)
    public = load_public_key(public_key)
    with _open(path) as archive:
        data = _member(archive, MANIFEST, shown)
        signed = _member(archive, SIGNATURE, shown)
        try:
            signature = base64.b64decode(signed.strip(), validate=True)
            public.verify(signature, data)
        except (InvalidSignature, binascii.Error, ValueError):
            raise BundleError(
                f"{shown}: the signature of {MANIFEST} does not verify with the public key "
                f"{key_id(public)}: the manifest was changed after signing, or it was signed "
                "with another key",
                MANIFEST,
            ) from None
        manifest = Manifest.decode(data)
        names = [i.filename for i in archive.infolist()]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise BundleError(f"{shown}: member {twice[0]} appears twice in the archive", twice[0])
        extra = sorted(set(names) - set(manifest.members) - {MANIFEST, SIGNATURE})
        if extra:
            raise BundleError(
                f"{shown}: member {extra[0]} is not listed in the manifest (added after signing)",
                extra[0],
            )
        members: dict[str, bytes] = {}
        for name, digest in sorted(manifest.members.items()):
            content = _member(archive, name, shown)
            if sha256_bytes(content) != digest:
                raise BundleError(
                    f"{shown}: member {name} does not match its SHA-256 in the manifest: it was "
                    "changed after signing",
                    name,
                )
            members[name] = content
    _consistent(manifest, shown)
    return Bundle(shown, manifest, members)


def _consistent(manifest: Manifest, shown: str) -> None:
    """The editions' and fills' files are members with the hashes the manifest lists."""
    entries: Sequence[EditionEntry | FillEntry] = (*manifest.editions, *manifest.fills)
    for entry in entries:
        if manifest.members.get(entry.file) != entry.sha256:
            raise BundleError(
                f"{shown}: the manifest lists {entry.file} with another SHA-256 than its member",
                entry.file,
            )
