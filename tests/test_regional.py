"""Regional fills substituted into their profile: what happens to a value the fill lacks."""

from __future__ import annotations

from pathlib import Path

import attrs

from riskengine import model as m
from riskengine.backtest.pushdown import PlannedProfile, plan
from riskengine.regional import apply_fill
from riskengine.syntax import parse_source

PROFILES = Path(__file__).resolve().parent.parent / "profiles"


def _regional() -> tuple[m.Profile, m.Fill]:
    profile_file = PROFILES / "regional_unit_price.rp"
    fill_file = PROFILES / "fills" / "regional_unit_price.UA100110.rp"
    profile = parse_source(profile_file.read_text(), str(profile_file)).source
    fill = parse_source(fill_file.read_text(), str(fill_file)).source
    assert profile is not None and fill is not None
    return profile.profiles[0], fill.fills[0]


def _region_refs(profile: m.Profile) -> set[str]:
    return {
        node.path
        for expr in (i.condition for i in profile.indicators)
        for node in m.walk(expr)
        if isinstance(node, m.FieldRef) and node.scope == "region"
    }


def test_a_complete_fill_replaces_every_region_value_and_runs_in_sql() -> None:
    profile, fill = _regional()
    assert _region_refs(profile) == {
        "region.headings",
        "region.origins",
        "region.max_unit_price",
    }
    assert _region_refs(apply_fill(profile, fill)) == set()
    (planned,) = plan([PlannedProfile("r", profile, fills=(fill,))], "sqlite")
    assert planned.pushdown and planned.reason is None


def test_a_fill_without_a_value_leaves_it_missing_and_the_backtest_falls_back() -> None:
    # the checks reject such a fill (RE5xx); one built through the API must not crash the
    # backtest: the value stays missing, as the evaluator reads it, and SQL says why it can't run
    profile, fill = _regional()
    partial = attrs.evolve(fill, values=tuple(v for v in fill.values if v.name != "max_unit_price"))
    assert _region_refs(apply_fill(profile, partial)) == {"region.max_unit_price"}
    (planned,) = plan([PlannedProfile("r", profile, fills=(partial,))], "sqlite")
    assert not planned.pushdown
    assert planned.reason is not None and "region.max_unit_price" in planned.reason
