"""The expression emitter of code generation: profile expressions → Python source.

:class:`Fn` writes the body of one generated function. Every operator's Python form, its
missing-value rule and its helpers come from the operator table
(:mod:`riskengine.semantics.operators`); the types of expressions come from the annotation pass
(:mod:`riskengine.semantics.types`). What is left here is how to write them fast: missing tests
inline as ``is not None`` guards bound with ``:=``, short-circuits kept, literal shortcuts.

Also the analysis shared by the generated functions (:class:`Plan`) and the statements they have
in common (field reads, indicators, history subject, the degree's clamp).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Container, Iterable, Mapping
from typing import Any

import attrs

from riskengine import model as m
from riskengine.diagnostics import Span
from riskengine.evaluator import values
from riskengine.evaluator.unit import (
    IDENT,
    MEMOS,
    CompileError,
    Unit,
    expr_level,
    literal_value,
    nodes,
    prefix_text,
    resolve_list,
)
from riskengine.semantics import operators as ops
from riskengine.semantics.indicators import topo_indicators
from riskengine.semantics.numbers import MAX_FINITE
from riskengine.semantics.operators import Operator
from riskengine.semantics.types import BOOLEAN, STRING, UNKNOWN, Types, annotate

__all__ = ["Fn", "Module", "Plan", "plan"]

#: ``not FINITE_TEST.format(t)`` is true when ``t`` is not a finite number (inf, -inf, nan): the
#: numeric rule makes such a result missing. Constants, so the test costs one comparison.
FINITE_TEST = f"{-MAX_FINITE!r} <= {{}} <= {MAX_FINITE!r}"
#: The largest number of days between two dates (0001-01-01 .. 9999-12-31).
_MAX_DAYS = float((dt.date.max - dt.date.min).days)

#: A subexpression whose source nests this many value/condition levels is bound to a temporary
#: in a statement of its own: CPython's tokenizer refuses 200 nested parentheses, and each level
#: writes at most three. Generated subexpressions are total (every guard inline), so evaluating
#: one before its statement changes no result.
HOIST_HEIGHT = 30
#: Operands of an n-ary sum, product, ``and`` or ``or`` written in one flat Python expression;
#: a longer chain continues from a temporary (CPython compiles a flat chain of about 2,000
#: binary operators at most).
CHUNK = 250

_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "=="}
_NEG = ops.by_name("neg")
_IF = ops.by_name("if")
_AND = ops.by_name("and")
_OR = ops.by_name("or")
_NOT = ops.by_name("not")


class Module:
    """Module-level constants shared by the functions of one generated module."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._consts: dict[tuple[str, Any], str] = {}
        self._counts: dict[str, int] = {}

    def const(self, kind: str, key: Any, src: str) -> str:
        name = self._consts.get((kind, key))
        if name is None:
            n = self._counts.get(kind, 0)
            self._counts[kind] = n + 1
            name = f"_{kind}{n}"
            self._consts[(kind, key)] = name
            self.lines.append(f"{name} = {src}")
        return name


class Fn:
    """The body of one generated function: lines with their profile line numbers."""

    def __init__(self, unit: Unit, module: Module, types: Types) -> None:
        self.unit = unit
        self.module = module
        self.types = types
        self.lines: list[tuple[str, int]] = []
        self.indent = 0
        self.vars: dict[str, str] = {}
        self._used: set[str] = set()
        self._temps = 0
        self._height = 0
        self._missing_if: dict[str, tuple[str, str]] = {}
        #: temporary → the arithmetic it holds, for results tested by the numeric rule
        self._finite: dict[str, str] = {}
        #: source of a missing-if value → (its guards without the numeric rule's test, the
        #: arithmetic), when that test comes last (see :meth:`compare`)
        self._deferrable: dict[str, tuple[list[str], str]] = {}
        self.indicator_vars: dict[str, str] = {}
        #: id(expression) → (expression, :meth:`bound`): nested chains ask for the bounds of
        #: their operands again (the expression is kept, so its id stays valid)
        self._bounds: dict[int, tuple[m.Expr, float]] = {}

    # -- output
    def emit(self, text: str, line: int = 0) -> None:
        self.lines.append(("    " * self.indent + text, line))

    # -- names
    def fresh(self, base: str) -> str:
        name = base
        n = 1
        while name in self._used:
            n += 1
            name = f"{base}_{n}"
        self._used.add(name)
        return name

    def forget(self, var: str) -> None:
        self._used.discard(var)

    def field_var(self, path: str) -> str:
        var = self.vars.get(path)
        if var is None:
            scope, _, name = path.partition(".")
            safe = name.replace(".", "_")
            prefix = {"declaration": "h", "item": "i", "region": "r"}.get(scope, "x")
            base = f"{prefix}_{safe}" if IDENT.match(safe) else f"{prefix}_{len(self.vars)}"
            var = self.fresh(base)
            self.vars[path] = var
        return var

    def indicator_var(self, name: str) -> str:
        var = self.indicator_vars.get(name)
        if var is None:
            safe = name if IDENT.match(name) else str(len(self.indicator_vars))
            var = self.fresh(f"ind_{safe}")
            self.indicator_vars[name] = var
        return var

    def temp(self) -> str:
        self._temps += 1
        return self.fresh(f"_t{self._temps}")

    def read(self, path: str, source: str, line: int = 0) -> None:
        """Emit ``var = source.get(name)`` for a field path."""
        var = self.field_var(path)
        self.emit(f"{var} = {source}.get({path.partition('.')[2]!r})", line)

    # -- constants
    def num(self, value: float) -> str:
        """Source of a number constant. A non-finite value (a literal beyond the float range,
        which ``check`` rejects) goes through a module constant: never a bare ``inf``."""
        if math.isfinite(value):
            return repr(value)
        return self.module.const("N", repr(value), f"float({repr(value)!r})")

    def date_const(self, d: dt.date) -> str:
        return self.module.const("D", d, f"_date({d.year}, {d.month}, {d.day})")

    # -- types
    def is_date(self, expr: m.Expr) -> bool:
        return self.types.is_date(expr)

    def is_float(self, expr: m.Expr) -> bool:
        """Whether a value is always a float when it is not missing (fields may hold ints)."""
        match expr:
            case m.NumberLit():
                return True
            case m.Arith(op="-", right=right) if self.is_date(right):
                return False
            case m.Arith():
                return any(
                    (entry is not None and entry.zero_divisor) or self.is_float(e)
                    for entry, e in _chain(expr, self.is_date)
                )
            case m.Neg(operand=o):
                return self.is_float(o)
            case m.Cond(then=a, otherwise=b):
                return self.is_float(a) and self.is_float(b)
            case m.Call(func="round"):
                return True
            case m.Call(func=f, args=args) if f in ("min", "max", "abs"):
                return all(self.is_float(x) for x in args)
        return False

    def _is_flag(self, expr: m.Expr) -> bool:
        """A true/false value that is never missing (an indicator, a predicate)."""
        if isinstance(expr, m.FieldRef | m.Cond | m.Call | m.Arith | m.Neg):
            return False
        return self.types.of(expr) is BOOLEAN

    # -- operands
    def value(self, expr: m.Expr) -> tuple[str, bool]:
        """Source of an expression's value and whether it may be missing (``None``)."""
        saved, self._height = self._height, 0
        src, null = self._value(expr)
        src = self._hoisted(src, saved)
        return src, null

    def cond(self, expr: m.Expr) -> str:
        """Source of a condition: always ``True`` or ``False``, never missing."""
        saved, self._height = self._height, 0
        return self._hoisted(self._cond(expr), saved)

    def _hoisted(self, src: str, saved: int) -> str:
        """``src``, or a temporary bound to it in a statement of its own when it nests deep."""
        height = self._height + 1
        if height >= HOIST_HEIGHT and not self.simple(src):
            src = self.bind(src)
            height = 0
        self._height = max(saved, height)
        return src

    def bind(self, src: str) -> str:
        """A temporary bound to ``src`` by a statement emitted now (before the statement being
        built)."""
        t = self.temp()
        self.emit(f"{t} = {src}")
        return t

    def _value(self, expr: m.Expr) -> tuple[str, bool]:
        cls = type(expr)  # the commonest values first, as the cases below write them
        if cls is m.FieldRef:
            var = self.vars.get(expr.path)  # type: ignore[union-attr]
            if var is not None:
                return var, True
        elif cls is m.Ref:
            var = self.indicator_vars.get(expr.name)  # type: ignore[union-attr]
            if var is not None:
                return var, False
        elif cls is m.Arith:
            return self.arith(expr)  # type: ignore[arg-type]
        match expr:
            case m.NumberLit(value=v):
                src = self.num(values.number(v))
                return (src if src.startswith("_") else f"({src})"), False
            case m.StringLit(value=v):
                return repr(v), False
            case m.BoolLit(value=v):
                return ("True" if v else "False"), False
            case m.DateLit(value=d):
                return self.date_const(d), False
            case m.FieldRef(path=path):
                if path not in self.vars:
                    raise CompileError(f"internal: field {path} was not read", expr.span)
                return self.vars[path], True
            case m.Ref(name=name):
                var = self.indicator_vars.get(name)
                if var is None:
                    if name in self.unit.lists:
                        raise CompileError(f"the list `{name}` is not a value", expr.span)
                    raise CompileError(f"unknown indicator `{name}`", expr.span)
                return var, False
            case m.HistoryRef(kind=kind):
                return ("nh" if kind is m.HistoryKind.NEGATIVE else "ph"), False
            case m.Neg():
                negations, inner = _unwrap(expr, m.Neg)
                if negations % 2 == 0:
                    return self.value(inner)  # - - x is x
                return self.propagate(_NEG, (inner,))
            case m.Arith():
                return self.arith(expr)
            case m.Call(func=func, args=args):
                return self.call(func, args, expr)
            case m.Cond(test=t, then=a, otherwise=b):
                test = self.cond(t)
                sa, na = self.value(a)
                sb, nb = self.value(b)
                return f"({_IF.emit_src(test, sa, sb)})", na or nb
            case _:
                return self.cond(expr), False

    def simple(self, src: str) -> bool:
        return bool(IDENT.match(src)) or src in ("True", "False")

    def missing_if(self, guards: list[str], body: str) -> str:
        """``(None if guards else body)``: a value missing when any guard holds. Remembered, so
        that a missing test of it can test the guards instead (see :meth:`_is_none`)."""
        test = " or ".join(guards)
        src = f"(None if {test} else {body})"
        self._missing_if[src] = (test, body)
        raw = self._finite.get(body)
        if raw is not None and guards[-1].endswith(f"({body} := {raw}) <= {MAX_FINITE!r}"):
            self._deferrable[src] = (guards[:-1], raw)
        return src

    def _is_none(self, src: str) -> tuple[str, str]:
        """(name, guard): the guard is true when the value is missing and binds the name."""
        fused = self._missing_if.get(src)
        if fused is not None:  # `(t := (None if G else B)) is None` is `G`, and t is B
            test, body = fused
            return (body if self.simple(body) else f"({body})"), test
        if self.simple(src):
            return src, f"{src} is None"
        t = self.temp()
        return t, f"({t} := {src}) is None"

    def _not_none(self, src: str) -> tuple[str, str]:
        fused = self._missing_if.get(src)
        if fused is not None:
            test, body = fused
            return (body if self.simple(body) else f"({body})"), f"not ({test})"
        if self.simple(src):
            return src, f"{src} is not None"
        t = self.temp()
        return t, f"({t} := {src}) is not None"

    def operands(self, exprs: Iterable[m.Expr], positive: bool) -> tuple[list[str], list[str]]:
        """Names to use for each operand and the guards for the nullable ones (``positive``:
        guards true when present, joined with ``and``; else true when missing, with ``or``)."""
        return self.guarded([self.value(e) for e in exprs], positive)

    def guarded(
        self, operands: Iterable[tuple[str, bool]], positive: bool
    ) -> tuple[list[str], list[str]]:
        """:meth:`operands` for operands already written (source, may be missing)."""
        names: list[str] = []
        guards: list[str] = []
        for src, null in operands:
            if null:
                name, guard = self._not_none(src) if positive else self._is_none(src)
                guards.append(guard)
                names.append(name)
            else:
                names.append(src)
        return names, guards

    def propagate(self, entry: Operator, exprs: Iterable[m.Expr]) -> tuple[str, bool]:
        """An operator whose result is missing when an operand is (``Missing.PROPAGATE``)."""
        names, guards = self.operands(exprs, positive=False)
        body = entry.emit_src(*names)
        if not guards:
            return (body if _is_call(entry) else f"({body})"), False
        return self.missing_if(guards, body), True

    def predicate(
        self, entry: Operator, exprs: Iterable[m.Expr], extra: m.ListValue | None = None
    ) -> str:
        """A predicate that is false when an operand is missing (``Missing.FALSE``)."""
        names, guards = self.operands(exprs, positive=True)
        if extra is not None:
            lst, lnull = self.list_src_for(entry, extra)
            if lnull:
                guards.append(f"{lst} is not None")
            names.append(lst)
        return _all([*guards, entry.emit_src(*names)])

    def arith(self, expr: m.Arith) -> tuple[str, bool]:
        entry = ops.operator_of(expr, self.is_date)
        assert entry is not None
        a, b = expr.left, expr.right
        if entry.helper is not None:  # date_diff: the helper takes missing operands
            sa, _ = self.value(a)
            sb, _ = self.value(b)
            return entry.emit_src(sa, sb), True
        if entry.name == "mul":
            for w, flag in ((a, b), (b, a)):
                weight_value = values.number(w.value) if isinstance(w, m.NumberLit) else -1.0
                if 0.0 <= weight_value < MAX_FINITE and self._is_flag(flag):
                    weight = self.num(weight_value)
                    return f"({weight} if {self.cond(flag)} else 0.0)", False
        chain = _chain(expr, self.is_date)
        if len(chain) > 2 or entry.name != "mul":
            return self.chain(chain)
        (x, y), guards = self.operands((a, b), positive=False)
        body = entry.emit_src(x, y)
        if entry.finite and self.bound(expr) >= MAX_FINITE:
            body = self.check_finite(body, guards)
        if not guards:
            return f"({body})", False
        return self.missing_if(guards, body), True

    def chain(self, chain: list[tuple[Operator | None, m.Expr]]) -> tuple[str, bool]:
        """A left-to-right chain ``a + b - c …`` or ``a * b / c …`` written flat: the missing
        tests of every operand, the zero tests of the divisors, one test of the numeric rule on
        the result (an intermediate overflow stays non-finite to the end: every operand is
        finite). Evaluates exactly like the nested binary operations."""
        acc: tuple[str, bool] | None = None
        acc_bound = 0.0
        for start in range(0, len(chain), CHUNK):
            part = chain[start : start + CHUNK]
            operands = [self.value(e) for _, e in part]
            bounds = [self.bound(e) for _, e in part]
            ops_ = [entry for entry, _ in part]
            if acc is not None:
                operands.insert(0, acc)
                bounds.insert(0, acc_bound)
                ops_.insert(0, None)
            names, guards = self.guarded(operands, positive=False)
            body = names[0]
            total = bounds[0]
            for entry, name, b in zip(ops_[1:], names[1:], bounds[1:], strict=True):
                assert entry is not None
                if entry.zero_divisor:
                    if not self.simple(name) and not _is_number_src(name):
                        t = self.temp()
                        guards.append(f"({t} := {name}) == 0")
                        name = t
                    else:
                        guards.append(f"{name} == 0")
                total = _combine(entry, total, b)
                body = entry.emit_src(body, name)
            if total >= MAX_FINITE:
                body = self.check_finite(body, guards)
            src = self.missing_if(guards, body) if guards else f"({body})"
            acc, acc_bound = (src, bool(guards)), min(total, MAX_FINITE)
            if start + CHUNK < len(chain):
                acc = (self.bind(src), bool(guards))
        assert acc is not None
        return acc

    def connective(self, expr: m.And | m.Or) -> str:
        """``a and b and c …`` (or ``or``) written flat, short-circuits kept."""
        entry = _AND if isinstance(expr, m.And) else _OR
        leaves = _leaves(expr)
        srcs = [self.cond(x) for x in leaves]
        joiner = f" {entry.spelling} "
        out = ""
        for start in range(0, len(srcs), CHUNK):
            part = srcs[start : start + CHUNK]
            src = f"({joiner.join(([out] if out else []) + part)})"
            out = self.bind(src) if start + CHUNK < len(srcs) else src
        return out

    def check_finite(self, body: str, guards: list[str]) -> str:
        """The numeric rule: append to ``guards`` a test that is true when ``body`` is not a
        finite number (binding it to a temporary) and return the temporary."""
        t = self.temp()
        guards.append(f"not {FINITE_TEST.format(f'({t} := {body})')}")
        self._finite[t] = body
        return t

    def bound(self, expr: m.Expr) -> float:
        """An upper bound of the magnitude of a value (``inf``: unknown). Arithmetic whose
        result is provably below the float range needs no test of the numeric rule."""
        hit = self._bounds.get(id(expr))
        if hit is not None and hit[0] is expr:
            return hit[1]
        found = self._bound(expr)
        self._bounds[id(expr)] = (expr, found)
        return found

    def _bound(self, expr: m.Expr) -> float:
        match expr:
            case m.NumberLit(value=v):
                return abs(values.number(v))
            case m.FieldRef():
                return math.inf
            case m.HistoryRef(kind=kind):
                return self._history_bound(kind)
            case m.Neg(operand=o):
                return self.bound(o)
            case m.Arith(op="-", right=right) if self.is_date(right):
                return _MAX_DAYS
            case m.Arith():
                total = 0.0
                for entry, e in _chain(expr, self.is_date):
                    bound = self.bound(e)
                    if entry is None:
                        total = bound
                    elif entry.zero_divisor and isinstance(e, m.NumberLit):
                        c = abs(values.number(e.value))
                        total = 0.0 if c == 0.0 else total / c  # x / 0 is missing
                    else:
                        total = _combine(entry, total, bound)
                return total
            case m.Call(func="round", args=args):
                d = 0.0
                if len(args) > 1:
                    digits = args[1]
                    d = values.number(digits.value) if isinstance(digits, m.NumberLit) else -999
                if d < -300:
                    return MAX_FINITE  # round's result is finite or missing
                step = 1.0 if d >= 0 else 10.0**-d
                return min(self.bound(args[0]) + step, MAX_FINITE)
            case m.Call(args=args):
                return max(self.bound(x) for x in args) if args else 0.0
            case m.Cond(then=a, otherwise=b):
                return max(self.bound(a), self.bound(b))
        return 1.0  # a condition counts 1 or 0

    def _history_bound(self, kind: m.HistoryKind) -> float:
        hist = self.unit.profile.history
        block: m.NegativeHistory | m.PositiveHistory | None = None
        if hist is not None:
            block = hist.negative if kind is m.HistoryKind.NEGATIVE else hist.positive
        return 0.0 if block is None else abs(values.number(block.max))

    def call(self, func: str, args: tuple[m.Expr, ...], expr: m.Expr) -> tuple[str, bool]:
        entry = ops.function(func)
        if entry is None or not args:
            raise CompileError(f"unknown function `{func}`", expr.span)
        if not entry.accepts(len(args)):
            if len(args) == 1 and entry.name in ("min", "max"):
                return self.value(args[0])  # min(x) is x (the checks reject it)
            raise CompileError(f"{func} takes {entry.arity_text}", expr.span)
        if entry.helper is not None:  # the helper takes missing arguments (round)
            srcs = [self.value(a) for a in args]
            # round's result overflows (is missing) only where its magnitude may reach the
            # float range
            overflow = self.bound(expr) >= MAX_FINITE
            return entry.emit_src(*(s for s, _ in srcs)), overflow or any(n for _, n in srcs)
        return self.propagate(entry, args)

    def compare(self, op: str, a: m.Expr, b: m.Expr) -> str:
        """A comparison (false when a side is missing). When one side is arithmetic whose last
        missing test is the numeric rule's and the other a number literal, the comparison
        itself excludes inf and nan: ``-MAX <= x / y < 12.5`` (one comparison less)."""
        entry = ops.COMPARISONS[op]
        sides = [self.value(a), self.value(b)]
        for k, other in ((0, b), (1, a)):
            deferrable = self._deferrable.get(sides[k][0])
            if deferrable is None or not isinstance(other, m.NumberLit) or op == "!=":
                continue
            if not math.isfinite(values.number(other.value)):
                continue
            guards, raw = deferrable
            (name,), more = self.guarded([sides[1 - k]], positive=True)
            flipped = op if k == 0 else _FLIP[op]
            arith = f"({raw})"
            if flipped == "==":
                test = f"{arith} == {name}"
            elif flipped in ("<", "<="):
                test = f"{-MAX_FINITE!r} <= {arith} {flipped} {name}"
            else:
                test = f"{MAX_FINITE!r} >= {arith} {flipped} {name}"
            present = [f"not ({' or '.join(guards)})"] if guards else []
            return _all([*present, *more, test])
        names, guards = self.guarded(sides, positive=True)
        return _all([*guards, entry.emit_src(*names)])

    def list_src(self, lv: m.ListValue, prefixes: bool) -> tuple[str, bool]:
        target = resolve_list(lv, self.unit.lists)
        if isinstance(target, m.FieldRef):
            if target.path not in self.vars:
                raise CompileError(f"internal: field {target.path} was not read", target.span)
            return self.vars[target.path], True
        if prefixes:
            items = tuple(prefix_text(x) for x in target.items)
            return self.module.const("P", items, repr(items)), False
        vals = tuple(literal_value(x) for x in target.items)
        key = tuple((type(v).__name__, v) for v in vals)
        srcs = [self.value(x)[0] for x in target.items]
        return self.module.const("L", key, f"frozenset(({''.join(s + ', ' for s in srcs)}))"), False

    def list_src_for(self, entry: Operator, lv: m.ListValue) -> tuple[str, bool]:
        return self.list_src(lv, prefixes=entry.name == "starts_with")

    def matches(self, expr: m.Matches) -> str:
        """``operand matches "pattern"``: the one place the code generator writes a match."""
        (x,), guards = self.operands((expr.operand,), positive=True)
        rx = self.module.const("R", expr.pattern, f"_regex({expr.pattern!r}).match")
        return _all([*guards, f"{rx}({x})"])  # semantics.regex: linear time

    def _cond(self, expr: m.Expr) -> str:
        cls = type(expr)
        if cls is m.Ref:  # the commonest conditions first, as the cases below write them
            return self.value(expr)[0]
        if cls is m.And or cls is m.Or:
            return self.connective(expr)  # type: ignore[arg-type]
        match expr:
            case m.BoolLit(value=v):
                return "True" if v else "False"
            case m.Ref():
                return self.value(expr)[0]
            case m.And() | m.Or():
                return self.connective(expr)
            case m.Not():
                negations, inner = _unwrap(expr, m.Not)
                if negations % 2 == 0:
                    return self.cond(inner)  # not not c is c
                return f"({_NOT.emit_src(self.cond(inner))})"
            case m.Compare(op="==", left=a, right=b) if _literal(a) or _literal(b):
                # ``None == literal`` is already False: no missing test needed
                eq = ops.COMPARISONS["=="]
                return f"({eq.emit_src(self.value(a)[0], self.value(b)[0])})"
            case m.Compare(op=op, left=a, right=b):
                return self.compare(op, a, b)
            case m.Between(operand=o, low=lo, high=hi):
                return self.predicate(ops.by_name("between"), (o, lo, hi))
            case m.InList(operand=o, values=lv, negated=False) if not isinstance(
                resolve_list(lv, self.unit.lists), m.FieldRef
            ):
                # a literal list never holds None: ``None in list`` is already False
                entry = ops.by_name("in")
                lst = self.list_src(lv, prefixes=False)[0]
                return f"({entry.emit_src(self.value(o)[0], lst)})"
            case m.InList(operand=o, values=lv, negated=negated):
                entry = ops.by_name("not_in" if negated else "in")
                return self.predicate(entry, (o,), extra=lv)
            case m.StartsWith(operand=o, prefixes=lv):
                return self.predicate(ops.by_name("starts_with"), (o,), extra=lv)
            case m.Matches():
                return self.matches(expr)
            case m.IsMissing(operand=o, negated=negated):
                entry = ops.by_name("is_not_missing" if negated else "is_missing")
                src, null = self.value(o)
                if not null:
                    return "True" if entry.name == "is_not_missing" else "False"
                return f"({entry.emit_src(src)})"
            case _:
                src, null = self.value(expr)
                if self.types.of(expr) is BOOLEAN:
                    return f"({src} is True)" if null else src
                return f"bool({src})"


def _unwrap(expr: m.Expr, kind: type) -> tuple[int, m.Expr]:
    """How many ``kind`` nodes (``Not``, ``Neg``) wrap ``expr``, and what they wrap."""
    n = 0
    while isinstance(expr, kind):
        n += 1
        expr = expr.operand  # type: ignore[union-attr]
    return n, expr


def _chain(expr: m.Arith, is_date: Any) -> list[tuple[Operator | None, m.Expr]]:
    """The operands of a left-nested chain of ``+``/``-`` (numbers) or of ``*``/``/``, with
    the operator before each: ``a - b + c`` → ``[(None, a), (sub, b), (add, c)]``."""
    level = ("+", "-") if expr.op in ("+", "-") else ("*", "/")
    out: list[tuple[Operator | None, m.Expr]] = []
    node: m.Expr = expr
    while (
        isinstance(node, m.Arith)
        and node.op in level
        and not (node.op == "-" and is_date(node.right))
    ):
        out.append((ops.ARITHMETIC[node.op], node.right))
        node = node.left
    out.append((None, node))
    out.reverse()
    return out


def _leaves(expr: m.And | m.Or) -> list[m.Expr]:
    """The operands of a chain of ``and`` (or of ``or``), in order, at any nesting."""
    kind = type(expr)
    out: list[m.Expr] = []
    stack: list[m.Expr] = [expr]
    while stack:
        node = stack.pop()
        if type(node) is kind:
            stack.append(node.right)
            stack.append(node.left)
        else:
            out.append(node)
    return out


def _combine(entry: Operator, a: float, b: float) -> float:
    """A bound of the magnitude of ``x op y`` from bounds of ``x`` and ``y``."""
    if entry.name in ("add", "sub"):
        return a + b
    if entry.name == "mul":
        return 0.0 if a == 0.0 or b == 0.0 else a * b
    return math.inf  # a division by an unknown value


def _is_call(entry: Operator) -> bool:
    """Whether the entry's Python form is a call (``min(…)``): it needs no parentheses."""
    return entry.emit is not None and entry.emit[0].isalpha() and entry.emit.endswith(")")


def _literal(expr: m.Expr) -> bool:
    return isinstance(expr, m.NumberLit | m.StringLit | m.DateLit | m.BoolLit)


def _is_number_src(src: str) -> bool:
    return src.startswith("(") and src.endswith(")") and _is_float(src[1:-1])


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _all(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 and parts[0].startswith("(") else f"({' and '.join(parts)})"


# ------------------------------------------------------------------------------ analysis


@attrs.frozen
class Plan:
    """Facts about a unit used by every generated function."""

    order: tuple[m.Indicator, ...]
    levels: Mapping[str, int]
    history_level: int
    uses_region: bool
    #: The type of every expression (the annotation pass, with the catalogue in force).
    types: Types


def plan(unit: Unit) -> Plan:
    profile = unit.profile
    order = tuple(topo_indicators(profile))
    hist = profile.history
    history_level = 0
    if hist is not None and any(s.field.scope == "item" for s in hist.subjects):
        history_level = 1
    levels: dict[str, int] = {}
    for ind in order:
        levels[ind.name] = max(
            expr_level(ind.condition, levels, history_level),
            expr_level(ind.unless, levels, history_level),
        )
    exprs: list[m.Expr | None] = [i.condition for i in order]
    exprs += [i.unless for i in order]
    exprs += [e.condition for e in profile.exceptions] + [profile.degree]
    exprs += [c.condition for c in unit.controls]
    uses_region = _uses_region(exprs)
    types = annotate(profile, unit.types, unit.lists, unit.controls)
    return Plan(order, levels, history_level, uses_region, types)


def _uses_region(exprs: Iterable[m.Expr | None]) -> bool:
    """Whether the expressions read a regional parameter: a field ``region.x``, or a list
    parameter of ``in`` / ``starts with``."""
    for e in exprs:
        for n in nodes(e):
            kind = type(n)
            if kind is m.FieldRef:
                if n.scope == "region":
                    return True
            elif kind is m.InList:
                if type(n.values) is m.FieldRef:
                    return True
            elif kind is m.StartsWith and type(n.prefixes) is m.FieldRef:
                return True
    return False


def list_fields(expr: m.Expr | None) -> tuple[str, ...]:
    """Full paths of every field an expression reads, regional list parameters included
    (memoised like :func:`~riskengine.evaluator.unit.nodes`, dropped with it)."""
    if expr is None:
        return ()
    hit = _FIELDS.get(id(expr))
    if hit is not None and hit[0] is expr:
        return hit[1]
    out: list[str] = []
    for node in nodes(expr):
        kind = type(node)
        if kind is m.FieldRef:
            out.append(node.path)
        elif kind is m.InList:
            if type(node.values) is m.FieldRef:
                out.append(node.values.path)
        elif kind is m.StartsWith and type(node.prefixes) is m.FieldRef:
            out.append(node.prefixes.path)
    if len(_FIELDS) > 100_000:
        _FIELDS.clear()
    found = tuple(out)
    _FIELDS[id(expr)] = (expr, found)  # the entry keeps expr alive, so its id stays unique
    return found


#: id(expression) → (expression, :func:`list_fields`); cleared by ``forget_walks``
_FIELDS: dict[int, tuple[Any, tuple[str, ...]]] = {}
MEMOS.append(_FIELDS)


def needed_indicators(roots: Iterable[m.Expr | None], profile: m.Profile) -> set[str]:
    """Names of the indicators the roots refer to, directly or through other indicators."""
    by_name = {i.name: i for i in profile.indicators}
    seen: set[str] = set()
    ref = m.Ref
    stack = [n.name for r in roots for n in nodes(r) if type(n) is ref]
    while stack:
        name = stack.pop()
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        ind = by_name[name]
        for e in (ind.condition, ind.unless):
            stack += [n.name for n in nodes(e) if type(n) is ref]
    return seen


def uses_history(exprs: Iterable[m.Expr | None]) -> bool:
    history = m.HistoryRef
    for e in exprs:
        for n in nodes(e):
            if type(n) is history:
                return True
    return False


def line_of(span: Span | None) -> int:
    return span.line if span is not None else 0


# ------------------------------------------------------------------------------ statements


def emit_reads(
    fn: Fn, paths: Iterable[str], scope: str, source: str, inline: Container[str] = ()
) -> None:
    """Read each field of ``scope`` once into a local; a field in ``inline`` (read at a single
    place) is read where it is used instead, so that short-circuits skip the read."""
    for path in dict.fromkeys(paths):
        if path.partition(".")[0] == scope and path not in fn.vars:
            if path in inline:
                fn.vars[path] = f"{source}.get({path.partition('.')[2]!r})"
            else:
                fn.read(path, source)


def emit_indicator(fn: Fn, ind: m.Indicator) -> None:
    var = fn.indicator_var(ind.name)
    src = fn.cond(ind.condition)
    if ind.unless is not None:
        src = f"({src} and not {fn.cond(ind.unless)})"
    fn.emit(f"{var} = {src}", line_of(ind.span))


def emit_history(fn: Fn, profile: m.Profile, target: str) -> None:
    """``target = subject tuple or None`` for the profile's history block."""
    hist = profile.history
    assert hist is not None
    parts = []
    for s in hist.subjects:
        var = fn.vars[s.field.path]
        if s.prefix is not None and fn.types.of(s.field) in (STRING, UNKNOWN):
            parts.append(f"(None if {var} is None else {var}[:{s.prefix}])")
        else:
            parts.append(var)
    fn.emit(f"{target} = ({''.join(p + ', ' for p in parts)})", line_of(hist.span))


def emit_clamp(fn: Fn, var: str, null: bool, line: int, is_float: bool = False) -> None:
    """Missing → 0, then clamp to 0..100; ``var`` becomes a float."""
    if null and is_float:
        fn.emit(f"d = 0.0 if {var} is None else {var}", line)
    elif null:
        fn.emit(f"d = 0.0 if {var} is None else float({var})", line)
    elif not is_float or var != "d":
        fn.emit(f"d = {var}" if is_float else f"d = float({var})", line)
    fn.emit("if not 0.0 <= d <= 100.0:", line)
    fn.emit("    d = 100.0 if d > 100.0 else 0.0", line)
