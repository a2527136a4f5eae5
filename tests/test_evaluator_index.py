"""The profile index: what profiles are filed under, candidates, and that results do not change."""

from __future__ import annotations

import datetime as dt
import statistics
from pathlib import Path

from benchmarks.gen_profiles import declarations, profile_sources
from riskengine.declaration import normalise_declaration
from riskengine.evaluator import Engine, ProfileSet
from riskengine.evaluator.index import Atom

ROOT = Path(__file__).resolve().parent.parent
DAY = dt.date(2024, 4, 2)


def plan_of(source: str) -> tuple[Atom, ...]:
    return (
        ProfileSet.load(sources={"p.rp": source}, allow_drafts=True).profiles[0].default.plan.atoms
    )


def draft(indicators: str, degree: str, controls: str) -> str:
    return f"""
profile draft "indexed" {{
    indicators {{ {indicators} }}
    degree = {degree}
    controls {{ {controls} }}
}}
"""


def test_a_necessary_goods_condition_files_the_profile_under_its_prefixes() -> None:
    atoms = plan_of(draft(
        'goods: item.hs_code starts with ("6403", "6404") origin: item.origin in ("CN", "VN")',
        "40 * goods + 30 * origin",
        '102 "Documentary check" mandatory from 40',
    ))  # fmt: skip
    assert atoms == (Atom("item.hs_code", "prefix", ("6403", "6404")),)


def test_the_more_selective_of_two_necessary_conditions_is_chosen() -> None:
    atoms = plan_of(draft(
        'goods: item.hs_code starts with ("640399") origin: item.origin in ("CN", "VN", "TR")',
        "50 * (goods and origin)",
        '102 "Documentary check" mandatory from 50',
    ))  # fmt: skip
    assert atoms == (Atom("item.hs_code", "prefix", ("640399",)),)


def test_either_of_two_conditions_files_the_profile_under_both() -> None:
    atoms = plan_of(draft(
        'a: item.origin == "CN"  b: declaration.regime in ("40", "41")',
        "50 * a + 50 * b",
        '102 "Documentary check" mandatory from 50',
    ))  # fmt: skip
    assert set(atoms) == {
        Atom("item.origin", "eq", ("CN",)),
        Atom("declaration.regime", "eq", ("40", "41")),
    }


def test_history_that_can_reach_the_threshold_alone_prevents_indexing() -> None:
    source = """
profile draft "history" {
    indicators { goods: item.hs_code starts with ("6403") }
    degree = 40 * goods + negative_history
    controls { 102 "Documentary check" mandatory from 30 }
    history per declaration.declarant.id over 365 days { negative max 30 { 0201: 1.0 } }
}
"""
    assert plan_of(source) == ()  # a trader with 30 of negative history fires on any goods
    assert plan_of(source.replace("max 30", "max 29")) == (
        Atom("item.hs_code", "prefix", ("6403",)),
    )


def test_a_control_condition_can_make_a_condition_necessary() -> None:
    atoms = plan_of(draft(
        'goods: item.hs_code starts with ("6403")  heavy: item.net_mass > 100',
        "50 * heavy + 50",
        '201 "Physical inspection" mandatory when goods from 0',
    ))  # fmt: skip
    assert atoms == (Atom("item.hs_code", "prefix", ("6403",)),)


def test_not_and_negated_lists_are_not_indexed() -> None:
    atoms = plan_of(draft(
        'a: not (item.origin == "CN")  b: item.origin not in ("VN")',
        "50 * a + 50 * b",
        '102 "Documentary check" mandatory from 100',
    ))  # fmt: skip
    assert atoms == ()


def test_sample_profiles_index_and_agree_with_no_index() -> None:
    indexed = Engine.load(ROOT / "profiles")
    plain = Engine.load(ROOT / "profiles", use_index=False)
    for raw in declarations(300, seed=3):
        assert indexed.score(raw, DAY) == plain.score(raw, DAY)


def test_generated_profiles_evaluate_few_candidates_and_agree_with_no_index() -> None:
    sources = profile_sources(300)
    indexed = Engine(ProfileSet.load(sources=sources))
    plain = Engine(ProfileSet.load(sources=sources, use_index=False))
    decls = [normalise_declaration(d) for d in declarations(400, seed=5)]
    active = indexed.profiles.active(DAY)
    candidates = statistics.mean(len(active.candidates(d.header, d.items)) for d in decls)
    assert candidates < 0.05 * len(active.profiles)
    for decl in decls:
        assert indexed.score(decl, DAY) == plain.score(decl, DAY)
