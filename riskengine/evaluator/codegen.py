"""Model → Python source: the fast scoring function, the explaining function and the message.

One generated module per profile (and per regional fill that brings its own controls or message):

* ``evaluate(h, items, region, hist, as_of)`` — the fast path. ``h`` is the flat header
  (``"declarant.id"``), ``items`` the flat goods items (at least one: a declaration without items
  is passed as ``({},)``), ``region`` the regional values (``{}`` for central profiles), ``hist``
  the history provider's ``history`` method. Returns ``None`` when the profile does not fire, else
  ``(degree, best_item, fired_items, controls_mask, negative_history, positive_history)`` where
  ``best_item`` is the 0-based index of the fired item with the highest degree (the first of
  equals), ``fired_items`` the 1-based numbers of fired items and bit ``k`` of ``controls_mask``
  says control ``k`` applied on at least one fired item.
* ``explain(h, items, region, hist, as_of)`` — the same semantics, recording every value an
  explanation needs (see :mod:`riskengine.evaluator.explain`).
* ``message(h, it, region, d, nh, ph)`` — the inspector message of one item.

The parts: :mod:`.unit` (what a module evaluates, model helpers), :mod:`.emit` (expressions →
Python: the operator table of :mod:`riskengine.semantics.operators` and the types of
:mod:`riskengine.semantics.types`), this module (the fast path, the message, entry points) and
:mod:`.explain_codegen` (the explaining path).

Missing is ``None``; every read is ``mapping.get(name)`` once per function (header, region) or per
item. Predicates with a missing operand are ``False`` through inline ``is not None`` guards;
arithmetic with a missing operand, a zero divisor or a non-finite result is ``None``. Number
literals are floats (the literal ``12.50`` is ``12.5``). Each statement carries a
``# file.rp:LINE`` comment, and the source is registered in :mod:`linecache` under a
``<profile KEY file.rp>`` name, so a traceback through generated code shows the generated line
with its profile line. Generating twice gives
byte-identical source: names come from counters in source order, never from ids or hashes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import linecache
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from types import CodeType
from typing import Any

import attrs

from riskengine import model as m
from riskengine.evaluator import values
from riskengine.evaluator.emit import (
    Fn,
    Module,
    Plan,
    emit_clamp,
    emit_history,
    emit_indicator,
    emit_reads,
    line_of,
    list_fields,
    needed_indicators,
    uses_history,
)
from riskengine.evaluator.emit import (
    plan as make_plan,
)
from riskengine.evaluator.explain_codegen import explain_function
from riskengine.evaluator.unit import (
    CompileError,
    Generated,
    Unit,
    degree_terms,
    expr_level,
    forget_walks,
    literal_value,
    nodes,
    prefix_text,
    resolve_list,
)
from riskengine.semantics import operators as ops
from riskengine.semantics.indicators import topo_indicators
from riskengine.semantics.regex import compile_pattern

__all__ = [
    "CompileError",
    "FusedBlock",
    "Generated",
    "Unit",
    "compile_unit",
    "degree_terms",
    "expr_level",
    "forget_walks",
    "fused_blocks",
    "generate",
    "history_used",
    "literal_value",
    "module_name",
    "namespace",
    "nodes",
    "plan_unit",
    "prefix_text",
    "resolve_list",
    "run_module",
    "topo_indicators",
]


def _emit_fetch(fn: Fn, profile: m.Profile, name: str = "_P") -> None:
    """``nh``/``ph`` from the provider (0 when a subject field is missing); ``name``: the
    module constant holding the profile."""
    emit_history(fn, profile, "subj")
    fn.emit("if None in subj:")
    fn.emit("    nh = ph = 0.0")
    fn.emit("else:")
    fn.emit(f"    hv = hist({name}, subj, as_of)")
    fn.emit("    nh = hv.negative")
    fn.emit("    ph = hv.positive")


def history_used(unit: Unit) -> bool:
    """Whether the fast path needs the history values: the profile has a history block and its
    degree, an exception, a control's condition, an indicator they use, or the message reads
    ``negative_history`` / ``positive_history``."""
    profile = unit.profile
    if profile.history is None:
        return False
    roots: list[m.Expr | None] = [e.condition for e in profile.exceptions]
    roots += [profile.degree] + [c.condition for c in unit.controls]
    message = unit.message.parts if unit.message is not None else ()
    if any(isinstance(p, m.HistoryRef) for p in message):
        return True
    refs = [p for p in message if isinstance(p, m.Ref)]
    needed = needed_indicators([*roots, *refs], profile)
    indicators = [i for i in profile.indicators if i.name in needed]
    return uses_history(
        [*roots, *(i.condition for i in indicators), *(i.unless for i in indicators)]
    )


@attrs.frozen
class FusedBlock:
    """How :func:`_fast` writes a profile as one block of a set's fused scoring function
    (:mod:`riskengine.evaluator.fused`) instead of as ``evaluate``: every field the profile
    reads is already in a local (``bound``: path → local; the goods item's fields hold the only
    item's values, and a loop over several items unpacks each record of ``records`` into
    ``unpack``); the block is a ``while True:`` left with ``break``, and where ``evaluate``
    returns its tuple the block appends ``(position, variant, regional values, tuple)`` to the
    list ``hits`` (``None`` until a profile fires). Regional values are read from the local
    ``region``, history from the local ``hist``, as ``evaluate`` reads its parameters."""

    position: int
    bound: Mapping[str, str]
    unpack: str
    records: str = "recs"
    #: The test for one goods item (no item is one empty item, as for ``evaluate``).
    single: str = "count <= 1"
    #: The header's locals, as a tuple of the header's values is unpacked into them.
    header_unpack: str = "_"
    #: Which of the profile's variants this is (a regional fill's own controls or message).
    variant: int = 0
    #: The module constant holding the profile (for the history provider).
    profile_const: str = "_P"
    #: The regional values the hit carries (``region``: the local the fused function sets).
    region: str = "_NOREGION"


def _fast(unit: Unit, module: Module, plan: Plan, fused: FusedBlock | None = None) -> Fn:
    profile = unit.profile
    fn = Fn(unit, module, plan.types)
    if fused is not None:
        fn.vars.update(fused.bound)
    stop = "return None" if fused is None else "break"  # the profile does not fire
    profile_name = "_P" if fused is None else fused.profile_const

    def give(value: str) -> None:
        if fused is None:
            fn.emit(f"return {value}")
        else:
            hit = f"({fused.position}, {fused.variant}, {fused.region}, {value})"
            fn.emit("if hits is None:")
            fn.emit(f"    hits = [{hit}]")
            fn.emit("else:")
            fn.emit(f"    hits.append({hit})")
            fn.emit("break")

    roots: list[m.Expr | None] = [e.condition for e in profile.exceptions]
    roots += [profile.degree] + [c.condition for c in unit.controls]
    needed = needed_indicators(roots, profile)
    indicators = [i for i in plan.order if i.name in needed]
    use_hist = history_used(unit)
    early = uses_history(
        [e.condition for e in profile.exceptions]
        + [i.condition for i in indicators]
        + [i.unless for i in indicators]
    )
    paths: list[str] = []
    for ind in indicators:
        paths += list_fields(ind.condition) + list_fields(ind.unless)
    for r in roots:
        paths += list_fields(r)
    for g in unit.guards:
        paths += list_fields(g)
    if use_hist:
        assert profile.history is not None
        paths += [s.field.path for s in profile.history.subjects] * 2
    uses: dict[str, int] = {}
    for path in paths:
        uses[path] = uses.get(path, 0) + 1
    once = {p for p, n in uses.items() if n == 1 and not p.startswith("region.")}

    if fused is None:
        fn.emit("def evaluate(h, items, region, hist, as_of):", line_of(profile.span))
    else:
        fn.emit("while True:", line_of(profile.span))
    fn.indent = 1
    emit_reads(fn, paths, "declaration", "h", once)
    emit_reads(fn, paths, "region", "region")
    if use_hist and plan.history_level == 0 and early:
        _emit_fetch(fn, profile, profile_name)
    for ind in indicators:
        if plan.levels[ind.name] == 0:
            emit_indicator(fn, ind)
    for exc in profile.exceptions:
        if expr_level(exc.condition, plan.levels, plan.history_level) == 0:
            fn.emit(f"if {fn.cond(exc.condition)}:", line_of(exc.span))
            fn.indent += 1
            fn.emit(stop, line_of(exc.span))
            fn.indent -= 1
    if use_hist and plan.history_level == 0 and not early:
        _emit_fetch(fn, profile, profile_name)
    hist_names = ("nh", "ph")
    if not use_hist and uses_history([*roots, *(i.condition for i in indicators),
                                       *(i.unless for i in indicators)]):  # fmt: skip
        fn.emit("nh = ph = 0.0")  # a history value without a history block is 0
    elif not use_hist:
        hist_names = ("0.0", "0.0")
    if not unit.controls:  # a profile without controls never fires
        fn.emit(stop)
        return fn

    def item_body(skip: str) -> None:
        """Guard, reads, indicators, exceptions, history and degree of one item; ``skip``
        leaves the item (``continue`` in the loop, ``return None`` for a single item)."""
        if unit.guards:
            guard_paths = [p for g in unit.guards for p in list_fields(g)]
            emit_reads(fn, guard_paths, "item", "it")
            line = line_of(unit.guards[0].span)
            fn.emit(f"if not ({' or '.join(fn.cond(g) for g in unit.guards)}):", line)
            fn.emit(f"    {skip}", line)
        emit_reads(fn, paths, "item", "it", once)
        if use_hist and plan.history_level == 1 and early:
            _emit_fetch(fn, profile, profile_name)
        for ind in indicators:
            if plan.levels[ind.name] == 1:
                emit_indicator(fn, ind)
        for exc in profile.exceptions:
            if expr_level(exc.condition, plan.levels, plan.history_level) == 1:
                fn.emit(f"if {fn.cond(exc.condition)}:", line_of(exc.span))
                fn.emit(f"    {skip}", line_of(exc.span))
        if use_hist and plan.history_level == 1 and not early:
            _emit_fetch(fn, profile, profile_name)
        _emit_degree(fn, profile)

    def controls_mask() -> None:
        """``m`` = the bits of the controls that apply, under ``if d >= lowest:`` (indented)."""
        lowest = min(values.number(c.threshold) for c in unit.controls)
        fn.emit(f"if d >= {fn.num(lowest)}:")
        fn.indent += 1
        for k, ctl in enumerate(unit.controls):
            threshold = values.number(ctl.threshold)
            tests = [] if threshold == lowest else [f"d >= {fn.num(threshold)}"]
            if ctl.condition is not None:
                tests.append(fn.cond(ctl.condition))
            if k == 0:
                fn.emit("m = 0" if tests else "m = 1", line_of(ctl.span))
            if tests:
                fn.emit(f"if {' and '.join(tests)}:", line_of(ctl.span))
                fn.emit(f"    m |= {1 << k}", line_of(ctl.span))
            elif k > 0:
                fn.emit(f"m |= {1 << k}", line_of(ctl.span))

    # one goods item (the common case): straight-line code
    fn.emit("if len(items) == 1:" if fused is None else f"if {fused.single}:")
    fn.indent += 1
    if fused is None:
        fn.emit("it = items[0]")
    item_vars = dict(fn.vars)
    item_body(stop)
    controls_mask()
    one = module.const("ONE", "one", "(1,)")
    ret = f"(d, 0, {one}, m, {hist_names[0]}, {hist_names[1]})"
    first = unit.controls[0]
    if first.condition is None and values.number(first.threshold) == min(
        values.number(c.threshold) for c in unit.controls
    ):
        give(ret)  # the first control applies whenever any threshold is reached
    else:
        fn.emit("if m:")
        fn.indent += 1
        give(ret)
        fn.indent -= 1
    fn.indent -= 1
    fn.emit(stop)
    fn.indent -= 1
    for path, var in list(fn.vars.items()):  # the loop reads the item fields again
        if path not in item_vars:
            del fn.vars[path]
            fn.forget(var)
    # several items: the highest degree wins, every fired item is reported
    fn.emit("best = -1.0")
    fn.emit("best_i = -1")
    if use_hist:
        fn.emit("bnh = bph = 0.0")
    fn.emit("mask = 0")
    fn.emit("fired = None")
    if fused is None:
        fn.emit("for n, it in enumerate(items):")
    else:
        fn.emit(f"for n, {fused.unpack} in enumerate({fused.records}):")
    fn.indent += 1
    item_body("continue")
    controls_mask()
    fn.emit("if m:")
    fn.indent += 1
    fn.emit("mask |= m")
    fn.emit("if fired is None:")
    fn.emit("    fired = [n + 1]")
    fn.emit("else:")
    fn.emit("    fired.append(n + 1)")
    fn.emit("if d > best:")
    fn.emit("    best = d")
    fn.emit("    best_i = n")
    if use_hist:
        fn.emit("    bnh = nh")
        fn.emit("    bph = ph")
    fn.indent -= 3
    fn.emit("if fired is None:")
    fn.emit(f"    {stop}")
    best_hist = "bnh, bph" if use_hist else f"{hist_names[0]}, {hist_names[1]}"
    give(f"(best, best_i, fired, mask, {best_hist})")
    return fn


def _check_bound(fn: Fn, fused: FusedBlock) -> None:
    """A fused block reads only the locals it is given (a field read from a dict would read the
    unconverted input)."""
    unbound = sorted(
        p for p, var in fn.vars.items() if fused.bound.get(p) != var and not p.startswith("region.")
    )
    if unbound:
        raise CompileError(f"a fused block would read {unbound[0]} itself")


def _emit_degree(fn: Fn, profile: m.Profile) -> None:
    line = line_of(profile.spans.get("degree"))
    if profile.degree is None:
        fn.emit("d = 0.0", line)
        return
    src, null = fn.value(profile.degree)
    fn.emit(f"d = {src}", line)
    if fn.unit.degree_in_range and fn.is_float(profile.degree):
        if null:
            fn.emit("if d is None:", line)
            fn.emit("    d = 0.0", line)
        return
    emit_clamp(fn, "d", null, line, fn.is_float(profile.degree))


def _message(unit: Unit, module: Module, plan: Plan, fused: FusedBlock | None = None) -> Fn:
    fn = Fn(unit, module, plan.types)
    msg = unit.message
    if fused is None:
        fn.emit("def message(h, it, region, d, nh, ph):", line_of(msg.span if msg else None))
        fn.indent = 1
    else:  # the values the fused function read: the header's and the item's, as tuples
        fn.emit(f"def message{fused.position}_{fused.variant}(hdr, rec, region, d, nh, ph):")
        fn.indent = 1
        fn.emit(f"{fused.header_unpack} = hdr")
        fn.emit(f"{fused.unpack} = rec")
        fn.vars.update(fused.bound)
    if msg is None:
        fn.emit("return None")
        return fn
    refs = [p for p in msg.parts if isinstance(p, m.Ref)]
    needed = needed_indicators(refs, unit.profile)
    indicators = [i for i in plan.order if i.name in needed]
    paths = [p.path for p in msg.parts if isinstance(p, m.FieldRef)]
    for ind in indicators:
        paths += list_fields(ind.condition) + list_fields(ind.unless)
    emit_reads(fn, paths, "declaration", "h")
    emit_reads(fn, paths, "region", "region")
    emit_reads(fn, paths, "item", "it")
    for ind in indicators:
        emit_indicator(fn, ind)
    pieces = []
    for part in msg.parts:
        if isinstance(part, str):
            pieces.append(repr(part))
        elif isinstance(part, m.FieldRef):
            pieces.append(f"_fmt({fn.vars[part.path]})")
        elif isinstance(part, m.HistoryRef):
            pieces.append("_fmt(nh)" if part.kind is m.HistoryKind.NEGATIVE else "_fmt(ph)")
        elif part.name == "degree":
            pieces.append("_fmt(d)")
        elif part.name in fn.indicator_vars:
            pieces.append(f"_fmt({fn.indicator_vars[part.name]})")
        else:
            pieces.append(repr(values.MISSING_TEXT))
    if not pieces:
        fn.emit("return ''", line_of(msg.span))
    elif len(pieces) == 1:
        fn.emit(f"return {pieces[0]}", line_of(msg.span))
    else:
        fn.emit(f"return ''.join(({''.join(p + ', ' for p in pieces)}))", line_of(msg.span))
    return fn


# ------------------------------------------------------------------------------ entry points


def plan_unit(unit: Unit) -> Plan:
    """The facts every generated function of ``unit`` reads (indicator order, levels, the
    typed annotation): computed once, for both parts of a unit (see :func:`generate`)."""
    with _deep_recursion():  # the annotation pass recurses a few frames per level of nesting
        return make_plan(unit)


def generate(unit: Unit, part: str = "evaluate", plan: Plan | None = None) -> Generated:
    """The source of one module for ``unit``: ``part`` "evaluate" gives the constants with the
    ``evaluate`` and ``message`` functions (compiled with the profile), "explain" the constants
    with the ``explain`` function (compiled on the first explanation asked for). ``plan``: the
    unit's :func:`plan_unit`, when already computed.

    Deterministic: the same unit gives byte-identical source.
    """
    if part not in ("evaluate", "explain"):
        raise ValueError(f"unknown part {part!r}")
    module = Module()
    with _deep_recursion():  # the emitter recurses a few frames per level of nesting
        if plan is None:
            plan = make_plan(unit)
        if part == "evaluate":
            fns = [_fast(unit, module, plan), _message(unit, module, plan)]
        else:
            fns = [explain_function(unit, module, plan)]
    base = _base_name(unit)
    out: list[str] = [
        f"# Generated by riskengine from {unit.file}: profile {unit.label}. Do not edit.",
        *module.lines,
    ]
    line_map: dict[int, int] = {}
    for fn in fns:
        out.append("")
        out.append("")
        for text, line in fn.lines:
            if line:
                line_map[len(out) + 1] = line
                text = f"{text}  # {base}:{line}"
            out.append(text)
    source = "\n".join(out) + "\n"
    return Generated(source, module_name(unit, part), line_map)


def _base_name(unit: Unit) -> str:
    return unit.file.replace("\\", "/").rsplit("/", 1)[-1]


def module_name(unit: Unit, part: str = "evaluate") -> str:
    """The name a generated module of ``unit`` is compiled and registered under."""
    suffix = "" if part == "evaluate" else f" {part}"
    return f"<profile {unit.label} {_base_name(unit)}{suffix}>"


#: Python frames allowed while generating: an expression nested to the language's limit
#: (riskengine.semantics.limits.MAX_EXPRESSION_DEPTH, 100) takes about ten frames per level.
_GENERATION_FRAMES = 20_000


_generating = 0  # generations under way (threads may compile explanations concurrently)
_generating_lock = threading.Lock()
_limit_before = 0


@contextlib.contextmanager
def _deep_recursion() -> Iterator[None]:
    """Raise the recursion limit while any generation runs, then restore it. Python-to-Python
    calls do not use the C stack (3.11+), so the higher limit is safe."""
    global _generating, _limit_before
    with _generating_lock:
        if _generating == 0:
            _limit_before = sys.getrecursionlimit()
            if _limit_before < _GENERATION_FRAMES:
                sys.setrecursionlimit(_GENERATION_FRAMES)
        _generating += 1
    try:
        yield
    finally:
        with _generating_lock:
            _generating -= 1
            if _generating == 0 and _limit_before < _GENERATION_FRAMES:
                sys.setrecursionlimit(_limit_before)


def fused_blocks(
    blocks: Sequence[tuple[Unit, FusedBlock]],
) -> tuple[list[str], list[list[str]], list[str]]:
    """The lines of a fused scoring function's profile blocks (one per unit, see
    :class:`FusedBlock`, each at indentation 0), the module constants they share and the
    message functions ``message{position}_{variant}(hdr, rec, region, d, nh, ph)`` of the
    units, which read the values of the header and of one item as the fused function keeps
    them (tuples). A block or message that would read a field itself is a CompileError."""
    module = Module()
    out: list[list[str]] = []
    messages: list[str] = []
    with _deep_recursion():
        for unit, block in blocks:
            plan = make_plan(unit)
            fn = _fast(unit, module, plan, block)
            _check_bound(fn, block)
            out.append([text for text, _ in fn.lines])
            message = _message(unit, module, plan, block)
            _check_bound(message, block)
            messages += ["", *(text for text, _ in message.lines)]
    return module.lines, out, messages


def namespace() -> dict[str, Any]:
    """Names every generated module can use (a fresh dict)."""
    from riskengine.evaluator.history import NO_HISTORY

    return {
        "_date": dt.date,
        "_regex": compile_pattern,
        **ops.helpers(),  # _round, _sub: the operator table's helpers
        "_fmt": values.format_value,
        "_NO_HISTORY": NO_HISTORY,
    }


def compile_unit(
    unit: Unit, part: str = "evaluate", plan: Plan | None = None
) -> tuple[Generated, dict[str, Any]]:
    """Generate, register in :mod:`linecache` and ``compile()`` one module of a unit (see
    :func:`generate`). Returns the generated source and the module's namespace."""
    gen = generate(unit, part, plan)
    code = compile(gen.source, gen.filename, "exec")
    return gen, run_module(unit, gen, code)


def run_module(unit: Unit, gen: Generated, code: CodeType) -> dict[str, Any]:
    """Register ``gen`` in :mod:`linecache` and run its compiled ``code`` (from
    :func:`compile_unit`, or read back from the load cache) in a fresh namespace."""
    lines = gen.source.splitlines(True)
    linecache.cache[gen.filename] = (len(gen.source), None, lines, gen.filename)
    ns = namespace()
    ns["_P"] = unit.profile
    exec(code, ns)
    return ns


def literal_decimal(value: Decimal) -> float:
    """A number literal as a float (kept for callers that read thresholds)."""
    return values.number(value)
