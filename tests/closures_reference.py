"""A reference for the tests: the same fast path as the generated source, from nested closures.

A second implementation of ``evaluate`` the tests compare the generated code with
(``tests/test_evaluator_differential.py``), and a baseline ``benchmarks/bench_evaluator.py``
measures code generation against (the generated source is about 4× faster). It was
``riskengine/evaluator/closures.py``; it is not part of the package. ``compile_closures(unit)``
returns a function with the signature and result of the generated ``evaluate`` (see
:mod:`riskengine.evaluator.codegen`).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from riskengine import model as m
from riskengine.evaluator.codegen import (
    CompileError,
    Unit,
    history_used,
    literal_value,
    prefix_text,
    resolve_list,
    topo_indicators,
)
from riskengine.evaluator.values import number, round_half_away, subtract
from riskengine.semantics.numbers import finite
from riskengine.semantics.regex import compile_pattern
from riskengine.semantics.types import annotate

__all__ = ["compile_closures"]

# The environment of one item: header, item, region, negative and positive history, indicators.
Env = list[Any]
Fn = Callable[[Env], Any]
H, IT, REGION, NH, PH, IND = range(6)

_COMPARE = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
    ">=": operator.ge,
}  # fmt: skip
_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul}
_BUILTINS: dict[str, Callable[..., Any]] = {"min": min, "max": max, "abs": abs}


class _Compiler:
    def __init__(self, unit: Unit) -> None:
        self.unit = unit
        self.types = annotate(unit.profile, unit.types, unit.lists, unit.controls)

    def value(self, e: m.Expr) -> Fn:
        match e:
            case m.NumberLit() | m.StringLit() | m.DateLit() | m.BoolLit():
                const = literal_value(e)
                return lambda env: const
            case m.FieldRef(path=path):
                scope, _, name = path.partition(".")
                slot = {"declaration": H, "item": IT, "region": REGION}[scope]
                return lambda env: env[slot].get(name)
            case m.Ref(name=name):
                return lambda env: env[IND][name]
            case m.HistoryRef(kind=k):
                slot = NH if k is m.HistoryKind.NEGATIVE else PH
                return lambda env: env[slot]
            case m.Neg(operand=o):
                f = self.value(o)

                def neg(env: Env) -> Any:
                    v = f(env)
                    return None if v is None else -v

                return neg
            case m.Arith(op=op, left=a, right=b):
                fa, fb = self.value(a), self.value(b)
                if op == "-" and self.types.is_date(b):
                    return lambda env: subtract(fa(env), fb(env))
                if op == "/":

                    def div(env: Env) -> Any:
                        x = fa(env)
                        if x is None:
                            return None
                        y = fb(env)
                        if y is None or y == 0:
                            return None
                        return finite(x / y)

                    return div
                fn = _ARITH[op]

                def arith(env: Env) -> Any:
                    x = fa(env)
                    if x is None:
                        return None
                    y = fb(env)
                    return None if y is None else finite(fn(x, y))

                return arith
            case m.Call(func="round", args=args):
                fs = [self.value(a) for a in args]
                return lambda env: round_half_away(*(f(env) for f in fs))
            case m.Call(func=func, args=args) if func in ("min", "max", "abs"):
                fs = [self.value(a) for a in args]
                if len(fs) == 1 and func != "abs":
                    return fs[0]
                builtin: Callable[..., Any] = _BUILTINS[func]

                def call(env: Env) -> Any:
                    vals = [f(env) for f in fs]
                    if None in vals:
                        return None
                    return builtin(*vals)

                return call
            case m.Call(func=func):
                raise CompileError(f"unknown function `{func}`", e.span)
            case m.Cond(test=t, then=a, otherwise=b):
                ft, fa, fb = self.cond(t), self.value(a), self.value(b)
                return lambda env: fa(env) if ft(env) else fb(env)
            case _:
                return self.cond(e)

    def cond(self, e: m.Expr) -> Fn:
        match e:
            case m.BoolLit(value=v):
                return lambda env: v
            case m.Ref(name=name):
                return lambda env: env[IND][name]
            case m.And(left=a, right=b):
                fa, fb = self.cond(a), self.cond(b)
                return lambda env: fa(env) and fb(env)
            case m.Or(left=a, right=b):
                fa, fb = self.cond(a), self.cond(b)
                return lambda env: fa(env) or fb(env)
            case m.Not(operand=o):
                f = self.cond(o)
                return lambda env: not f(env)
            case m.Compare(op=op, left=a, right=b):
                fa, fb, fn = self.value(a), self.value(b), _COMPARE[op]

                def compare(env: Env) -> bool:
                    x = fa(env)
                    if x is None:
                        return False
                    y = fb(env)
                    return y is not None and fn(x, y)

                return compare
            case m.Between(operand=o, low=lo, high=hi):
                fo, fl, fh = self.value(o), self.value(lo), self.value(hi)

                def between(env: Env) -> bool:
                    x, low, high = fo(env), fl(env), fh(env)
                    if x is None or low is None or high is None:
                        return False
                    return bool(low <= x <= high)

                return between
            case m.InList(operand=o, values=lv, negated=neg):
                fo, fl = self.value(o), self.list_fn(lv, prefixes=False)

                def in_list(env: Env) -> bool:
                    x = fo(env)
                    values = fl(env)
                    if x is None or values is None:
                        return False
                    return (x not in values) if neg else (x in values)

                return in_list
            case m.StartsWith(operand=o, prefixes=lv):
                fo, fl = self.value(o), self.list_fn(lv, prefixes=True)

                def starts(env: Env) -> bool:
                    x = fo(env)
                    values = fl(env)
                    return x is not None and values is not None and x.startswith(values)

                return starts
            case m.Matches(operand=o, pattern=pattern):
                fo, rx = self.value(o), compile_pattern(pattern).match

                def matches(env: Env) -> bool:
                    x = fo(env)
                    return x is not None and rx(x)

                return matches
            case m.IsMissing(operand=o, negated=neg):
                fo = self.value(o)
                if neg:
                    return lambda env: fo(env) is not None
                return lambda env: fo(env) is None
            case _:
                f = self.value(e)
                return lambda env: bool(f(env))

    def list_fn(self, lv: m.ListValue, prefixes: bool) -> Fn:
        target = resolve_list(lv, self.unit.lists)
        if isinstance(target, m.FieldRef):
            return self.value(target)
        if prefixes:
            items = tuple(prefix_text(x) for x in target.items)
            return lambda env: items
        values = frozenset(literal_value(x) for x in target.items)
        return lambda env: values


def compile_closures(unit: Unit) -> Callable[..., Any]:
    """A closure-built ``evaluate(h, items, region, hist, as_of)`` for ``unit``."""
    profile = unit.profile
    c = _Compiler(unit)
    indicators = [
        (i.name, c.cond(i.condition), None if i.unless is None else c.cond(i.unless))
        for i in topo_indicators(profile)
    ]
    exceptions = [c.cond(e.condition) for e in profile.exceptions]
    degree = c.value(profile.degree) if profile.degree is not None else (lambda env: 0.0)
    controls = [
        (number(ctl.threshold), None if ctl.condition is None else c.cond(ctl.condition))
        for ctl in unit.controls
    ]
    hist_block = profile.history if history_used(unit) else None
    subjects = (
        [(s.field.path.partition(".")[0], s.field.path.partition(".")[2], s.prefix)
         for s in hist_block.subjects]
        if hist_block is not None else []
    )  # fmt: skip

    def evaluate(h: Any, items: Any, region: Any, hist: Any, as_of: Any) -> Any:
        best = -1.0
        best_i = -1
        bnh = bph = 0.0
        mask = 0
        fired: list[int] | None = None
        for n, it in enumerate(items):
            nh = ph = 0.0
            if hist_block is not None:
                subj = []
                for scope, name, prefix in subjects:
                    v = (h if scope == "declaration" else it).get(name)
                    if v is not None and prefix is not None and isinstance(v, str):
                        v = v[:prefix]
                    subj.append(v)
                if None not in subj:
                    hv = hist(profile, tuple(subj), as_of)
                    nh, ph = hv.negative, hv.positive
            inds: dict[str, bool] = {}
            env = [h, it, region, nh, ph, inds]
            for name, fc, fu in indicators:
                v = fc(env)
                if v and fu is not None and fu(env):
                    v = False
                inds[name] = bool(v)
            if any(f(env) for f in exceptions):
                continue
            d = degree(env)
            d = 0.0 if d is None else float(d)
            if not 0.0 <= d <= 100.0:
                d = 100.0 if d > 100.0 else 0.0
            m_ = 0
            for k, (threshold, fcond) in enumerate(controls):
                if d >= threshold and (fcond is None or fcond(env)):
                    m_ |= 1 << k
            if m_:
                mask |= m_
                if fired is None:
                    fired = [n + 1]
                else:
                    fired.append(n + 1)
                if d > best:
                    best, best_i, bnh, bph = d, n, nh, ph
        if fired is None:
            return None
        return (best, best_i, fired, mask, bnh, bph)

    return evaluate
