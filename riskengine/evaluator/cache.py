"""An on-disk cache of loaded profile sets: the checked model and the compiled code.

Loading a set parses, checks and compiles every profile (about a second for 1,000 profiles);
loading the same texts again with the same catalogue and the same riskengine gives the same
result. The cache keeps, per set, the checked files (pickled), each generated module's source,
line map and bytecode (``marshal``), and each module's index plan, in one file named by a key
of everything that decides them:

* the texts: each file's name and SHA-256 in load order (for a bundle, the member hashes its
  manifest lists, which :func:`~riskengine.bundle.fileformat.read_bundle` has verified against
  the members before the cache is consulted);
* the catalogue: a SHA-256 of its fields and its reason classifier;
* the code: riskengine's version and a SHA-256 of its Python sources, the interpreter's version
  and bytecode magic number, and :data:`FORMAT`.

A different text, catalogue or riskengine is a different key, so an entry is never stale; an
entry that does not read back (truncated, corrupt, another format, another key inside) is
ignored, the set is loaded cold and the entry rewritten. Entries are written to a temporary file
and renamed (atomic on POSIX and Windows), so a reader never sees half an entry; at most
:data:`KEEP` entries are kept, the least recently used removed.

Where: ``RISKENGINE_CACHE_DIR`` if set (``off`` disables the cache), else the user's cache
folder (``$XDG_CACHE_HOME/riskengine/load`` or ``~/.cache/riskengine/load``; on Windows
``%LOCALAPPDATA%``, on macOS ``~/Library/Caches``). The folder is created private (mode 0700):
an entry holds bytecode that is executed, like Python's own ``__pycache__``, so only the account
that runs riskengine may write there.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import logging
import marshal
import os
import pickle
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import CodeType

import attrs

from riskengine import model as m
from riskengine.catalogue import Catalogue
from riskengine.evaluator.codegen import _deep_recursion as deep_recursion
from riskengine.evaluator.index import IndexPlan
from riskengine.evaluator.unit import Generated

__all__ = [
    "ENV",
    "FORMAT",
    "KEEP",
    "CacheMismatch",
    "CachedSet",
    "CachedVariant",
    "LoadCache",
    "catalogue_fingerprint",
    "resolve_cache",
    "text_digests",
]

log = logging.getLogger(__name__)

#: The environment variable naming the cache folder (``off``: no cache).
ENV = "RISKENGINE_CACHE_DIR"
#: The layout of an entry; a change of it is a change of every key.
FORMAT = 1
#: Entries kept in a folder (the least recently used beyond this are removed on a write).
KEEP = 16
_MAGIC = b"riskengine-load-cache\n"
_SUFFIX = ".relc"


class CacheMismatch(Exception):
    """An entry does not fit the set being loaded (it is then loaded cold)."""


@attrs.frozen
class CachedVariant:
    """One generated module as loading built it: its index plan, whether its degree stays in
    0..100, its source (with line map and name) and its bytecode."""

    plan: IndexPlan
    degree_in_range: bool
    generated: Generated
    code: CodeType


@attrs.frozen
class CachedSet:
    """A loaded set as the cache keeps it: the checked files, and the modules of every
    compiled profile in load order (the profile's own first, then its fills' variants)."""

    files: list[m.SourceFile]
    variants: list[CachedVariant]


def text_digests(texts: Mapping[str, str]) -> list[tuple[str, str]]:
    """Each text's name and the SHA-256 of its UTF-8 bytes, in order."""
    return [
        (name, hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest())
        for name, text in texts.items()
    ]


def catalogue_fingerprint(catalogue: Catalogue) -> str:
    """A SHA-256 of everything of a catalogue that checks and compiled code depend on: every
    field (path, type, descriptions, bounds) in order, and the reasons' codes and entries."""
    fields = [
        {k: (v.value if hasattr(v, "value") else v) for k, v in attrs.asdict(f).items()}
        for f in catalogue
    ]
    reasons = catalogue.reasons
    data = {
        "fields": fields,
        "reasons": [reasons.key, sorted((str(k), repr(v)) for k, v in reasons.entries.items())],
    }
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """riskengine's version, a SHA-256 of its Python sources, the interpreter and the entry
    format: a change of any of them makes every key new."""
    import riskengine

    digest = hashlib.sha256()
    root = Path(riskengine.__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode("utf-8"))
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    parts = [
        f"format {FORMAT}",
        f"riskengine {riskengine.__version__}",
        f"sources {digest.hexdigest()}",
        f"python {sys.version}",
        f"magic {importlib.util.MAGIC_NUMBER.hex()}",
        f"tag {sys.implementation.cache_tag}",
    ]
    return "\n".join(parts)


def default_folder() -> Path | None:
    """The cache folder when none is given: ``RISKENGINE_CACHE_DIR`` (``None`` for ``off`` or
    empty), else the user's cache folder."""
    env = os.environ.get(ENV)
    if env is not None:
        if env.strip().lower() in ("", "off", "0", "no", "false"):
            return None
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "riskengine" / "load"


class LoadCache:
    """A cache folder (see the module). :meth:`get` never raises for what is in the folder;
    :meth:`put` never raises for a folder it cannot write (the load goes on uncached)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def __repr__(self) -> str:
        return f"LoadCache({str(self.folder)!r})"

    @staticmethod
    def key(kind: str, digests: Iterable[tuple[str, str]], catalogue: Catalogue) -> str:
        """The key of a set: ``kind`` ("files" or "bundle"), its texts' names and SHA-256s in
        order, the catalogue's fingerprint and :func:`code_fingerprint`."""
        h = hashlib.sha256()
        for part in (kind, code_fingerprint(), catalogue_fingerprint(catalogue)):
            h.update(part.encode("utf-8"))
            h.update(b"\0")
        for name, sha in digests:
            h.update(f"{name}\0{sha}\0".encode("utf-8", "surrogatepass"))
        return h.hexdigest()

    def path(self, key: str) -> Path:
        return self.folder / f"{key}{_SUFFIX}"

    def get(self, key: str) -> CachedSet | None:
        """The entry of ``key``, or ``None`` when there is none or it does not read back."""
        path = self.path(key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        found = _decode(data, key)
        if found is None:
            log.warning("load cache: ignoring unreadable entry %s (rebuilt)", path)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used
        return found

    def put(self, key: str, entry: CachedSet) -> bool:
        """Write the entry of ``key`` atomically; ``False`` (logged) when it cannot be written."""
        try:
            data = _encode(entry, key)
        except (pickle.PicklingError, TypeError, ValueError, AttributeError, RecursionError) as exc:
            log.warning("load cache: this set cannot be cached (%s)", exc)
            return False
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=_SUFFIX, dir=self.folder)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                os.replace(tmp, self.path(key))
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            log.warning("load cache: cannot write to %s (%s)", self.folder, exc)
            return False
        self._prune(key)
        return True

    def entries(self) -> list[Path]:
        """The entry files, least recently used first (not the temporary files of writes)."""
        return least_recently_used(
            self.folder, lambda name: name.endswith(_SUFFIX) and not name.startswith(".")
        )

    def _prune(self, keep: str) -> None:
        prune(self.entries(), self.path(keep), KEEP)
        # the temporary file of a write that never finished (the process was killed)
        with contextlib.suppress(OSError):
            for p in self.folder.glob(f".tmp-*{_SUFFIX}"):
                with contextlib.suppress(OSError):
                    if time.time() - p.stat().st_mtime > 3600:
                        p.unlink()


def least_recently_used(folder: Path, match: Callable[[str], bool]) -> list[Path]:
    """The files of ``folder`` whose names ``match``, least recently modified first (none when
    the folder cannot be read)."""
    try:
        found = [p for p in folder.iterdir() if match(p.name)]
    except OSError:
        return []
    stamped = []
    for p in found:
        with contextlib.suppress(OSError):
            stamped.append((p.stat().st_mtime, p.name, p))
    return [p for _, _, p in sorted(stamped)]


def prune(files: list[Path], keep: Path, limit: int) -> None:
    """Remove the first of ``files`` (least recently used first) so that at most ``limit``
    remain with ``keep``, which is never removed."""
    old = [p for p in files if p != keep]
    for p in old[: max(0, len(old) - (limit - 1))]:
        with contextlib.suppress(OSError):
            p.unlink()


def resolve_cache(cache: LoadCache | str | os.PathLike[str] | bool | None) -> LoadCache | None:
    """The cache a load uses: ``False`` none, ``True`` the default folder
    (:func:`default_folder`), a path or a :class:`LoadCache` that folder; ``None`` the default
    folder only when ``RISKENGINE_CACHE_DIR`` is set (and not ``off``)."""
    if cache is None:
        if os.environ.get(ENV) is None:
            return None
        cache = True
    if cache is False:
        return None
    if isinstance(cache, LoadCache):
        return cache
    if cache is True:
        folder = default_folder()
        return None if folder is None else LoadCache(folder)
    return LoadCache(cache)


# ------------------------------------------------------------------------------ the entry


def _encode(entry: CachedSet, key: str) -> bytes:
    variants = [
        (v.plan, v.degree_in_range, v.generated.source, v.generated.filename,
         dict(v.generated.line_map), marshal.dumps(v.code))
        for v in entry.variants
    ]  # fmt: skip
    with deep_recursion():  # the model nests a few frames per level of an expression
        payload = pickle.dumps((key, entry.files, variants), protocol=pickle.HIGHEST_PROTOCOL)
    return _MAGIC + hashlib.sha256(payload).digest() + payload


def _decode(data: bytes, key: str) -> CachedSet | None:
    head = len(_MAGIC)
    if not data.startswith(_MAGIC) or len(data) < head + 32:
        return None
    digest, payload = data[head : head + 32], data[head + 32 :]
    if hashlib.sha256(payload).digest() != digest:
        return None
    try:
        with deep_recursion():
            found_key, files, raw = pickle.loads(payload)
        if found_key != key or not isinstance(files, list):
            return None
        variants = []
        for plan, in_range, source, filename, line_map, code in raw:
            loaded = marshal.loads(code)
            if not isinstance(plan, IndexPlan) or not isinstance(loaded, CodeType):
                return None
            variants.append(
                CachedVariant(plan, bool(in_range), Generated(source, filename, line_map), loaded)
            )
    except Exception:  # anything an unreadable entry raises: it is rebuilt
        return None
    if not all(isinstance(sf, m.SourceFile) for sf in files):
        return None
    return CachedSet(files, variants)
