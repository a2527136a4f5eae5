"""The suggested interval to a profile's next effectiveness review (seed 003 §9.2).

"The more often the profile fires, the shorter the interval": the rule is a data file
(``riskengine/data/review_intervals.toml``, or another with the same layout) of firing-rate bands
→ months. The firing rate is the number of declarations the profile fired on per 30 days, read
from the decision log (``decision_log``: one row per scoring decision, its ``fired`` list naming
each fired edition's number) over a window of days while the profile was in force.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import sqlalchemy as sa

from riskengine.registry.evidence import RegistryError
from riskengine.store.schema import TABLES

__all__ = [
    "DEFAULT_RULE",
    "Band",
    "Firings",
    "IntervalRule",
    "Suggestion",
    "fired_on",
    "firings",
    "load_rule",
    "scored",
    "suggest",
]

#: The shipped rule.
DEFAULT_RULE = Path(__file__).resolve().parents[1] / "data" / "review_intervals.toml"


@attrs.frozen
class Band:
    """A firing rate from ``at_least`` (per 30 days) up to the band above: ``months``."""

    at_least: float
    months: int


@attrs.frozen
class IntervalRule:
    """Bands from the highest rate down (the last starts at 0), the window, the no-data months."""

    bands: tuple[Band, ...]
    window_days: int
    no_data_months: int
    source: str = "riskengine/data/review_intervals.toml"

    def months(self, rate: float | None) -> int:
        """The months for a rate (firings per 30 days); ``None`` (no data): ``no_data_months``.
        A rate exactly at a band's ``at_least`` belongs to that band."""
        if rate is None:
            return self.no_data_months
        for band in self.bands:
            if rate >= band.at_least:
                return band.months
        return self.bands[-1].months  # pragma: no cover - the last band starts at 0


def _problem(data: Mapping[str, Any]) -> str:
    unknown = set(data) - {"window_days", "no_data_months", "band"}
    if unknown:
        return f"unknown key {sorted(unknown)[0]!r} (window_days, no_data_months, [[band]])"
    for key in ("window_days", "no_data_months"):
        value = data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 3660:
            return f"{key} must be a whole number from 1 to 3660, not {value!r}"
    bands = data.get("band")
    if not isinstance(bands, list) or not bands:
        return "the rule needs at least one [[band]] with at_least and months"
    previous: tuple[float, int] | None = None
    for i, band in enumerate(bands, 1):
        if not isinstance(band, dict) or set(band) != {"at_least", "months"}:
            return f"band {i} must have exactly at_least and months"
        at_least, months = band["at_least"], band["months"]
        if isinstance(at_least, bool) or not isinstance(at_least, (int, float)) or at_least < 0:
            return f"band {i}: at_least must be a number ≥ 0, not {at_least!r}"
        if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= 120:
            return f"band {i}: months must be a whole number from 1 to 120, not {months!r}"
        if previous is not None and at_least >= previous[0]:
            return f"band {i}: at_least must be lower than the band above's ({previous[0]})"
        if previous is not None and months < previous[1]:
            return (
                f"band {i}: a lower firing rate cannot get a shorter interval ({months} months "
                f"< {previous[1]} of the band above)"
            )
        previous = (float(at_least), months)
    if bands[-1]["at_least"] != 0:
        return "the last band must start at 0 (at_least = 0), so that every rate has a band"
    return ""


def load_rule(path: str | Path | None = None) -> IntervalRule:
    """The interval rule of ``path`` (default: the shipped file). Refused with the reason when
    the file is not one."""
    where = Path(path) if path is not None else DEFAULT_RULE
    try:
        data = tomllib.loads(where.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RegistryError(f"{where}: cannot be read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{where}: not a TOML file: {exc}") from None
    problem = _problem(data)
    if problem:
        raise RegistryError(f"{where}: {problem}")
    bands = tuple(Band(float(b["at_least"]), int(b["months"])) for b in data["band"])
    shown = "riskengine/data/review_intervals.toml" if path is None else str(where)
    return IntervalRule(bands, int(data["window_days"]), int(data["no_data_months"]), shown)


@attrs.frozen
class Firings:
    """What the decision log holds for a window: the declarations scored, and per profile (base
    number ``WW/XX/YYYY/ZZZZZ``) the declarations one of its editions fired on."""

    start: dt.date
    end: dt.date
    scored: int
    fired: Mapping[str, int]


def firings(connection: sa.Connection, start: dt.date, end: dt.date) -> Firings:
    """Count the decision log's declarations dated ``start`` .. ``end`` (``declaration_date``;
    a decision without a date is not counted), and per profile those it fired on. A declaration
    scored with several bundle revisions counts once."""
    log = TABLES.decision_log
    when = log.c.declaration_date.between(start, end)
    scored = connection.execute(
        sa.select(sa.func.count(sa.distinct(log.c.declaration_id))).where(when)
    ).scalar_one()
    seen: dict[str, set[str]] = {}
    rows = connection.execute(
        sa.select(log.c.declaration_id, log.c.fired).where(when, log.c.selected == sa.true())
    )
    for declaration, fired in rows:
        entries = json.loads(fired) if isinstance(fired, str) else fired
        for entry in entries or ():
            number = entry.get("number") if isinstance(entry, dict) else None
            if isinstance(number, str) and number:
                base = number.rsplit("-", 1)[0]
                seen.setdefault(base, set()).add(str(declaration))
    counts = Counter({base: len(ids) for base, ids in seen.items()})
    return Firings(start, end, int(scored or 0), counts)


def scored(connection: sa.Connection, start: dt.date, end: dt.date) -> int:
    """The declarations the decision log holds dated ``start`` .. ``end``."""
    log = TABLES.decision_log
    found = connection.execute(
        sa.select(sa.func.count(sa.distinct(log.c.declaration_id))).where(
            log.c.declaration_date.between(start, end)
        )
    ).scalar_one()
    return int(found or 0)


def fired_on(connection: sa.Connection, base_number: str, start: dt.date, end: dt.date) -> int:
    """The declarations dated ``start`` .. ``end`` that an edition of ``base_number`` fired on.

    The database keeps the decisions whose ``fired`` text holds ``BASE-`` (a bound ``LIKE``
    pattern; numbers hold no ``%`` or ``_``), and each is then read as JSON: only an entry whose
    number's base is ``base_number`` counts, whatever the JSON's spacing."""
    log = TABLES.decision_log
    pattern = "%" + base_number.replace("%", "").replace("_", "") + "-%"
    rows = connection.execute(
        sa.select(log.c.declaration_id, log.c.fired).where(
            log.c.declaration_date.between(start, end),
            log.c.selected == sa.true(),
            sa.cast(log.c.fired, sa.Text).like(pattern),
        )
    )
    seen: set[str] = set()
    for declaration, fired in rows:
        entries = json.loads(fired) if isinstance(fired, str) else fired
        for entry in entries or ():
            number = entry.get("number") if isinstance(entry, dict) else None
            if isinstance(number, str) and number.rsplit("-", 1)[0] == base_number:
                seen.add(str(declaration))
    return len(seen)


@attrs.frozen
class Suggestion:
    """A suggested interval: ``months``, from ``count`` firings over ``days`` days (``rate``
    per 30 days; ``None`` when the decision log holds nothing for the window)."""

    months: int
    count: int | None
    days: int
    rate: float | None
    start: dt.date
    end: dt.date

    def describe(self) -> str:
        span = f"{self.start} .. {self.end}"
        if self.rate is None:
            return f"{self.months} months (no decisions logged {span}: no firing data)"
        return (
            f"{self.months} months ({self.count} firings in {self.days} days {span}: "
            f"{self.rate:.1f} per 30 days)"
        )


def suggest(
    rule: IntervalRule,
    found: Firings,
    base_number: str,
    in_force: tuple[dt.date, dt.date | None],
) -> Suggestion:
    """The suggested interval for ``base_number`` from the firings ``found``, over the days of
    the window when the profile was in force (``in_force``: its first day, its last or None)."""
    start = max(found.start, in_force[0])
    end = found.end if in_force[1] is None else min(found.end, in_force[1])
    days = (end - start).days + 1
    if days <= 0 or found.scored == 0:
        return Suggestion(rule.no_data_months, None, max(days, 0), None, start, end)
    count = int(found.fired.get(base_number, 0))
    rate = count * 30 / days
    return Suggestion(rule.months(rate), count, days, rate, start, end)
