"""Explanations: why a profile fired or not, item by item, and their assembly from raw values."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from riskengine import model as m
from riskengine.evaluator.codegen import degree_terms, nodes
from riskengine.evaluator.history import HistoryRecord, HistoryValue
from riskengine.evaluator.values import format_value, number

__all__ = [
    "ControlExplanation",
    "FillInfo",
    "IndicatorExplanation",
    "IndicatorState",
    "ItemExplanation",
    "ProfileExplanation",
    "TermExplanation",
    "expr_text",
    "fields_read",
]


class IndicatorState(enum.Enum):
    """An indicator's outcome on one item. ``MISSING`` is false because a field that its
    condition reads was missing (indicators themselves are never missing)."""

    TRUE = "true"
    FALSE = "false"
    MISSING = "missing"

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class IndicatorExplanation:
    """One indicator on one item: its state, the field values its condition and ``unless``
    read (``None`` = missing), and whether the ``unless`` held (``None``: it has none)."""

    name: str
    title: str | None
    state: IndicatorState
    values: tuple[tuple[str, Any], ...]
    unless: bool | None = None

    @property
    def value(self) -> bool:
        return self.state is IndicatorState.TRUE


@attrs.frozen
class TermExplanation:
    """One term of a top-level sum in the degree: its text, sign and value (``None`` when it
    is missing, which makes the whole degree missing, hence 0)."""

    text: str
    sign: int
    value: float | None

    @property
    def contribution(self) -> float | None:
        return None if self.value is None else self.sign * self.value


@attrs.frozen
class ControlExplanation:
    """A control form on one item: its threshold, its condition's value (``None``: it has no
    condition) and whether it applied (degree ≥ threshold and the condition holds)."""

    code: str
    name: str
    kind: m.ControlKind
    threshold: float
    condition: bool | None
    applied: bool


@attrs.frozen
class ItemExplanation:
    """How one goods item was scored. ``item`` is its 1-based number (``None`` when the
    declaration has no items). When ``exception`` names a profile exception, the item was not
    scored: terms, history and controls are empty and the degree is 0."""

    item: int | None
    exception: str | None
    indicators: tuple[IndicatorExplanation, ...]
    terms: tuple[TermExplanation, ...]
    degree_value: float | None
    degree: float
    missing: tuple[str, ...]
    history: HistoryValue | None
    subject: tuple[Any, ...] | None
    controls: tuple[ControlExplanation, ...]
    fired: bool


@attrs.frozen
class FillInfo:
    """The regional fill used: office, approving order and validity."""

    office: str | None
    order: str | None
    valid_from: dt.date | None
    valid_to: dt.date | None


@attrs.frozen
class ProfileExplanation:
    """Why one profile fired or not on one declaration. ``applies`` is false (with ``reason``)
    for a regional profile without a fill for the declaration's office on the as-of date."""

    key: str
    name: str
    applies: bool
    reason: str | None
    fill: FillInfo | None
    items: tuple[ItemExplanation, ...]

    @property
    def fired(self) -> bool:
        return any(i.fired for i in self.items)

    def render(self) -> str:
        """A plain-text account, one line per fact, for people and logs."""
        head = f'profile {self.key} "{self.name}": '
        if not self.applies:
            return head + f"does not apply ({self.reason})"
        lines = [head + ("fired" if self.fired else "did not fire")]
        if self.fill is not None:
            lines.append(
                f"  fill of office {self.fill.office} (order {self.fill.order}, valid "
                f"{self.fill.valid_from} .. {self.fill.valid_to})"
            )
        for item in self.items:
            label = "declaration (no goods items)" if item.item is None else f"item {item.item}"
            lines.append(f"  {label}:")
            for ind in item.indicators:
                seen = ", ".join(f"{p} = {_shown(v)}" for p, v in ind.values)
                extra = " (unless held)" if ind.unless else ""
                lines.append(f"    indicator {ind.name}: {ind.state}{extra}  [{seen}]")
            if item.exception is not None:
                lines.append(f"    exception {item.exception} applies: the item is not scored")
                continue
            for term in item.terms:
                sign = "+" if term.sign > 0 else "-"
                lines.append(f"    {sign} {term.text} = {_shown(term.value)}")
            if item.history is not None and item.subject is None:
                lines.append("    history: a subject field is missing, both values are 0")
            elif item.history is not None:
                records = item.history.records
                lines.append(
                    f"    history of {', '.join(map(str, item.subject or ()))}: negative "
                    f"{format_value(item.history.negative)}, positive "
                    f"{format_value(item.history.positive)} ({_count(len(records))})"
                )
                lines += _records(records)
            if item.degree_value is None and item.missing:
                lines.append(f"    degree missing (missing: {', '.join(item.missing)}) → 0")
            elif item.degree_value is None and item.terms:
                lines.append(f"    degree missing ({ARITHMETIC_MISSING}) → 0")
            lines.append(f"    degree {format_value(item.degree)}")
            for ctl in item.controls:
                cond = "" if ctl.condition is None else f", condition {str(ctl.condition).lower()}"
                verdict = "applies" if ctl.applied else "does not apply"
                lines.append(
                    f"    control {ctl.code} from {format_value(ctl.threshold)}{cond}: {verdict}"
                )
        return "\n".join(lines)


#: An explanation lists at most this many history records (the most recent); the count of the
#: others follows.
MAX_RECORDS_SHOWN = 10


def _count(n: int) -> str:
    return "1 record" if n == 1 else f"{n} records"


def _records(records: Sequence[HistoryRecord]) -> list[str]:
    """The history records behind a value, most recent first, one line each: the date, the
    declaration, the reasons and coefficient of a non-completed clearance or the clean control,
    and what it added before the cap."""
    recent = sorted(records, key=lambda r: r.date, reverse=True)
    lines = []
    for record in recent[:MAX_RECORDS_SHOWN]:
        what = f"{record.date.isoformat()} {record.declaration_id or '(no id)'}: "
        if record.kind == "clearance":
            reasons = ", ".join(record.reasons) or "no reason given"
            coefficient = ""
            if record.coefficient == 0:
                coefficient = ", none listed by the profile"
            elif record.coefficient is not None:
                coefficient = f", coefficient {format_value(record.coefficient)}"
            what += f"not completed (reasons {reasons}{coefficient}): negative "
        else:
            what += "control without violation: positive "
        lines.append(f"      {what}+{format_value(record.value)}")
    if len(recent) > MAX_RECORDS_SHOWN:
        rest = len(recent) - MAX_RECORDS_SHOWN
        lines.append(f"      ... {rest} older {'record' if rest == 1 else 'records'} not listed")
    return lines


def _shown(value: Any) -> str:
    return (
        "missing"
        if value is None
        else repr(value)
        if isinstance(value, str)
        else format_value(value)
    )


#: Why a degree with no missing field is missing (the numeric rule, docs/semantics.md).
ARITHMETIC_MISSING = "a division by zero, or a result beyond the range of numbers"


# ------------------------------------------------------------------------------ text of expressions

_PREC = {"or": 1, "and": 2, "not": 3, "pred": 4, "+": 5, "-": 5, "*": 6, "/": 6, "neg": 7}


def _lit(lit: m.Literal) -> str:
    match lit:
        case m.NumberLit(value=v):
            return str(v)
        case m.StringLit(value=v):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        case m.DateLit(value=d):
            return d.isoformat()
        case m.BoolLit(value=b):
            return "true" if b else "false"
    raise TypeError(lit)


def _list(lv: m.ListValue) -> str:
    if isinstance(lv, m.ListLit):
        return "(" + ", ".join(_lit(x) for x in lv.items) + ")"
    if isinstance(lv, m.Ref):
        return lv.name
    return lv.path


def expr_text(expr: m.Expr, outer: int = 0) -> str:
    """An expression as profile-language text, with the parentheses its structure needs."""
    text, prec = _text(expr)
    return f"({text})" if prec < outer else text


def _text(e: m.Expr) -> tuple[str, int]:
    match e:
        case m.NumberLit() | m.StringLit() | m.DateLit() | m.BoolLit():
            return _lit(e), 9
        case m.FieldRef(path=path):
            return path, 9
        case m.Ref(name=n):
            return n, 9
        case m.HistoryRef(kind=k):
            return k.value, 9
        case m.Neg(operand=o):
            return "-" + expr_text(o, _PREC["neg"]), _PREC["neg"]
        case m.Arith(op=op, left=a, right=b):
            p = _PREC[op]
            return f"{expr_text(a, p)} {op} {expr_text(b, p + 1)}", p
        case m.Compare(op=op, left=a, right=b):
            p = _PREC["pred"]
            return f"{expr_text(a, p + 1)} {op} {expr_text(b, p + 1)}", p
        case m.And(left=a, right=b):
            return f"{expr_text(a, 2)} and {expr_text(b, 3)}", 2
        case m.Or(left=a, right=b):
            return f"{expr_text(a, 1)} or {expr_text(b, 2)}", 1
        case m.Not(operand=o):
            return f"not {expr_text(o, 3)}", 3
        case m.InList(operand=o, values=v, negated=neg):
            return f"{expr_text(o, 5)} {'not in' if neg else 'in'} {_list(v)}", 4
        case m.StartsWith(operand=o, prefixes=v):
            return f"{expr_text(o, 5)} starts with {_list(v)}", 4
        case m.Between(operand=o, low=lo, high=hi):
            return f"{expr_text(o, 5)} between {expr_text(lo, 5)} and {expr_text(hi, 5)}", 4
        case m.Matches(operand=o, pattern=pat):
            return f"{expr_text(o, 5)} matches {_lit(m.StringLit(pat))}", 4
        case m.IsMissing(operand=o, negated=neg):
            return f"{expr_text(o, 5)} is {'not ' if neg else ''}missing", 4
        case m.Call(func=f, args=args):
            return f"{f}({', '.join(expr_text(a) for a in args)})", 9
        case m.Cond(test=t, then=a, otherwise=b):
            return f"if {expr_text(t)} then {expr_text(a)} else {expr_text(b)}", 0
    raise TypeError(e)


# ------------------------------------------------------------------------------ assembly


def fields_read(*exprs: m.Expr | None) -> tuple[str, ...]:
    """Full paths of the fields (and regional parameters) the expressions read, first-seen order."""
    out: dict[str, None] = {}
    for expr in exprs:
        if expr is None:
            continue
        for node in nodes(expr):
            if isinstance(node, m.FieldRef):
                out[node.path] = None
            elif isinstance(node, m.InList | m.StartsWith):
                lv = node.values if isinstance(node, m.InList) else node.prefixes
                if isinstance(lv, m.FieldRef):
                    out[lv.path] = None
    return tuple(out)


def read_value(
    path: str, header: Mapping[str, Any], item: Mapping[str, Any], region: Mapping[str, Any]
) -> Any:
    """The value of a full field path (``None`` when missing)."""
    scope, _, name = path.partition(".")
    source = {"declaration": header, "item": item, "region": region}.get(scope, {})
    return source.get(name)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


@attrs.frozen
class ExplainShape:
    """Static facts about one compiled unit used to assemble explanations from raw values."""

    indicators: tuple[tuple[m.Indicator, tuple[str, ...], tuple[str, ...]], ...]
    exceptions: tuple[str, ...]
    terms: tuple[tuple[str, int], ...]
    degree_fields: tuple[str, ...]
    controls: tuple[m.Control, ...]

    @classmethod
    def of(
        cls, profile: m.Profile, controls: Sequence[m.Control], is_date: Callable[[m.Expr], bool]
    ) -> ExplainShape:
        inds = tuple(
            (i, fields_read(i.condition), fields_read(i.condition, i.unless))
            for i in profile.indicators
        )
        terms: tuple[tuple[str, int], ...] = ()
        if profile.degree is not None:
            terms = tuple(
                (expr_text(t), 1 if op == "+" else -1)
                for op, t in degree_terms(profile.degree, is_date)
            )
        return cls(
            inds,
            tuple(e.name for e in profile.exceptions),
            terms,
            fields_read(profile.degree),
            tuple(controls),
        )


def indicator_explanation(
    ind: m.Indicator,
    cond_fields: tuple[str, ...],
    all_fields: tuple[str, ...],
    cond: bool,
    unless: bool | None,
    read: Callable[[str], Any],
) -> IndicatorExplanation:
    """An indicator's explanation from its condition's and unless's values."""
    seen = tuple((p, read(p)) for p in all_fields)
    value = cond and not unless
    if value:
        state = IndicatorState.TRUE
    elif not cond and any(read(p) is None for p in cond_fields):
        state = IndicatorState.MISSING
    else:
        state = IndicatorState.FALSE
    return IndicatorExplanation(ind.name, ind.title, state, seen, unless)


def assemble(
    shape: ExplainShape,
    raw: Sequence[tuple[Any, ...]],
    header: Mapping[str, Any],
    items: Sequence[Mapping[str, Any]],
    region: Mapping[str, Any],
    has_items: bool,
) -> tuple[ItemExplanation, ...]:
    """Item explanations from the raw records of a generated ``explain`` function."""
    out = []
    for n, exc, inds, terms, dv, d, hv, subj, conds, applied in raw:
        item = items[n]

        def read(path: str, item: Mapping[str, Any] = item) -> Any:
            return read_value(path, header, item, region)

        indicators = tuple(
            indicator_explanation(ind, cf, af, c, u, read)
            for (ind, cf, af), (c, u) in zip(shape.indicators, inds, strict=True)
        )
        number_ = n + 1 if has_items else None
        if exc is not None:
            out.append(
                ItemExplanation(number_, shape.exceptions[exc], indicators, (), None, 0.0, (),
                                None, None, (), False)
            )  # fmt: skip
            continue
        term_ex = tuple(
            TermExplanation(text, sign, _float(v))
            for (text, sign), v in zip(shape.terms, terms, strict=True)
        )
        missing = tuple(p for p in shape.degree_fields if read(p) is None)
        ctl_ex = tuple(
            ControlExplanation(c.code, c.name, c.kind, number(c.threshold), cc, bool(a))
            for c, cc, a in zip(shape.controls, conds, applied, strict=True)
        )
        out.append(
            ItemExplanation(
                number_,
                None,
                indicators,
                term_ex,
                _float(dv),
                d,
                missing,
                hv,
                subj,
                ctl_ex,
                any(c.applied for c in ctl_ex),
            )
        )
    return tuple(out)
