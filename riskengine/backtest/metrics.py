"""Backtest metrics: counts per breakdown group summed into totals and ratios the commission reads.

Every count the query returns is additive (declarations, selections, controls, hits, revenue),
so one pass grouped by every breakdown key at once gives the totals and each one-dimensional
breakdown by summing in Python. Ratios are computed last, from the sums, never averaged.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

#: One cent: money is summed exactly in cents and shown to the cent.
CENT = Decimal("0.01")


def money(cents: int) -> Decimal:
    """An amount of whole cents as a decimal with two places (``12345`` -> ``123.45``)."""
    return Decimal(cents).scaleb(-2).quantize(CENT)


def per(amount: Decimal, count: int) -> Decimal | None:
    """``amount / count`` rounded to the cent (half away from zero); ``None`` when ``count`` is
    0."""
    if count == 0:
        return None
    with decimal.localcontext() as ctx:
        ctx.prec = 50
        return (amount / count).quantize(CENT, rounding=decimal.ROUND_HALF_UP)


class ThresholdError(ValueError):
    """A threshold of the ``[backtest]`` configuration is unknown or out of range; ``key``
    names it (for the caller to locate it in the file)."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


@attrs.frozen
class Thresholds:
    """The commission's values: selectivity (%) from which a profile is flagged as high, and
    (optional) below which it is flagged as low."""

    high_selectivity: float = 5.0
    low_selectivity: float | None = None

    #: The keys a ``[backtest]`` table may hold.
    KEYS = ("high_selectivity", "low_selectivity")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Thresholds:
        """The thresholds of a ``[backtest]`` table; an unknown key or a value that is not a
        percentage raises :class:`ThresholdError` naming the key."""
        import difflib

        for key in data:
            if key not in cls.KEYS:
                close = difflib.get_close_matches(str(key), cls.KEYS, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ThresholdError(
                    f"unknown key {key!r} in [backtest] (known: {', '.join(cls.KEYS)}){hint}", key
                )
        values: dict[str, float | None] = {}
        for key in cls.KEYS:
            value = data.get(key, getattr(attrs.fields(cls), key).default)
            if value is None and key == "low_selectivity":
                values[key] = None
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 <= value <= 100
            ):
                raise ThresholdError(f"{key} must be a number of per cent between 0 and 100", key)
            values[key] = float(value)
        high, low = values["high_selectivity"], values["low_selectivity"]
        assert high is not None
        if low is not None and low > high:
            raise ThresholdError(
                f"low_selectivity ({low:g} %) is above high_selectivity ({high:g} %)",
                "low_selectivity",
            )
        return cls(high, low)


@attrs.frozen
class ProfileCounts:
    """Additive counts of one profile over some set of declarations.

    Money is in whole cents (each control's revenue rounded to the cent, then summed exactly).
    ``controls``/``hits``/``revenue`` count the control results of the procedures the profile
    applied to each selected declaration; the ``*_any`` counts every control result on the
    selected declarations, whatever its procedure (``--any-control``).
    """

    selected: int = 0
    controls_applied: Mapping[str, int] = attrs.field(factory=dict)  # by procedure code
    controls_carried: int = 0
    hits: int = 0
    revenue: int = 0  # cents
    controls_any: int = 0
    hits_any: int = 0
    revenue_any: int = 0  # cents

    def __add__(self, other: ProfileCounts) -> ProfileCounts:
        codes = dict(self.controls_applied)
        for code, n in other.controls_applied.items():
            codes[code] = codes.get(code, 0) + n
        return ProfileCounts(
            self.selected + other.selected,
            codes,
            self.controls_carried + other.controls_carried,
            self.hits + other.hits,
            self.revenue + other.revenue,
            self.controls_any + other.controls_any,
            self.hits_any + other.hits_any,
            self.revenue_any + other.revenue_any,
        )


@attrs.frozen
class GroupCounts:
    """Counts for one breakdown group: the declarations considered and each profile's counts."""

    key: tuple[Any, ...]
    considered: int
    violations: int
    controls_all: int
    random_controls: int
    random_hits: int
    profiles: tuple[ProfileCounts, ...]

    def __add__(self, other: GroupCounts) -> GroupCounts:
        return GroupCounts(
            self.key,
            self.considered + other.considered,
            self.violations + other.violations,
            self.controls_all + other.controls_all,
            self.random_controls + other.random_controls,
            self.random_hits + other.random_hits,
            tuple(a + b for a, b in zip(self.profiles, other.profiles, strict=True)),
        )


def _ratio(num: float, den: float, scale: float = 1.0) -> float | None:
    return None if den == 0 else scale * num / den


@attrs.frozen
class ProfileMetrics:
    """What the commission reads for one profile over one group of declarations.

    ``hit_rate`` = hits / controls carried out on the profile's selections; ``detection_share``
    = the profile's hits / every control that found a violation in the period;
    ``random_hit_rate`` = hits / controls among random controls (the unbiased baseline).
    Ratios are None when their denominator is 0. ``revenue`` is an exact decimal sum with two
    places; ``revenue_per_control`` is rounded to the cent. ``controls_any``: every control
    result on the selected declarations, whatever its procedure (equal to ``controls_carried``
    when they are counted with ``any_control``).
    """

    considered: int
    selected: int
    selectivity: float | None  # per cent
    controls_applied: Mapping[str, int]
    controls_carried: int
    hits: int
    hit_rate: float | None
    revenue: Decimal
    revenue_per_control: Decimal | None
    detection_share: float | None
    random_hit_rate: float | None
    high_selectivity: bool
    low_selectivity: bool = False
    controls_any: int = 0

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


def metrics(
    group: GroupCounts, index: int, thresholds: Thresholds, any_control: bool = False
) -> ProfileMetrics:
    """The metrics of profile ``index`` over ``group``; ``any_control`` counts every control
    result on its selections, not only those of the procedures it applied."""
    c = group.profiles[index]
    selectivity = _ratio(c.selected, group.considered, 100.0)
    carried, hits, cents = (
        (c.controls_any, c.hits_any, c.revenue_any)
        if any_control
        else (c.controls_carried, c.hits, c.revenue)
    )
    revenue = money(cents)
    low = thresholds.low_selectivity
    return ProfileMetrics(
        considered=group.considered,
        selected=c.selected,
        selectivity=selectivity,
        controls_applied=dict(sorted(c.controls_applied.items())),
        controls_carried=carried,
        hits=hits,
        hit_rate=_ratio(hits, carried),
        revenue=revenue,
        revenue_per_control=per(revenue, carried),
        detection_share=_ratio(hits, group.violations),
        random_hit_rate=_ratio(group.random_hits, group.random_controls),
        high_selectivity=selectivity is not None and selectivity >= thresholds.high_selectivity,
        low_selectivity=low is not None and selectivity is not None and selectivity < low,
        controls_any=c.controls_any,
    )


def cents(value: Any) -> int:
    """A sum of cents as the engine returns it (an integer, a ``Decimal``, or ``None``)."""
    if value is None:
        return 0
    return int(value)


def read_groups(
    rows: Iterable[Mapping[str, Any]], group_by: Sequence[str], controls: Sequence[Sequence[str]]
) -> list[GroupCounts]:
    """Turn the pushdown query's rows (``p{n}_selected``, ``p{n}_c{code}``, …) into counts.

    ``controls[n]`` lists the procedure codes profile ``n`` can apply. Revenue is in cents.
    """
    groups = []
    for row in rows:
        profiles = []
        for n, codes in enumerate(controls):
            profiles.append(
                ProfileCounts(
                    selected=int(row[f"p{n}_selected"] or 0),
                    controls_applied={code: int(row[f"p{n}_c{code}"] or 0) for code in codes},
                    controls_carried=int(row[f"p{n}_controls"] or 0),
                    hits=int(row[f"p{n}_hits"] or 0),
                    revenue=cents(row[f"p{n}_revenue"]),
                    controls_any=int(row[f"p{n}_controls_any"] or 0),
                    hits_any=int(row[f"p{n}_hits_any"] or 0),
                    revenue_any=cents(row[f"p{n}_revenue_any"]),
                )
            )
        groups.append(
            GroupCounts(
                key=tuple(row[k] for k in group_by),
                considered=int(row["considered"] or 0),
                violations=int(row["violations"] or 0),
                controls_all=int(row["controls_all"] or 0),
                random_controls=int(row["random_controls"] or 0),
                random_hits=int(row["random_hits"] or 0),
                profiles=tuple(profiles),
            )
        )
    return groups


def roll_up(
    groups: Sequence[GroupCounts], group_by: Sequence[str], keep: Sequence[str]
) -> list[GroupCounts]:
    """Sum groups over the breakdown keys not in ``keep`` (``keep=()`` gives the total)."""
    positions = [group_by.index(k) for k in keep]
    out: dict[tuple[Any, ...], GroupCounts] = {}
    for g in groups:
        key = tuple(g.key[i] for i in positions)
        current = out.get(key)
        out[key] = attrs.evolve(g, key=key) if current is None else current + g
    return [
        out[k] for k in sorted(out, key=lambda k: tuple("" if v is None else str(v) for v in k))
    ]
