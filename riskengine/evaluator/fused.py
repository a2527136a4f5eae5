"""The fused scoring function of a small profile set: reading and deciding in one function.

``Engine.score(dict)`` on the general path reads the declaration into a :class:`Declaration`
(the set's :class:`~riskengine.evaluator.inputs.InputReader`: a header dict and a dict per goods
item), then calls each candidate profile's generated ``evaluate`` on those dicts, then builds
every fired profile with its message and the combined controls. A set of at most
:data:`FUSE_MAX` profiles is also compiled into **one** generated function
(:class:`FusedScorer`, compiled on the first declaration scored as data):

* the declaration's fields are read and converted exactly as the input reader converts them
  (the same generated conversions, the same :class:`DeclarationError`), but into local
  variables instead of dicts; a declaration with one goods item builds no record at all, and
  several items become tuples;
* every profile in force on the scoring date is evaluated inline on those locals, by the code
  of its own ``evaluate`` (:class:`riskengine.evaluator.codegen.FusedBlock`): the same
  indicators, exceptions, history, degree and control masks, in the set's order; a regional
  profile runs the block of the variant its office's fill of the day brings, with that fill's
  regional values (one block per variant);
* the result is decided at once — which profiles fired, their degrees, the fired items and the
  controls that apply on them — and is a :class:`PendingResult`, whose presentation (each fired
  profile's :class:`FiredProfile` with its rendered message, the combined controls, the lane)
  is built from the values read, kept in the result, on the first access to any field; it then
  becomes the plain :class:`ScoreResult` the general path gives.

Anything the fused function refuses (a bad value, a declaration without a date, a profile that
fails) is scored again by the general path, which raises its own error: errors, their fields
and messages are the general path's. ``tests/test_evaluator_fused.py`` checks that both paths
give equal results on the sample profiles with history and regional fills and on generated sets
and declarations.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

from riskengine.catalogue import Catalogue, Field
from riskengine.diagnostics import RiskEngineError
from riskengine.evaluator import codegen
from riskengine.evaluator.codegen import CompileError, FusedBlock
from riskengine.evaluator.compiled import CompiledProfile, FiredProfile
from riskengine.evaluator.inputs import DATE_CACHE, _scope, _Writer
from riskengine.evaluator.making import slotted_maker
from riskengine.evaluator.results import Lane, ScoreResult

if TYPE_CHECKING:
    from riskengine.evaluator.engine import Engine, ProfileSet

__all__ = ["FUSE_MAX", "FusedScorer", "PendingResult", "fuse_problem"]

#: The most profiles a set may have to be fused (beyond it the index, which evaluates only the
#: candidate profiles of a declaration, is the faster path; docs/performance.md).
FUSE_MAX = 10

_make_fired = slotted_maker(FiredProfile)
_FIELDS: tuple[str, ...] = tuple(a.name for a in attrs.fields(ScoreResult))
#: Each field's slot (the class's member descriptor) and its setter.
_SLOTS = {name: ScoreResult.__dict__[name] for name in _FIELDS}
#: Where a pending result keeps what it was decided from: the slot of ``explanations``, which
#: is ``()`` for every result of the fused path once it is built.
_STATE = _SLOTS["explanations"]
_set_id = _SLOTS["declaration_id"].__set__
_set_as_of = _SLOTS["as_of"].__set__
_set_fired = _SLOTS["fired"].__set__
_set_controls = _SLOTS["controls"].__set__
_set_lane = _SLOTS["lane"].__set__
_set_explanations = _SLOTS["explanations"].__set__
_set_random = _SLOTS["random_selected"].__set__
_set_revision = _SLOTS["bundle_revision"].__set__
_get_state = _STATE.__get__
_GREEN = Lane.GREEN
_set_class = object.__setattr__  # a frozen attrs class refuses its own __setattr__


def _lazy(name: str) -> property:
    """A field of :class:`PendingResult`: every field is built on the first access to any (or
    before the first write to one: a random selection sets the lane and its mark)."""
    slot = _SLOTS[name]

    def get(self: ScoreResult) -> Any:
        _materialise(self)
        return slot.__get__(self, ScoreResult)

    def put(self: ScoreResult, value: Any) -> None:
        _materialise(self)
        slot.__set__(self, value)

    return property(get, put, doc=f"As :attr:`ScoreResult.{name}`.")


class PendingResult(ScoreResult):
    """A :class:`ScoreResult` of the fused path that is not built yet: it holds what the
    scoring decided and read (see the module's documentation), and on the first access to any
    field it sets every field and becomes a plain :class:`ScoreResult` (its class is changed:
    the two have the same slots), so that later reads cost what a plain result's cost. It
    compares, hashes, prints and pickles as that plain result."""

    __slots__ = ()

    declaration_id = _lazy("declaration_id")
    as_of = _lazy("as_of")
    fired = _lazy("fired")
    controls = _lazy("controls")
    lane = _lazy("lane")
    explanations = _lazy("explanations")
    random_selected = _lazy("random_selected")
    bundle_revision = _lazy("bundle_revision")

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # attrs.evolve makes one so
        _set_explanations(self, ())
        _set_class(self, "__class__", ScoreResult)
        ScoreResult.__init__(self, *args, **kwargs)

    @property
    def selected(self) -> bool:
        """Whether at least one profile fired (known without building the result)."""
        state = _get_state(self, ScoreResult)
        if not state:  # built by another thread meanwhile
            return bool(_SLOTS["fired"].__get__(self, ScoreResult))
        return state[0] is not None

    def __eq__(self, other: object) -> bool:
        _materialise(self)
        return self == other

    def __ne__(self, other: object) -> bool:
        _materialise(self)
        return self != other

    def __hash__(self) -> int:
        _materialise(self)
        return hash(self)

    def __repr__(self) -> str:
        _materialise(self)
        return repr(self)

    def __reduce__(self) -> tuple[Any, ...]:
        _materialise(self)
        return ScoreResult, tuple(getattr(self, name) for name in _FIELDS)


def _materialise(result: ScoreResult) -> None:
    """Set every field of a :class:`PendingResult` from its state and make it a plain
    :class:`ScoreResult` (nothing to do for one built already, by this thread or another:
    threads that build it at once compute and write the same values)."""
    state = _get_state(result, ScoreResult)
    if not state:
        return
    hits, ident, as_of, scorer = state[:4]
    if hits is None:  # nothing fired: the green result
        done: tuple[FiredProfile, ...] = ()
        controls: tuple[Any, ...] = ()
        lane = _GREEN
    else:
        done, (controls, lane) = _fired(hits, scorer, *state[4:])
    _set_id(result, ident)
    _set_as_of(result, as_of)
    _set_fired(result, done)
    _set_controls(result, controls)
    _set_lane(result, lane)
    _set_random(result, None)
    _set_revision(result, scorer.revision)
    _set_explanations(result, ())  # the state goes last: another thread may be reading it
    _set_class(result, "__class__", ScoreResult)


def _fired(
    hits: list[Any],
    scorer: FusedScorer,
    engine: Engine,
    lanes: Any,
    header: tuple[Any, ...],
    records: Any,
    has_items: bool,
) -> tuple[tuple[FiredProfile, ...], tuple[Any, Any]]:
    """The fired profiles of ``hits`` (messages rendered from the values read) and their
    combined controls and lane under ``lanes``."""
    fired: list[FiredProfile] = []
    for pos, vi, region, raw in hits:
        cp, variants, messages = scorer.entries[pos]
        variant = variants[vi]
        best, best_i, numbers, mask, bnh, bph = raw
        try:
            message = messages[vi](header, records[best_i], region, best, bnh, bph)
        except RiskEngineError:
            raise
        except Exception as exc:
            raise cp._error(exc, variant) from exc
        fired.append(
            _make_fired(
                cp.key, cp.number, cp.name, best, variant.forms_of(mask), message,
                tuple(numbers) if has_items else (), None,
            )
        )  # fmt: skip
    done = tuple(fired)
    return done, engine._combined(done, lanes)


def fuse_problem(profiles: Sequence[CompiledProfile]) -> str | None:
    """Why a set of these profiles is not fused (``None``: it is)."""
    if len(profiles) > FUSE_MAX:
        return f"{len(profiles)} profiles (fused up to {FUSE_MAX})"
    return None


def _variants(cp: CompiledProfile) -> list[Any]:
    """The profile's distinct variants: its own, then its fills' (in fill order)."""
    out = [cp.default]
    for variant in cp._variants.values():
        if all(variant is not v for v in out):
            out.append(variant)
    return out


def _tuple(names: Sequence[str]) -> str:
    """The source of a tuple of these names (``()`` for none)."""
    return f"({''.join(name + ', ' for name in names)})"


#: Names a block must not read: ``evaluate``'s dict parameters (a block reads locals).
_EVALUATE_NAMES = frozenset({"h", "it", "items"})


@attrs.frozen
class _Plan:
    """What the fused function of a set is written from (:func:`_write`)."""

    header: list[Field]  # the header fields read, in catalogue order
    items: list[Field]  # the goods item fields read
    local: dict[str, str]  # field path -> the local it is read into
    profiles: Sequence[CompiledProfile]
    blocks: list[list[list[str]]]  # per profile, per variant: the block's lines
    uses_history: bool
    kept_header: str  # the tuple of header locals a pending result keeps
    has_id: bool  # the catalogue has declaration.id


def _write(plan: _Plan, native: bool) -> _Writer:
    """The fused function ``score(raw, as_of, engine)`` of ``plan``: Python source, or with
    ``native`` the Cython source :mod:`riskengine.evaluator.native` compiles (exact dicts and
    lists read through C; anything else raises ``_NotNative``, for the Python function)."""
    header, items, local = plan.header, plan.items, plan.local
    item_locals = [local[f.path] for f in items]

    def into(field: Field) -> str:
        return local[field.path]

    w = _Writer()
    dates = w.name("DATES", {})

    def read_item(depth: int, number: str) -> None:
        """The goods item ``_item`` (number ``number``) read into the item locals."""
        if native:
            w.emit(depth, "if type(_item) is not dict:")
            w.emit(depth + 1, "raise _NotNative")
        else:
            w.emit(depth, "if type(_item) is not dict and not isinstance(_item, Mapping):")
            w.emit(depth + 1, f"raise _shape('item', {number}, 'an object', _item)")
        _scope(w, depth, items, "_item", "", number, "item", dates, into, native)

    w.emit(0, "def score(raw, as_of, engine):")
    w.emit(1, "if as_of is not None and as_of.__class__ is not _day:")
    w.emit(2, "raise _NoDate")  # a datetime or anything else: the general path says why
    if native:  # the engine gives only dicts; another mapping anywhere: the Python function
        w.emit(1, "if type(raw) is not dict:")
        w.emit(2, "raise _NotNative")
    else:
        w.emit(1, "if type(raw) is not dict and not isinstance(raw, Mapping):")
        w.emit(2, "raise _shape('declaration', None, 'an object', raw)")
    _scope(w, 1, header, "raw", "", "None", "declaration", dates, into, native)
    w.emit(1, "its = (<dict>raw).get('items')" if native else "its = raw.get('items')")
    # one goods item, the common case: read into the locals, no records (recs is None)
    w.emit(1, f"if {'type(its)' if native else 'its.__class__'} is list and len(its) == 1:")
    w.emit(2, "count = 1")
    w.emit(2, "recs = None")
    w.emit(2, "_item = (<list>its)[0]" if native else "_item = its[0]")
    read_item(2, "1")
    w.emit(1, "else:")
    w.emit(2, "n = 0")
    w.emit(2, "if its is None:")
    w.emit(3, "pass")
    w.emit(2, "elif type(its) is list or isinstance(its, (list, tuple)):")
    w.emit(3, "recs = []")
    w.emit(3, "for _item in its:")
    w.emit(4, "n += 1")
    read_item(4, "n")
    w.emit(4, f"recs.append({_tuple(item_locals)})")
    w.emit(2, "else:")
    w.emit(3, "raise _shape('items', None, 'a list', its)")
    w.emit(2, "count = n")  # the profiles' loops count items with n too
    w.emit(2, "if n == 0:")  # no goods item: one empty item, as evaluate is given
    w.emit(3, "recs = _EMPTY")
    for var in item_locals:
        w.emit(3, f"{var} = None")
    if plan.has_id:
        w.emit(1, f"ident = {local['declaration.id']}")
    else:  # as the reader: the input's own "id", as text
        w.emit(1, "ident = (<dict>raw).get('id')" if native else "ident = raw.get('id')")
        w.emit(1, "if ident is not None:")
        w.emit(2, "ident = str(ident)")
    w.emit(1, "if as_of is None:")
    if "declaration.date" in local:
        w.emit(2, f"as_of = {local['declaration.date']}")
        w.emit(2, "if as_of is None:")
        w.emit(3, "raise _NoDate")
    else:
        w.emit(2, "raise _NoDate")
    w.emit(1, "on = _ON.get(as_of)")
    w.emit(1, "if on is None:")
    w.emit(2, "on = _flags(as_of)")
    w.emit(1, "hits = None")
    office = local.get("declaration.office", "None")
    if plan.uses_history:  # the provider's history function for this declaration
        w.emit(1, "hist = engine._history_now()")
    for pos, (cp, per_variant) in enumerate(zip(plan.profiles, plan.blocks, strict=True)):
        if not cp.regional:
            w.emit(1, f"if on[{pos}]:")
            for line in per_variant[0]:
                w.emit(2, line)
            continue
        # a regional profile: the variant and regional values of the office's fill
        w.emit(1, f"sel = on[{pos}]")
        w.emit(1, "if sel:")
        w.emit(2, f"chosen = sel.get({office})")
        w.emit(2, "if chosen is not None:")
        w.emit(3, "vi, region = chosen")
        for vi, lines in enumerate(per_variant):
            w.emit(3, f"{'if' if vi == 0 else 'elif'} vi == {vi}:")
            for line in lines:
                w.emit(4, line)
    regime = local.get("declaration.regime", "None")
    w.emit(1, "r = _new(_Pending)")
    w.emit(1, "if hits is None:")
    w.emit(2, "_set_state(r, (None, ident, as_of, _SELF))")
    w.emit(1, "else:")
    w.emit(
        2,
        "_set_state(r, (hits, ident, as_of, _SELF, engine, engine.lanes, "
        f"{plan.kept_header}, "
        f"({_tuple(item_locals)},) if recs is None else recs, count != 0))",
    )
    w.emit(1, "if engine.random is not None:")
    w.emit(2, f"r = engine.random.mark(r, {{'office': {office}, 'regime': {regime}}})")
    w.emit(1, "return r")
    return w


class FusedScorer:
    """The fused scoring function of one :class:`ProfileSet` (see the module's documentation).
    ``score(raw, as_of, engine)`` gives the result of ``engine`` scoring the data ``raw``, or
    raises for the general path to score it; ``source`` is the generated source."""

    def __init__(self, profile_set: ProfileSet) -> None:
        profiles = profile_set.profiles
        problem = fuse_problem(profiles)
        if problem is not None:
            raise ValueError(f"this set is not fused: {problem}")
        self._set = profile_set
        #: The bundle revision every result carries.
        self.revision = profile_set.bundle_revision
        variants = [_variants(cp) for cp in profiles]
        self._index = [{id(v): k for k, v in enumerate(vs)} for vs in variants]
        catalogue: Catalogue = profile_set.catalogue
        fields = set(profile_set.reader.fields)
        header = [f for f in catalogue.scope_fields("declaration") if f.path in fields]
        items = [f for f in catalogue.scope_fields("item") if f.path in fields]
        local = {f.path: f"_h{k}" for k, f in enumerate(header)}
        local.update({f.path: f"_i{k}" for k, f in enumerate(items)})
        item_locals = [local[f.path] for f in items]
        header_locals = [local[f.path] for f in header]
        # the targets a record's and the header's values are unpacked into
        unpack = _tuple(item_locals) if item_locals else "_"
        header_unpack = _tuple(header_locals) if header_locals else "_"
        blocks = []
        uses_history = False
        constants: dict[str, Any] = {}
        for pos, (cp, vs) in enumerate(zip(profiles, variants, strict=True)):
            for vi, variant in enumerate(vs):
                name = f"_PP{pos}_{vi}"
                constants[name] = variant.unit.profile
                uses_history = uses_history or codegen.history_used(variant.unit)
                block = FusedBlock(
                    pos, local, unpack, header_unpack=header_unpack, variant=vi,
                    profile_const=name, region="region" if cp.regional else "_NOREGION",
                )  # fmt: skip
                blocks.append((variant.unit, block))
        consts, flat_lines, messages = codegen.fused_blocks(blocks)
        block_lines: list[list[list[str]]] = []
        for (_, block), lines in zip(blocks, flat_lines, strict=True):
            if block.variant == 0:
                block_lines.append([])
            block_lines[-1].append(lines)
        unpack_header = f"    {header_unpack} = hdr"
        keep_header = any(  # a message reads a header field: the result keeps the header
            re.search(r"\b_h\d+\b", line) for line in messages if line != unpack_header
        )
        if not keep_header:
            messages = [line for line in messages if line != unpack_header]
        kept_header = _tuple(header_locals if keep_header else ())

        self._plan = _Plan(
            header, items, local, profiles, block_lines, uses_history, kept_header,
            has_id="declaration.id" in catalogue,
        )  # fmt: skip
        w = _write(self._plan, native=False)

        source = "\n".join(
            [f"# Generated by riskengine: the fused scoring function of {len(profiles)} "
             "profile(s). Do not edit.", *consts, "", *w.lines, *messages]
        ) + "\n"  # fmt: skip
        self.source = source
        self._on: dict[dt.date, tuple[bool, ...]] = {}
        self._lock = threading.Lock()
        self._consts = consts
        self._native: (
            tuple[Callable[[Any, dt.date | None, Engine], ScoreResult], Callable[..., Any]] | None
        ) = None
        self._compiling = threading.Lock()
        self._constants = constants
        env = self._namespace(w)
        code = compile(source, f"<riskengine fused set of {len(profiles)}>", "exec")
        fn_code = next(c for c in code.co_consts if getattr(c, "co_name", None) == "score")
        leaked = _EVALUATE_NAMES & {*fn_code.co_names, *fn_code.co_varnames}
        if leaked:  # pragma: no cover - codegen._check_bound catches it first
            raise CompileError(f"a fused block reads {sorted(leaked)}")
        exec(code, env)
        self._env = env
        #: Per position in the set: the profile, its variants and their fused message functions.
        self.entries: tuple[tuple[CompiledProfile, list[Any], list[Any]], ...] = tuple(
            (cp, vs, [env[f"message{pos}_{vi}"] for vi in range(len(vs))])
            for pos, (cp, vs) in enumerate(zip(profiles, variants, strict=True))
        )
        self.score: Callable[[Any, dt.date | None, Engine], ScoreResult] = env["score"]

    def _namespace(self, w: _Writer) -> dict[str, Any]:
        """The names the fused function written by ``w`` reads."""
        env = codegen.namespace()
        env.update(w.env)
        env.update(
            {
                "_EMPTY": ((None,) * len(self._plan.items),),
                "_NoDate": _NoDate,
                "_NotNative": _NotNative,
                "_day": dt.date,
                "_ON": self._on,
                "_flags": self._flags,
                "_new": object.__new__,
                "_Pending": PendingResult,
                "_set_state": _set_explanations,
                "_SELF": self,
                "_NOREGION": MappingProxyType({}),
                **self._constants,
            }
        )
        return env

    def native(self) -> Callable[[Any, dt.date | None, Engine], ScoreResult]:
        """:attr:`score` compiled to machine code (:mod:`riskengine.evaluator.native`; built
        or loaded on the first call, then kept); raises
        :class:`~riskengine.evaluator.native.NativeUnavailable` when it cannot be."""
        return self._compiled()[0]

    def native_entry(self) -> Callable[..., Any]:
        """The compiled extension's ``entry(engine, method, doc)``: a native engine's own
        ``score`` (:meth:`Engine._fused_function`)."""
        return self._compiled()[1]

    def _compiled(
        self,
    ) -> tuple[Callable[[Any, dt.date | None, Engine], ScoreResult], Callable[..., Any]]:
        found = self._native
        if found is None:
            from riskengine.evaluator import native

            with self._compiling:  # not self._lock: scoring on a new date takes that one
                found = self._native
                if found is None:
                    found = native.compile_scorer(self)
                    self._native = found
        return found

    def native_source(self) -> tuple[list[str], list[str], dict[str, Any]]:
        """The fused function in Cython (:mod:`riskengine.evaluator.native` compiles it): the
        constants' lines, the function's lines and the names it reads (the same values as the
        Python function's, but its own converters and date memo)."""
        w = _write(self._plan, native=True)
        return list(self._consts), w.lines, self._namespace(w)

    def _flags(self, day: dt.date) -> tuple[Any, ...]:
        """Per profile of the set, whether it applies on ``day``: ``False``, ``True``, or for a
        regional profile its fills that day, office → (variant, regional values) (remembered
        per day)."""
        active = self._set.active(day)
        entries = {id(cp): entry for cp, entry in zip(active.profiles, active.entries, strict=True)}
        out: list[Any] = []
        for pos, cp in enumerate(self._set.profiles):
            entry = entries.get(id(cp))
            if entry is None:
                out.append(False)
            elif entry[3] is None:
                out.append(True)
            else:
                index = self._index[pos]
                out.append(
                    {o: (index[id(v)], region) for o, (v, region) in entry[3].items()} or False
                )
        flags = tuple(out)
        with self._lock:
            if len(self._on) >= DATE_CACHE:
                self._on.clear()
            self._on[day] = flags
        return flags


class _NotNative(Exception):
    """The native fused function met a mapping that is not a ``dict`` (or a list's subclass):
    the engine scores the declaration on another path."""


class _NoDate(Exception):
    """No as-of date, or one that is not a date: the general path raises the error that says
    so."""
