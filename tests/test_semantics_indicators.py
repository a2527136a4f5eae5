"""Indicator resolution and order, as the evaluator and the checks both read them."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskengine.checks import check_sources
from riskengine.semantics.indicators import (
    IndicatorCycleError,
    indicator_order,
    topo_indicators,
)
from riskengine.syntax import parse


def _profile(indicators: str) -> str:
    return f"""
profile draft "Order" {{
    list origins = ("CN", "VN")
    indicators {{
{indicators}
    }}
    degree = 50
    controls {{ 102 "Documentary check" mandatory from 50 }}
}}
"""


@st.composite
def graphs(draw: st.DrawFn) -> dict[str, list[str]]:
    """2–8 indicators, each referring to some of the others (cycles included)."""
    names = [f"i{k}" for k in range(draw(st.integers(2, 8)))]
    return {n: draw(st.lists(st.sampled_from(names), max_size=3, unique=True)) for n in names}


def _text(graph: dict[str, list[str]]) -> str:
    lines = []
    for name, deps in graph.items():
        cond = " and ".join([*deps, "item.origin in origins"])
        lines.append(f"        {name}: {cond}")
    return _profile("\n".join(lines))


def _has_cycle(graph: dict[str, list[str]]) -> bool:
    state: dict[str, int] = {}

    def visit(n: str) -> bool:
        if state.get(n) == 1:
            return True
        if state.get(n) == 2:
            return False
        state[n] = 1
        if any(visit(d) for d in graph[n]):
            return True
        state[n] = 2
        return False

    return any(visit(n) for n in graph)


@settings(max_examples=60, deadline=None)
@given(graphs())
def test_every_indicator_comes_after_those_it_uses_or_the_cycle_is_reported(
    graph: dict[str, list[str]],
) -> None:
    profile = parse(_text(graph)).profiles[0]
    found = indicator_order(profile)
    assert sorted(i.name for i in found.order) == sorted(graph)
    if not _has_cycle(graph):
        assert found.cycles == ()
        seen: set[str] = set()
        for ind in topo_indicators(profile):
            assert set(graph[ind.name]) <= seen
            seen.add(ind.name)
        return
    assert found.cycles
    for cycle in found.cycles:  # a real path of the graph, closed
        assert cycle[0] == cycle[-1]
        assert all(b in graph[a] for a, b in itertools.pairwise(cycle))
    with pytest.raises(IndicatorCycleError, match="in a cycle"):
        topo_indicators(profile)
    # the checks report the same cycles, as RE214 (sorted by line)
    diags = [d for d in check_sources({"x.rp": _text(graph)}).diagnostics if d.code == "RE214"]
    assert sorted(d.message for d in diags) == sorted(found.cycle_text(c) for c in found.cycles)


def test_independent_indicators_keep_their_order_and_a_list_name_is_not_a_reference() -> None:
    text = _profile(
        "        late: early and origins\n"
        "        origins: item.origin in origins\n"
        "        early: item.origin in origins\n"
    )
    profile = parse(text).profiles[0]
    assert [i.name for i in topo_indicators(profile)] == ["origins", "early", "late"]
    assert indicator_order(profile).cycles == ()  # `in origins` names the list
