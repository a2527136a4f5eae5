"""A compiled profile: its generated functions per fill, validity, and results of one profile."""

from __future__ import annotations

import datetime as dt
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import attrs

from riskengine import model as m
from riskengine.catalogue import Catalogue
from riskengine.diagnostics import RiskEngineError
from riskengine.evaluator import codegen, explain
from riskengine.evaluator.cache import CachedVariant, CacheMismatch
from riskengine.evaluator.codegen import Generated, Unit
from riskengine.evaluator.explain import ExplainShape, FillInfo, ProfileExplanation
from riskengine.evaluator.history import HistoryProvider
from riskengine.evaluator.index import IndexPlan, degree_bounds, plan_index
from riskengine.semantics.fills import FillChooser, fills_of

__all__ = [
    "CompiledProfile",
    "ControlForm",
    "EvaluationError",
    "FiredProfile",
    "Variant",
    "merge_controls",
]

EMPTY_ITEMS: tuple[Mapping[str, Any], ...] = (MappingProxyType({}),)
_NO_REGION: Mapping[str, Any] = MappingProxyType({})


class EvaluationError(RiskEngineError):
    """Evaluating a profile failed (a value of an unexpected type reached it). Names the profile,
    the profile file and line, and the goods item when known."""

    def __init__(self, key: str, where: str, reason: str) -> None:
        self.key = key
        self.where = where
        self.reason = reason
        super().__init__(f"profile {key} ({where}): {reason}")


@attrs.frozen
class ControlForm:
    """A control form to carry out: procedure code, name and kind."""

    code: str
    name: str
    kind: m.ControlKind


def merge_controls(forms: Sequence[ControlForm]) -> tuple[ControlForm, ...]:
    """One form per procedure code, the strongest kind winning (mandatory > mandatory when > if
    necessary; among equals the first), in order of first appearance."""
    best: dict[str, ControlForm] = {}
    for form in forms:
        seen = best.get(form.code)
        if seen is None or form.kind.strength > seen.kind.strength:
            best[form.code] = form
    order = dict.fromkeys(f.code for f in forms)
    return tuple(best[c] for c in order)


@attrs.frozen
class FiredProfile:
    """A profile that fired on a declaration.

    ``degree`` is the highest degree among the fired items, ``message`` is rendered from that item
    (the first of equals), ``items`` are the 1-based numbers of the fired goods items (empty for a
    declaration without items), ``controls`` the union of the forms that applied on them.
    """

    key: str
    number: str | None
    name: str
    degree: float
    controls: tuple[ControlForm, ...]
    message: str | None
    items: tuple[int, ...]
    explanation: ProfileExplanation | None = None


class Variant:
    """One generated module: the profile with the controls and message in effect (the profile's
    own, or a regional fill's). The explaining function is generated and compiled on first use."""

    __slots__ = (
        "_explain",
        "_lock",
        "_masks",
        "_shape",
        "controls",
        "evaluate",
        "explain_generated",
        "forms",
        "generated",
        "message",
        "plan",
        "unit",
    )

    def __init__(
        self,
        unit: Unit,
        cached: CachedVariant | None = None,
        record: list[CachedVariant] | None = None,
    ) -> None:
        """``cached``: the module as the load cache kept it (no planning, generating or
        compiling); ``record``: a list to append the module to, for the load cache."""
        in_range: bool
        if cached is None:
            self.plan: IndexPlan = plan_index(unit.profile, unit.controls, unit.lists)
            lo, hi, _ = degree_bounds(unit.profile, unit.lists)
            in_range = 0.0 <= lo <= hi <= 100.0
        else:
            self.plan, in_range = cached.plan, cached.degree_in_range
        unit = attrs.evolve(unit, guards=self.plan.guards, degree_in_range=in_range)
        self.unit = unit
        if cached is None:
            self.generated = codegen.generate(unit, "evaluate")
            code = compile(self.generated.source, self.generated.filename, "exec")
        else:
            if cached.generated.filename != codegen.module_name(unit, "evaluate"):
                raise CacheMismatch(
                    f"the cached module {cached.generated.filename} is not {unit.label}"
                )
            self.generated, code = cached.generated, cached.code
        ns = codegen.run_module(unit, self.generated, code)
        if record is not None:
            record.append(CachedVariant(self.plan, in_range, self.generated, code))
        codegen.forget_walks()
        self.evaluate: Callable[..., Any] = ns["evaluate"]
        self.message: Callable[..., Any] = ns["message"]
        self.controls = unit.controls
        self.forms = tuple(ControlForm(c.code, c.name, c.kind) for c in unit.controls)
        self._masks: dict[int, tuple[ControlForm, ...]] = {}
        self._explain: Callable[..., Any] | None = None
        self._shape: ExplainShape | None = None
        self.explain_generated: Generated | None = None
        self._lock = threading.Lock()

    def _compile_explain(self) -> None:
        with self._lock:
            if self._explain is None:
                # one plan (and typed annotation) for the function and its shape; not kept
                # from loading: a plan per variant would keep every profile's types alive
                plan = codegen.plan_unit(self.unit)
                gen, ns = codegen.compile_unit(self.unit, "explain", plan)
                is_date = plan.types.is_date
                self._shape = ExplainShape.of(self.unit.profile, self.controls, is_date)
                codegen.forget_walks()
                self.explain_generated = gen
                self._explain = ns["explain"]

    @property
    def explain(self) -> Callable[..., Any]:
        """The explaining function (compiled on first use)."""
        if self._explain is None:
            self._compile_explain()
        assert self._explain is not None
        return self._explain

    @property
    def shape(self) -> ExplainShape:
        if self._shape is None:
            self._compile_explain()
        assert self._shape is not None
        return self._shape

    def forms_of(self, mask: int) -> tuple[ControlForm, ...]:
        """The merged forms of the controls whose bits are set in ``mask``."""
        found = self._masks.get(mask)
        if found is None:
            found = merge_controls([f for k, f in enumerate(self.forms) if mask >> k & 1])
            self._masks[mask] = found
        return found


def _types(catalogue: Catalogue) -> dict[str, str]:
    return {f.path: f.type.value for f in catalogue}


def region_values(profile: m.Profile, fill: m.Fill) -> Mapping[str, Any]:
    """A fill's values as the evaluator reads them: numbers as floats, lists as tuples (text
    for string and code lists, so they serve ``starts with`` too)."""
    params = {p.name: p for p in profile.params}
    out: dict[str, Any] = {}
    for pv in fill.values:
        param = params.get(pv.name)
        textual = param is not None and param.type in ("string", "code")
        if isinstance(pv.value, m.ListLit):
            out[pv.name] = tuple(
                codegen.prefix_text(x) if textual else codegen.literal_value(x)
                for x in pv.value.items
            )
        else:
            out[pv.name] = codegen.literal_value(pv.value)
    return MappingProxyType(out)


class CompiledProfile:
    """A profile compiled once into Python functions. Immutable after construction and safe to
    share between threads (the explanation functions are compiled with it).

    Use :meth:`evaluate` to score one declaration with this profile alone; an ``Engine`` does the
    same for a whole set with an index in front.
    """

    def __init__(
        self,
        profile: m.Profile,
        *,
        file: str = "<string>",
        lists: Mapping[str, m.ListLit] | None = None,
        fills: Sequence[m.Fill] = (),
        catalogue: Catalogue | None = None,
        types: Mapping[str, str] | None = None,
        cached: Iterator[CachedVariant] | None = None,
        record: list[CachedVariant] | None = None,
    ) -> None:
        """``cached``: the modules as the load cache kept them, the profile's own first, then
        those of its fills in order (:mod:`riskengine.evaluator.cache`); ``record``: a list
        the modules built here are appended to, for the cache."""
        from riskengine.catalogue import default_catalogue

        self.profile = profile
        self.file = file
        self.key = profile.key
        self.number = str(profile.number) if profile.number is not None else None
        self.base = profile.number.base if profile.number is not None else None
        self.edition = _edition(profile.number)
        self.name = profile.name
        self.regional = profile.is_regional
        visible = dict(lists or {})
        visible.update({ld.name: ld.values for ld in profile.lists})
        self.lists: Mapping[str, m.ListLit] = MappingProxyType(visible)
        base_types = dict(types) if types is not None else _types(catalogue or default_catalogue())
        for p in profile.params:
            base_types[f"region.{p.name}"] = p.type
        self.types: Mapping[str, str] = MappingProxyType(base_types)
        self.fills: tuple[m.Fill, ...] = fills_of(profile, fills)
        self._chooser = FillChooser(self.fills)
        self.default = Variant(
            self._unit(profile.controls, profile.message, ""), _next(cached), record
        )
        self._variants: dict[int, Variant] = {}
        self._regions: dict[int, Mapping[str, Any]] = {}
        for k, fill in enumerate(self.fills):
            self._regions[k] = region_values(profile, fill)
            if fill.controls or fill.message is not None:
                controls = fill.controls or profile.controls
                message = fill.message if fill.message is not None else profile.message
                label = f" fill {fill.office} {fill.valid.start if fill.valid else ''}".rstrip()
                unit = self._unit(controls, message, label)
                self._variants[k] = Variant(unit, _next(cached), record)

    def _unit(self, controls: Sequence[m.Control], message: m.Message | None, suffix: str) -> Unit:
        return Unit(
            self.profile, tuple(controls), message, self.lists, self.types,
            f"{self.key}{suffix}", self.file,
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"<CompiledProfile {self.key}>"

    # -- validity
    def applies_on(self, as_of: dt.date) -> bool:
        """Whether the profile's in-force period (and edition) covers ``as_of``; a profile with
        no in-force period applies on every date."""
        p = self.profile
        if p.in_force is not None and not p.in_force.contains(as_of):
            return False
        return p.edition_in_force is None or p.edition_in_force <= as_of

    def validity_dates(self) -> list[dt.date]:
        """Dates on which the applicability of this profile or one of its fills changes."""
        out: list[dt.date] = []
        p = self.profile
        for v in [p.in_force] + [f.valid for f in self.fills]:
            if v is not None:
                out.append(v.start)
                if v.end is not None and v.end < dt.date.max:
                    out.append(v.end + dt.timedelta(days=1))
        if p.edition_in_force is not None:
            out.append(p.edition_in_force)
        return out

    def fill_for(self, office: Any, as_of: dt.date) -> int | None:
        """The index of the fill of ``office`` that applies on ``as_of``, or ``None`` (the
        rule of :mod:`riskengine.semantics.fills`)."""
        return self._chooser.choose(office, as_of)

    def offices_on(self, as_of: dt.date) -> dict[str, int]:
        """Office → fill index for every office with a fill that applies on ``as_of``."""
        return self._chooser.offices_on(as_of)

    def variant(self, fill: int | None) -> Variant:
        """The compiled variant for a fill index (the profile's own when the fill brings no
        controls or message)."""
        if fill is None:
            return self.default
        return self._variants.get(fill, self.default)

    def region(self, fill: int | None) -> Mapping[str, Any]:
        return _NO_REGION if fill is None else self._regions[fill]

    def fill_info(self, fill: int) -> FillInfo:
        f = self.fills[fill]
        return FillInfo(
            f.office,
            f.order.number if f.order else None,
            f.valid.start if f.valid else None,
            f.valid.end if f.valid else None,
        )

    # -- evaluation
    def run(
        self,
        variant: Variant,
        header: Mapping[str, Any],
        items: Sequence[Mapping[str, Any]],
        region: Mapping[str, Any],
        hist: Callable[..., Any],
        as_of: dt.date,
        has_items: bool,
    ) -> FiredProfile | None:
        """The fast path on normalised data (``items`` non-empty: ``EMPTY_ITEMS`` when the
        declaration has none)."""
        try:
            raw = variant.evaluate(header, items, region, hist, as_of)
            if raw is None:
                return None
            return self.finish(variant, raw, header, items, region, has_items)
        except RiskEngineError:
            raise
        except Exception as exc:
            raise self._error(exc, variant) from exc

    def finish(
        self,
        variant: Variant,
        raw: tuple[Any, ...],
        header: Mapping[str, Any],
        items: Sequence[Mapping[str, Any]],
        region: Mapping[str, Any],
        has_items: bool,
    ) -> FiredProfile:
        """The fired profile from the fast path's raw result (renders the message)."""
        best, best_i, fired, mask, bnh, bph = raw
        message = variant.message(header, items[best_i], region, best, bnh, bph)
        return FiredProfile(
            self.key, self.number, self.name, best, variant.forms_of(mask), message,
            tuple(fired) if has_items else (),
        )  # fmt: skip

    def run_explained(
        self,
        variant: Variant,
        header: Mapping[str, Any],
        items: Sequence[Mapping[str, Any]],
        region: Mapping[str, Any],
        hist: Callable[..., Any],
        as_of: dt.date,
        has_items: bool,
        fill: int | None,
    ) -> tuple[FiredProfile | None, ProfileExplanation]:
        """The explaining path: the explanation, and the fired profile derived from it."""
        try:
            raw = variant.explain(header, items, region, hist, as_of)
            item_ex = explain.assemble(variant.shape, raw, header, items, region, has_items)
            fired_items = [(k, e) for k, e in enumerate(item_ex) if e.fired]
            message = None
            if fired_items:
                best_k, best = fired_items[0]
                for k, e in fired_items[1:]:
                    if e.degree > best.degree:
                        best_k, best = k, e
                hv = best.history
                message = variant.message(
                    header, items[best_k], region, best.degree,
                    hv.negative if hv else 0.0, hv.positive if hv else 0.0,
                )  # fmt: skip
        except RiskEngineError:
            raise
        except Exception as exc:
            raise self._error(exc, variant) from exc
        explanation = ProfileExplanation(
            self.key, self.name, True, None,
            None if fill is None else self.fill_info(fill), item_ex,
        )  # fmt: skip
        if not fired_items:
            return None, explanation
        forms = merge_controls(
            [
                form
                for k, form in enumerate(variant.forms)
                if any(e.controls[k].applied for _, e in fired_items)
            ]
        )
        numbers = tuple(k + 1 for k, _ in fired_items) if has_items else ()
        return (
            FiredProfile(
                self.key, self.number, self.name, best.degree, forms, message, numbers,
                explanation,
            ),
            explanation,
        )  # fmt: skip

    def not_applicable(self, office: Any, as_of: dt.date) -> ProfileExplanation:
        """The explanation of a regional profile without a fill for ``office`` on ``as_of``."""
        where = "no office" if office is None else f"office {office}"
        return ProfileExplanation(
            self.key, self.name, False,
            f"regional profile: no fill for {where} valid on {as_of.isoformat()}", None, (),
        )  # fmt: skip

    def evaluate(
        self,
        declaration: Any,
        as_of: dt.date,
        *,
        history: HistoryProvider | None = None,
        explain: bool = False,
    ) -> FiredProfile | None:
        """Score one declaration with this profile alone (validity is not checked here; a
        regional profile uses the fill of the declaration's office valid on ``as_of``)."""
        from riskengine.declaration import Declaration, normalise_declaration
        from riskengine.evaluator.history import EmptyHistoryProvider

        decl = declaration
        if not isinstance(decl, Declaration):
            decl = normalise_declaration(decl)
        fill = None
        if self.regional:
            fill = self.fill_for(decl.header.get("office"), as_of)
            if fill is None:
                return None
        provider = history or EmptyHistoryProvider()
        items = decl.items or EMPTY_ITEMS
        args = (self.variant(fill), decl.header, items, self.region(fill), provider.history, as_of,
                bool(decl.items))  # fmt: skip
        if explain:
            return self.run_explained(*args, fill)[0]
        return self.run(*args)

    def _error(self, exc: BaseException, variant: Variant) -> EvaluationError:
        where = self.file
        gens = {g.filename: g for g in (variant.generated, variant.explain_generated) if g}
        for frame, lineno in traceback.walk_tb(exc.__traceback__):
            gen = gens.get(frame.f_code.co_filename)
            if gen is not None:
                line = gen.line_map.get(lineno)
                where = f"{self.file}:{line}" if line else f"{self.file}, {gen.filename}:{lineno}"
        reason = f"{type(exc).__name__}: {exc}"
        return EvaluationError(self.key, where, reason)


def _next(cached: Iterator[CachedVariant] | None) -> CachedVariant | None:
    if cached is None:
        return None
    found = next(cached, None)
    if found is None:
        raise CacheMismatch("the cache entry has fewer modules than the set")
    return found


def _edition(number: m.ProfileNumber | None) -> int:
    if number is None:
        return 0
    try:
        return int(number.edition)
    except ValueError:
        return 0
