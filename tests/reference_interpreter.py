"""A deliberately simple tree-walking evaluator of the model, written straight from the semantics.

It exists to be compared with the compiled evaluator: no code generation, no index, no hoisting,
no caching. History is computed here from the raw clearance and control lists with the formula
of the semantics, not through a provider. Results use the evaluator's result and explanation
types so that the two can be compared with ``==``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

from riskengine import model as m
from riskengine.catalogue import default_catalogue
from riskengine.declaration import Declaration
from riskengine.evaluator import (
    Clearance,
    ControlForm,
    ControlResult,
    FiredProfile,
    HistoryRecord,
    HistoryValue,
    Lane,
    LaneConfig,
    ScoreResult,
)
from riskengine.evaluator.explain import (
    ControlExplanation,
    FillInfo,
    IndicatorExplanation,
    IndicatorState,
    ItemExplanation,
    ProfileExplanation,
    TermExplanation,
    expr_text,
)
from riskengine.evaluator.values import format_value
from riskengine.semantics.operators import ARITHMETIC, FUNCTIONS

STRENGTH = {m.ControlKind.MANDATORY: 3, m.ControlKind.CONDITIONAL: 2, m.ControlKind.IF_NECESSARY: 1}


def truth(value: Any) -> bool:
    """A value used as a condition: missing is false."""
    return value is not None and bool(value)


def lit(x: m.Literal) -> Any:
    return float(x.value) if isinstance(x, m.NumberLit) else x.value


class Item:
    """Evaluation of one profile on one goods item."""

    def __init__(
        self,
        profile: m.Profile,
        lists: Mapping[str, m.ListLit],
        header: Mapping[str, Any],
        item: Mapping[str, Any],
        region: Mapping[str, Any],
        history: HistoryValue | None,
    ) -> None:
        self.profile = profile
        self.lists = lists
        self.header = header
        self.item = item
        self.region = region
        self.nh = history.negative if history else 0.0
        self.ph = history.positive if history else 0.0
        self.memo: dict[str, tuple[bool, bool | None]] = {}

    def field(self, path: str) -> Any:
        scope, _, name = path.partition(".")
        if scope == "declaration":
            return self.header.get(name)
        if scope == "item":
            return self.item.get(name)
        return self.region.get(name)

    def indicator_parts(self, name: str) -> tuple[bool, bool | None]:
        """(condition, unless) of an indicator; unless is None when it has none."""
        if name not in self.memo:
            ind = self.profile.indicator(name)
            assert ind is not None, name
            cond = truth(self.ev(ind.condition))
            unless = None if ind.unless is None else truth(self.ev(ind.unless))
            self.memo[name] = (cond, unless)
        return self.memo[name]

    def indicator(self, name: str) -> bool:
        cond, unless = self.indicator_parts(name)
        return cond and not unless

    def list_values(self, lv: m.ListValue, prefixes: bool) -> list[Any] | None:
        if isinstance(lv, m.FieldRef):
            v = self.field(lv.path)
            return None if v is None else list(v)
        target = lv if isinstance(lv, m.ListLit) else self.lists[lv.name]
        if prefixes:
            return [x.value if isinstance(x, m.StringLit) else str(x.value) for x in target.items]
        return [lit(x) for x in target.items]

    def ev(self, e: m.Expr) -> Any:
        match e:
            case m.NumberLit() | m.StringLit() | m.DateLit() | m.BoolLit():
                return lit(e)
            case m.FieldRef(path=p):
                return self.field(p)
            case m.Ref(name=n):
                return self.indicator(n)
            case m.HistoryRef(kind=k):
                return self.nh if k is m.HistoryKind.NEGATIVE else self.ph
            case m.Neg(operand=o):
                v = self.ev(o)
                return None if v is None else -v
            case m.Arith(op=op, left=a, right=b):
                x = self.ev(a)
                if x is None:
                    return None
                y = self.ev(b)
                if y is None:
                    return None
                if isinstance(x, dt.date) and isinstance(y, dt.date):
                    return (x - y).days
                # numbers: the operator table's reference callables (an overflow is missing)
                return ARITHMETIC[op].python(x, y)
            case m.Compare(op=op, left=a, right=b):
                x, y = self.ev(a), self.ev(b)
                if x is None or y is None:
                    return False
                return {
                    "==": x == y, "!=": x != y, "<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y,
                }[op]  # fmt: skip
            case m.And(left=a, right=b):
                return truth(self.ev(a)) and truth(self.ev(b))
            case m.Or(left=a, right=b):
                return truth(self.ev(a)) or truth(self.ev(b))
            case m.Not(operand=o):
                return not truth(self.ev(o))
            case m.InList(operand=o, values=lv, negated=neg):
                x = self.ev(o)
                vals = self.list_values(lv, prefixes=False)
                if x is None or vals is None:
                    return False
                return (x not in vals) if neg else (x in vals)
            case m.StartsWith(operand=o, prefixes=lv):
                x = self.ev(o)
                vals = self.list_values(lv, prefixes=True)
                if x is None or vals is None:
                    return False
                return any(x.startswith(p) for p in vals)
            case m.Between(operand=o, low=lo, high=hi):
                x, low, high = self.ev(o), self.ev(lo), self.ev(hi)
                if x is None or low is None or high is None:
                    return False
                return low <= x and x <= high
            case m.Matches(operand=o, pattern=pattern):
                # the documented meaning, on Python's own engine: what semantics/regex.py
                # translates to RE2 (only patterns `check` accepts reach here)
                x = self.ev(o)
                return x is not None and re.fullmatch(pattern, x) is not None
            case m.IsMissing(operand=o, negated=neg):
                missing = self.ev(o) is None
                return not missing if neg else missing
            case m.Call(func=f, args=args):
                vals = [self.ev(a) for a in args]
                if f == "round":
                    return FUNCTIONS["round"].python(*vals)
                if any(v is None for v in vals):
                    return None
                if f == "abs":
                    return abs(vals[0])
                if len(vals) == 1:
                    return vals[0]
                return min(vals) if f == "min" else max(vals)
            case m.Cond(test=t, then=a, otherwise=b):
                return self.ev(a) if truth(self.ev(t)) else self.ev(b)
        raise TypeError(e)


def fields_of(*exprs: m.Expr | None) -> list[str]:
    out: list[str] = []
    for e in exprs:
        if e is None:
            continue
        for node in m.walk(e):
            path = None
            if isinstance(node, m.FieldRef):
                path = node.path
            elif isinstance(node, m.InList) and isinstance(node.values, m.FieldRef):
                path = node.values.path
            elif isinstance(node, m.StartsWith) and isinstance(node.prefixes, m.FieldRef):
                path = node.prefixes.path
            if path is not None and path not in out:
                out.append(path)
    return out


DATE_FIELDS = {f.path for f in default_catalogue() if f.type.value == "date"}


def is_date(e: m.Expr) -> bool:
    if isinstance(e, m.Cond):
        return is_date(e.then)
    return isinstance(e, m.DateLit) or (isinstance(e, m.FieldRef) and e.path in DATE_FIELDS)


def terms_of(e: m.Expr) -> list[tuple[int, m.Expr]]:
    out: list[tuple[int, m.Expr]] = []
    while isinstance(e, m.Arith) and e.op in "+-" and not is_date(e.right):
        out.append((1 if e.op == "+" else -1, e.right))
        e = e.left
    return [(1, e), *reversed(out)]


# ------------------------------------------------------------------------------ history


def reference_history(
    block: m.History,
    subject: tuple[Any, ...],
    as_of: dt.date,
    clearances: Sequence[Clearance],
    controls: Sequence[ControlResult],
) -> HistoryValue:
    def subject_of(fields: Mapping[str, Any]) -> tuple[Any, ...] | None:
        out = []
        for s in block.subjects:
            v = fields.get(s.field.path)
            if v is None:
                return None
            out.append(v[: s.prefix] if s.prefix is not None and isinstance(v, str) else v)
        return tuple(out)

    # exact arithmetic (docs/semantics.md#history), each value rounded to a float once
    start = as_of - dt.timedelta(days=block.window_days)
    records = []
    negative = positive = Fraction(0)
    if block.negative is not None:
        coefficients = {r.code: Fraction(r.coefficient) for r in block.negative.reasons}
        events = [
            c for c in clearances
            if not c.completed and start <= c.date < as_of and subject_of(c.fields) == subject
        ]  # fmt: skip
        for c in sorted(events, key=lambda c: c.date):
            listed = [coefficients[r] for r in c.reasons if r in coefficients]
            value = Fraction(block.negative.per_case) * max(listed) if listed else Fraction(0)
            negative += value
            records.append(HistoryRecord("clearance", c.date, float(value), c.declaration_id,
                                         tuple(c.reasons)))  # fmt: skip
        negative = min(Fraction(block.negative.max), negative)
    if block.positive is not None:
        events2 = [
            c for c in controls
            if not c.violation and start <= c.date < as_of and subject_of(c.fields) == subject
        ]  # fmt: skip
        for c in sorted(events2, key=lambda c: c.date):
            positive += Fraction(block.positive.step)
            records.append(HistoryRecord("control", c.date, float(block.positive.step),
                                         c.declaration_id))  # fmt: skip
        positive = min(Fraction(block.positive.max), positive)
    return HistoryValue(float(negative), float(positive), tuple(records))


# ------------------------------------------------------------------------------ one profile


def merge(forms: list[ControlForm]) -> tuple[ControlForm, ...]:
    out: dict[str, ControlForm] = {}
    order: list[str] = []
    for f in forms:
        if f.code not in out:
            order.append(f.code)
            out[f.code] = f
        elif STRENGTH[f.kind] > STRENGTH[out[f.code].kind]:
            out[f.code] = f
    return tuple(out[c] for c in order)


def render_message(
    message: m.Message | None,
    ctx: Item,
    degree: float,
) -> str | None:
    if message is None:
        return None
    out = []
    for part in message.parts:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, m.FieldRef):
            out.append(format_value(ctx.field(part.path)))
        elif isinstance(part, m.HistoryRef):
            out.append(format_value(ctx.ev(part)))
        elif part.name == "degree":
            out.append(format_value(degree))
        elif ctx.profile.indicator(part.name) is not None:
            out.append(format_value(ctx.indicator(part.name)))
        else:
            out.append("—")
    return "".join(out)


def evaluate_profile(
    profile: m.Profile,
    lists: Mapping[str, m.ListLit],
    decl: Declaration,
    as_of: dt.date,
    fill: m.Fill | None,
    clearances: Sequence[Clearance],
    controls_done: Sequence[ControlResult],
) -> tuple[FiredProfile | None, ProfileExplanation]:
    controls = fill.controls if fill is not None and fill.controls else profile.controls
    message = fill.message if fill is not None and fill.message is not None else profile.message
    region: dict[str, Any] = {}
    if fill is not None:
        params = {p.name: p for p in profile.params}
        for pv in fill.values:
            textual = pv.name in params and params[pv.name].type in ("string", "code")
            if isinstance(pv.value, m.ListLit):
                region[pv.name] = tuple(
                    (x.value if isinstance(x, m.StringLit) else str(x.value)) if textual else lit(x)
                    for x in pv.value.items
                )
            else:
                region[pv.name] = lit(pv.value)
    items = list(decl.items) if decl.items else [{}]
    explained: list[ItemExplanation] = []
    contexts: list[Item] = []
    for k, item in enumerate(items):
        number = k + 1 if decl.items else None
        probe = Item(profile, lists, decl.header, item, region, None)
        hv: HistoryValue | None = None
        subject = None
        if profile.history is not None:
            parts = []
            for s in profile.history.subjects:
                v = probe.field(s.field.path)
                if v is None:
                    parts = None
                    break
                parts.append(v[: s.prefix] if s.prefix is not None and isinstance(v, str) else v)
            if parts is None:
                hv = HistoryValue()
            else:
                subject = tuple(parts)
                hv = reference_history(profile.history, subject, as_of, clearances, controls_done)
        ctx = Item(profile, lists, decl.header, item, region, hv)
        contexts.append(ctx)
        indicators = []
        for ind in profile.indicators:
            cond, unless = ctx.indicator_parts(ind.name)
            value = cond and not unless
            seen = tuple((p, ctx.field(p)) for p in fields_of(ind.condition, ind.unless))
            cond_missing = any(ctx.field(p) is None for p in fields_of(ind.condition))
            state = (
                IndicatorState.TRUE if value
                else IndicatorState.MISSING if not cond and cond_missing
                else IndicatorState.FALSE
            )  # fmt: skip
            indicators.append(IndicatorExplanation(ind.name, ind.title, state, seen, unless))
        exception = next((e.name for e in profile.exceptions if truth(ctx.ev(e.condition))), None)
        if exception is not None:
            explained.append(
                ItemExplanation(number, exception, tuple(indicators), (), None, 0.0, (), None,
                                None, (), False)
            )  # fmt: skip
            continue
        if profile.degree is None:
            terms: tuple[TermExplanation, ...] = ()
            value = None
            missing: tuple[str, ...] = ()
        else:
            terms = tuple(
                TermExplanation(expr_text(t), sign, None if (v := ctx.ev(t)) is None else float(v))
                for sign, t in terms_of(profile.degree)
            )
            value = ctx.ev(profile.degree)
            missing = tuple(p for p in fields_of(profile.degree) if ctx.field(p) is None)
        degree = 0.0 if value is None else float(value)
        if degree != degree or degree < 0:
            degree = 0.0
        degree = min(degree, 100.0)
        ctl_ex = []
        for c in controls:
            cond = None if c.condition is None else truth(ctx.ev(c.condition))
            applied = degree >= float(c.threshold) and cond is not False
            ctl_ex.append(ControlExplanation(c.code, c.name, c.kind, float(c.threshold), cond,
                                             applied))  # fmt: skip
        explained.append(
            ItemExplanation(
                number, None, tuple(indicators), terms,
                None if value is None else float(value), degree, missing,
                hv if profile.history is not None else None,
                subject, tuple(ctl_ex), any(x.applied for x in ctl_ex),
            )
        )  # fmt: skip
    fill_info = None
    if fill is not None:
        fill_info = FillInfo(
            fill.office,
            fill.order.number if fill.order else None,
            fill.valid.start if fill.valid else None,
            fill.valid.end if fill.valid else None,
        )
    why = ProfileExplanation(profile.key, profile.name, True, None, fill_info, tuple(explained))
    fired = [(k, e) for k, e in enumerate(explained) if e.fired]
    if not fired:
        return None, why
    best_k, best = fired[0]
    for k, e in fired:
        if e.degree > best.degree:
            best_k, best = k, e
    # in the profile's order of controls: those that applied on at least one fired item
    forms = merge(
        [
            ControlForm(c.code, c.name, c.kind)
            for k, c in enumerate(controls)
            if any(e.controls[k].applied for _, e in fired)
        ]
    )
    text = render_message(message, contexts[best_k], best.degree)
    numbers = tuple(k + 1 for k, _ in fired) if decl.items else ()
    number = str(profile.number) if profile.number else None
    return FiredProfile(profile.key, number, profile.name, best.degree, forms, text, numbers,
                        why), why  # fmt: skip


# ------------------------------------------------------------------------------ a set


def in_force(p: m.Profile, day: dt.date) -> bool:
    window = p.in_force
    if window is not None and (day < window.start or (window.end is not None and day > window.end)):
        return False
    return p.edition_in_force is None or p.edition_in_force <= day


def reference_score(
    files: Sequence[m.SourceFile],
    decl: Declaration,
    as_of: dt.date,
    *,
    clearances: Sequence[Clearance] = (),
    controls: Sequence[ControlResult] = (),
    lanes: LaneConfig | None = None,
    explain: bool = False,
) -> ScoreResult:
    """Score a declaration with every profile of ``files`` that applies on ``as_of``."""
    profiles = [(p, sf) for sf in files for p in sf.profiles]
    fills = [f for sf in files for f in sf.fills]
    applying = []
    for p, sf in profiles:
        if not in_force(p, as_of):
            continue
        if p.number is not None:
            rivals = [
                q for q, _ in profiles
                if q.number is not None and q.number.base == p.number.base and in_force(q, as_of)
            ]  # fmt: skip
            if max(int(q.number.edition) for q in rivals) != int(p.number.edition):
                continue
        applying.append((p, sf))
    fired: list[FiredProfile] = []
    explanations: list[ProfileExplanation] = []
    office = decl.header.get("office")
    for p, sf in applying:
        fill = None
        if p.is_regional:
            candidates = [
                f for f in fills
                if p.number is not None and str(f.profile) == str(p.number)
                and f.office is not None and f.office == office
                and f.valid is not None and f.valid.start <= as_of <= (f.valid.end or as_of)
            ]  # fmt: skip
            if not candidates:
                where = "no office" if office is None else f"office {office}"
                explanations.append(
                    ProfileExplanation(
                        p.key, p.name, False,
                        f"regional profile: no fill for {where} valid on {as_of.isoformat()}",
                        None, (),
                    )
                )  # fmt: skip
                continue
            latest = max(f.valid.start for f in candidates if f.valid)
            fill = next(f for f in candidates if f.valid and f.valid.start == latest)
        lists = {ld.name: ld.values for ld in sf.lists}
        lists.update({ld.name: ld.values for ld in p.lists})
        result, why = evaluate_profile(p, lists, decl, as_of, fill, clearances, controls)
        explanations.append(why)
        if result is not None:
            fired.append(result if explain else _plain(result))
    union = merge([f for fp in fired for f in fp.controls])
    combined = tuple(sorted(union, key=lambda f: f.code))
    config = lanes or LaneConfig()
    severity = {Lane.GREEN: 0, Lane.YELLOW: 1, Lane.RED: 2}
    lane = Lane.GREEN
    for f in combined:
        if not config.count_if_necessary and f.kind is m.ControlKind.IF_NECESSARY:
            continue
        own = (
            Lane.RED
            if f.code in config.red
            else (Lane.YELLOW if f.code in config.yellow else config.unknown)
        )
        if severity[own] > severity[lane]:
            lane = own
    return ScoreResult(
        decl.id, as_of, tuple(fired), combined, lane, tuple(explanations) if explain else ()
    )


def _plain(fp: FiredProfile) -> FiredProfile:
    return FiredProfile(fp.key, fp.number, fp.name, fp.degree, fp.controls, fp.message, fp.items)
