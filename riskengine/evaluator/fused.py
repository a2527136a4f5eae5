"""The fused scoring function of a small profile set: reading and deciding in one function.

``Engine.score(dict)`` on the general path reads the declaration into a :class:`Declaration`
(the set's :class:`~riskengine.evaluator.inputs.InputReader`: a header dict and a dict per goods
item), then calls each candidate profile's generated ``evaluate`` on those dicts, then builds
every fired profile with its message and the combined controls. For a set of at most
:data:`FUSE_MAX` profiles that are central (no regional fills) and use no history, the set is
also compiled into **one** generated function (:class:`FusedScorer`, compiled on the first
declaration scored as data):

* the declaration's fields are read and converted exactly as the input reader converts them
  (the same generated conversions, the same :class:`DeclarationError`), but into local
  variables instead of dicts, and each goods item into a tuple;
* every profile in force on the scoring date is evaluated inline on those locals, by the code
  of its own ``evaluate`` (:class:`riskengine.evaluator.codegen.FusedBlock`): the same
  indicators, exceptions, degree and control masks, in the set's order;
* a declaration on which nothing fires gets its (green) result at once; otherwise the result is
  a :class:`PendingResult`: the decision is made — which profiles fired, their degrees, the
  fired items and the controls that apply on them — and the presentation of it (each fired
  profile's :class:`FiredProfile` with its rendered message, the combined controls, the lane)
  is built from the values read, kept in the result, on the first access to ``fired``,
  ``controls`` or ``lane``. A pending result equals, hashes, prints and pickles as the
  :class:`ScoreResult` the general path gives.

Anything the fused function refuses (a bad value, a declaration without a date, a profile that
fails) is scored again by the general path, which raises its own error: errors, their fields
and messages are the general path's. ``tests/test_evaluator_fused.py`` checks that both paths
give equal results on the sample profiles and on generated sets and declarations.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from riskengine.catalogue import Catalogue, Field
from riskengine.diagnostics import RiskEngineError
from riskengine.evaluator import codegen
from riskengine.evaluator.codegen import FusedBlock
from riskengine.evaluator.compiled import CompiledProfile, FiredProfile
from riskengine.evaluator.inputs import DATE_CACHE, _scope, _Writer
from riskengine.evaluator.making import slotted_maker
from riskengine.evaluator.results import Lane, ScoreResult, make_result

if TYPE_CHECKING:
    from riskengine.evaluator.engine import Engine, ProfileSet

__all__ = ["FUSE_MAX", "FusedScorer", "PendingResult", "fuse_problem"]

#: The most profiles a set may have to be fused (beyond it the index, which evaluates only the
#: candidate profiles of a declaration, is the faster path; docs/performance.md).
FUSE_MAX = 32

_make_fired = slotted_maker(FiredProfile)
#: The fields of a :class:`PendingResult` built on first access (the others are set at once).
_LAZY = tuple(a.name for a in ScoreResult.__attrs_attrs__)
_SLOTS = {name: ScoreResult.__dict__[name] for name in _LAZY}
_FIELDS = _LAZY


def _lazy(name: str) -> property:
    """A field of :class:`PendingResult`: the slot's value, all of them set on the first access
    to any (or before the first write to one: a random selection sets the lane and its mark)."""
    slot = _SLOTS[name]

    def get(self: PendingResult) -> Any:
        if _STATE.__get__(self, PendingResult) is not None:
            self._materialise()
        return slot.__get__(self, ScoreResult)

    def put(self: PendingResult, value: Any) -> None:
        if _STATE.__get__(self, PendingResult) is not None:
            self._materialise()
        slot.__set__(self, value)

    return property(get, put, doc=f"As :attr:`ScoreResult.{name}`.")


class PendingResult(ScoreResult):
    """A :class:`ScoreResult` of the fused path: its fields are set on first access from what
    the scoring decided and read (see the module's documentation). Equal to, hashed, printed
    and pickled as the plain :class:`ScoreResult` with the same fields."""

    __slots__ = ("_state",)
    _state: Any

    declaration_id = _lazy("declaration_id")
    as_of = _lazy("as_of")
    fired = _lazy("fired")
    controls = _lazy("controls")
    lane = _lazy("lane")
    explanations = _lazy("explanations")
    random_selected = _lazy("random_selected")
    bundle_revision = _lazy("bundle_revision")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Every field given, as :class:`ScoreResult` takes them (``attrs.evolve``)."""
        _STATE.__set__(self, None)
        ScoreResult.__init__(self, *args, **kwargs)

    @property
    def selected(self) -> bool:
        """Whether at least one profile fired."""
        state = self._state
        return bool(self.fired) if state is None else state[0] is not None

    def _materialise(self) -> None:
        state = self._state
        if state is None:  # another thread got here first
            return
        hits, ident, as_of, scorer = state[:4]
        if hits is None:
            done: tuple[FiredProfile, ...] = ()
            controls: tuple[Any, ...] = ()
            lane = Lane.GREEN
        else:
            engine, lanes, header, records, has_items = state[4:]
            h = scorer.header_dict(header)
            fired: list[FiredProfile] = []
            for pos, raw in hits:
                cp, variant, region = scorer.entries[pos]
                best, best_i, numbers, mask, bnh, bph = raw
                try:
                    message = variant.message(
                        h, scorer.item_dict(records[best_i]), region, best, bnh, bph
                    )
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
            controls, lane = engine._combined(done, lanes)
        slots = _SLOTS
        slots["declaration_id"].__set__(self, ident)
        slots["as_of"].__set__(self, as_of)
        slots["fired"].__set__(self, done)
        slots["controls"].__set__(self, controls)
        slots["lane"].__set__(self, lane)
        slots["explanations"].__set__(self, ())
        slots["random_selected"].__set__(self, None)
        slots["bundle_revision"].__set__(self, scorer.revision)
        _STATE.__set__(self, None)

    def plain(self) -> ScoreResult:
        """The same result as a plain :class:`ScoreResult`."""
        return make_result(*(getattr(self, name) for name in _FIELDS))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PendingResult):
            other = other.plain()
        if isinstance(other, ScoreResult):
            return self.plain() == other
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash(self.plain())

    def __repr__(self) -> str:
        return repr(self.plain())

    def __reduce__(self) -> tuple[Any, ...]:
        return ScoreResult, tuple(getattr(self, name) for name in _FIELDS)


_STATE = PendingResult.__dict__["_state"]


def fuse_problem(profiles: Sequence[CompiledProfile]) -> str | None:
    """Why a set of these profiles is not fused (``None``: it is)."""
    if len(profiles) > FUSE_MAX:
        return f"{len(profiles)} profiles (fused up to {FUSE_MAX})"
    for cp in profiles:
        if cp.regional:
            return f"{cp.key} is regional"
        unit = cp.default.unit
        if codegen.history_used(unit):
            return f"{cp.key} uses history"
    return None


#: Names a block must not read: those of ``evaluate``'s parameters (a block reads locals).
_EVALUATE_NAMES = frozenset({"h", "it", "items", "region", "hist"})


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
        self.entries: tuple[tuple[CompiledProfile, Any, Any], ...] = tuple(
            (cp, cp.default, cp.region(None)) for cp in profiles
        )
        catalogue: Catalogue = profile_set.catalogue
        fields = set(profile_set.reader.fields)
        header = [f for f in catalogue.scope_fields("declaration") if f.path in fields]
        items = [f for f in catalogue.scope_fields("item") if f.path in fields]
        self._header_names = tuple(f.name for f in header)
        self._item_names = tuple(f.name for f in items)
        local = {f.path: f"_h{k}" for k, f in enumerate(header)}
        local.update({f.path: f"_i{k}" for k, f in enumerate(items)})
        item_locals = [local[f.path] for f in items]

        def into(field: Field) -> str:
            return local[field.path]

        unpack = "_" if not item_locals else f"({''.join(v + ', ' for v in item_locals)})"
        blocks = []
        for pos, (_, variant, _) in enumerate(self.entries):
            blocks.append((variant.unit, FusedBlock(pos, local, unpack)))
        consts, block_lines = codegen.fused_blocks(blocks)

        w = _Writer()
        dates = w.name("DATES", {})
        w.emit(0, "def score(raw, as_of, engine):")
        w.emit(1, "if type(raw) is not dict and not isinstance(raw, Mapping):")
        w.emit(2, "raise _shape('declaration', None, 'an object', raw)")
        _scope(w, 1, header, "raw", "", "None", "declaration", dates, into)
        w.emit(1, "its = raw.get('items')")
        w.emit(1, "n = 0")
        w.emit(1, "if its is None:")
        w.emit(2, "pass")
        w.emit(1, "elif type(its) is list or isinstance(its, (list, tuple)):")
        w.emit(2, "recs = []")
        w.emit(2, "for it in its:")
        w.emit(3, "n += 1")
        w.emit(3, "if type(it) is not dict and not isinstance(it, Mapping):")
        w.emit(4, "raise _shape('item', n, 'an object', it)")
        _scope(w, 3, items, "it", "", "n", "item", dates, into)
        w.emit(3, f"recs.append({unpack if item_locals else '()'})")
        w.emit(1, "else:")
        w.emit(2, "raise _shape('items', None, 'a list', its)")
        w.emit(1, "count = n")  # the profiles' loops count items with n too
        w.emit(1, "if n == 0:")  # a declaration without items: one empty item, as evaluate has
        w.emit(2, "recs = _EMPTY")
        for var in item_locals:
            w.emit(2, f"{var} = None")
        if "declaration.id" in catalogue:
            w.emit(1, f"ident = {local['declaration.id']}")
        else:  # as the reader: the input's own "id", as text
            w.emit(1, "ident = raw.get('id')")
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
        for pos, lines in enumerate(block_lines):
            w.emit(1, f"if on[{pos}]:")
            for line in lines:
                w.emit(2, line)
        office = local.get("declaration.office", "None")
        regime = local.get("declaration.regime", "None")
        header_tuple = "".join(local[f.path] + ", " for f in header)
        w.emit(1, "r = _new(_Pending)")
        w.emit(1, "if hits is None:")
        w.emit(2, "_set_state(r, (None, ident, as_of, _SELF))")
        w.emit(1, "else:")
        w.emit(
            2,
            "_set_state(r, (hits, ident, as_of, _SELF, engine, engine.lanes, "
            f"({header_tuple}), recs, count != 0))",
        )
        w.emit(1, "if engine.random is not None:")
        w.emit(2, f"r = engine.random.mark(r, {{'office': {office}, 'regime': {regime}}})")
        w.emit(1, "return r")

        source = "\n".join(
            [f"# Generated by riskengine: the fused scoring function of {len(profiles)} "
             "profile(s). Do not edit.", *consts, "", *w.lines]
        ) + "\n"  # fmt: skip
        self.source = source
        self._on: dict[dt.date, tuple[bool, ...]] = {}
        self._lock = threading.Lock()
        env = codegen.namespace()
        env.update(w.env)
        env.update(
            {
                "_EMPTY": ((None,) * len(item_locals),),
                "_NoDate": _NoDate,
                "_ON": self._on,
                "_flags": self._flags,
                "_new": object.__new__,
                "_Pending": PendingResult,
                "_set_state": _STATE.__set__,
                "_SELF": self,
            }
        )
        code = compile(source, f"<riskengine fused set of {len(profiles)}>", "exec")
        fn_code = next(c for c in code.co_consts if getattr(c, "co_name", None) == "score")
        leaked = _EVALUATE_NAMES & set(fn_code.co_names)
        if leaked:  # pragma: no cover - a block that reads a dict the fused function has not
            raise ValueError(f"this set is not fused: a block reads {sorted(leaked)}")
        exec(code, env)
        self._env = env
        self.score: Callable[[Any, dt.date | None, Engine], ScoreResult] = env["score"]

    def _flags(self, day: dt.date) -> tuple[bool, ...]:
        """Which of the set's profiles apply on ``day`` (remembered per day)."""
        active = {id(cp) for cp in self._set.active(day).profiles}
        flags = tuple(id(cp) in active for cp, _, _ in self.entries)
        with self._lock:
            if len(self._on) >= DATE_CACHE:
                self._on.clear()
            self._on[day] = flags
        return flags

    def header_dict(self, values: tuple[Any, ...]) -> dict[str, Any]:
        """The header as the input reader gives it, from the values read."""
        return {k: v for k, v in zip(self._header_names, values, strict=True) if v is not None}

    def item_dict(self, values: tuple[Any, ...]) -> dict[str, Any]:
        """A goods item as the input reader gives it, from the values read."""
        return {k: v for k, v in zip(self._item_names, values, strict=True) if v is not None}


class _NoDate(Exception):
    """No as-of date: the general path raises the error that says so."""
