"""Ed25519 keys of the bundle's signature, through the ``cryptography`` library.

The private key is a PEM file (PKCS #8, unencrypted: protect it with the file's permissions, 0600,
and where it is kept); the public key is the PEM file beside it, ``KEYFILE.pub``
(SubjectPublicKeyInfo), given to the clearance software. A key is named in messages by its
*key id*: ``ed25519:`` and the first 16 hex digits of the SHA-256 of its 32 raw bytes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TypeAlias

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from riskengine.bundle.errors import BundleError

__all__ = [
    "PublicKeySource",
    "key_id",
    "keygen",
    "load_private_key",
    "load_public_key",
    "public_key_path",
]

#: What names a public key: its PEM file's path, its PEM bytes or 32 raw bytes, or the key.
PublicKeySource: TypeAlias = "str | os.PathLike[str] | bytes | Ed25519PublicKey"


def public_key_path(private: str | os.PathLike[str]) -> Path:
    """Where :func:`keygen` writes the public key of the private key file ``private``."""
    p = Path(private)
    return p.with_name(p.name + ".pub")


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """``ed25519:`` and 16 hex digits naming the key pair."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write a file that must not exist yet, created with ``mode`` (never wider, whatever the
    umask: the mode is set again after creation)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as stream:
            fd = -1
            stream.write(data)
    finally:
        if fd != -1:
            os.close(fd)


def keygen(path: str | os.PathLike[str]) -> tuple[Path, Path, str]:
    """A new Ed25519 key pair: the private key written to ``path`` (mode 0600), the public key
    to ``path.pub`` (0644). Refused when either file exists (a key is never overwritten).
    Returns both paths and the key id."""
    private_path, public_path = Path(path), public_key_path(path)
    for p in (private_path, public_path):
        if p.exists():
            raise BundleError(f"{p} exists: a key is never overwritten; choose another name")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        _write_new(private_path, private_pem, 0o600)
        try:
            _write_new(public_path, public_pem, 0o644)
        except BaseException:
            private_path.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise BundleError(f"{exc.filename or path}: cannot write the key: {exc.strerror}") from None
    return private_path, public_path, key_id(key)


def _read(path: str | os.PathLike[str], what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise BundleError(f"{os.fspath(path)}: cannot read the {what}: {exc.strerror}") from None


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The Ed25519 private key of a PEM file written by :func:`keygen`."""
    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise BundleError(
            f"{os.fspath(path)} is not an unencrypted PEM private key ({exc}); "
            "`riskengine bundle keygen` writes one"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"{os.fspath(path)} is not an Ed25519 key")
    return key


def load_public_key(source: PublicKeySource) -> Ed25519PublicKey:
    """An Ed25519 public key from its PEM file's path, PEM bytes, 32 raw bytes, or the key."""
    if isinstance(source, Ed25519PublicKey):
        return source
    if isinstance(source, bytes):
        data, name = source, "the public key given"
    elif isinstance(source, str | os.PathLike):
        data, name = _read(source, "public key"), os.fspath(source)
    else:
        raise BundleError(
            f"public_key must be a file path, bytes or an Ed25519PublicKey, not {type(source)}"
        )
    if len(data) == 32:
        return Ed25519PublicKey.from_public_bytes(data)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        hint = " (that is the private key: give the .pub file)" if b"PRIVATE KEY" in data else ""
        raise BundleError(f"{name} is not a PEM public key{hint}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError(f"{name} is not an Ed25519 public key")
    return key
