"""Explanations: indicator states and values, exceptions, terms, history records, controls."""

from __future__ import annotations

import datetime as dt

from riskengine.evaluator import (
    Clearance,
    ControlResult,
    Engine,
    HistoryRecord,
    IndicatorState,
    InMemoryHistoryProvider,
)

DAY = dt.date(2024, 4, 2)

SOURCE = """
profile draft "Undervalued footwear" {
    indicators {
        footwear "Footwear": item.hs_code starts with ("6403", "6404")
        cheap "Cheap": item.customs_value / item.net_mass < 12.5 unless item.preference == "GSP"
        origin: item.origin in ("CN", "VN")
    }
    exceptions { aeo "AEO": declaration.declarant.aeo }
    degree = 40 * footwear + 30 * cheap + 30 * origin + negative_history
    message "Check {item.hs_code}"
    controls {
        102 "Documentary check" mandatory from 30
        201 "Physical inspection" mandatory when cheap from 70
    }
    history per declaration.declarant.id over 30 days {
        negative max 20 per case 10 { 0201: 1.0  0302: 0.5 }
    }
}
"""

HISTORY = InMemoryHistoryProvider(
    [
        Clearance(
            dt.date(2024, 3, 3), {"declaration.declarant.id": "7"}, False, ("0302", "0105"), "D-1"
        ),
        Clearance(dt.date(2024, 3, 2), {"declaration.declarant.id": "7"}, False, ("0201",), "D-0"),
        Clearance(dt.date(2024, 4, 1), {"declaration.declarant.id": "7"}, False, ("0201",), "D-2"),
        Clearance(dt.date(2024, 4, 1), {"declaration.declarant.id": "7"}, True, (), "D-3"),
        Clearance(dt.date(2024, 4, 2), {"declaration.declarant.id": "7"}, False, ("0201",), "D-4"),
    ]
)


def explain(raw: dict[str, object]):  # type: ignore[no-untyped-def]
    engine = Engine.load(sources={"e.rp": SOURCE}, history=HISTORY, allow_drafts=True)
    result = engine.score(raw, DAY, explain=True)
    (why,) = result.explanations
    return result, why


def test_explanations_are_off_by_default() -> None:
    engine = Engine.load(sources={"e.rp": SOURCE}, allow_drafts=True)
    result = engine.score({"items": [{"hs_code": "6403", "origin": "CN"}]}, DAY)
    assert result.explanations == ()
    assert all(f.explanation is None for f in result.fired)


def test_indicator_states_and_values_seen() -> None:
    result, why = explain(
        {"declarant": {"id": "7"}, "items": [{"hs_code": "6403", "customs_value": 100,
                                               "net_mass": 10, "preference": "GSP"}]}
    )  # fmt: skip
    (item,) = why.items
    footwear, cheap, origin = item.indicators
    assert (footwear.name, footwear.title, footwear.state) == ("footwear", "Footwear",
                                                               IndicatorState.TRUE)  # fmt: skip
    assert footwear.values == (("item.hs_code", "6403"),)
    assert cheap.state is IndicatorState.FALSE
    assert cheap.unless is True  # the GSP preference switched it off
    assert cheap.values == (
        ("item.customs_value", 100), ("item.net_mass", 10), ("item.preference", "GSP"),
    )  # fmt: skip
    assert origin.state is IndicatorState.MISSING
    assert origin.values == (("item.origin", None),)
    assert result.fired[0].explanation == why


def test_terms_history_and_controls() -> None:
    _, why = explain(
        {"declarant": {"id": "7"}, "items": [{"hs_code": "6403", "origin": "CN",
                                               "customs_value": 100, "net_mass": 10}]}
    )  # fmt: skip
    (item,) = why.items
    assert [(t.text, t.sign, t.value) for t in item.terms] == [
        ("40 * footwear", 1, 40.0),
        ("30 * cheap", 1, 30.0),
        ("30 * origin", 1, 30.0),
        ("negative_history", 1, 15.0),
    ]
    assert item.degree_value == 115.0
    assert item.degree == 100.0
    assert item.subject == ("7",)
    assert item.history is not None
    # the window is [2024-03-03, 2024-04-02): D-0 is a day too early, D-4 is on the as-of date
    assert item.history.negative == 15.0  # 10 × 0.5 (0105 is not listed) + 10 × 1.0
    assert item.history.records == (
        HistoryRecord("clearance", dt.date(2024, 3, 3), 5.0, "D-1", ("0302", "0105")),
        HistoryRecord("clearance", dt.date(2024, 4, 1), 10.0, "D-2", ("0201",)),
    )
    ctl_102, ctl_201 = item.controls
    assert (ctl_102.threshold, ctl_102.condition, ctl_102.applied) == (30.0, None, True)
    assert (ctl_201.threshold, ctl_201.condition, ctl_201.applied) == (70.0, True, True)
    assert item.fired


def test_the_exception_that_applied_is_named() -> None:
    result, why = explain({"declarant": {"aeo": True}, "items": [{"hs_code": "6403"}]})
    assert not result.fired
    (item,) = why.items
    assert item.exception == "aeo"
    assert item.terms == () and item.controls == () and not item.fired
    assert "exception aeo applies" in why.render()


def test_a_missing_degree_names_the_missing_fields() -> None:
    source = """
profile draft "ratio" {
    degree = 100 * item.customs_value / item.net_mass
    controls { 102 "Documentary check" mandatory from 0 }
}
"""
    engine = Engine.load(sources={"r.rp": source}, allow_drafts=True)
    (why,) = engine.score({"items": [{"customs_value": 5}]}, DAY, explain=True).explanations
    (item,) = why.items
    assert item.degree_value is None and item.degree == 0.0
    assert item.missing == ("item.net_mass",)
    assert "missing: item.net_mass" in why.render()


def test_explanations_cover_profiles_that_did_not_fire() -> None:
    result, why = explain({"items": [{"hs_code": "8471"}, {"hs_code": "9999"}]})
    assert not result.fired
    assert [i.item for i in why.items] == [1, 2]
    assert not why.fired
    assert "did not fire" in why.render()


def test_explaining_only_the_fired_profiles_gives_the_same_explanations() -> None:
    engine = Engine.load(sources={"e.rp": SOURCE}, history=HISTORY, allow_drafts=True)
    raw = {"declarant": {"id": "7"}, "items": [{"hs_code": "6403", "origin": "CN"}, {}]}
    full = engine.score(raw, DAY, explain=True)
    fired_only = engine.score(raw, DAY, explain="fired")
    assert fired_only.fired == full.fired
    assert fired_only.explanations == tuple(f.explanation for f in full.fired)
    assert not engine.score({"items": [{"hs_code": "1"}]}, DAY, explain="fired").explanations


def test_the_history_line_lists_its_records() -> None:
    """Issue 11: the history line said "(2 records)" without listing them."""
    _, why = explain(
        {"declarant": {"id": "7"}, "items": [{"hs_code": "6403", "origin": "CN",
                                               "customs_value": 100, "net_mass": 10}]}
    )  # fmt: skip
    lines = why.render().splitlines()
    start = lines.index("    history of 7: negative 15, positive 0 (2 records)")
    assert lines[start + 1 : start + 3] == [
        "      2024-04-01 D-2: not completed (reasons 0201, coefficient 1): negative +10",
        "      2024-03-03 D-1: not completed (reasons 0302, 0105, coefficient 0.5): negative +5",
    ]
    assert lines[start + 3] == "    degree 100"
    assert [r.coefficient for r in why.items[0].history.records] == [0.5, 1.0]  # type: ignore[union-attr]


def test_a_long_history_lists_the_most_recent_records() -> None:
    clearances = [
        Clearance(dt.date(2024, 3, 5) + dt.timedelta(days=k), {"declaration.declarant.id": "7"},
                  False, ("0201",), f"D-{k}")
        for k in range(14)
    ]  # fmt: skip
    controls = [
        ControlResult(dt.date(2024, 3, 20), {"declaration.declarant.id": "7"}, False, "C-1")
    ]  # fmt: skip
    source = SOURCE.replace(
        "negative max 20 per case 10 { 0201: 1.0  0302: 0.5 }",
        "negative max 20 per case 10 { 0201: 1.0  0302: 0.5 }\n"
        "        positive max 5 per clean control 2.5",
    )
    engine = Engine.load(sources={"e.rp": source}, allow_drafts=True,
                         history=InMemoryHistoryProvider(clearances, controls))  # fmt: skip
    result = engine.score({"declarant": {"id": "7"}, "items": [{"hs_code": "6403"}]}, DAY,
                          explain=True)  # fmt: skip
    lines = result.explanations[0].render().splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("    history of 7"))
    assert lines[start] == "    history of 7: negative 20, positive 2.5 (15 records)"
    shown = lines[start + 1 : start + 12]
    assert shown[:2] == [
        "      2024-03-20 C-1: control without violation: positive +2.5",
        "      2024-03-18 D-13: not completed (reasons 0201, coefficient 1): negative +10",
    ]
    assert shown[-1] == "      ... 5 older records not listed"
    assert len([s for s in shown if s.startswith("      2024-")]) == 10
