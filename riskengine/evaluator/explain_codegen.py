"""Model → Python source: the explaining function of a profile (see :mod:`.codegen`).

``explain(h, items, region, hist, as_of)`` has the semantics of the fast ``evaluate`` and
returns, per goods item, every value an explanation needs (assembled by
:func:`riskengine.evaluator.explain.assemble`): the indicators' conditions and ``unless``, the
exception that applied, the degree's top-level terms, the degree before and after the clamp,
the history value and subject, the controls' conditions and whether each applied.
"""

from __future__ import annotations

from riskengine.evaluator import values
from riskengine.evaluator.emit import (
    Fn,
    Module,
    Plan,
    emit_clamp,
    emit_history,
    emit_reads,
    line_of,
    list_fields,
)
from riskengine.evaluator.unit import IDENT, Unit, degree_terms
from riskengine.semantics import operators as ops
from riskengine.semantics.numbers import MAX_FINITE

__all__ = ["explain_function"]


def explain_function(unit: Unit, module: Module, plan: Plan) -> Fn:
    profile = unit.profile
    fn = Fn(unit, module, plan.types)
    paths: list[str] = []
    for ind in plan.order:
        paths += list_fields(ind.condition) + list_fields(ind.unless)
    for e in (*(x.condition for x in profile.exceptions), profile.degree,
              *(c.condition for c in unit.controls)):  # fmt: skip
        paths += list_fields(e)
    if profile.history is not None:
        paths += [s.field.path for s in profile.history.subjects]
    fn.emit("def explain(h, items, region, hist, as_of):", line_of(profile.span))
    fn.indent = 1
    emit_reads(fn, paths, "declaration", "h")
    emit_reads(fn, paths, "region", "region")
    fn.emit("out = []")
    fn.emit("for n, it in enumerate(items):")
    fn.indent += 1
    emit_reads(fn, paths, "item", "it")
    if profile.history is not None:
        emit_history(fn, profile, "subj")
        fn.emit("if None in subj:")
        fn.emit("    hv = _NO_HISTORY")
        fn.emit("    subj = None")
        fn.emit("else:")
        fn.emit("    hv = hist(_P, subj, as_of)")
        fn.emit("nh = hv.negative")
        fn.emit("ph = hv.positive")
    else:
        fn.emit("hv = subj = None")
        fn.emit("nh = ph = 0.0")
    recs = []
    for ind in plan.order:
        var = fn.indicator_var(ind.name)
        c = fn.fresh(f"c_{var[4:]}") if IDENT.match(var[4:]) else fn.temp()
        fn.emit(f"{c} = {fn.cond(ind.condition)}", line_of(ind.span))
        if ind.unless is not None:
            u = fn.fresh(f"u_{var[4:]}") if IDENT.match(var[4:]) else fn.temp()
            fn.emit(f"{u} = {fn.cond(ind.unless)}", line_of(ind.unless.span))
            fn.emit(f"{var} = {c} and not {u}", line_of(ind.span))
        else:
            u = "None"
            fn.emit(f"{var} = {c}", line_of(ind.span))
        recs.append((c, u))
    by_name = {i.name: (c, u) for i, (c, u) in zip(plan.order, recs, strict=True)}
    ind_tuple = "".join(
        f"({by_name[i.name][0]}, {by_name[i.name][1]}), " for i in profile.indicators
    )
    fn.emit(f"inds = ({ind_tuple})")
    fn.emit("exc = None")
    for k, exc in enumerate(profile.exceptions):
        # the first exception that holds; not `elif`: a deep condition may emit a statement
        test = fn.cond(exc.condition)
        fn.emit(f"if {test}:" if k == 0 else f"if exc is None and {test}:", line_of(exc.span))
        fn.emit(f"    exc = {k}", line_of(exc.span))
    fn.emit("if exc is not None:")
    fn.emit("    out.append((n, exc, inds, None, None, 0.0, None, None, None, None))")
    fn.emit("    continue")
    line = line_of(profile.spans.get("degree"))
    if profile.degree is None:
        fn.emit("terms = ()")
        fn.emit("dv = None")
        fn.emit("d = 0.0")
    else:
        terms = degree_terms(profile.degree, fn.is_date)
        names: list[str] = []
        nullable: list[bool] = []
        for _, term in terms:
            src, null = fn.value(term)
            t = fn.fresh(f"term{len(names)}")
            fn.emit(f"{t} = {src}", line_of(term.span) or line)
            names.append(t)
            nullable.append(null)
        fn.emit(f"terms = ({''.join(n + ', ' for n in names)})")
        acc, acc_null = names[0], nullable[0]
        acc_bound = fn.bound(terms[0][1])
        for (op, term), name, null in zip(terms[1:], names[1:], nullable[1:], strict=True):
            guards = [f"{v} is None" for v, nl in ((acc, acc_null), (name, null)) if nl]
            body = ops.ARITHMETIC[op].emit_src(acc, name)
            acc_bound += fn.bound(term)
            if acc_bound >= MAX_FINITE:  # the numeric rule: an overflow is missing
                body = fn.check_finite(body, guards)
            src = f"(None if {' or '.join(guards)} else {body})" if guards else f"({body})"
            fn.emit(f"dv = {src}", line)
            acc, acc_null = "dv", bool(guards)
        if len(names) == 1:
            fn.emit(f"dv = {acc}", line)
        emit_clamp(fn, "dv", acc_null, line)
    conds = []
    applied = []
    for k, ctl in enumerate(unit.controls):
        cc = f"cc{k}"
        fn.emit(
            f"{cc} = {fn.cond(ctl.condition) if ctl.condition is not None else 'None'}",
            line_of(ctl.span),
        )
        fn.emit(
            f"ap{k} = d >= {fn.num(values.number(ctl.threshold))}"
            + (f" and {cc}" if ctl.condition is not None else ""),
            line_of(ctl.span),
        )
        conds.append(cc)
        applied.append(f"ap{k}")
    fn.emit(
        "out.append((n, None, inds, terms, dv, d, hv, subj, "
        f"({''.join(c + ', ' for c in conds)}), ({''.join(a + ', ' for a in applied)})))"
    )
    fn.indent -= 1
    fn.emit("return out")
    return fn
