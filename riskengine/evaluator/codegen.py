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

Missing is ``None``; every read is ``mapping.get(name)`` once per function (header, region) or per
item. Predicates with a missing operand are ``False`` through inline ``is not None`` guards;
arithmetic with a missing operand or a zero divisor is ``None``. Number literals are floats (the
literal ``12.50`` is ``12.5``). Each statement carries a ``# file.rp:LINE`` comment, and the
source is registered in :mod:`linecache` under a ``<profile KEY file.rp>`` name, so a traceback
through generated code shows the generated line with its profile line. Generating twice gives
byte-identical source: names come from counters in source order, never from ids or hashes.
"""

from __future__ import annotations

import datetime as dt
import linecache
import re
from collections.abc import Container, Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from riskengine import model as m
from riskengine.diagnostics import Span
from riskengine.evaluator import values
from riskengine.semantics.indicators import topo_indicators
from riskengine.semantics.regex import compile_pattern

__all__ = [
    "CompileError",
    "Generated",
    "Unit",
    "compile_unit",
    "degree_terms",
    "expr_level",
    "generate",
    "prefix_text",
    "resolve_list",
    "topo_indicators",
]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class CompileError(Exception):
    """The model cannot be compiled (an unknown name, a cycle...). The checks report these
    problems with positions first; this is the backstop for models that skipped the checks."""

    def __init__(self, message: str, span: Span | None = None) -> None:
        self.span = span
        super().__init__(message)


@attrs.frozen
class Unit:
    """What one generated module evaluates: a profile with the controls and message in effect
    (a regional fill may replace both), the named lists it can see, and the types of fields."""

    profile: m.Profile
    controls: tuple[m.Control, ...]
    message: m.Message | None
    lists: Mapping[str, m.ListLit]
    #: Type name ("number", "string", "code", "date", "boolean") of each field by full path,
    #: ``region.NAME`` included.
    types: Mapping[str, str]
    #: How the module is named in tracebacks: ``<profile LABEL FILE>``.
    label: str
    file: str
    #: Conditions at least one of which holds on any item where the profile can fire (from the
    #: index plan): the fast path skips other items at once.
    guards: tuple[m.Expr, ...] = ()
    #: The degree is a float within 0..100 whenever it is not missing (interval analysis):
    #: the fast path then skips the clamp.
    degree_in_range: bool = False


@attrs.frozen
class Generated:
    """Generated source with its linecache name and the map generated line → profile line."""

    source: str
    filename: str
    line_map: Mapping[int, int]


def prefix_text(lit: m.Literal) -> str:
    """A prefix for ``starts with``: strings as written, numbers as their decimal text."""
    if isinstance(lit, m.StringLit):
        return lit.value
    if isinstance(lit, m.NumberLit):
        return str(lit.value)
    return str(lit.value)


def literal_value(lit: m.Literal) -> Any:
    """A literal as a runtime value: numbers are floats."""
    if isinstance(lit, m.NumberLit):
        return values.number(lit.value)
    return lit.value


def resolve_list(values_: m.ListValue, lists: Mapping[str, m.ListLit]) -> m.ListLit | m.FieldRef:
    """A literal list, or the literal list a name refers to, or a regional list parameter."""
    if isinstance(values_, m.Ref):
        found = lists.get(values_.name)
        if found is None:
            raise CompileError(f"unknown list `{values_.name}`", values_.span)
        return found
    return values_


def is_date(expr: m.Expr, types: Mapping[str, str]) -> bool:
    """Whether an expression is a date value (a date literal, a date field, or an ``if``
    choosing between them)."""
    match expr:
        case m.DateLit():
            return True
        case m.FieldRef(path=path):
            return types.get(path) == "date"
        case m.Cond(then=a):
            return is_date(a, types)
    return False


def degree_terms(expr: m.Expr, types: Mapping[str, str]) -> list[tuple[str, m.Expr]]:
    """The terms of a top-level sum ``a + b - c``: ``[("+", a), ("+", b), ("-", c)]``. A
    difference of two dates (a number of days) is one term."""
    if isinstance(expr, m.Arith) and expr.op in ("+", "-") and not is_date(expr.right, types):
        return [*degree_terms(expr.left, types), (expr.op, expr.right)]
    return [("+", expr)]


_CHILDREN: dict[type, tuple[str, ...]] = {
    m.Neg: ("operand",), m.Not: ("operand",), m.IsMissing: ("operand",),
    m.Matches: ("operand",), m.Arith: ("left", "right"), m.Compare: ("left", "right"),
    m.And: ("left", "right"), m.Or: ("left", "right"), m.InList: ("operand", "values"),
    m.StartsWith: ("operand", "prefixes"), m.Between: ("operand", "low", "high"),
    m.Cond: ("test", "then", "otherwise"),
}  # fmt: skip
_WALKS: dict[int, tuple[Any, tuple[Any, ...]]] = {}


def nodes(expr: m.Expr | m.ListLit | None) -> tuple[Any, ...]:
    """Every node of an expression, pre-order in source order (like ``model.walk``), memoised:
    compiling reads the same expressions many times."""
    if expr is None:
        return ()
    hit = _WALKS.get(id(expr))
    if hit is not None and hit[0] is expr:
        return hit[1]
    out: list[Any] = []
    stack: list[Any] = [expr]
    while stack:
        node = stack.pop()
        out.append(node)
        cls = type(node)
        attrs_ = _CHILDREN.get(cls)
        if attrs_ is not None:
            for name in reversed(attrs_):
                stack.append(getattr(node, name))
        elif cls is m.Call:
            stack.extend(reversed(node.args))
        elif cls is m.ListLit:
            stack.extend(reversed(node.items))
    if len(_WALKS) > 100_000:
        _WALKS.clear()
    result = tuple(out)
    _WALKS[id(expr)] = (expr, result)  # the entry keeps expr alive, so its id stays unique
    return result


def forget_walks() -> None:
    """Drop the memo of :func:`nodes` (it keeps the expressions it has seen alive)."""
    _WALKS.clear()


def _refs(expr: m.Expr | None) -> Iterable[m.Expr | m.ListLit]:
    return nodes(expr)


def expr_level(expr: m.Expr | None, indicator_levels: Mapping[str, int], history_level: int) -> int:
    """0 when an expression reads only header, regional and constant values, 1 when it reads
    the goods item (directly, through an indicator, or through item-level history)."""
    level = 0
    for node in _refs(expr):
        if isinstance(node, m.FieldRef) and node.scope == "item":
            return 1
        if isinstance(node, m.Ref):
            level = max(level, indicator_levels.get(node.name, 0))
        elif isinstance(node, m.HistoryRef):
            level = max(level, history_level)
    return level


# ------------------------------------------------------------------------------ the emitter


class _Module:
    """Module-level constants shared by the functions of one generated module."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._consts: dict[tuple[str, Any], str] = {}

    def const(self, kind: str, key: Any, src: str) -> str:
        name = self._consts.get((kind, key))
        if name is None:
            name = f"_{kind}{len([k for k in self._consts if k[0] == kind])}"
            self._consts[(kind, key)] = name
            self.lines.append(f"{name} = {src}")
        return name


class _Fn:
    """The body of one generated function: lines with their profile line numbers."""

    def __init__(self, unit: Unit, module: _Module) -> None:
        self.unit = unit
        self.module = module
        self.lines: list[tuple[str, int]] = []
        self.indent = 0
        self.vars: dict[str, str] = {}
        self._used: set[str] = set()
        self._temps = 0
        self.indicator_vars: dict[str, str] = {}

    # -- output
    def emit(self, text: str, line: int = 0) -> None:
        self.lines.append(("    " * self.indent + text, line))

    # -- names
    def _fresh(self, base: str) -> str:
        name = base
        n = 1
        while name in self._used:
            n += 1
            name = f"{base}_{n}"
        self._used.add(name)
        return name

    def field_var(self, path: str) -> str:
        var = self.vars.get(path)
        if var is None:
            scope, _, name = path.partition(".")
            safe = name.replace(".", "_")
            prefix = {"declaration": "h", "item": "i", "region": "r"}.get(scope, "x")
            base = f"{prefix}_{safe}" if _IDENT.match(safe) else f"{prefix}_{len(self.vars)}"
            var = self._fresh(base)
            self.vars[path] = var
        return var

    def indicator_var(self, name: str) -> str:
        var = self.indicator_vars.get(name)
        if var is None:
            safe = name if _IDENT.match(name) else str(len(self.indicator_vars))
            var = self._fresh(f"ind_{safe}")
            self.indicator_vars[name] = var
        return var

    def temp(self) -> str:
        self._temps += 1
        return self._fresh(f"_t{self._temps}")

    def read(self, path: str, source: str, line: int = 0) -> None:
        """Emit ``var = source.get(name)`` for a field path."""
        var = self.field_var(path)
        self.emit(f"{var} = {source}.get({path.partition('.')[2]!r})", line)

    # -- types
    def type_of(self, expr: m.Expr) -> str | None:
        match expr:
            case m.NumberLit() | m.Arith() | m.Neg() | m.Call() | m.HistoryRef():
                if isinstance(expr, m.Call) and expr.func in ("min", "max") and expr.args:
                    return self.type_of(expr.args[0])
                return "number"
            case m.StringLit():
                return "string"
            case m.DateLit():
                return "date"
            case m.FieldRef(path=path):
                return self.unit.types.get(path)
            case m.Cond(then=a):
                return self.type_of(a)
            case _:
                return "boolean"

    # -- operands
    def value(self, expr: m.Expr) -> tuple[str, bool]:
        """Source of an expression's value and whether it may be missing (``None``)."""
        match expr:
            case m.NumberLit(value=v):
                return f"({values.number(v)!r})", False
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
            case m.Neg(operand=o):
                src, null = self.value(o)
                if not null:
                    return f"(-{src})", False
                t, guard = self._is_none(src)
                return f"(None if {guard} else -{t})", True
            case m.Arith(op=op, left=a, right=b):
                return self.arith(op, a, b)
            case m.Call(func=func, args=args):
                return self.call(func, args, expr)
            case m.Cond(test=t, then=a, otherwise=b):
                test = self.cond(t)
                sa, na = self.value(a)
                sb, nb = self.value(b)
                return f"({sa} if {test} else {sb})", na or nb
            case _:
                return self.cond(expr), False

    def date_const(self, d: dt.date) -> str:
        return self.module.const("D", d, f"_date({d.year}, {d.month}, {d.day})")

    def _simple(self, src: str) -> bool:
        return bool(_IDENT.match(src)) or src in ("True", "False")

    def _is_none(self, src: str) -> tuple[str, str]:
        """(name, guard): the guard is true when the value is missing and binds the name."""
        if self._simple(src):
            return src, f"{src} is None"
        t = self.temp()
        return t, f"({t} := {src}) is None"

    def _not_none(self, src: str) -> tuple[str, str]:
        if self._simple(src):
            return src, f"{src} is not None"
        t = self.temp()
        return t, f"({t} := {src}) is not None"

    def _operands(self, exprs: Iterable[m.Expr], positive: bool) -> tuple[list[str], list[str]]:
        """Names to use for each operand and the guards for the nullable ones."""
        names: list[str] = []
        guards: list[str] = []
        for e in exprs:
            src, null = self.value(e)
            if null:
                name, guard = self._not_none(src) if positive else self._is_none(src)
                guards.append(guard)
                names.append(name)
            else:
                names.append(src)
        return names, guards

    def arith(self, op: str, a: m.Expr, b: m.Expr) -> tuple[str, bool]:
        if op == "-" and is_date(b, self.unit.types):
            sa, _ = self.value(a)
            sb, _ = self.value(b)
            return f"_sub({sa}, {sb})", True
        if op == "*":
            for w, flag in ((a, b), (b, a)):
                if isinstance(w, m.NumberLit) and w.value >= 0 and self._is_flag(flag):
                    return f"({values.number(w.value)!r} if {self.cond(flag)} else 0.0)", False
        (x, y), guards = self._operands((a, b), positive=False)
        if op == "/":
            if not self._simple(y) and not _is_number_src(y):
                t = self.temp()
                guards.append(f"({t} := {y}) == 0")
                y = t
            else:
                guards.append(f"{y} == 0")
        if not guards:
            return f"({x} {op} {y})", False
        return f"(None if {' or '.join(guards)} else {x} {op} {y})", True

    def _is_flag(self, expr: m.Expr) -> bool:
        """A true/false value that is never missing (an indicator, a predicate)."""
        if isinstance(expr, m.FieldRef | m.Cond | m.Call | m.Arith | m.Neg):
            return False
        return self.type_of(expr) == "boolean"

    def is_float(self, expr: m.Expr) -> bool:
        """Whether a value is always a float when it is not missing."""
        match expr:
            case m.NumberLit():
                return True
            case m.Arith(op=op, left=a, right=b):
                if op == "-" and is_date(b, self.unit.types):
                    return False
                return op == "/" or self.is_float(a) or self.is_float(b)
            case m.Neg(operand=o):
                return self.is_float(o)
            case m.Cond(then=a, otherwise=b):
                return self.is_float(a) and self.is_float(b)
            case m.Call(func="round"):
                return True
            case m.Call(func=f, args=args) if f in ("min", "max", "abs"):
                return all(self.is_float(x) for x in args)
        return False

    def call(self, func: str, args: tuple[m.Expr, ...], expr: m.Expr) -> tuple[str, bool]:
        if func == "round":
            if len(args) not in (1, 2):
                raise CompileError("round takes one or two arguments", expr.span)
            srcs = [self.value(a)[0] for a in args]
            return f"_round({', '.join(srcs)})", any(self.value(a)[1] for a in args)
        if func == "abs" and len(args) != 1:
            raise CompileError("abs takes one argument", expr.span)
        if func not in ("min", "max", "abs") or not args:
            raise CompileError(f"unknown function `{func}`", expr.span)
        if len(args) == 1 and func != "abs":
            return self.value(args[0])
        names, guards = self._operands(args, positive=False)
        body = f"{func}({', '.join(names)})"
        if not guards:
            return body, False
        return f"(None if {' or '.join(guards)} else {body})", True

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

    def cond(self, expr: m.Expr) -> str:
        """Source of a condition: always ``True`` or ``False``, never missing."""
        match expr:
            case m.BoolLit(value=v):
                return "True" if v else "False"
            case m.Ref():
                return self.value(expr)[0]
            case m.And(left=a, right=b):
                return f"({self.cond(a)} and {self.cond(b)})"
            case m.Or(left=a, right=b):
                return f"({self.cond(a)} or {self.cond(b)})"
            case m.Not(operand=o):
                return f"(not {self.cond(o)})"
            case m.Compare(op="==", left=a, right=b) if _literal(a) or _literal(b):
                # ``None == literal`` is already False: no missing test needed
                return f"({self.value(a)[0]} == {self.value(b)[0]})"
            case m.Compare(op=op, left=a, right=b):
                (x, y), guards = self._operands((a, b), positive=True)
                return _all([*guards, f"{x} {op} {y}"])
            case m.Between(operand=o, low=lo, high=hi):
                (x, low, high), guards = self._operands((o, lo, hi), positive=True)
                return _all([*guards, f"{low} <= {x} <= {high}"])
            case m.InList(operand=o, values=lv, negated=False) if not isinstance(
                resolve_list(lv, self.unit.lists), m.FieldRef
            ):
                # a literal list never holds None: ``None in list`` is already False
                return f"({self.value(o)[0]} in {self.list_src(lv, prefixes=False)[0]})"
            case m.InList(operand=o, values=lv, negated=neg):
                (x,), guards = self._operands((o,), positive=True)
                lst, lnull = self.list_src(lv, prefixes=False)
                if lnull:
                    guards.append(f"{lst} is not None")
                return _all([*guards, f"{x} {'not in' if neg else 'in'} {lst}"])
            case m.StartsWith(operand=o, prefixes=lv):
                (x,), guards = self._operands((o,), positive=True)
                lst, lnull = self.list_src(lv, prefixes=True)
                if lnull:
                    guards.append(f"{lst} is not None")
                return _all([*guards, f"{x}.startswith({lst})"])
            case m.Matches(operand=o, pattern=pattern):
                (x,), guards = self._operands((o,), positive=True)
                rx = self.module.const(
                    "R", pattern, f"_regex({pattern!r}).match"
                )  # semantics.regex
                return _all([*guards, f"{rx}({x})"])
            case m.IsMissing(operand=o, negated=neg):
                src, null = self.value(o)
                if not null:
                    return "True" if neg else "False"
                return f"({src} is {'not ' if neg else ''}None)"
            case _:
                src, null = self.value(expr)
                if self.type_of(expr) == "boolean":
                    return f"({src} is True)" if null else src
                return f"bool({src})"


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
class _Plan:
    """Facts about a unit used by every generated function."""

    order: tuple[m.Indicator, ...]
    levels: Mapping[str, int]
    history_level: int
    uses_region: bool


def _plan(unit: Unit) -> _Plan:
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
    uses_region = any(
        isinstance(n, m.FieldRef) and n.scope == "region" for e in exprs for n in _refs(e)
    ) or any(
        isinstance(v, m.FieldRef) for e in exprs for n in _refs(e)
        for v in ([n.values] if isinstance(n, m.InList) else [n.prefixes]
                  if isinstance(n, m.StartsWith) else [])
    )  # fmt: skip
    return _Plan(order, levels, history_level, uses_region)


def _list_fields(expr: m.Expr | None) -> list[str]:
    """Full paths of every field an expression reads, regional list parameters included."""
    out: list[str] = []
    for node in _refs(expr):
        if isinstance(node, m.FieldRef):
            out.append(node.path)
        elif isinstance(node, m.InList) and isinstance(node.values, m.FieldRef):
            out.append(node.values.path)
        elif isinstance(node, m.StartsWith) and isinstance(node.prefixes, m.FieldRef):
            out.append(node.prefixes.path)
    return out


def _needed_indicators(roots: Iterable[m.Expr | None], profile: m.Profile) -> set[str]:
    """Names of the indicators the roots refer to, directly or through other indicators."""
    by_name = {i.name: i for i in profile.indicators}
    seen: set[str] = set()
    stack = [n.name for r in roots for n in _refs(r) if isinstance(n, m.Ref)]
    while stack:
        name = stack.pop()
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        ind = by_name[name]
        for e in (ind.condition, ind.unless):
            stack.extend(n.name for n in _refs(e) if isinstance(n, m.Ref))
    return seen


def _uses_history(exprs: Iterable[m.Expr | None]) -> bool:
    return any(isinstance(n, m.HistoryRef) for e in exprs for n in _refs(e))


def _line(span: Span | None) -> int:
    return span.line if span is not None else 0


# ------------------------------------------------------------------------------ functions


def _emit_reads(
    fn: _Fn, paths: Iterable[str], scope: str, source: str, inline: Container[str] = ()
) -> None:
    """Read each field of ``scope`` once into a local; a field in ``inline`` (read at a single
    place) is read where it is used instead, so that short-circuits skip the read."""
    for path in dict.fromkeys(paths):
        if path.partition(".")[0] == scope and path not in fn.vars:
            if path in inline:
                fn.vars[path] = f"{source}.get({path.partition('.')[2]!r})"
            else:
                fn.read(path, source)


def _emit_indicator(fn: _Fn, ind: m.Indicator) -> None:
    var = fn.indicator_var(ind.name)
    src = fn.cond(ind.condition)
    if ind.unless is not None:
        src = f"({src} and not {fn.cond(ind.unless)})"
    fn.emit(f"{var} = {src}", _line(ind.span))


def _emit_history(fn: _Fn, profile: m.Profile, target: str) -> None:
    """``target = subject tuple or None`` for the profile's history block."""
    hist = profile.history
    assert hist is not None
    parts = []
    for s in hist.subjects:
        var = fn.vars[s.field.path]
        if s.prefix is not None and fn.unit.types.get(s.field.path) in ("string", "code", None):
            parts.append(f"(None if {var} is None else {var}[:{s.prefix}])")
        else:
            parts.append(var)
    fn.emit(f"{target} = ({''.join(p + ', ' for p in parts)})", _line(hist.span))


def _emit_fetch(fn: _Fn, profile: m.Profile) -> None:
    """``nh``/``ph`` from the provider (0 when a subject field is missing)."""
    _emit_history(fn, profile, "subj")
    fn.emit("if None in subj:")
    fn.emit("    nh = ph = 0.0")
    fn.emit("else:")
    fn.emit("    hv = hist(_P, subj, as_of)")
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
    needed = _needed_indicators([*roots, *refs], profile)
    indicators = [i for i in profile.indicators if i.name in needed]
    return _uses_history(
        [*roots, *(i.condition for i in indicators), *(i.unless for i in indicators)]
    )


def _fast(unit: Unit, module: _Module, plan: _Plan) -> _Fn:
    profile = unit.profile
    fn = _Fn(unit, module)
    roots: list[m.Expr | None] = [e.condition for e in profile.exceptions]
    roots += [profile.degree] + [c.condition for c in unit.controls]
    needed = _needed_indicators(roots, profile)
    indicators = [i for i in plan.order if i.name in needed]
    use_hist = history_used(unit)
    early = _uses_history(
        [e.condition for e in profile.exceptions]
        + [i.condition for i in indicators]
        + [i.unless for i in indicators]
    )
    paths: list[str] = []
    for ind in indicators:
        paths += _list_fields(ind.condition) + _list_fields(ind.unless)
    for r in roots:
        paths += _list_fields(r)
    for g in unit.guards:
        paths += _list_fields(g)
    if use_hist:
        assert profile.history is not None
        paths += [s.field.path for s in profile.history.subjects] * 2
    uses: dict[str, int] = {}
    for path in paths:
        uses[path] = uses.get(path, 0) + 1
    once = {p for p, n in uses.items() if n == 1 and not p.startswith("region.")}

    fn.emit("def evaluate(h, items, region, hist, as_of):", _line(profile.span))
    fn.indent = 1
    _emit_reads(fn, paths, "declaration", "h", once)
    _emit_reads(fn, paths, "region", "region")
    if use_hist and plan.history_level == 0 and early:
        _emit_fetch(fn, profile)
    for ind in indicators:
        if plan.levels[ind.name] == 0:
            _emit_indicator(fn, ind)
    for exc in profile.exceptions:
        if expr_level(exc.condition, plan.levels, plan.history_level) == 0:
            fn.emit(f"if {fn.cond(exc.condition)}:", _line(exc.span))
            fn.indent += 1
            fn.emit("return None", _line(exc.span))
            fn.indent -= 1
    if use_hist and plan.history_level == 0 and not early:
        _emit_fetch(fn, profile)
    hist_names = ("nh", "ph")
    if not use_hist and _uses_history([*roots, *(i.condition for i in indicators),
                                       *(i.unless for i in indicators)]):  # fmt: skip
        fn.emit("nh = ph = 0.0")  # a history value without a history block is 0
    elif not use_hist:
        hist_names = ("0.0", "0.0")
    if not unit.controls:  # a profile without controls never fires
        fn.emit("return None")
        return fn

    def item_body(skip: str) -> None:
        """Guard, reads, indicators, exceptions, history and degree of one item; ``skip``
        leaves the item (``continue`` in the loop, ``return None`` for a single item)."""
        if unit.guards:
            guard_paths = [p for g in unit.guards for p in _list_fields(g)]
            _emit_reads(fn, guard_paths, "item", "it")
            line = _line(unit.guards[0].span)
            fn.emit(f"if not ({' or '.join(fn.cond(g) for g in unit.guards)}):", line)
            fn.emit(f"    {skip}", line)
        _emit_reads(fn, paths, "item", "it", once)
        if use_hist and plan.history_level == 1 and early:
            _emit_fetch(fn, profile)
        for ind in indicators:
            if plan.levels[ind.name] == 1:
                _emit_indicator(fn, ind)
        for exc in profile.exceptions:
            if expr_level(exc.condition, plan.levels, plan.history_level) == 1:
                fn.emit(f"if {fn.cond(exc.condition)}:", _line(exc.span))
                fn.emit(f"    {skip}", _line(exc.span))
        if use_hist and plan.history_level == 1 and not early:
            _emit_fetch(fn, profile)
        _emit_degree(fn, profile)

    def controls_mask() -> None:
        """``m`` = the bits of the controls that apply, under ``if d >= lowest:`` (indented)."""
        lowest = min(values.number(c.threshold) for c in unit.controls)
        fn.emit(f"if d >= {lowest!r}:")
        fn.indent += 1
        for k, ctl in enumerate(unit.controls):
            threshold = values.number(ctl.threshold)
            tests = [] if threshold == lowest else [f"d >= {threshold!r}"]
            if ctl.condition is not None:
                tests.append(fn.cond(ctl.condition))
            if k == 0:
                fn.emit("m = 0" if tests else "m = 1", _line(ctl.span))
            if tests:
                fn.emit(f"if {' and '.join(tests)}:", _line(ctl.span))
                fn.emit(f"    m |= {1 << k}", _line(ctl.span))
            elif k > 0:
                fn.emit(f"m |= {1 << k}", _line(ctl.span))

    # one goods item (the common case): straight-line code
    fn.emit("if len(items) == 1:")
    fn.indent += 1
    fn.emit("it = items[0]")
    item_vars = dict(fn.vars)
    item_body("return None")
    controls_mask()
    one = module.const("ONE", "one", "(1,)")
    ret = f"return (d, 0, {one}, m, {hist_names[0]}, {hist_names[1]})"
    first = unit.controls[0]
    if first.condition is None and values.number(first.threshold) == min(
        values.number(c.threshold) for c in unit.controls
    ):
        fn.emit(ret)  # the first control applies whenever any threshold is reached
    else:
        fn.emit("if m:")
        fn.emit(f"    {ret}")
    fn.indent -= 1
    fn.emit("return None")
    fn.indent -= 1
    for path, var in list(fn.vars.items()):  # the loop reads the item fields again
        if path not in item_vars:
            del fn.vars[path]
            fn._used.discard(var)
    # several items: the highest degree wins, every fired item is reported
    fn.emit("best = -1.0")
    fn.emit("best_i = -1")
    if use_hist:
        fn.emit("bnh = bph = 0.0")
    fn.emit("mask = 0")
    fn.emit("fired = None")
    fn.emit("for n, it in enumerate(items):")
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
    fn.emit("    return None")
    best_hist = "bnh, bph" if use_hist else f"{hist_names[0]}, {hist_names[1]}"
    fn.emit(f"return (best, best_i, fired, mask, {best_hist})")
    return fn


def _emit_degree(fn: _Fn, profile: m.Profile) -> None:
    line = _line(profile.spans.get("degree"))
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
    _emit_clamp(fn, "d", null, line, fn.is_float(profile.degree))


def _emit_clamp(fn: _Fn, var: str, null: bool, line: int, is_float: bool = False) -> None:
    """Missing → 0, NaN → 0, then clamp to 0..100; ``var`` becomes a float."""
    if null and is_float:
        fn.emit(f"d = 0.0 if {var} is None else {var}", line)
    elif null:
        fn.emit(f"d = 0.0 if {var} is None else float({var})", line)
    elif not is_float or var != "d":
        fn.emit(f"d = {var}" if is_float else f"d = float({var})", line)
    fn.emit("if not 0.0 <= d <= 100.0:", line)
    fn.emit("    d = 100.0 if d > 100.0 else 0.0", line)


def _explain(unit: Unit, module: _Module, plan: _Plan) -> _Fn:
    profile = unit.profile
    fn = _Fn(unit, module)
    paths: list[str] = []
    for ind in plan.order:
        paths += _list_fields(ind.condition) + _list_fields(ind.unless)
    for e in (*(x.condition for x in profile.exceptions), profile.degree,
              *(c.condition for c in unit.controls)):  # fmt: skip
        paths += _list_fields(e)
    if profile.history is not None:
        paths += [s.field.path for s in profile.history.subjects]
    fn.emit("def explain(h, items, region, hist, as_of):", _line(profile.span))
    fn.indent = 1
    _emit_reads(fn, paths, "declaration", "h")
    _emit_reads(fn, paths, "region", "region")
    fn.emit("out = []")
    fn.emit("for n, it in enumerate(items):")
    fn.indent += 1
    _emit_reads(fn, paths, "item", "it")
    if profile.history is not None:
        _emit_history(fn, profile, "subj")
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
        c = fn._fresh(f"c_{var[4:]}") if _IDENT.match(var[4:]) else fn.temp()
        fn.emit(f"{c} = {fn.cond(ind.condition)}", _line(ind.span))
        if ind.unless is not None:
            u = fn._fresh(f"u_{var[4:]}") if _IDENT.match(var[4:]) else fn.temp()
            fn.emit(f"{u} = {fn.cond(ind.unless)}", _line(ind.unless.span))
            fn.emit(f"{var} = {c} and not {u}", _line(ind.span))
        else:
            u = "None"
            fn.emit(f"{var} = {c}", _line(ind.span))
        recs.append((c, u))
    by_name = {i.name: (c, u) for i, (c, u) in zip(plan.order, recs, strict=True)}
    ind_tuple = "".join(
        f"({by_name[i.name][0]}, {by_name[i.name][1]}), " for i in profile.indicators
    )
    fn.emit(f"inds = ({ind_tuple})")
    fn.emit("exc = None")
    for k, exc in enumerate(profile.exceptions):
        fn.emit(f"{'if' if k == 0 else 'elif'} {fn.cond(exc.condition)}:", _line(exc.span))
        fn.emit(f"    exc = {k}", _line(exc.span))
    fn.emit("if exc is not None:")
    fn.emit("    out.append((n, exc, inds, None, None, 0.0, None, None, None, None))")
    fn.emit("    continue")
    line = _line(profile.spans.get("degree"))
    if profile.degree is None:
        fn.emit("terms = ()")
        fn.emit("dv = None")
        fn.emit("d = 0.0")
    else:
        terms = degree_terms(profile.degree, unit.types)
        names: list[str] = []
        nullable: list[bool] = []
        for _, term in terms:
            src, null = fn.value(term)
            t = fn._fresh(f"term{len(names)}")
            fn.emit(f"{t} = {src}", _line(term.span) or line)
            names.append(t)
            nullable.append(null)
        fn.emit(f"terms = ({''.join(n + ', ' for n in names)})")
        acc, acc_null = names[0], nullable[0]
        for (op, _), name, null in zip(terms[1:], names[1:], nullable[1:], strict=True):
            guards = [f"{v} is None" for v, nl in ((acc, acc_null), (name, null)) if nl]
            body = f"{acc} {op} {name}"
            src = f"(None if {' or '.join(guards)} else {body})" if guards else f"({body})"
            fn.emit(f"dv = {src}", line)
            acc, acc_null = "dv", bool(guards)
        if len(names) == 1:
            fn.emit(f"dv = {acc}", line)
        _emit_clamp(fn, "dv", acc_null, line)
    conds = []
    applied = []
    for k, ctl in enumerate(unit.controls):
        cc = f"cc{k}"
        fn.emit(
            f"{cc} = {fn.cond(ctl.condition) if ctl.condition is not None else 'None'}",
            _line(ctl.span),
        )
        fn.emit(
            f"ap{k} = d >= {values.number(ctl.threshold)!r}"
            + (f" and {cc}" if ctl.condition is not None else ""),
            _line(ctl.span),
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


def _message(unit: Unit, module: _Module, plan: _Plan) -> _Fn:
    fn = _Fn(unit, module)
    msg = unit.message
    fn.emit("def message(h, it, region, d, nh, ph):", _line(msg.span if msg else None))
    fn.indent = 1
    if msg is None:
        fn.emit("return None")
        return fn
    refs = [p for p in msg.parts if isinstance(p, m.Ref)]
    needed = _needed_indicators(refs, unit.profile)
    indicators = [i for i in plan.order if i.name in needed]
    paths = [p.path for p in msg.parts if isinstance(p, m.FieldRef)]
    for ind in indicators:
        paths += _list_fields(ind.condition) + _list_fields(ind.unless)
    _emit_reads(fn, paths, "declaration", "h")
    _emit_reads(fn, paths, "region", "region")
    _emit_reads(fn, paths, "item", "it")
    for ind in indicators:
        _emit_indicator(fn, ind)
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
        fn.emit("return ''", _line(msg.span))
    elif len(pieces) == 1:
        fn.emit(f"return {pieces[0]}", _line(msg.span))
    else:
        fn.emit(f"return ''.join(({''.join(p + ', ' for p in pieces)}))", _line(msg.span))
    return fn


# ------------------------------------------------------------------------------ entry points


def generate(unit: Unit, part: str = "evaluate") -> Generated:
    """The source of one module for ``unit``: ``part`` "evaluate" gives the constants with the
    ``evaluate`` and ``message`` functions (compiled with the profile), "explain" the constants
    with the ``explain`` function (compiled on the first explanation asked for).

    Deterministic: the same unit gives byte-identical source.
    """
    module = _Module()
    plan = _plan(unit)
    if part == "evaluate":
        fns = [_fast(unit, module, plan), _message(unit, module, plan)]
    elif part == "explain":
        fns = [_explain(unit, module, plan)]
    else:
        raise ValueError(f"unknown part {part!r}")
    base = unit.file.replace("\\", "/").rsplit("/", 1)[-1]
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
    suffix = "" if part == "evaluate" else f" {part}"
    filename = f"<profile {unit.label} {base}{suffix}>"
    return Generated(source, filename, line_map)


def _namespace() -> dict[str, Any]:
    """Names every generated module can use."""
    from riskengine.evaluator.history import NO_HISTORY

    return {
        "_date": dt.date,
        "_regex": compile_pattern,
        "_round": values.round_half_away,
        "_sub": values.subtract,
        "_fmt": values.format_value,
        "_NO_HISTORY": NO_HISTORY,
    }


def compile_unit(unit: Unit, part: str = "evaluate") -> tuple[Generated, dict[str, Any]]:
    """Generate, register in :mod:`linecache` and ``compile()`` one module of a unit (see
    :func:`generate`). Returns the generated source and the module's namespace."""
    gen = generate(unit, part)
    lines = gen.source.splitlines(True)
    linecache.cache[gen.filename] = (len(gen.source), None, lines, gen.filename)
    code = compile(gen.source, gen.filename, "exec")
    ns = _namespace()
    ns["_P"] = unit.profile
    exec(code, ns)
    return gen, ns


def literal_decimal(value: Decimal) -> float:
    """A number literal as a float (kept for callers that read thresholds)."""
    return values.number(value)
