"""The bundle in use and its hot swap.

:class:`BundleHolder` keeps one :class:`Loaded` (an :class:`~riskengine.evaluator.Engine` on a
verified bundle, its revision and as-of date). A request takes :attr:`BundleHolder.current` once
and scores everything with that engine, so a response carries exactly one revision. A new bundle
replaces it only after its signature, every member's hash and its contents verified
(:meth:`~riskengine.evaluator.ProfileSet.from_bundle`); a bundle that does not is refused, logged
and counted, and the old one keeps serving. So is a verified bundle of an older revision than
the one in use, or of the same revision with other contents: revisions only go forward (the
registry numbers every bundle it builds, and the decision log records each decision's
revision), so a stale file deployed by mistake never replaces a newer set. Returning to an
earlier set is a new bundle built from the registry, with the next revision.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import attrs

from riskengine.bundle import BundleError
from riskengine.bundle.keys import PublicKeySource
from riskengine.diagnostics import RiskEngineError
from riskengine.evaluator import Engine, LaneConfig, ProfileSet, RandomSelection

__all__ = ["BundleHolder", "Loaded"]

_log = logging.getLogger("riskengine.service")

#: What says that the bundle file changed: (device, inode, size, mtime in ns).
FileStamp = tuple[int, int, int, int]


def _stamp(path: Path) -> FileStamp | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@attrs.frozen
class Loaded:
    """A verified bundle ready to score with: never changed once made."""

    engine: Engine
    revision: int
    as_of: dt.date
    created_at: dt.datetime
    key: str
    profiles: tuple[tuple[str, str], ...]  # (number, name) of each edition
    loaded_at: dt.datetime
    manifest_sha256: str  # of the signed manifest: the same revision, the same contents


class BundleHolder:
    """The bundle in use (:attr:`current`) and :meth:`reload`. ``prepare(loaded)`` is called with
    a new bundle before it is swapped in (not for the first), ``on_change(loaded)`` after each
    swap and for the first, ``on_refused(reason)`` after each refusal."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        public_key: PublicKeySource,
        *,
        lanes: LaneConfig | None = None,
        random: RandomSelection | None = None,
        on_change: Callable[[Loaded], None] | None = None,
        on_refused: Callable[[str], None] | None = None,
        prepare: Callable[[Loaded], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.public_key = public_key
        self.lanes = lanes
        self.random = random
        self._on_change = on_change
        self._on_refused = on_refused
        self._prepare = prepare
        self._lock = threading.Lock()  # one reload at a time
        self._stamp = _stamp(self.path)
        self.current: Loaded = self._load()  # the first bundle must load: no fallback
        self.last_error: str | None = None
        if on_change is not None:
            on_change(self.current)

    def _load(self) -> Loaded:
        from riskengine.bundle.fileformat import read_manifest

        profiles = ProfileSet.from_bundle(self.path, self.public_key)
        manifest, data, _ = read_manifest(self.path)  # verified just now by from_bundle
        if profiles.bundle_revision != manifest.revision:  # replaced between the two reads
            raise BundleError("the bundle file changed while it was loaded")
        engine = Engine(profiles, lanes=self.lanes, random=self.random)
        profiles.reader  # noqa: B018 - compiled now, not on the first request
        names = tuple((cp.key, cp.name) for cp in profiles)
        return Loaded(
            engine=engine,
            revision=manifest.revision,
            as_of=manifest.as_of,
            created_at=manifest.created_at,
            key=manifest.key,
            profiles=names,
            loaded_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
            manifest_sha256=hashlib.sha256(data).hexdigest(),
        )

    def _backwards(self, loaded: Loaded) -> str | None:
        """Why ``loaded`` may not replace the bundle in use (``None``: it may): an older
        revision, or the same revision with another manifest."""
        current = self.current
        if loaded.revision < current.revision:
            return (
                f"{self.path}: revision {loaded.revision} is older than revision "
                f"{current.revision} in use: a bundle is never rolled back (to return to an "
                "earlier set, build a new bundle from the registry)"
            )
        if loaded.revision == current.revision and (
            loaded.manifest_sha256 != current.manifest_sha256
        ):
            return (
                f"{self.path}: revision {loaded.revision} is in use with other contents: a "
                "changed bundle needs a new revision"
            )
        return None

    def changed(self) -> bool:
        """Whether the file is not the one last loaded or refused."""
        return _stamp(self.path) != self._stamp

    def reload(self, *, force: bool = False) -> bool:
        """Load the file again if it changed (always with ``force``: SIGHUP) and swap it in when
        it verifies. Returns whether a new bundle is in use; a refused one is logged, counted
        and remembered (not tried again until the file changes)."""
        with self._lock:
            stamp = _stamp(self.path)
            if not force and stamp == self._stamp:
                return False
            self._stamp = stamp
            try:
                loaded = self._load()
                backwards = self._backwards(loaded)
                if backwards is not None:
                    raise BundleError(backwards)
            except (RiskEngineError, OSError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                self.last_error = reason
                _log.error(
                    "bundle refused, revision %d keeps serving: %s",
                    self.current.revision, reason,
                )  # fmt: skip
                if self._on_refused is not None:
                    self._on_refused(reason)
                return False
            if self._prepare is not None:
                self._prepare(loaded)
            old, self.current = self.current, loaded
            self.last_error = None
            _log.warning(
                "bundle revision %d swapped in (was %d): %d profiles, as of %s",
                loaded.revision, old.revision, len(loaded.profiles), loaded.as_of,
            )  # fmt: skip
            if self._on_change is not None:
                self._on_change(loaded)
            return True
