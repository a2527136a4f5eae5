"""KPI passports: TOML files that say what a key performance indicator measures, where its actual
value comes from, its baseline, its target and how the target is set (seeds 000, 001, 004).

A wrong passport is a :class:`PassportError` naming the file, the line and the key
(``kpis/release.toml:14: target.method: unknown method 'avg'; did you mean 'mean'?``).
See ``docs/kpi.md`` for the format.
"""

from __future__ import annotations

import enum
import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from riskengine.mapfile import MappingError, load_toml, read_text, suggest

__all__ = [
    "DEFAULT_THRESHOLDS",
    "Direction",
    "Passport",
    "PassportError",
    "Scale",
    "Source",
    "Target",
    "TargetMethod",
    "load_passport",
    "load_passports",
    "parse_passport",
]

#: Attainment ratios at or above which a KPI scores 5, 4, 3 and 2 (below the last: 1).
DEFAULT_THRESHOLDS: tuple[float, float, float, float] = (1.0, 0.95, 0.85, 0.70)

PERIODICITIES = ("monthly", "quarterly", "half-yearly", "annual")
_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\Z")
_TOP_KEYS = {
    "id", "name", "goal", "indicator", "unit", "periodicity", "responsible", "direction",
    "year_start_month", "source", "baseline", "target", "scale",
}  # fmt: skip
_REQUIRED_TOP = ("id", "name", "goal", "indicator", "unit", "periodicity", "responsible",
                 "direction", "source", "baseline", "target")  # fmt: skip
_SQL_BINDS = ("period_start", "period_end", "office")


class PassportError(MappingError):
    """A KPI passport is wrong: ``file``, ``line`` and ``key`` say where."""


class Direction(enum.Enum):
    """Whether a higher or a lower actual value is better."""

    HIGHER = "higher"
    LOWER = "lower"


class TargetMethod(enum.Enum):
    """How the target is set (seed 004 §3.3, seed 001)."""

    #: The limit value: the best state reachable (100 % of declarations, 0 delays).
    LIMIT = "limit"
    #: A value set by a normative act (``reference`` names it).
    NORMATIVE = "normative"
    #: The mean of the actual values of past periods.
    MEAN = "mean"
    #: The mean of past periods without the 2 best and the 2 worst (seed 001).
    TRIMMED_MEAN = "trimmed_mean"


@attrs.frozen
class Source:
    """Where the actual value comes from: a built-in ``metric`` with ``params``, or ``sql``."""

    metric: str | None = None
    params: Mapping[str, Any] = attrs.field(factory=dict)
    sql: str | None = None

    def describe(self) -> str:
        """``metric hit_rate (control=risk)`` or ``SQL query``."""
        if self.sql is not None:
            return "SQL query"
        shown = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.metric}" + (f" ({shown})" if shown else "")


@attrs.frozen
class Target:
    """The target: its method and, for ``limit``/``normative``, its value; for the means, how
    many past periods, or the past values themselves (oldest first)."""

    method: TargetMethod
    value: float | None = None
    past_periods: int | None = None
    values: tuple[float, ...] | None = None
    reference: str | None = None


@attrs.frozen
class Scale:
    """The 1–5 scale: ``thresholds`` are the attainment ratios for 5, 4, 3 and 2 points."""

    thresholds: tuple[float, float, float, float] = DEFAULT_THRESHOLDS


@attrs.frozen
class Passport:
    """One KPI passport, as read from its file."""

    id: str
    name: str
    goal: str
    indicator: str
    unit: str
    periodicity: str
    responsible: str
    direction: Direction
    source: Source
    baseline_year: int
    baseline_value: float | None
    target: Target
    scale: Scale = Scale()
    year_start_month: int = 1
    file: str | None = None


class _Where:
    """Finds the line of a key inside a TOML table of one file."""

    def __init__(self, text: str, file: str) -> None:
        self.lines = text.splitlines()
        self.file = file

    def line(self, table: str, key: str | None) -> int | None:
        current = ""
        table_line: int | None = None
        for number, raw in enumerate(self.lines, start=1):
            line = raw.strip()
            if line.startswith("#"):
                continue
            header = re.match(r"\[\s*([A-Za-z0-9_.\-]+)\s*\]", line)
            if header:
                current = header.group(1)
                if current == table:
                    table_line = number
                continue
            if (
                current == table
                and key is not None
                and re.match(rf"['\"]?{re.escape(key)}['\"]?\s*=", line)
            ):
                return number
            if (  # dotted keys at the top level: ``target.method = "mean"``
                key is not None
                and table
                and current == ""
                and re.match(rf"{re.escape(table)}\.{re.escape(key)}\s*=", line)
            ):
                return number
        return table_line

    def error(self, reason: str, table: str, key: str | None = None) -> PassportError:
        shown = ".".join(part for part in (table, key) if part)
        return PassportError(reason, file=self.file, line=self.line(table, key), key=shown)


def _text(data: Mapping[str, Any], key: str, where: _Where, table: str = "") -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise where.error("must be a non-empty string", table, key)
    return value.strip()


def _number(value: Any, where: _Where, table: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise where.error(f"must be a number, not {value!r}", table, key)
    if not math.isfinite(value):
        raise where.error("must be a finite number", table, key)
    return float(value)


def _unknown(data: Mapping[str, Any], known: Iterable[str], where: _Where, table: str) -> None:
    options = sorted(known)
    for key in data:
        if key not in options:
            raise where.error(f"unknown key{suggest(key, options)}", table, key)


def _table(data: Mapping[str, Any], key: str, where: _Where) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise where.error(f"must be a table ([{key}])", "", key)
    return value


def _enum(value: Any, kind: type[enum.Enum], where: _Where, table: str, key: str) -> Any:
    options = [str(m.value) for m in kind]
    if not isinstance(value, str) or value not in options:
        raise where.error(
            f"must be one of {', '.join(options)}, not {value!r}"
            + (suggest(value, options) if isinstance(value, str) else ""),
            table,
            key,
        )
    return kind(value)


def _source(data: Mapping[str, Any], where: _Where) -> Source:
    from riskengine.kpi.metrics import METRICS, check_sql

    table = _table(data, "source", where)
    has_metric, has_sql = "metric" in table, "sql" in table
    if has_metric == has_sql:
        raise where.error("needs exactly one of 'metric' (a built-in metric) or 'sql'", "source")
    if has_sql:
        _unknown(table, ("sql",), where, "source")
        sql = table["sql"]
        if not isinstance(sql, str) or not sql.strip():
            raise where.error("must be a non-empty SQL query", "source", "sql")
        problem = check_sql(sql)
        if problem:
            raise where.error(problem, "source", "sql")
        for name in re.findall(r"(?<![:\w]):([A-Za-z_]\w*)", sql):
            if name not in _SQL_BINDS:
                raise where.error(
                    f"unknown parameter :{name} (the query may use :period_start, :period_end "
                    f"and :office){suggest(name, _SQL_BINDS)}",
                    "source",
                    "sql",
                )
        return Source(sql=sql)
    metric = table["metric"]
    if not isinstance(metric, str) or metric not in METRICS:
        names = sorted(METRICS)
        hint = suggest(metric, names) if isinstance(metric, str) else ""
        raise where.error(
            f"unknown metric {metric!r}{hint} (built-in: {', '.join(names)})", "source", "metric"
        )
    spec = METRICS[metric]
    params = {k: v for k, v in table.items() if k != "metric"}
    for key, value in params.items():
        allowed = spec.params.get(key)
        if allowed is None:
            known = sorted(spec.params)
            raise where.error(
                f"metric {metric!r} has no parameter {key!r}{suggest(key, known)}"
                + (f" (it takes: {', '.join(known)})" if known else " (it takes none)"),
                "source",
                key,
            )
        problem = allowed(value)
        if problem:
            raise where.error(problem, "source", key)
    for key in spec.required:
        if key not in params:
            raise where.error(f"metric {metric!r} needs the parameter {key!r}", "source")
    return Source(metric=metric, params=params)


def _target(data: Mapping[str, Any], where: _Where) -> Target:
    table = _table(data, "target", where)
    _unknown(table, ("method", "value", "past_periods", "values", "reference"), where, "target")
    method = _enum(table.get("method"), TargetMethod, where, "target", "method")
    reference = table.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise where.error("must be a string", "target", "reference")
    if method in (TargetMethod.LIMIT, TargetMethod.NORMATIVE):
        for key in ("past_periods", "values"):
            if key in table:
                raise where.error(f"is for the methods mean and trimmed_mean, not {method.value}",
                                  "target", key)  # fmt: skip
        if "value" not in table:
            raise where.error(f"method {method.value!r} needs a 'value'", "target", "method")
        value = _number(table["value"], where, "target", "value")
        return Target(method, value=value, reference=reference)
    if "value" in table:
        raise where.error(
            f"method {method.value!r} computes the target from past periods: give 'past_periods' "
            "(or 'values'), not 'value'",
            "target",
            "value",
        )
    has_periods, has_values = "past_periods" in table, "values" in table
    if has_periods == has_values:
        raise where.error(
            f"method {method.value!r} needs exactly one of 'past_periods' (how many past periods "
            "to compute from the store) or 'values' (the past values, oldest first)",
            "target",
            "method",
        )
    if has_periods:
        periods = table["past_periods"]
        if isinstance(periods, bool) or not isinstance(periods, int) or not 1 <= periods <= 50:
            raise where.error("must be a whole number from 1 to 50", "target", "past_periods")
        return Target(method, past_periods=periods, reference=reference)
    values = table["values"]
    if not isinstance(values, list) or not values:
        raise where.error("must be a non-empty list of numbers", "target", "values")
    numbers = tuple(_number(v, where, "target", "values") for v in values)
    return Target(method, values=numbers, reference=reference)


def _scale(data: Mapping[str, Any], where: _Where) -> Scale:
    if "scale" not in data:
        return Scale()
    table = _table(data, "scale", where)
    _unknown(table, ("thresholds",), where, "scale")
    raw = table.get("thresholds")
    if not isinstance(raw, list) or len(raw) != 4:
        raise where.error(
            "must be a list of 4 attainment ratios: the least for 5, 4, 3 and 2 points",
            "scale",
            "thresholds",
        )
    numbers = [_number(v, where, "scale", "thresholds") for v in raw]
    if any(n <= 0 for n in numbers) or any(a <= b for a, b in itertools.pairwise(numbers)):
        raise where.error(
            "must be positive and strictly decreasing (for 5, 4, 3, 2 points)", "scale",
            "thresholds",
        )  # fmt: skip
    return Scale((numbers[0], numbers[1], numbers[2], numbers[3]))


def parse_passport(text: str, file: str) -> Passport:
    """A passport from its TOML ``text``; ``file`` names it in errors."""
    where = _Where(text, file)
    try:
        data = load_toml(text, file)
    except MappingError as exc:
        raise PassportError(exc.reason, file=file, line=exc.line) from None
    _unknown(data, _TOP_KEYS, where, "")
    for key in _REQUIRED_TOP:
        if key not in data:
            raise PassportError(f"the passport has no {key!r}", file=file, line=None, key=key)
    ident = _text(data, "id", where)
    if not _ID.match(ident):
        raise where.error(
            "must be lower-case letters, digits, '-' and '_' (at most 64), starting with a "
            "letter or digit",
            "",
            "id",
        )
    periodicity = data.get("periodicity")
    if periodicity not in PERIODICITIES:
        raise where.error(
            f"must be one of {', '.join(PERIODICITIES)}, not {periodicity!r}", "", "periodicity"
        )
    month = data.get("year_start_month", 1)
    if isinstance(month, bool) or not isinstance(month, int) or not 1 <= month <= 12:
        raise where.error("must be a month number from 1 to 12", "", "year_start_month")
    baseline = _table(data, "baseline", where)
    _unknown(baseline, ("year", "value"), where, "baseline")
    year = baseline.get("year")
    if isinstance(year, bool) or not isinstance(year, int) or not 1900 <= year <= 2999:
        raise where.error("must be a year (1900-2999)", "baseline", "year")
    baseline_value = (
        _number(baseline["value"], where, "baseline", "value") if "value" in baseline else None
    )
    return Passport(
        id=ident,
        name=_text(data, "name", where),
        goal=_text(data, "goal", where),
        indicator=_text(data, "indicator", where),
        unit=_text(data, "unit", where),
        periodicity=str(periodicity),
        responsible=_text(data, "responsible", where),
        direction=_enum(data.get("direction"), Direction, where, "", "direction"),
        source=_source(data, where),
        baseline_year=year,
        baseline_value=baseline_value,
        target=_target(data, where),
        scale=_scale(data, where),
        year_start_month=month,
        file=file,
    )


def load_passport(path: str | Path) -> Passport:
    """The passport in the file at ``path``."""
    source = str(path)
    try:
        text = read_text(source)
    except MappingError as exc:
        raise PassportError(exc.reason, file=source) from None
    return parse_passport(text, source)


def default_passports_dir() -> Path:
    """The demo KPI passports shipped inside the package."""
    return Path(__file__).resolve().parents[1] / "data" / "kpis"


def load_passports(paths: Sequence[str | Path]) -> list[Passport]:
    """Passports from files and folders (``*.toml`` in a folder, by name); ids must be unique."""
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(path.glob("*.toml"))
            if not found:
                raise PassportError("no KPI passport (*.toml) in the folder", file=str(path))
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise PassportError("no such file or folder", file=str(path))
    passports: list[Passport] = []
    seen: dict[str, str] = {}
    for file in files:
        passport = load_passport(file)
        if passport.id in seen:
            raise PassportError(
                f"the id {passport.id!r} is already used by {seen[passport.id]}",
                file=str(file),
                line=_Where(read_text(str(file)), str(file)).line("", "id"),
                key="id",
            )
        seen[passport.id] = str(file)
        passports.append(passport)
    return passports
