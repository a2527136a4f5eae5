"""Type inference over expressions, with name resolution: fields, parameters, indicators, lists."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from riskengine import model as m
from riskengine.catalogue import Catalogue, FieldType
from riskengine.checks.context import Reporter, closest, did_you_mean
from riskengine.diagnostics import Span
from riskengine.semantics.operators import FUNCTIONS
from riskengine.semantics.types import (
    BOOLEAN,
    DATE,
    NUMBER,
    STRING,
    UNKNOWN,
    ValueType,
)

_NUMERIC = frozenset({NUMBER, BOOLEAN, UNKNOWN})  # booleans count 1/0 in arithmetic

FIELD_TYPES = {
    FieldType.NUMBER: NUMBER,
    FieldType.STRING: STRING,
    FieldType.CODE: STRING,
    FieldType.DATE: DATE,
    FieldType.BOOLEAN: BOOLEAN,
}
PARAM_TYPES = {
    "number": NUMBER,
    "string": STRING,
    "code": STRING,
    "date": DATE,
    "boolean": BOOLEAN,
}


def literal_type(lit: m.Literal) -> ValueType:
    """The type of a literal value."""
    if isinstance(lit, m.BoolLit):
        return BOOLEAN
    if isinstance(lit, m.NumberLit):
        return NUMBER
    if isinstance(lit, m.StringLit):
        return STRING
    return DATE


def list_literal_type(lst: m.ListLit) -> tuple[ValueType, m.Literal | None]:
    """The element type of a literal list and the first element of another type (or None).
    An empty or mixed list has the type UNKNOWN."""
    if not lst.items:
        return UNKNOWN, None
    first = literal_type(lst.items[0])
    for item in lst.items[1:]:
        if literal_type(item) is not first:
            return UNKNOWN, item
    return first, None


def compatible(a: ValueType, b: ValueType) -> bool:
    return a is b or a is UNKNOWN or b is UNKNOWN


@attrs.define
class Scope:
    """The names an expression of one profile can see. The first definition of a name wins
    (a duplicate is reported elsewhere); profile lists hide file-level lists of the same name."""

    catalogue: Catalogue
    indicators: dict[str, m.Indicator]
    exceptions: dict[str, m.ProfileException]
    lists: dict[str, m.ListDef]
    params: dict[str, m.Param]
    regional: bool
    history: m.History | None
    list_types: dict[str, ValueType] = attrs.field(factory=dict)

    @classmethod
    def of(
        cls,
        profile: m.Profile,
        catalogue: Catalogue,
        file_lists: Iterable[m.ListDef] | Mapping[str, m.ListDef] = (),
    ) -> Scope:
        lists: dict[str, m.ListDef] = {}
        for ld in profile.lists:
            lists.setdefault(ld.name, ld)
        outer = file_lists.values() if isinstance(file_lists, Mapping) else file_lists
        for ld in outer:
            lists.setdefault(ld.name, ld)
        indicators: dict[str, m.Indicator] = {}
        for ind in profile.indicators:
            indicators.setdefault(ind.name, ind)
        exceptions: dict[str, m.ProfileException] = {}
        for exc in profile.exceptions:
            exceptions.setdefault(exc.name, exc)
        params: dict[str, m.Param] = {}
        for p in profile.params:
            params.setdefault(p.name, p)
        return cls(
            catalogue, indicators, exceptions, lists, params, profile.is_regional, profile.history
        )

    def list_type(self, ld: m.ListDef) -> ValueType:
        t = self.list_types.get(ld.name)
        if t is None:
            t = list_literal_type(ld.values)[0]
            self.list_types[ld.name] = t
        return t


def _looks_numeric(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return text.strip() != "" and not text.strip().lower().startswith(("nan", "inf", "-inf"))


class ExprChecker:
    """Infers the type of expressions of one profile and reports every problem found (unknown
    names, type errors). With ``report=None`` it only infers, quietly."""

    def __init__(
        self,
        scope: Scope,
        report: Reporter | None = None,
        record: dict[int, tuple[Any, ValueType]] | None = None,
    ):
        self.scope = scope
        self.report = report
        #: When given, the type of every node inferred: ``id(node) → (node, type)`` (the
        #: annotation pass of :mod:`riskengine.semantics.types`).
        self.record = record
        #: Indicator names referenced as values since the last reset (for cycles, unused).
        self.used: set[str] = set()
        self.used_params: set[str] = set()
        self.used_history: set[m.HistoryKind] = set()

    def _err(self, code: str, message: str, span: Span, suggestion: str | None = None) -> None:
        if self.report is not None:
            self.report(code, message, span, suggestion)

    # ------------------------------------------------------------------ contexts
    def condition(self, expr: m.Expr, what: str) -> None:
        """Check an expression that must be true/false (a condition)."""
        t = self.infer(expr)
        if t is not BOOLEAN and t is not UNKNOWN:
            self._err(
                "RE226",
                f"{what} must be true or false, but this is {t.described}",
                expr.span,
                _condition_hint(expr, t),
            )

    def degree(self, expr: m.Expr) -> None:
        """Check the degree expression: a number (true/false count as 1/0)."""
        t = self.infer(expr)
        if t not in _NUMERIC:
            self._err(
                "RE227",
                f"the degree must be a number, but this is {t.described}",
                expr.span,
                "the degree is computed from numbers and conditions, e.g. `40 * footwear + 60`",
            )

    # ------------------------------------------------------------------ inference
    def infer(self, expr: m.Expr) -> ValueType:
        """The static type of ``expr``; problems are reported on the way."""
        t = _DISPATCH[type(expr)](self, expr)
        if self.record is not None:
            self.record[id(expr)] = (expr, t)
        return t

    def _lit(self, e: m.Literal) -> ValueType:
        return literal_type(e)

    def _field(self, e: m.FieldRef) -> ValueType:
        return self.field_type(e, as_list=False)

    def field_type(self, e: m.FieldRef, as_list: bool) -> ValueType:
        """Type of a field or regional parameter (for a list parameter: of its elements)."""
        if e.path.startswith("region."):
            return self._param(e, as_list)
        field = self.scope.catalogue.get(e.path)
        if field is None:
            self._err(
                "RE201",
                f"unknown field `{e.path}`",
                e.span,
                did_you_mean(self.scope.catalogue.suggest(e.path)) if self.report else None,
            )
            return UNKNOWN
        if as_list:
            self._err(
                "RE207",
                f"`{e.path}` is a field, not a list",
                e.span,
                "after `in`, `not in` and `starts with` write `( … )`, a list name, "
                "or a regional list parameter",
            )
            return UNKNOWN
        return FIELD_TYPES[field.type]

    def _param(self, e: m.FieldRef, as_list: bool) -> ValueType:
        name = e.name
        param = self.scope.params.get(name)
        if not self.scope.regional:
            self._err(
                "RE203",
                f"`{e.path}`: only a regional profile has regional parameters",
                e.span,
                'declare the profile `filling regional by "…"` with a `regional { }` block, '
                "or use a fixed value",
            )
            if param is None:
                return UNKNOWN
        elif param is None:
            self._err(
                "RE202",
                f"unknown regional parameter `{e.path}`",
                e.span,
                _param_hint(name, self.scope.params) if self.report else None,
            )
            return UNKNOWN
        self.used_params.add(name)
        t = PARAM_TYPES.get(param.type, UNKNOWN)
        if param.is_list and not as_list:
            self._err(
                "RE208",
                f"`{e.path}` is a list of values, not a single value",
                e.span,
                f"test membership: `… in {e.path}`",
            )
            return UNKNOWN
        if as_list and not param.is_list:
            self._err(
                "RE207",
                f"`{e.path}` is a single {param.type}, not a list",
                e.span,
                f"compare with `== {e.path}`, or declare it `{name}: list of {param.type}`",
            )
            return UNKNOWN
        return t

    def _ref(self, e: m.Ref) -> ValueType:
        name = e.name
        if name in self.scope.indicators:
            self.used.add(name)
            return BOOLEAN
        if self.report is None:
            return UNKNOWN
        if name in self.scope.lists:
            self._err(
                "RE208",
                f"`{name}` is a list; a list can only follow `in`, `not in` or `starts with`",
                e.span,
                f"e.g. `item.origin in {name}`",
            )
        elif name in self.scope.exceptions:
            self._err(
                "RE210",
                f"`{name}` is a profile exception, not an indicator: exceptions cannot be "
                "referenced",
                e.span,
                "move the condition into an indicator and use it in both places",
            )
        elif name == "degree":
            self._err(
                "RE210",
                "the degree cannot be used inside an expression",
                e.span,
                "use the control thresholds (`from N`) to act on the degree",
            )
        else:
            hint = did_you_mean(closest(name, self.scope.indicators))
            if hint is None and not self.scope.indicators:
                hint = "this profile has no indicators"
            self._err("RE210", f"unknown indicator `{name}`", e.span, hint)
        return UNKNOWN

    def _history(self, e: m.HistoryRef) -> ValueType:
        self.used_history.add(e.kind)
        hist = self.scope.history
        block = None
        if hist is not None:
            block = hist.negative if e.kind is m.HistoryKind.NEGATIVE else hist.positive
        if block is None:
            word = "negative" if e.kind is m.HistoryKind.NEGATIVE else "positive"
            example = (
                "negative max 30 { 0201: 1.0 }"
                if word == "negative"
                else "positive max 20 per clean control 2"
            )
            self._err(
                "RE304",
                f"`{e.kind.value}` is used but the profile has no {word} history: "
                "it would always be 0",
                e.span,
                f"add `history per declaration.declarant.id over 365 days {{ {example} }}`",
            )
        return NUMBER

    def _neg(self, e: m.Neg) -> ValueType:
        ok = self._numeric(e.operand, "`-` needs a number", "RE221") in _NUMERIC
        return NUMBER if ok else UNKNOWN

    def _numeric(self, operand: m.Expr, phrase: str, code: str) -> ValueType:
        return self._require_numeric(operand, self.infer(operand), phrase, code)

    def _require_numeric(self, operand: m.Expr, t: ValueType, phrase: str, code: str) -> ValueType:
        if t not in _NUMERIC:
            hint = None
            if isinstance(operand, m.StringLit) and _looks_numeric(operand.value):
                hint = f"write the number without quotes: {operand.value.strip()}"
            self._err(code, f"{phrase}, but this is {t.described}", operand.span, hint)
        return t

    def _arith(self, e: m.Arith) -> ValueType:
        # a long sum `a + b + c …` is a left-nested chain: walk it without recursion, in the
        # order (and with the diagnostics) of the recursive walk
        spine = _spine(e, m.Arith)
        left = self.infer(spine[-1].left)
        for node in reversed(spine):
            left = self._arith_types(node, left, self.infer(node.right))
            if node is not e and self.record is not None:
                self.record[id(node)] = (node, left)
        return left

    def _arith_types(self, e: m.Arith, left: ValueType, right: ValueType) -> ValueType:
        phrase = f"`{e.op}` needs numbers"
        if e.op == "-" and DATE in (left, right):
            other, other_expr = (right, e.right) if left is DATE else (left, e.left)
            if other in (DATE, UNKNOWN):
                return NUMBER  # the number of days from the right date to the left one
            phrase = "`-` needs two numbers or two dates (their difference in days)"
            if other is STRING:  # the text is the odd one out
                self._require_numeric(other_expr, other, phrase, "RE221")
                return UNKNOWN
        a = self._require_numeric(e.left, left, phrase, "RE221")
        b = self._require_numeric(e.right, right, phrase, "RE221")
        return NUMBER if a in _NUMERIC and b in _NUMERIC else UNKNOWN

    def _compare(self, e: m.Compare) -> ValueType:
        a = self.infer(e.left)
        b = self.infer(e.right)
        if not compatible(a, b):
            self._err(
                "RE220",
                f"`{e.op}` compares {a.described} with {b.described}",
                e.span,
                _compare_hint(e, a, b),
            )
        elif BOOLEAN in (a, b) and e.op not in ("==", "!="):
            self._err(
                "RE220",
                f"true/false values can only be compared with `==` and `!=`, not `{e.op}`",
                e.span,
            )
        return BOOLEAN

    def _and(self, e: m.And) -> ValueType:
        return self._connective(e, "each side of `and`")

    def _or(self, e: m.Or) -> ValueType:
        return self._connective(e, "each side of `or`")

    def _connective(self, e: m.And | m.Or, what: str) -> ValueType:
        spine = _spine(e, type(e))  # `a and b and c …` without recursion
        self.condition(spine[-1].left, what)
        for node in reversed(spine):
            self.condition(node.right, what)
            if node is not e and self.record is not None:
                self.record[id(node)] = (node, BOOLEAN)
        return BOOLEAN

    def _not(self, e: m.Not) -> ValueType:
        self.condition(e.operand, "the operand of `not`")
        return BOOLEAN

    def list_type(self, values: m.ListValue, word: str) -> ValueType:
        """The element type of the list after ``in`` / ``starts with``."""
        if isinstance(values, m.ListLit):
            t, bad = list_literal_type(values)
            if bad is not None:
                first = literal_type(values.items[0])
                self._err(
                    "RE224",
                    f"this list mixes {first.described} with {literal_type(bad).described}",
                    bad.span,
                    "a list holds values of one type",
                )
            return t
        if isinstance(values, m.FieldRef):
            return self.field_type(values, as_list=True)
        ld = self.scope.lists.get(values.name)
        if ld is not None:
            return self.scope.list_type(ld)
        if self.report is None:
            return UNKNOWN
        if values.name in self.scope.indicators:
            self._err(
                "RE211",
                f"`{values.name}` is an indicator, not a list",
                values.span,
                f"a list is written `( … )` or defined with `list NAME = ( … )` before `{word}`",
            )
        else:
            hint = did_you_mean(closest(values.name, self.scope.lists))
            self._err(
                "RE211",
                f"unknown list `{values.name}`",
                values.span,
                hint or f"define it: `list {values.name} = ( … )`",
            )
        return UNKNOWN

    def _in(self, e: m.InList) -> ValueType:
        t = self.infer(e.operand)
        word = "not in" if e.negated else "in"
        et = self.list_type(e.values, word)
        if not compatible(t, et):
            hint = None
            if (
                t is NUMBER
                and isinstance(e.values, m.ListLit)
                and all(
                    isinstance(x, m.StringLit) and _looks_numeric(x.value) for x in e.values.items
                )
            ):
                hint = "write the numbers without quotes"
            elif t is STRING and et is NUMBER and isinstance(e.values, m.ListLit):
                hint = 'write the codes in quotes: ("…", "…")'
            self._err(
                "RE223",
                f"`{word}` tests {t.described} against a list of {_plural(et)}",
                e.values.span,
                hint,
            )
        return BOOLEAN

    def _starts(self, e: m.StartsWith) -> ValueType:
        t = self.infer(e.operand)
        if t is not STRING and t is not UNKNOWN:
            self._err(
                "RE222",
                f"`starts with` needs a text, but this is {t.described}",
                e.operand.span,
            )
        et = self.list_type(e.prefixes, "starts with")
        if et is not STRING and et is not UNKNOWN:
            hint = None
            if isinstance(e.prefixes, m.ListLit):
                hint = 'write the prefixes in quotes: ("6403", "6404")'
            self._err(
                "RE222",
                f"the prefixes of `starts with` must be texts, not {_plural(et)}",
                e.prefixes.span,
                hint,
            )
        return BOOLEAN

    def _between(self, e: m.Between) -> ValueType:
        t = self.infer(e.operand)
        lo = self.infer(e.low)
        hi = self.infer(e.high)
        if t is BOOLEAN:
            self._err(
                "RE225",
                "`between` needs numbers, dates or texts, but this is true/false",
                e.operand.span,
            )
            return BOOLEAN
        for bound, bt in ((e.low, lo), (e.high, hi)):
            if bt is BOOLEAN or not compatible(t, bt):
                self._err(
                    "RE225",
                    f"this bound of `between` is {bt.described}, but the value is {t.described}",
                    bound.span,
                )
        return BOOLEAN

    def _matches(self, e: m.Matches) -> ValueType:
        t = self.infer(e.operand)
        if t is not STRING and t is not UNKNOWN:
            self._err(
                "RE222",
                f"`matches` needs a text, but this is {t.described}",
                e.operand.span,
            )
        return BOOLEAN

    def _is_missing(self, e: m.IsMissing) -> ValueType:
        self.infer(e.operand)
        return BOOLEAN

    def _call(self, e: m.Call) -> ValueType:
        entry = FUNCTIONS.get(e.func)
        if entry is None:
            for arg in e.args:
                self.infer(arg)
            hint = did_you_mean(closest(e.func, FUNCTIONS)) if self.report else None
            self._err(
                "RE228",
                f"unknown function `{e.func}` (the functions are {', '.join(FUNCTIONS)})",
                e.span,
                hint,
            )
            return UNKNOWN
        n = len(e.args)
        if not entry.accepts(n):
            self._err(
                "RE229",
                f"`{e.func}` takes {entry.arity_text}, not {n}",
                e.span,
            )
        ok = True
        for i, arg in enumerate(e.args):
            if e.func == "round" and i == 1:
                t = self._numeric(arg, "the digits of `round` must be a number", "RE230")
            else:
                t = self._numeric(arg, f"`{e.func}` needs numbers", "RE230")
            ok = ok and t in _NUMERIC
        if e.func == "round" and n == 2:
            digits = e.args[1]
            if isinstance(digits, m.NumberLit) and digits.value != digits.value.to_integral():
                self._err(
                    "RE230",
                    "the digits of `round` must be a whole number",
                    digits.span,
                )
        return NUMBER if ok else UNKNOWN

    def _cond(self, e: m.Cond) -> ValueType:
        self.condition(e.test, "the test of `if`")
        a = self.infer(e.then)
        b = self.infer(e.otherwise)
        if a is b or b is UNKNOWN:
            return a
        if a is UNKNOWN:
            return b
        if {a, b} == {NUMBER, BOOLEAN}:
            return NUMBER
        self._err(
            "RE231",
            f"`if` gives {a.described} in one branch and {b.described} in the other",
            e.span,
        )
        return UNKNOWN


def _spine(e: Any, kind: type) -> list[Any]:
    """The nodes of a left-nested chain of ``kind`` from ``e`` down (``e`` first)."""
    spine = [e]
    while type(spine[-1].left) is kind:
        spine.append(spine[-1].left)
    return spine


def _plural(t: ValueType) -> str:
    return {
        NUMBER: "numbers",
        STRING: "texts",
        DATE: "dates",
        BOOLEAN: "true/false values",
        UNKNOWN: "values",
    }[t]


def _condition_hint(expr: m.Expr, t: ValueType) -> str | None:
    if t is NUMBER:
        return "compare it, e.g. `… > 0`"
    if t is STRING:
        return 'compare it, e.g. `… == "CN"`, or test `… is not missing`'
    if t is DATE:
        return "compare it with another date, e.g. `… < 2012-01-01`"
    return None


def _compare_hint(e: m.Compare, a: ValueType, b: ValueType) -> str | None:
    for side, other in ((e.right, a), (e.left, b)):
        if isinstance(side, m.StringLit) and other is NUMBER and _looks_numeric(side.value):
            return f"write the number without quotes: {side.value.strip()}"
        if isinstance(side, m.NumberLit) and other is STRING:
            return f'write the code in quotes: "{side.value}"'
        if isinstance(side, m.StringLit) and other is DATE:
            return f"write the date without quotes: {side.value.strip()}"
    if BOOLEAN in (a, b) and NUMBER in (a, b):
        return "use the condition itself (`footwear`, `not footwear`) instead of comparing"
    return None


def _param_hint(name: str, params: Mapping[str, m.Param]) -> str:
    found = closest(name, params)
    if found:
        return f"did you mean `region.{found}`?"
    if not params:
        return f"declare it in the profile: `regional {{ {name}: number }}`"
    return "the regional parameters are " + ", ".join(f"`region.{p}`" for p in params)


_DISPATCH: dict[type, Callable[[ExprChecker, Any], ValueType]] = {
    m.NumberLit: ExprChecker._lit,
    m.StringLit: ExprChecker._lit,
    m.DateLit: ExprChecker._lit,
    m.BoolLit: ExprChecker._lit,
    m.FieldRef: ExprChecker._field,
    m.Ref: ExprChecker._ref,
    m.HistoryRef: ExprChecker._history,
    m.Neg: ExprChecker._neg,
    m.Arith: ExprChecker._arith,
    m.Compare: ExprChecker._compare,
    m.And: ExprChecker._and,
    m.Or: ExprChecker._or,
    m.Not: ExprChecker._not,
    m.InList: ExprChecker._in,
    m.StartsWith: ExprChecker._starts,
    m.Between: ExprChecker._between,
    m.Matches: ExprChecker._matches,
    m.IsMissing: ExprChecker._is_missing,
    m.Call: ExprChecker._call,
    m.Cond: ExprChecker._cond,
}
