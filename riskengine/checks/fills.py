"""Regional fill checks (RE4xx): required statements, validity, values against the profile."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable, Mapping, Sequence

from riskengine import model as m
from riskengine.checks.context import Reporter, closest, head, header_span, where
from riskengine.checks.expressions import Usage
from riskengine.checks.intervals import Interval
from riskengine.checks.types import PARAM_TYPES, ExprChecker, Scope, literal_type
from riskengine.regional import describe_periods, gaps
from riskengine.semantics.types import ValueType

#: A fill may be valid for at most this many calendar months.
MAX_MONTHS = 3


def months_later(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later; when that month is too short, the first day of the month
    after it (2012-11-30 + 3 months → 2013-03-01, so 2012-11-30 .. 2013-02-28 is allowed).
    Beyond the last date there is (9999-12-31), the last date."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    if year > dt.MAXYEAR:
        return dt.date.max
    last = calendar.monthrange(year, month)[1]
    if day.day <= last:
        return dt.date(year, month, day.day)
    return dt.date(year, month, last) + dt.timedelta(days=1)


def last_valid_day(start: dt.date) -> dt.date:
    """The last day a fill starting on ``start`` may be valid: the day before the same day three
    months later (2012-03-15 → 2012-06-14)."""
    later = months_later(start, MAX_MONTHS)
    return later if later == dt.date.max else later - dt.timedelta(days=1)


def _given(d: dt.date | None) -> bool:
    return d is not None and d != dt.date.min


def check_fill_statements(f: m.Fill, report: Reporter) -> None:
    """Office, order and valid present (RE401–RE403); the valid range (RE404, RE405); the order
    signed before the fill starts (RE413)."""
    header = header_span(f)
    if f.office is None:
        report(
            "RE401",
            f"the fill for {f.profile} does not say which office it is for",
            header,
            'add `office UA100000 "Kyiv customs"`',
        )
    if f.order is None:
        report(
            "RE402",
            f"the fill for {f.profile} has no approving order",
            header,
            'add `order "12" of 2012-03-01`: the office\'s order approving these values',
        )
    if f.valid is None:
        report(
            "RE403",
            f"the fill for {f.profile} does not say when it is valid",
            header,
            "add `valid 2012-03-01 .. 2012-05-31` (at most 3 months)",
        )
        return
    start, end = f.valid.start, f.valid.end
    span = f.spans.get("valid", f.valid.span)
    if not (_given(start) and end is not None and _given(end)):
        return
    if end < start:
        report("RE404", f"the fill is valid until {end}, before it starts ({start})", span)
        return
    limit = last_valid_day(start)
    if end > limit:
        report(
            "RE405",
            f"the fill is valid from {start} to {end}: longer than {MAX_MONTHS} months",
            span,
            f"a fill starting {start} may be valid until {limit} at the latest; "
            "then the office approves a new one",
        )
    if f.order is not None and _given(f.order.date) and f.order.date > start:
        report(
            "RE413",
            f"the fill is valid from {start}, before its order of {f.order.date} was signed",
            span,
        )


def check_fill_values(f: m.Fill, p: m.Profile, report: Reporter) -> None:
    """Values are exactly the profile's parameters (RE406, RE407, RE412) of their types
    (RE408)."""
    params: dict[str, m.Param] = {}
    for param in p.params:
        params.setdefault(param.name, param)
    given: dict[str, m.ParamValue] = {}
    for pv in f.values:
        name_span = head(pv.span, len(pv.name))
        first = given.get(pv.name)
        if first is not None:
            report(
                "RE412",
                f"`{pv.name}` is given twice (first at {where(first.span, pv.span)})",
                name_span,
                "give each value once",
            )
            continue
        given[pv.name] = pv
        declared = params.get(pv.name)
        if declared is None:
            hint = closest(pv.name, [n for n in params if n not in given])
            report(
                "RE407",
                f"profile {p.key} has no regional parameter `{pv.name}`",
                name_span,
                f"did you mean `{hint}`?" if hint else _params_list(params),
            )
            continue
        _check_value_type(pv, declared, report)
    missing = [name for name in params if name not in given]
    if missing:
        where_span = f.spans.get("values", header_span(f))
        for name in missing:
            param = params[name]
            report(
                "RE406",
                f"the fill gives no value for `{name}` ({_type_words(param)})",
                where_span,
                f"add `{name} = {_example(param)}` to `values {{ }}`",
            )


def _params_list(params: Mapping[str, m.Param]) -> str:
    if not params:
        return "the profile declares no regional parameters"
    return "its parameters are " + ", ".join(f"`{n}`" for n in params)


def _type_words(param: m.Param) -> str:
    return f"list of {param.type}" if param.is_list else param.type


def _example(param: m.Param) -> str:
    one = {
        "number": "10",
        "string": '"text"',
        "code": '"CN"',
        "date": "2012-01-01",
        "boolean": "true",
    }.get(param.type, "…")
    return f"({one}, …)" if param.is_list else one


def _check_value_type(pv: m.ParamValue, param: m.Param, report: Reporter) -> None:
    expected = PARAM_TYPES.get(param.type)
    if expected is None:
        return  # unknown parameter type: RE206 at the profile
    value = pv.value
    if isinstance(value, m.ListLit):
        if not param.is_list:
            report(
                "RE408",
                f"`{pv.name}` is a single {param.type}, but a list is given",
                value.span,
                f"give one value: `{pv.name} = {_example(param)}`",
            )
            return
        for item in value.items:
            t = literal_type(item)
            if t is not expected:
                report(
                    "RE408",
                    f"`{pv.name}` is a list of {param.type}, but this value is {t.described}",
                    item.span,
                    _quote_hint(item, expected),
                )
        return
    if param.is_list:
        report(
            "RE408",
            f"`{pv.name}` is a list of {param.type}, but a single value is given",
            value.span,
            f"write it in parentheses: `{pv.name} = ({_source_literal(value)})`",
        )
        return
    t = literal_type(value)
    if t is not expected:
        report(
            "RE408",
            f"`{pv.name}` is {_a(param.type)}, but this value is {t.described}",
            value.span,
            _quote_hint(value, expected),
        )


def _a(type_name: str) -> str:
    return {"number": "a number", "date": "a date", "boolean": "true/false"}.get(
        type_name, f"a {type_name}"
    )


def _quote_hint(lit: m.Literal, expected: ValueType) -> str | None:
    if expected is ValueType.STRING and isinstance(lit, m.NumberLit):
        return f'write it in quotes: "{lit.value}"'
    if expected is ValueType.NUMBER and isinstance(lit, m.StringLit):
        return "write the number without quotes"
    if expected is ValueType.DATE and isinstance(lit, m.StringLit):
        return "write the date without quotes: YYYY-MM-DD"
    return None


def _source_literal(lit: m.Literal) -> str:
    if isinstance(lit, m.StringLit):
        return f'"{lit.value}"'
    if isinstance(lit, m.BoolLit):
        return "true" if lit.value else "false"
    return str(lit.value)


def check_overlaps(fills: Sequence[m.Fill], report: Reporter) -> None:
    """Two fills for the same profile and office whose valid ranges overlap (RE411). Sorted by
    start and swept once: O(n log n)."""
    groups: dict[tuple[str, str], list[tuple[dt.date, int, m.Fill]]] = {}
    for i, f in enumerate(fills):
        if f.office is None or f.valid is None or f.valid.end is None:
            continue
        if not (_given(f.valid.start) and _given(f.valid.end)) or f.valid.end < f.valid.start:
            continue
        groups.setdefault((str(f.profile), f.office), []).append((f.valid.start, i, f))
    for (_number, office), members in groups.items():
        if len(members) < 2:
            continue
        members.sort(key=lambda x: (x[0], x[1]))
        latest: m.Fill = members[0][2]
        for _start, _i, f in members[1:]:
            assert f.valid is not None and latest.valid is not None
            assert latest.valid.end is not None and f.valid.end is not None
            if f.valid.start <= latest.valid.end:
                report(
                    "RE411",
                    f"this fill of office {office} for {f.profile} ({f.valid.start} .. "
                    f"{f.valid.end}) overlaps the one at {where(latest.span, f.span)} "
                    f"({latest.valid.start} .. {latest.valid.end})",
                    f.spans.get("valid", f.valid.span),
                    "one fill per office applies on a day: end the earlier fill before the "
                    "later one starts",
                )
            if f.valid.end > latest.valid.end:
                latest = f


def check_fill_scope(
    f: m.Fill,
    p: m.Profile,
    scope: Scope,
    degree: Interval | None,
    report: Reporter,
    check_controls: Callable[..., None],
    check_message: Callable[..., None],
) -> Usage:
    """The fill's message and controls, read in the profile's scope (its indicators, lists and
    parameters), with the profile's control rules (RE301–RE307). Returns what they use."""
    checker = ExprChecker(scope, report)
    for ctl in f.controls:
        if ctl.condition is not None:
            checker.condition(ctl.condition, "a control condition")
    if f.message is not None:
        check_message(f.message, scope, checker, report)
    if f.controls:
        check_controls(
            f.controls,
            degree,
            report,
            f.spans.get("controls"),
            f"the fill of office {f.office or '?'} for {p.key}",
        )
    if p.in_force is not None and f.valid is not None and f.valid.end is not None:
        start, end = p.in_force.start, p.in_force.end
        if (
            _given(f.valid.start)
            and _given(f.valid.end)
            and _given(start)
            and (f.valid.end < start or (end is not None and _given(end) and f.valid.start > end))
        ):
            period = f"{start} .. {end}" if end is not None else f"from {start}"
            report(
                "RE414",
                f"the fill is valid {f.valid.start} .. {f.valid.end}, outside the profile's "
                f"in-force period ({period}): it never applies",
                f.spans.get("valid", f.valid.span),
            )
    return Usage(checker.used, checker.used_params, checker.used_history)


def check_fill_coverage(p: m.Profile, fills: Sequence[m.Fill], report: Reporter) -> None:
    """A regional profile applies only where and when an office's fill is valid (RE415): warn
    when no fill is loaded for it, and for the days of its in-force period that no office's fill
    covers, up to the last day some fill is valid (later fills are approved quarter by quarter,
    so the days after the last one are not reported)."""
    if not p.is_regional or p.number is None:
        return
    if not fills:
        report(
            "RE415",
            f"no fill is loaded for the regional profile {p.key}: it applies to no declaration",
            p.spans.get("filling", header_span(p)),
            "check the profile together with its offices' fills (e.g. `riskengine check "
            f"profiles/`), or add `fill for {p.number} {{ office … valid … values {{ … }} }}`",
        )
        return
    periods = [
        (f.valid.start, f.valid.end)
        for f in fills
        if f.valid is not None
        and f.valid.end is not None
        and _given(f.valid.start)
        and _given(f.valid.end)
        and f.valid.start <= f.valid.end
    ]
    if not periods:
        return
    last = max(end for _, end in periods)
    force = p.in_force
    if force is not None and _given(force.start):
        start = force.start
        end = last if force.end is None or not _given(force.end) else min(force.end, last)
        what = f"of the in-force period ({force.start} .. {force.end or 'no end'})"
        span = p.spans.get("in_force", header_span(p))
    else:
        start = min(s for s, _ in periods)
        end = last
        what = "between the first and the last fill"
        span = p.spans.get("filling", header_span(p))
    missing = gaps(periods, start, end)
    if missing:
        days = sum((b - a).days + 1 for a, b in missing)
        report(
            "RE415",
            f"no office's fill is valid on {describe_periods(missing)} {what}: the regional "
            f"profile {p.key} applies to no declaration "
            + ("on that day" if days == 1 else f"on those {days} days"),
            span,
            "add the offices' fills valid on those dates (one per office and quarter)",
        )
