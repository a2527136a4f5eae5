"""Targets from past periods, the 1–5 score against a target, and the total (seed 004 §3.7–3.8).

The seeds' scale appendix (seed 004, appendix 4) is not published, so the scale is ours and
configurable per passport (``[scale] thresholds``): the **attainment ratio** is actual / target
when higher is better and target / actual when lower is better; a ratio of at least
``thresholds[0]`` (1.00: target reached) scores 5, at least ``thresholds[1]`` (0.95) 4, at least
``thresholds[2]`` (0.85) 3, at least ``thresholds[3]`` (0.70) 2, anything less 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from riskengine.kpi.passport import DEFAULT_THRESHOLDS, Direction, Scale

__all__ = ["TRIM", "Score", "Total", "attainment", "mean", "score", "total", "trimmed_mean"]

#: How many best and how many worst past values the trimmed mean drops (seed 001).
TRIM = 2


@attrs.frozen
class TargetValue:
    """A computed target: its ``value`` and a ``note`` on how it was reached."""

    value: float
    note: str = ""


def mean(values: Sequence[float]) -> TargetValue:
    """The mean of ``values`` (at least one)."""
    if not values:
        raise ValueError("no past value to average")
    periods = "past period" if len(values) == 1 else "past periods"
    return TargetValue(sum(values) / len(values), f"mean of {len(values)} {periods}")


def trimmed_mean(values: Sequence[float], direction: Direction) -> TargetValue:
    """The mean of ``values`` without the 2 best and the 2 worst (seed 001).

    Ties do not matter: the values dropped are the 2 highest and the 2 lowest, whichever of equal
    values is dropped leaves the same numbers. With fewer than 5 values nothing would be left (or
    only a mean of what the trimming was meant to exclude), so the plain mean of all of them is
    used and the note says so. ``direction`` does not change the result (the best of a
    lower-is-better KPI are its lowest values, and both ends are dropped), only the note.
    """
    if not values:
        raise ValueError("no past value to average")
    if len(values) < 2 * TRIM + 1:
        plain = mean(values)
        return TargetValue(
            plain.value,
            f"only {len(values)} past period{'s' if len(values) != 1 else ''} (the trimmed mean "
            f"needs at least {2 * TRIM + 1}): plain mean used",
        )
    kept = sorted(values)[TRIM:-TRIM]
    best = "highest" if direction is Direction.HIGHER else "lowest"
    return TargetValue(
        sum(kept) / len(kept),
        f"mean of {len(kept)} of {len(values)} past periods, the 2 {best} (best) and the 2 "
        "worst dropped",
    )


def attainment(actual: float, target: float, direction: Direction) -> float:
    """actual / target (higher is better) or target / actual (lower is better); ``inf`` when the
    target is beaten with a zero on the other side (a target of 0 reached, an actual of 0 when
    lower is better). Negative values have no meaningful ratio: :class:`ValueError`."""
    if actual < 0 or target < 0:
        raise ValueError("the attainment ratio needs values of at least 0")
    num, den = (actual, target) if direction is Direction.HIGHER else (target, actual)
    if den == 0:  # higher: a target of 0 is always reached; lower: an actual of 0 is the best
        return float("inf")
    return num / den


@attrs.frozen
class Score:
    """A KPI's points (1–5) and the attainment ratio they came from."""

    points: int
    ratio: float


def score(actual: float, target: float, direction: Direction, scale: Scale | None = None) -> Score:
    """The 1–5 score of ``actual`` against ``target`` on ``scale`` (see the module's text)."""
    thresholds = scale.thresholds if scale is not None else DEFAULT_THRESHOLDS
    ratio = attainment(actual, target, direction)
    for points, least in zip((5, 4, 3, 2), thresholds, strict=True):
        if ratio >= least:
            return Score(points, ratio)
    return Score(1, ratio)


@attrs.frozen
class Total:
    """Σ scores / (5 × n) over the ``n`` KPIs that were scored (seed 004 §3.7–3.8)."""

    points: int
    maximum: int
    n: int

    @property
    def value(self) -> float | None:
        return self.points / self.maximum if self.maximum else None


def total(points: Sequence[int]) -> Total:
    """The total of the scored KPIs' ``points``: Σ / (5 × n)."""
    return Total(sum(points), 5 * len(points), len(points))
