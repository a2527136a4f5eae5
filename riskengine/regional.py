"""Regional profiles: choosing an office's fill and substituting its values into the profile."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from riskengine import model as m
from riskengine.semantics.fills import choose, fills_of


def fill_for(
    profile: m.Profile, fills: Iterable[m.Fill], office: str | None, as_of: dt.date
) -> m.Fill | None:
    """The fill of ``office`` for ``profile`` that applies on ``as_of`` (None when there is
    none): among the fills naming the profile's number (edition included), the one of the
    office valid on that date; when several are (RE411 rejects that), the one starting last.
    The rule of :mod:`riskengine.semantics.fills`, as the evaluator and the SQL backtest read
    it."""
    own = fills_of(profile, fills)
    k = choose(own, office, as_of)
    return None if k is None else own[k]


def apply_fill(profile: m.Profile, fill: m.Fill) -> m.Profile:
    """The profile as it applies in the fill's office: ``region.*`` replaced by the fill's
    values, and the fill's message and controls in place of the profile's when given."""
    values: dict[str, m.Literal | m.ListLit] = {v.name: v.value for v in fill.values}

    def sub(expr: Any) -> Any:
        if isinstance(expr, m.Message):
            parts = tuple(
                literal_text(values[p.name])
                if isinstance(p, m.FieldRef) and p.scope == "region" and p.name in values
                else p
                for p in expr.parts
            )
            return attrs.evolve(expr, parts=parts)
        if isinstance(expr, m.FieldRef) and expr.scope == "region":
            value = values.get(expr.name)
            if value is None:
                # the checks reject such a fill; built through the API, the value stays missing
                # (as in the evaluator), and the SQL compiler sends the profile to the fallback
                return expr
            return attrs.evolve(value, span=expr.span)
        if attrs.has(type(expr)):
            changes = {}
            for f in attrs.fields(type(expr)):
                if f.name in ("span", "spans"):
                    continue
                old = getattr(expr, f.name)
                new = sub(old)
                if new is not old:
                    changes[f.name] = new
            return attrs.evolve(expr, **changes) if changes else expr
        if isinstance(expr, tuple):
            items = tuple(sub(x) for x in expr)
            return items if any(a is not b for a, b in zip(items, expr, strict=True)) else expr
        return expr

    resolved: m.Profile = sub(profile)
    changes: dict[str, Any] = {}
    if fill.message is not None:
        changes["message"] = sub(fill.message)
    if fill.controls:
        changes["controls"] = sub(fill.controls)
    return attrs.evolve(resolved, **changes) if changes else resolved


def literal_text(value: m.Literal | m.ListLit) -> str:
    """How a literal reads in an inspector message: 12.5, 2012-03-01, CN, "CN, VN"."""
    if isinstance(value, m.ListLit):
        return ", ".join(literal_text(v) for v in value.items)
    if isinstance(value, m.NumberLit):
        text = format(value.value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(value, m.DateLit):
        return value.value.isoformat()
    if isinstance(value, m.BoolLit):
        return "true" if value.value else "false"
    return value.value


# --- coverage: on which days and at which offices fills are valid --------------------------------

Period = tuple[dt.date, dt.date]


def _merged(periods: Iterable[Period]) -> list[Period]:
    """Inclusive periods merged where they overlap or touch."""
    out: list[Period] = []
    for start, end in sorted(periods):
        if out and start <= out[-1][1] + dt.timedelta(days=1):
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def _valid_period(fill: m.Fill) -> Period | None:
    valid = fill.valid
    if valid is None or valid.end is None or valid.start == dt.date.min or valid.end < valid.start:
        return None
    return valid.start, valid.end


def gaps(covered: Iterable[Period], start: dt.date, end: dt.date) -> list[Period]:
    """The days of ``start``..``end`` (inclusive) that no period of ``covered`` contains."""
    out: list[Period] = []
    day = start
    for a, b in _merged(covered):
        if b < day:
            continue
        if a > end:
            break
        if a > day:
            out.append((day, a - dt.timedelta(days=1)))
        day = max(day, b + dt.timedelta(days=1))
        if day > end:
            return out
    if day <= end:
        out.append((day, end))
    return out


def office_coverage(
    profile: m.Profile, fills: Iterable[m.Fill], start: dt.date, end: dt.date
) -> dict[str, list[Period]]:
    """Per office with a fill of ``profile`` valid on some day of ``start``..``end``: those days,
    as merged periods clipped to ``start``..``end``. An office missing from the result has no
    fill valid in the period: the regional profile does not apply to its declarations."""
    by_office: dict[str, list[Period]] = {}
    for fill in fills_of(profile, fills):
        period = _valid_period(fill)
        if fill.office is None or period is None or period[1] < start or period[0] > end:
            continue
        by_office.setdefault(fill.office, []).append((max(period[0], start), min(period[1], end)))
    return {office: _merged(periods) for office, periods in sorted(by_office.items())}


def describe_periods(periods: Sequence[Period], limit: int = 3) -> str:
    """``2024-01-01 .. 2024-03-31, 2024-07-01 .. 2024-09-30`` (and how many more); a single day
    is one date (``2024-06-01``, not ``2024-06-01 .. 2024-06-01``)."""
    shown = ", ".join(str(a) if a == b else f"{a} .. {b}" for a, b in periods[:limit])
    more = len(periods) - limit
    return shown + (f" and {more} more" if more > 0 else "")


#: What the backtest and ``score`` say for an office where a regional profile has no valid fill.
NOT_APPLIED = "not applied: no fill valid"


def office_note(
    coverage: Mapping[str, Sequence[Period]] | None, office: Any, start: dt.date, end: dt.date
) -> str | None:
    """The note of one office's row for a regional profile (``coverage`` from
    :func:`office_coverage`; ``None`` for a profile that is not regional): ``not applied: no fill
    valid`` when no fill of the office is valid in ``start``..``end``, the days without one when
    its fills cover only part of the period, else nothing."""
    if coverage is None:
        return None
    periods = coverage.get(office) if isinstance(office, str) else None
    if not periods:
        return NOT_APPLIED
    missing = gaps(periods, start, end)
    if not missing:
        return None
    return f"no fill valid {describe_periods(missing, 2)}"


def coverage_summary(
    key: str, coverage: Mapping[str, Sequence[Period]], start: dt.date, end: dt.date
) -> str:
    """One line on where a regional profile applied in a backtest of ``start``..``end``."""
    if not coverage:
        return (
            f"{key}: regional, {NOT_APPLIED} in {start} .. {end} at any office: it selects nothing"
        )
    offices = ", ".join(
        office if not gaps(periods, start, end) else f"{office} ({describe_periods(periods, 2)})"
        for office, periods in coverage.items()
    )
    return f"{key}: regional, applied at {offices}; at every other office {NOT_APPLIED}"
