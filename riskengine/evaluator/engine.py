"""The engine: an immutable compiled profile set, scoring with an index, lanes, atomic swap."""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import attrs

from riskengine import model as m
from riskengine.catalogue import Catalogue, default_catalogue
from riskengine.declaration import Declaration, DeclarationError, JsonInputError, load_json
from riskengine.diagnostics import ProfileError, RiskEngineError, Span, error
from riskengine.evaluator.batching import gc_paused
from riskengine.evaluator.cache import (
    CachedSet,
    CachedVariant,
    CacheMismatch,
    LoadCache,
    resolve_cache,
    text_digests,
)
from riskengine.evaluator.codegen import CompileError
from riskengine.evaluator.compiled import (
    EMPTY_ITEMS,
    CompiledProfile,
    ControlForm,
    EvaluationError,
    FiredProfile,
    merge_controls,
)
from riskengine.evaluator.drafts import DraftError, refuse_bundle_path, refuse_drafts
from riskengine.evaluator.explain import ProfileExplanation
from riskengine.evaluator.fused import FusedScorer, fuse_problem
from riskengine.evaluator.history import EmptyHistoryProvider, HistoryProvider
from riskengine.evaluator.index import IndexPlan, ProfileIndex
from riskengine.evaluator.inputs import InputReader
from riskengine.evaluator.making import slotted_maker
from riskengine.evaluator.results import (
    Lane,
    LaneConfig,
    RejectedDeclaration,
    ScoreResult,
    make_result,
)
from riskengine.evaluator.windows import Window
from riskengine.semantics.indicators import forget_orders

if TYPE_CHECKING:
    from riskengine.bundle.keys import PublicKeySource

if TYPE_CHECKING:
    from riskengine.evaluator.random_selection import RandomSelection

__all__ = [
    "ActiveSet",
    "DraftError",
    "Engine",
    "Lane",
    "LaneConfig",
    "LoadTimings",
    "ProfileSet",
    "RejectedDeclaration",
    "ScoreResult",
]


@attrs.frozen
class LoadTimings:
    """Seconds spent loading a set: parsing, checking, compiling (code generation, ``compile``
    and index planning). ``cached``: the set was read from the load cache
    (:mod:`riskengine.evaluator.cache`; the time is then all under ``compile``)."""

    parse: float = 0.0
    check: float = 0.0
    compile: float = 0.0
    cached: bool = False

    @property
    def total(self) -> float:
        return self.parse + self.check + self.compile


def _first(pair: tuple[int, FiredProfile]) -> int:
    return pair[0]


def _code(form: ControlForm) -> str:
    return form.code


class ActiveSet:
    """The profiles that apply during one span of dates (no in-force period, edition or fill
    changes inside it), with the fill of each regional profile per office and the index."""

    def __init__(self, profiles: Sequence[CompiledProfile], day: dt.date, use_index: bool):
        chosen: dict[str, CompiledProfile] = {}
        order: list[CompiledProfile] = []
        for cp in profiles:
            if not cp.applies_on(day):
                continue
            if cp.base is None:
                order.append(cp)
                continue
            seen = chosen.get(cp.base)
            if seen is None or cp.edition > seen.edition:
                chosen[cp.base] = cp
        winners = {id(cp) for cp in chosen.values()}
        order += [cp for cp in profiles if id(cp) in winners]
        position = {id(cp): k for k, cp in enumerate(profiles)}
        order.sort(key=lambda cp: position[id(cp)])
        self.profiles: tuple[CompiledProfile, ...] = tuple(order)
        self.offices: tuple[Mapping[str, int] | None, ...] = tuple(
            cp.offices_on(day) if cp.regional else None for cp in self.profiles
        )
        self.index: ProfileIndex | None = None
        if use_index:
            plans: list[tuple[int, IndexPlan | None]] = []
            office_keys: dict[int, list[str]] = {}
            for pos, cp in enumerate(self.profiles):
                offices = self.offices[pos]
                if offices is not None:
                    office_keys[pos] = sorted(offices)
                    variants = {id(cp.variant(k)): cp.variant(k) for k in offices.values()}
                    vplans = [v.plan for v in variants.values()]
                    if vplans and all(p.indexed for p in vplans):
                        plans.append((pos, IndexPlan(tuple(a for p in vplans for a in p.atoms))))
                    else:
                        plans.append((pos, None))
                else:
                    plan = cp.default.plan
                    plans.append((pos, plan if plan.indexed else None))
            self.index = ProfileIndex(plans, office_keys)
        self._all = list(range(len(self.profiles)))
        #: Per position: the profile, its variant and regional values (``None`` for a regional
        #: profile) and, for a regional profile, office → (variant, regional values).
        self.entries: tuple[tuple[CompiledProfile, Any, Any, Any], ...] = tuple(
            (cp, cp.default, cp.region(None), None)
            if offices is None
            else (cp, None, None, {o: (cp.variant(k), cp.region(k)) for o, k in offices.items()})
            for cp, offices in zip(self.profiles, self.offices, strict=True)
        )

    def candidates(
        self, header: Mapping[str, Any], items: Sequence[Mapping[str, Any]]
    ) -> Iterable[int]:
        """Positions of the profiles to evaluate for a declaration (in no particular order)."""
        if self.index is None:
            return self._all
        return self.index.candidates(header, items)


class ProfileSet:
    """A compiled, immutable set of profiles. Safe to share between threads: the per-date views
    (:class:`ActiveSet`) are built once under a lock and then only read.

    ``windows``: per profile key, the registry's :class:`Window` of the edition (a set loaded
    from a bundle); a profile with a window applies only on the days it allows.
    ``bundle_revision``: the bundle's revision, carried by every :class:`ScoreResult`."""

    def __init__(
        self,
        profiles: Sequence[CompiledProfile],
        *,
        catalogue: Catalogue | None = None,
        use_index: bool = True,
        timings: LoadTimings | None = None,
        windows: Mapping[str, Window] | None = None,
        bundle_revision: int | None = None,
    ) -> None:
        keys: dict[str, CompiledProfile] = {}
        for cp in profiles:
            if cp.key in keys:
                first = keys[cp.key]
                span = cp.profile.spans.get("number", cp.profile.span)
                raise ProfileError(
                    [
                        error(
                            "RE501",
                            f"profile {cp.key} is loaded twice (also in {first.file})",
                            span if span.line else Span(cp.file, 0, 0, 0, 0),
                        )
                    ]
                )
            keys[cp.key] = cp
        self.profiles: tuple[CompiledProfile, ...] = tuple(profiles)
        self.catalogue = catalogue or default_catalogue()
        self.use_index = use_index
        self.timings = timings or LoadTimings()
        self._by_key = keys
        self.windows: Mapping[str, Window] = MappingProxyType(dict(windows or {}))
        self.bundle_revision = bundle_revision
        dates: set[dt.date] = set()
        for cp in self.profiles:
            dates.update(cp.validity_dates())
        for window in self.windows.values():
            dates.update(window.dates())
        self._breaks: list[dt.date] = sorted(dates)
        self._active: dict[int, ActiveSet] = {}
        self._lock = threading.Lock()
        self._reader: InputReader | None = None
        #: The fused scorer; True: not compiled yet; False: the set is not fused.
        self._fused: FusedScorer | bool = fuse_problem(self.profiles) is None

    def __len__(self) -> int:
        return len(self.profiles)

    def __iter__(self) -> Any:
        return iter(self.profiles)

    def get(self, key: str) -> CompiledProfile | None:
        """The compiled profile with this key (number, or name of a draft)."""
        return self._by_key.get(key)

    @property
    def reader(self) -> InputReader:
        """The set's input reader (:mod:`riskengine.evaluator.inputs`), compiled on first use:
        reads and converts only the fields the set's profiles and the engine read. A
        :class:`Declaration` it gives holds only those fields: score it with this set."""
        found = self._reader
        if found is None:
            with self._lock:
                found = self._reader
                if found is None:
                    found = InputReader.for_profiles(
                        self.catalogue, [(cp.profile, cp.fills) for cp in self.profiles]
                    )
                    self._reader = found
        return found

    @property
    def fused(self) -> FusedScorer | None:
        """The set's fused scoring function (:mod:`riskengine.evaluator.fused`), compiled on
        first use; ``None`` for a set that is not fused (:func:`fuse_problem` says why)."""
        found = self._fused
        if found is True:
            self.reader  # noqa: B018 - built first: it takes the lock too
            with self._lock:
                found = self._fused
                if found is True:
                    try:
                        found = FusedScorer(self)
                    except CompileError:  # a block the fused function cannot hold: not fused
                        found = False
                    self._fused = found
        return found if isinstance(found, FusedScorer) else None

    def active(self, as_of: dt.date) -> ActiveSet:
        """The profiles that apply on ``as_of`` (cached per span of dates between changes)."""
        slot = bisect.bisect_right(self._breaks, as_of)
        found = self._active.get(slot)
        if found is None:
            with self._lock:
                found = self._active.get(slot)
                if found is None:
                    profiles: Sequence[CompiledProfile] = self.profiles
                    if self.windows:
                        windows = self.windows
                        profiles = [
                            cp
                            for cp in profiles
                            if cp.key not in windows or windows[cp.key].allows(as_of)
                        ]
                    found = ActiveSet(profiles, as_of, self.use_index)
                    self._active[slot] = found
        return found

    # -- building
    @classmethod
    def compile(
        cls,
        files: Sequence[m.SourceFile],
        *,
        catalogue: Catalogue | None = None,
        use_index: bool = True,
        timings: LoadTimings | None = None,
        windows: Mapping[str, Window] | None = None,
        bundle_revision: int | None = None,
        cached: Sequence[CachedVariant] | None = None,
        record: list[CachedVariant] | None = None,
    ) -> ProfileSet:
        """Compile parsed (and checked) files. Fills are matched to profiles by exact number.
        ``windows`` and ``bundle_revision``: see the class. ``cached``: the modules of these
        files as the load cache kept them (:class:`CacheMismatch` when they do not fit);
        ``record``: a list the compiled modules are appended to, for the cache."""
        started = time.perf_counter()
        cat = catalogue or default_catalogue()
        types = {f.path: f.type.value for f in cat}
        fills = [f for sf in files for f in sf.fills]
        compiled = []
        modules = None if cached is None else iter(cached)
        with _loading():
            for sf in files:
                lists = {ld.name: ld.values for ld in sf.lists}
                for profile in sf.profiles:
                    compiled.append(
                        CompiledProfile(
                            profile,
                            file=sf.path,
                            lists=lists,
                            fills=fills,
                            types=types,
                            cached=modules,
                            record=record,
                        )
                    )
        if modules is not None and next(modules, None) is not None:
            raise CacheMismatch("the cache entry has more modules than the set")
        spent = time.perf_counter() - started
        t = timings or LoadTimings()
        return cls(
            compiled,
            catalogue=cat,
            use_index=use_index,
            timings=LoadTimings(t.parse, t.check, t.compile + spent, cached is not None),
            windows=windows,
            bundle_revision=bundle_revision,
        )

    @classmethod
    def load(
        cls,
        paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] = (),
        *,
        sources: Mapping[str, str] | None = None,
        catalogue: Catalogue | None = None,
        use_index: bool = True,
        allow_drafts: bool = False,
        cache: LoadCache | str | os.PathLike[str] | bool | None = None,
    ) -> ProfileSet:
        """Read, check and compile profile files: ``paths`` (files, or folders meaning every
        ``*.rp`` below them) and/or ``sources`` (``{file name: text}``). Raises
        :class:`ProfileError` with every diagnostic when a file has errors.

        For development: the clearance software loads the approved set from a signed bundle
        (:meth:`from_bundle`). A draft (``profile draft "…"``: no number) is refused with a
        :class:`DraftError` naming its file and line unless ``allow_drafts`` is true.

        ``cache``: the load cache (:mod:`riskengine.evaluator.cache`), keyed by the texts,
        the catalogue and the code: ``True`` the default folder, a folder, ``False`` none;
        ``None`` (default) uses it only when ``RISKENGINE_CACHE_DIR`` is set."""
        refuse_bundle_path(paths)
        texts = _read_paths(paths)
        texts.update(sources or {})
        cat = catalogue or default_catalogue()
        store = resolve_cache(cache)
        started = time.perf_counter()
        with _loading():
            key = ""
            if store is not None:
                key = LoadCache.key("files", text_digests(texts), cat)
                entry = store.get(key)
                if entry is not None:
                    if not allow_drafts:
                        refuse_drafts(entry.files)
                    try:
                        return cls.compile(
                            entry.files, catalogue=cat, use_index=use_index,
                            timings=LoadTimings(0.0, 0.0, time.perf_counter() - started),
                            cached=entry.variants,
                        )  # fmt: skip
                    except CacheMismatch:
                        pass  # loaded cold below, and the entry rewritten
            files, parse_time = _check(texts, cat)
            if not allow_drafts:
                refuse_drafts(files)
            checked = time.perf_counter() - started
            record: list[CachedVariant] | None = None if store is None else []
            loaded = cls.compile(
                files,
                catalogue=cat,
                use_index=use_index,
                timings=LoadTimings(parse_time, max(0.0, checked - parse_time), 0.0),
                record=record,
            )
            if store is not None and record is not None:
                store.put(key, CachedSet(files, record))
            return loaded

    @classmethod
    def from_bundle(
        cls,
        path: str | os.PathLike[str],
        public_key: PublicKeySource,
        *,
        use_index: bool = True,
        cache: LoadCache | str | os.PathLike[str] | bool | None = True,
    ) -> ProfileSet:
        """The approved set of a signed bundle (``riskengine bundle build``, docs/bundle.md):
        the signature and every member's SHA-256 are verified before anything is compiled; a
        draft, a text that is not an approved edition, an edition not in force on or after the
        bundle's as-of date are refused (:class:`~riskengine.bundle.BundleError`). Each edition
        applies only within the registry's window (in force, not suspended), and every result
        carries the bundle's revision.

        ``cache``: the load cache (:mod:`riskengine.evaluator.cache`), consulted only after
        the bundle is verified and keyed by its members' verified SHA-256s, its catalogue and
        the code: ``True`` (default) the default folder (``RISKENGINE_CACHE_DIR``, ``off``
        for none), a folder, or ``False`` for none."""
        from riskengine.bundle.load import load_profile_set

        return load_profile_set(path, public_key, use_index=use_index, cache=cache)


@contextlib.contextmanager
def _loading() -> Iterator[None]:
    """The scope of loading a set: the garbage collector is paused (loading builds hundreds of
    thousands of objects and keeps most of them, so the collections it would trigger find
    little garbage and cost ~20 % of the load), and the per-profile memo of the indicator
    order is dropped at the end, so a loaded set keeps only what it needs. Scopes nest."""
    global _LOAD_DEPTH
    with gc_paused():
        _LOAD_DEPTH += 1
        try:
            yield
        finally:
            _LOAD_DEPTH -= 1
            if _LOAD_DEPTH == 0:
                forget_orders()


_LOAD_DEPTH = 0


def _read_paths(paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str]) -> dict[str, str]:
    from riskengine.syntax import read_source

    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    names: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            names += [str(c) for c in sorted(p.rglob("*.rp"), key=str) if c.is_file()]
        else:
            names.append(str(p))
    return {name: read_source(name) for name in dict.fromkeys(names)}


def _check(texts: Mapping[str, str], catalogue: Catalogue) -> tuple[list[m.SourceFile], float]:
    """Parse and check; returns the files and the time spent parsing alone."""
    from riskengine.syntax import parse_source

    started = time.perf_counter()
    parsed = {name: parse_source(text, name) for name, text in texts.items()}
    parse_time = time.perf_counter() - started
    try:
        from riskengine.checks import check_models
    except ImportError:  # pragma: no cover - the checks are part of the package
        check_models = None  # type: ignore[assignment]
    diagnostics = [d for r in parsed.values() for d in r.diagnostics]
    files = [r.source for r in parsed.values() if r.source is not None]
    if check_models is not None:
        diagnostics += check_models(files, texts, catalogue, complete=len(files) == len(parsed))
    errors = [d for d in diagnostics if d.is_error]
    if errors:
        from riskengine.diagnostics import sort_diagnostics

        raise ProfileError(sort_diagnostics(errors), dict(texts))
    return files, parse_time


_GREEN = Lane.GREEN
#: ``FiredProfile(...)`` with every field, positionally, made through its slots.
_make_fired = slotted_maker(FiredProfile)
#: Per history provider class: whether it has ``scoped_history()``, the lookup function for one
#: declaration (:meth:`riskengine.store.history.StoreHistoryProvider.scoped_history`), which
#: the engine then asks for once per declaration instead of using ``provider.history``.
_SCOPED: dict[type, bool] = {}
#: How many combinations of fired profiles' forms an engine remembers the lane of (then it
#: starts again).
_COMBINATIONS = 4096

_NO_DATE = "no as-of date: give as_of or a declaration date"


class _NotFused(Exception):
    """The set turned out not to be fused: the general path scores."""


def _explain_problem(explain: object) -> str:
    return f"explain must be True, False or 'fired', got {explain!r}"


class Engine:
    """Scores declarations with a compiled profile set.

    Load once, score many times, from any number of threads: the set is immutable, and
    :meth:`replace` swaps it with one reference assignment (atomic in Python), so a score that
    has started finishes with the set it started with and the next one sees the new set.

    ``native=True``: a set of at most ``FUSE_MAX`` profiles scores data through its fused
    function compiled to machine code (:mod:`riskengine.evaluator.native`: needs the ``native``
    extra, a C compiler and the Python headers, else :class:`NativeUnavailable`), compiled when
    the engine is made and when :meth:`replace` swaps a set in (seconds the first time; loaded
    from the native folder afterwards). Results are the same; a larger set is not affected.
    """

    def __init__(
        self,
        profiles: ProfileSet,
        *,
        lanes: LaneConfig | None = None,
        history: HistoryProvider | None = None,
        random: RandomSelection | None = None,
        native: bool = False,
    ) -> None:
        if native:
            from riskengine.evaluator.native import NativeUnavailable, problem

            missing = problem()
            if missing is not None:
                raise NativeUnavailable(f"native=True: {missing}")
        #: Whether a fused set scores through its fused function compiled to machine code
        #: (:mod:`riskengine.evaluator.native`).
        self.native = native
        self._set = profiles
        self.lanes = lanes or LaneConfig()
        self.history: HistoryProvider = history or EmptyHistoryProvider()
        #: The minimum random inspection rate (:mod:`riskengine.evaluator.random_selection`).
        self.random = random
        #: :meth:`_combined`'s memo: form tuples' ids → (lanes, forms, controls, lane).
        self._combinations: dict[Any, tuple[LaneConfig, Any, tuple[ControlForm, ...], Lane]] = {}
        self._swap = threading.Lock()
        #: The fused scoring function of the set in use, ``None`` when it is not fused; until
        #: the first declaration given as data, a stand-in that compiles it.
        self._fast: Callable[[Any, Any, Engine], ScoreResult] | None
        if native:  # compiled now (seconds the first time, then loaded), not while scoring
            self._fast = self._fused_function(profiles.fused)
        else:
            self._fast = None if profiles._fused is False else self._compiles_fused(profiles)

    def _fused_function(
        self, scorer: FusedScorer | None
    ) -> Callable[[Any, Any, Engine], ScoreResult] | None:
        """The function the engine scores data with on the fused path (``None``: not fused)."""
        if scorer is None:
            return None
        if not self.native:
            return scorer.score
        fast = scorer.native()
        if "score" not in self.__dict__:  # Engine.score's test for the fused path, in C
            self.__dict__["score"] = scorer.native_entry()(self, Engine.score, Engine.score.__doc__)
        return fast

    @classmethod
    def load(
        cls,
        paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] = (),
        *,
        sources: Mapping[str, str] | None = None,
        catalogue: Catalogue | None = None,
        lanes: LaneConfig | None = None,
        history: HistoryProvider | None = None,
        use_index: bool = True,
        public_key: PublicKeySource | None = None,
        allow_drafts: bool = False,
        random: RandomSelection | None = None,
        cache: LoadCache | str | os.PathLike[str] | bool | None = None,
        native: bool = False,
    ) -> Engine:
        """With ``public_key``: ``paths`` is one signed bundle, loaded by
        :meth:`ProfileSet.from_bundle` (what the clearance software does). Otherwise load,
        check and compile profile files for development (:meth:`ProfileSet.load`: drafts are
        refused unless ``allow_drafts`` is true). ``cache``: the load cache, as for those two
        (``None``: a bundle uses the default folder, files only when
        ``RISKENGINE_CACHE_DIR`` is set). ``native``: as for :class:`Engine`."""
        if public_key is not None:
            if sources or catalogue is not None or allow_drafts:
                raise RiskEngineError(
                    "a bundle brings its own profiles and catalogue and holds no drafts: "
                    "give only the bundle's path and its public key"
                )
            if not isinstance(paths, str | os.PathLike):
                raise RiskEngineError("give one bundle file with public_key")
            return cls.from_bundle(
                paths, public_key, lanes=lanes, history=history, use_index=use_index,
                random=random, cache=True if cache is None else cache, native=native,
            )  # fmt: skip
        profiles = ProfileSet.load(
            paths,
            sources=sources,
            catalogue=catalogue,
            use_index=use_index,
            allow_drafts=allow_drafts,
            cache=cache,
        )
        return cls(profiles, lanes=lanes, history=history, random=random, native=native)

    @classmethod
    def from_bundle(
        cls,
        path: str | os.PathLike[str],
        public_key: PublicKeySource,
        *,
        lanes: LaneConfig | None = None,
        history: HistoryProvider | None = None,
        use_index: bool = True,
        random: RandomSelection | None = None,
        cache: LoadCache | str | os.PathLike[str] | bool | None = True,
        native: bool = False,
    ) -> Engine:
        """An engine on the approved set of a signed bundle (:meth:`ProfileSet.from_bundle`,
        ``cache`` as there); every result carries the bundle's revision."""
        profiles = ProfileSet.from_bundle(path, public_key, use_index=use_index, cache=cache)
        return cls(profiles, lanes=lanes, history=history, random=random, native=native)

    @property
    def bundle_revision(self) -> int | None:
        """The revision of the bundle the set in use comes from (``None``: loaded from files)."""
        return self._set.bundle_revision

    @property
    def profiles(self) -> ProfileSet:
        """The set in use now."""
        return self._set

    def replace(self, profiles: ProfileSet) -> ProfileSet:
        """Start using another set; returns the previous one. Atomic: scores in progress finish
        with the old set. The new set's input reader, and for a small set its fused scoring
        function, are compiled first (tens of milliseconds; with ``native``, the native
        function is compiled or loaded too, and :class:`NativeUnavailable` leaves the old set in
        use), so that the first declaration after the swap does not wait for them."""
        profiles.reader  # noqa: B018 - compiled here, off the scoring path
        fast = self._fused_function(profiles.fused)  # the same (native: compiled or loaded)
        with self._swap:
            old = self._set
            self._fast = fast
            self._set = profiles
        return old

    def _compiles_fused(self, profiles: ProfileSet) -> Callable[[Any, Any, Engine], ScoreResult]:
        """The stand-in for the fused function of ``profiles`` until it is compiled (on the
        first declaration given as data): compiles it, puts it in its place unless the set was
        replaced meanwhile, and scores."""

        def first(raw: Any, as_of: Any, engine: Engine) -> ScoreResult:
            fast = self._fused_function(profiles.fused)
            with self._swap:
                if self._set is profiles:
                    self._fast = fast
            if fast is None:
                raise _NotFused
            return fast(raw, as_of, engine)

        return first

    def score(
        self,
        declaration: Declaration | Mapping[str, Any],
        as_of: dt.date | None = None,
        *,
        explain: bool | Literal["fired"] = False,
        history: HistoryProvider | None = None,
    ) -> ScoreResult:
        """Score one declaration on ``as_of`` with every profile that applies on that date.

        ``declaration``: a :class:`Declaration` or plain data (parsed JSON), read by the set's
        compiled input reader (:attr:`ProfileSet.reader`): only the fields the profiles and the
        engine read are converted, as ``normalise_declaration`` converts them; a value of the
        wrong type or out of range in one of them raises :class:`DeclarationError` naming the
        field and item. ``as_of``: the scoring date; omitted, the declaration's own
        ``declaration.date`` (as :meth:`score_many` and ``riskengine score`` do; without one,
        :class:`DeclarationError` for ``declaration.date``). ``explain``: ``True`` evaluates
        every profile in force with explanations (slow: for tests and inspection); ``"fired"``
        scores as usual, then explains only the profiles that fired (cheap); anything else is a
        ``ValueError``. ``history``: overrides the engine's provider for this call.

        Data (a ``dict``) scored without ``explain`` and ``history`` by a set of at most
        ``FUSE_MAX`` profiles goes through the set's fused function
        (:mod:`riskengine.evaluator.fused`): the result is decided at once and its fields are
        built when first read (equal to the general path's result; ``docs/evaluator.md``).
        """
        fast = self._fast
        if (
            fast is not None
            and declaration.__class__ is dict
            and explain is False
            and history is None
        ):
            try:
                return fast(declaration, as_of, self)
            except Exception:  # the general path raises its own error for it
                pass
        profile_set = self._set
        if explain is not False and explain is not True and explain != "fired":
            raise ValueError(_explain_problem(explain))
        if not isinstance(declaration, Declaration):
            try:
                declaration = profile_set.reader.read(declaration)
            except DeclarationError:
                if isinstance(declaration, (str, bytes, bytearray)):
                    raise TypeError(
                        "Engine.score takes a Declaration or data (a dict); JSON text goes to "
                        "Engine.score_json"
                    ) from None
                raise
        return self._score(profile_set, declaration, as_of, explain, history)

    def score_json(
        self,
        data: bytes | bytearray | str,
        as_of: dt.date | None = None,
        *,
        explain: bool | Literal["fired"] = False,
        history: HistoryProvider | None = None,
    ) -> ScoreResult:
        """Score one declaration given as JSON text (UTF-8 ``bytes``, or ``str``), as
        :meth:`score` scores it as data. Text that is not JSON raises :class:`JsonInputError`
        (with line and column for a syntax error); JSON that is not an object, or a bad value in
        a field the set reads, :class:`DeclarationError`. Decoded by orjson when installed,
        with exactly the standard library's outcome (``docs/evaluator.md``, "The input path").
        """
        fast = self._fast
        if fast is not None and explain is False and history is None:
            raw = self._set.reader.decode(data)
            if raw is not None:
                try:
                    return fast(raw, as_of, self)
                except Exception:  # the general path raises its own error for it
                    pass
        profile_set = self._set
        if explain is not False and explain is not True and explain != "fired":
            raise ValueError(_explain_problem(explain))
        decl = profile_set.reader.read_json(data)
        return self._score(profile_set, decl, as_of, explain, history)

    def _score(
        self,
        profile_set: ProfileSet,
        decl: Declaration,
        as_of: dt.date | None,
        explain: bool | Literal["fired"],
        history: HistoryProvider | None,
    ) -> ScoreResult:
        """Score a declaration read by ``profile_set``'s reader (or normalised) with that set."""
        if as_of is None:
            as_of = decl.header.get("date")
            if not isinstance(as_of, dt.date):
                raise DeclarationError("declaration.date", None, _NO_DATE)
        if as_of.__class__ is not dt.date and (
            not isinstance(as_of, dt.date) or isinstance(as_of, dt.datetime)
        ):
            raise RiskEngineError(f"as_of must be a date, got {as_of!r}")
        active = profile_set.active(as_of)
        hist = self._history_now(history)
        header = decl.header
        has_items = bool(decl.items)
        items = decl.items if has_items else EMPTY_ITEMS
        revision = profile_set.bundle_revision
        if explain is True:
            return self._explained(decl, active, as_of, hist, header, items, has_items, revision)
        fired: list[tuple[int, FiredProfile]] = []
        entries = active.entries
        office = None
        cp = variant = None
        index = active.index  # ActiveSet.candidates, one call less
        try:
            for pos in active._all if index is None else index.candidates(header, items):
                cp, variant, region, by_office = entries[pos]
                if by_office is not None:
                    if office is None:
                        office = header.get("office")
                    chosen = by_office.get(office)
                    if chosen is None:
                        continue
                    variant, region = chosen
                raw = variant.evaluate(header, items, region, hist, as_of)
                if raw is not None:
                    if explain == "fired":
                        fill = None if by_office is None else cp.fill_for(office, as_of)
                        found = cp.run_explained(
                            variant, header, items, region, hist, as_of, has_items, fill
                        )[0]
                        assert found is not None  # the explaining path agrees with the fast one
                        fired.append((pos, found))
                    else:  # CompiledProfile.finish, inlined (one call and an initialiser less)
                        best, best_i, numbers, mask, bnh, bph = raw
                        message = variant.message(header, items[best_i], region, best, bnh, bph)
                        fired.append(
                            (
                                pos,
                                _make_fired(
                                    cp.key, cp.number, cp.name, best, variant.forms_of(mask),
                                    message, tuple(numbers) if has_items else (), None,
                                ),
                            )
                        )  # fmt: skip
        except RiskEngineError:
            raise
        except Exception as exc:
            assert cp is not None and variant is not None
            raise cp._error(exc, variant) from exc
        if not fired:
            return self._marked(
                make_result(decl.id, as_of, (), (), _GREEN, (), None, revision), header
            )
        if len(fired) > 1:
            fired.sort(key=_first)
            results = tuple(fp for _, fp in fired)
        else:
            results = (fired[0][1],)
        controls, lane = self._combined(results)
        explanations = (
            tuple(fp.explanation for fp in results if fp.explanation is not None)
            if explain == "fired"
            else ()
        )
        return self._marked(
            make_result(decl.id, as_of, results, controls, lane, explanations, None, revision),
            header,
        )

    def _history_now(self, history: HistoryProvider | None = None) -> Any:
        """The history function one declaration is scored with: the provider's (``history``,
        else the engine's) ``scoped_history()`` when it has one, else its ``history``."""
        provider = history or self.history
        scoped = _SCOPED.get(provider.__class__)
        if scoped is None:
            scoped = _SCOPED[provider.__class__] = callable(
                getattr(provider.__class__, "scoped_history", None)
            )
        return provider.scoped_history() if scoped else provider.history  # type: ignore[attr-defined]

    def _marked(self, result: ScoreResult, header: Mapping[str, Any]) -> ScoreResult:
        """``result`` with the random selection's mark when the engine has one."""
        return result if self.random is None else self.random.mark(result, header)

    def _combined(
        self, fired: Sequence[FiredProfile], lanes: LaneConfig | None = None
    ) -> tuple[tuple[ControlForm, ...], Lane]:
        """The combined control forms (sorted by code) and the lane of these fired profiles.
        Remembered per combination of the fired profiles' form tuples, which the variants make
        once per set of controls applied (``Variant.forms_of``) and so are the same objects
        declaration after declaration; an entry keeps its tuples alive and is used only for
        those very tuples and the same lane configuration (``lanes``: the engine's, unless
        given)."""
        if lanes is None:
            lanes = self.lanes
        if len(fired) == 1:
            forms: Any = fired[0].controls
            key: Any = id(forms)
        else:
            forms = tuple(fp.controls for fp in fired)
            key = tuple(map(id, forms))
        memo = self._combinations
        found = memo.get(key)
        if (
            found is not None
            and found[0] is lanes
            and (
                found[1] is forms
                or (len(fired) > 1 and all(a is b for a, b in zip(found[1], forms, strict=True)))
            )
        ):
            return found[2], found[3]
        parts = [forms] if len(fired) == 1 else forms
        merged = merge_controls([f for part in parts for f in part])
        controls = tuple(sorted(merged, key=_code))
        lane = lanes.lane(controls)
        if len(memo) >= _COMBINATIONS:
            memo.clear()
        memo[key] = (lanes, forms, controls, lane)
        return controls, lane

    def _explained(
        self,
        decl: Declaration,
        active: ActiveSet,
        as_of: dt.date,
        hist: Any,
        header: Mapping[str, Any],
        items: Sequence[Mapping[str, Any]],
        has_items: bool,
        revision: int | None,
    ) -> ScoreResult:
        """Every profile in force, evaluated by its explaining function."""
        fired: list[FiredProfile] = []
        explanations: list[ProfileExplanation] = []
        office = header.get("office")
        for pos, cp in enumerate(active.profiles):
            fill_map = active.offices[pos]
            fill = None
            if fill_map is not None:
                fill = fill_map.get(office) if office is not None else None
                if fill is None:
                    explanations.append(cp.not_applicable(office, as_of))
                    continue
            result, why = cp.run_explained(
                cp.variant(fill), header, items, cp.region(fill), hist, as_of, has_items, fill
            )
            explanations.append(why)
            if result is not None:
                fired.append(result)
        if not fired:
            scored = ScoreResult(
                decl.id, as_of, (), (), Lane.GREEN, tuple(explanations), bundle_revision=revision
            )
            return self._marked(scored, header)
        forms = merge_controls([f for fp in fired for f in fp.controls])
        controls = tuple(sorted(forms, key=_code))
        scored = ScoreResult(
            decl.id, as_of, tuple(fired), controls, self.lanes.lane(controls),
            tuple(explanations), bundle_revision=revision,
        )  # fmt: skip
        return self._marked(scored, header)

    def score_many(
        self,
        declarations: Iterable[Declaration | Mapping[str, Any] | bytes | str],
        as_of: dt.date | None = None,
        *,
        explain: bool | Literal["fired"] = False,
        history: HistoryProvider | None = None,
    ) -> list[ScoreResult | RejectedDeclaration]:
        """Score a batch with one profile set (a :meth:`replace` during the batch takes effect
        for the next batch): :class:`Declaration` objects, plain data or JSON texts (``bytes`` /
        ``str``, read as :meth:`score_json` reads them). A declaration that cannot be scored
        becomes a :class:`RejectedDeclaration` in its place instead of stopping the batch: text
        that is not JSON (the field is then empty), a value of the wrong type or out of the
        input range (``customs_value = 10**400``, a negative mass), no ``declaration.date`` to
        score it on when ``as_of`` is ``None``, or a profile that fails on it
        (:class:`EvaluationError`: a :class:`Declaration` built by hand with a value of a type
        its field does not have; the field is then empty and the reason names the profile).
        The garbage collector is paused during the batch (:func:`gc_paused`): the results it
        keeps would otherwise be walked over and over."""
        if explain is not False and explain is not True and explain != "fired":
            raise ValueError(_explain_problem(explain))
        out: list[ScoreResult | RejectedDeclaration] = []
        profile_set = self._set
        reader = profile_set.reader
        fast = self._fast if explain is False and history is None else None
        with gc_paused():
            for position, raw in enumerate(declarations):
                if fast is not None:  # the fused path; what it refuses is read below
                    data = raw if raw.__class__ is dict else reader.decode(raw)
                    if data is not None:
                        try:
                            out.append(fast(data, as_of, self))
                            continue
                        except Exception:  # read again below, which says why
                            pass
                try:
                    if isinstance(raw, Declaration):
                        decl = raw
                    elif isinstance(raw, (bytes, bytearray, str)):
                        decl = reader.read_json(raw)
                    else:
                        decl = reader.read(raw)
                except JsonInputError as exc:
                    where = "" if exc.line is None else f" (line {exc.line}, column {exc.column})"
                    out.append(RejectedDeclaration(position, None, "", None, f"{exc}{where}"))
                    continue
                except DeclarationError as exc:
                    out.append(
                        RejectedDeclaration(
                            position, _ident(raw), exc.field, exc.item, exc.reason,
                        )
                    )  # fmt: skip
                    continue
                day = as_of if as_of is not None else decl.header.get("date")
                if not isinstance(day, dt.date):
                    out.append(
                        RejectedDeclaration(
                            position, decl.id, "declaration.date", None, _NO_DATE,
                        )
                    )  # fmt: skip
                    continue
                try:
                    out.append(self._score(profile_set, decl, day, explain, history))
                except EvaluationError as exc:
                    out.append(RejectedDeclaration(position, decl.id, "", None, str(exc)))
        return out


def _ident(raw: Any) -> str | None:
    """The id of a declaration that could not be read, when it has one (JSON text is decoded
    again by the standard library: this is for rejects only)."""
    if isinstance(raw, bytes | bytearray | str):
        try:
            raw = load_json(bytes(raw) if isinstance(raw, bytearray) else raw)
        except JsonInputError:
            return None
    ident = raw.get("id") if isinstance(raw, Mapping) else None
    return None if ident is None else str(ident)
