"""The degree's range for the checks (RE302, RE303, RE307): the language's one interval
analysis, :mod:`riskengine.semantics.intervals`, read with the catalogue's types."""

from __future__ import annotations

from riskengine.semantics.intervals import (
    BOOL,
    INF,
    UNBOUNDED,
    Analysis,
    Interval,
    degree_interval,
    degree_range,
    expr_range,
)

__all__ = [
    "BOOL",
    "INF",
    "UNBOUNDED",
    "Analysis",
    "Interval",
    "degree_interval",
    "degree_range",
    "expr_range",
]
