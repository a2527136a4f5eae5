"""Backtest metrics: counts per breakdown group summed into totals and ratios the commission reads.

Every count the query returns is additive (declarations, selections, controls, hits, revenue),
so one pass grouped by every breakdown key at once gives the totals and each one-dimensional
breakdown by summing in Python. Ratios are computed last, from the sums, never averaged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs


@attrs.frozen
class Thresholds:
    """The commission's values: selectivity (%) from which a profile is flagged as high."""

    high_selectivity: float = 5.0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Thresholds:
        value = data.get("high_selectivity", attrs.fields(cls).high_selectivity.default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
            raise ValueError("high_selectivity must be a number of per cent between 0 and 100")
        return cls(float(value))


@attrs.frozen
class ProfileCounts:
    """Additive counts of one profile over some set of declarations."""

    selected: int = 0
    controls_applied: Mapping[str, int] = attrs.field(factory=dict)  # by procedure code
    controls_carried: int = 0
    hits: int = 0
    revenue: float = 0.0

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
    Ratios are None when their denominator is 0.
    """

    considered: int
    selected: int
    selectivity: float | None  # per cent
    controls_applied: Mapping[str, int]
    controls_carried: int
    hits: int
    hit_rate: float | None
    revenue: float
    revenue_per_control: float | None
    detection_share: float | None
    random_hit_rate: float | None
    high_selectivity: bool

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


def metrics(group: GroupCounts, index: int, thresholds: Thresholds) -> ProfileMetrics:
    c = group.profiles[index]
    selectivity = _ratio(c.selected, group.considered, 100.0)
    return ProfileMetrics(
        considered=group.considered,
        selected=c.selected,
        selectivity=selectivity,
        controls_applied=dict(sorted(c.controls_applied.items())),
        controls_carried=c.controls_carried,
        hits=c.hits,
        hit_rate=_ratio(c.hits, c.controls_carried),
        revenue=c.revenue,
        revenue_per_control=_ratio(c.revenue, c.controls_carried),
        detection_share=_ratio(c.hits, group.violations),
        random_hit_rate=_ratio(group.random_hits, group.random_controls),
        high_selectivity=selectivity is not None and selectivity >= thresholds.high_selectivity,
    )


def read_groups(
    rows: Iterable[Mapping[str, Any]], group_by: Sequence[str], controls: Sequence[Sequence[str]]
) -> list[GroupCounts]:
    """Turn the pushdown query's rows (``p{n}_selected``, ``p{n}_c{code}``, …) into counts.

    ``controls[n]`` lists the procedure codes profile ``n`` can apply.
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
                    revenue=float(row[f"p{n}_revenue"] or 0.0),
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
