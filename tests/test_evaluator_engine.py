"""The engine: loading, validity and editions, regional fills, lanes, batches, errors, swaps."""

from __future__ import annotations

import datetime as dt
import json
import linecache
import threading
import traceback
from pathlib import Path
from typing import Any

import pytest

from riskengine.declaration import Declaration, DeclarationError
from riskengine.diagnostics import ProfileError, RiskEngineError
from riskengine.evaluator import (
    Clearance,
    ControlResult,
    Engine,
    EvaluationError,
    InMemoryHistoryProvider,
    Lane,
    LaneConfig,
    ProfileSet,
    RejectedDeclaration,
)
from riskengine.model import ControlKind
from riskengine.syntax import parse

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ROOT / "profiles"

FOOTWEAR = {
    "id": "UA100110-2024-000001",
    "office": "UA100110",
    "date": "2024-04-02",
    "dispatch_country": "CN",
    "declarant": {"id": "31234567", "aeo": False},
    "items": [
        {"hs_code": "6403990000", "origin": "CN", "customs_value": 30000, "net_mass": 100,
         "valuation_method": "6", "description": "Men's boots"},
        {"hs_code": "8471300000", "origin": "CN", "customs_value": 90000, "net_mass": 50},
    ],
}  # fmt: skip


def simple(
    number: str = "2A/08/2024/00001-01",
    *,
    in_force: str = "2024-01-01 .. 2024-12-31",
    extra: str = "",
    degree: str = "40 * footwear + 30 * origin",
    controls: str = '102 "Documentary check" mandatory from 40\n'
    '        201 "Physical inspection" mandatory when origin from 70',
    message: str = "Check {item.hs_code} from {item.origin}: degree {degree}",
) -> str:
    return f"""
profile {number} "Footwear {number}" {{
    approved 2024-01-01
    in force {in_force}
    filling central
    module declaration
    spheres 101
    {extra}
    indicators {{
        footwear "Footwear": item.hs_code starts with ("6403", "6404")
        origin "Origin": item.origin in ("CN", "VN")
    }}
    degree = {degree}
    message "{message}"
    controls {{
        {controls}
    }}
}}
"""


DAY = dt.date(2024, 4, 2)


def test_sample_profiles_load_and_score() -> None:
    engine = Engine.load(PROFILES)
    assert len(engine.profiles) >= 8
    result = engine.score(FOOTWEAR, DAY)
    keys = [f.key for f in result.fired]
    assert "2A/08/2013/00117-04" in keys
    footwear = next(f for f in result.fired if f.key == "2A/08/2013/00117-04")
    assert footwear.items == (1,)
    assert footwear.message is not None and "6403990000" in footwear.message
    assert result.lane in (Lane.YELLOW, Lane.RED)
    assert result.declaration_id == "UA100110-2024-000001"


def test_a_declaration_takes_the_highest_degree_and_reports_the_fired_items() -> None:
    engine = Engine.load(sources={"a.rp": simple()})
    raw = {"items": [
        {"hs_code": "6403", "origin": "UA"},      # 40: fires 102
        {"hs_code": "7000", "origin": "CN"},      # 30: does not fire
        {"hs_code": "6404", "origin": "VN"},      # 70: fires 102 and 201
        {"hs_code": "6404", "origin": "CN"},      # 70: equal degree, later item
    ]}  # fmt: skip
    (fired,) = engine.score(raw, DAY).fired
    assert fired.items == (1, 3, 4)
    assert fired.degree == 70.0
    assert fired.message == "Check 6404 from VN: degree 70"  # the first item with the top degree
    assert [(c.code, c.kind) for c in fired.controls] == [
        ("102", ControlKind.MANDATORY),
        ("201", ControlKind.CONDITIONAL),
    ]


def test_a_declaration_without_items_is_evaluated_once_with_item_fields_missing() -> None:
    source = simple(degree='40 + 30 * (declaration.regime == "40")')
    engine = Engine.load(sources={"a.rp": source})
    (fired,) = engine.score({"regime": "40"}, DAY).fired
    assert fired.items == ()
    assert fired.degree == 70.0
    assert fired.message == "Check — from —: degree 70"
    assert [c.code for c in fired.controls] == ["102"]  # 201 needs `origin`, missing


def test_only_profiles_in_force_on_the_as_of_date_apply() -> None:
    engine = Engine.load(sources={"a.rp": simple(in_force="2024-03-01 .. 2024-03-31")})
    item = {"items": [{"hs_code": "6403", "origin": "CN"}]}
    assert engine.score(item, dt.date(2024, 3, 1)).fired
    assert engine.score(item, dt.date(2024, 3, 31)).fired
    assert not engine.score(item, dt.date(2024, 2, 29)).fired
    assert not engine.score(item, dt.date(2024, 4, 1)).fired


def test_the_highest_edition_in_force_wins() -> None:
    old = simple("2A/08/2024/00001-01", in_force="2024-01-01 ..")
    new = simple(
        "2A/08/2024/00001-02",
        in_force="2024-01-01 ..",
        extra="edition approved 2024-02-01\n    edition in force 2024-03-01",
        degree="100 * footwear",
    )
    engine = Engine.load(sources={"old.rp": old, "new.rp": new})
    item = {"items": [{"hs_code": "6403", "origin": "UA"}]}
    before = engine.score(item, dt.date(2024, 2, 29)).fired
    after = engine.score(item, dt.date(2024, 3, 1)).fired
    assert [(f.key, f.degree) for f in before] == [("2A/08/2024/00001-01", 40.0)]
    assert [(f.key, f.degree) for f in after] == [("2A/08/2024/00001-02", 100.0)]


REGIONAL = """
profile 1A/20/2024/00005-01 "Regional unit price" {
    approved 2024-01-01
    in force 2024-01-01 ..
    filling regional by "Customs value divisions"
    module declaration
    spheres 101
    regional {
        headings: list of code "Monitored headings"
        max_price: number "Ceiling, UAH/kg"
    }
    indicators {
        monitored: item.hs_code starts with region.headings
        cheap: item.customs_value / item.net_mass < region.max_price
    }
    degree = 50 * monitored + 50 * cheap
    message "Price of {item.hs_code} under {region.max_price}"
    controls { 102 "Documentary check" mandatory from 100 }
}
fill for 1A/20/2024/00005-01 {
    office UA100110 "Kyiv"
    order "12/2024" of 2024-03-25
    valid 2024-04-01 .. 2024-06-30
    values { headings = ("6403", "8471") max_price = 400 }
}
fill for 1A/20/2024/00005-01 {
    office UA500000 "Odesa"
    order "7/2024" of 2024-03-20
    valid 2024-04-01 .. 2024-06-30
    values { headings = ("8471") max_price = 2000.5 }
    message "Odesa: {item.hs_code}"
    controls { 201 "Physical inspection" mandatory from 50 }
}
"""


def test_regional_profiles_use_the_fill_of_the_office_valid_on_the_date() -> None:
    engine = Engine.load(sources={"regional.rp": REGIONAL})
    kyiv = {"office": "UA100110", "items": [{"hs_code": "6403", "customs_value": 300,
                                             "net_mass": 1}]}  # fmt: skip
    (fired,) = engine.score(kyiv, DAY).fired
    assert fired.message == "Price of 6403 under 400"
    assert [c.code for c in fired.controls] == ["102"]
    odesa = {**kyiv, "office": "UA500000", "items": [{"hs_code": "8471", "customs_value": 3000,
                                                      "net_mass": 1}]}  # fmt: skip
    (fired,) = engine.score(odesa, DAY).fired
    assert fired.message == "Odesa: 8471"  # the fill's message and controls replace the profile's
    assert [(c.code, c.name) for c in fired.controls] == [("201", "Physical inspection")]
    assert not engine.score(kyiv, dt.date(2024, 3, 31)).fired  # the fill is not valid yet


def test_a_regional_profile_without_a_fill_does_not_apply_and_the_explanation_says_so() -> None:
    engine = Engine.load(sources={"regional.rp": REGIONAL})
    raw = {"office": "UA300000", "items": [{"hs_code": "6403", "customs_value": 1,
                                            "net_mass": 1}]}  # fmt: skip
    result = engine.score(raw, DAY, explain=True)
    assert not result.fired
    (why,) = result.explanations
    assert not why.applies
    assert why.reason == "regional profile: no fill for office UA300000 valid on 2024-04-02"
    assert "does not apply" in why.render()


def test_lanes_follow_the_control_codes() -> None:
    config = LaneConfig()
    from riskengine.evaluator import ControlForm

    def lane(*codes: str, kind: ControlKind = ControlKind.MANDATORY) -> Lane:
        return config.lane([ControlForm(c, c, kind) for c in codes])

    assert lane() is Lane.GREEN
    assert lane("102") is Lane.YELLOW
    assert lane("102", "201") is Lane.RED
    assert lane("301") is Lane.RED
    assert lane("777") is Lane.YELLOW  # an unknown code counts as documents
    only_mandatory = LaneConfig(count_if_necessary=False)
    assert only_mandatory.lane([ControlForm("201", "x", ControlKind.IF_NECESSARY)]) is Lane.GREEN


def test_lane_config_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "lanes.toml"
    path.write_text('[lanes]\nred = ["201"]\nyellow = ["102", "301"]\nunknown = "red"\n')
    config = LaneConfig.from_toml(path)
    assert config.red == frozenset({"201"})
    assert config.yellow == frozenset({"102", "301"})
    assert config.unknown is Lane.RED
    bad = tmp_path / "bad.toml"
    bad.write_text('[lanes]\nred = "201"\n')
    with pytest.raises(RiskEngineError, match=r"lanes\.red must be a list"):
        LaneConfig.from_toml(bad)


def test_sample_profile_codes_all_have_a_lane() -> None:
    config = LaneConfig()
    engine = Engine.load(PROFILES)
    codes = {c.code for cp in engine.profiles for c in cp.profile.controls}
    assert codes <= config.red | config.yellow


def test_combined_controls_take_the_strongest_kind_per_code() -> None:
    a = simple("2A/08/2024/00001-01", controls='201 "Inspection" if necessary from 40')
    b = simple("2A/08/2024/00002-01", controls='201 "Inspection" mandatory from 40')
    engine = Engine.load(sources={"a.rp": a, "b.rp": b})
    result = engine.score({"items": [{"hs_code": "6403"}]}, DAY)
    assert len(result.fired) == 2
    assert [(c.code, c.kind) for c in result.controls] == [("201", ControlKind.MANDATORY)]
    assert result.lane is Lane.RED


def test_history_raises_the_degree() -> None:
    source = simple(
        degree="40 * footwear + negative_history - positive_history",
        extra="",
    ).replace(
        "    controls {",
        """    history per declaration.declarant.id over 365 days {
        negative max 30 per case 10 { 0201: 1.0  0302: 0.5 }
        positive max 10 per clean control 5
    }
    controls {""",
    )
    provider = InMemoryHistoryProvider(
        [
            Clearance(dt.date(2024, 1, 10), {"declaration.declarant.id": "1"}, False, ("0201",)),
            Clearance(dt.date(2024, 4, 2), {"declaration.declarant.id": "1"}, False, ("0201",)),
        ],
        [ControlResult(dt.date(2024, 2, 1), {"declaration.declarant.id": "1"}, violation=False)],
    )
    engine = Engine.load(sources={"h.rp": source}, history=provider)
    raw = {"declarant": {"id": "1"}, "items": [{"hs_code": "6403"}]}
    (fired,) = engine.score(raw, DAY).fired
    # 40 + 10 (one clearance before the date; the one on the date does not count) - 5
    assert fired.degree == 45.0
    (plain,) = engine.score(raw, DAY, history=InMemoryHistoryProvider()).fired
    assert plain.degree == 40.0


#: A profile that reads the masses and values too (in its message): the engine checks the fields
#: the profiles read, and only those.
VALUES = simple(
    message="{item.hs_code}: {item.customs_value} for {item.net_mass} kg ({item.gross_mass} "
    "gross), invoice {item.invoice_value}"
)


def test_wrong_types_raise_a_clear_error_naming_field_and_item() -> None:
    engine = Engine.load(sources={"a.rp": VALUES})
    with pytest.raises(DeclarationError) as info:
        engine.score({"items": [{"hs_code": "6403"}, {"net_mass": "heavy"}]}, DAY)
    assert info.value.field == "item.net_mass"
    assert info.value.item == 2


def test_only_the_fields_the_profiles_read_are_checked() -> None:
    """A bad value in a field no profile reads cannot change a decision: it is not read (issue
    13); ``normalise_declaration`` checks every field for those who want it."""
    from riskengine.declaration import normalise_declaration

    engine = Engine.load(sources={"a.rp": simple()})  # reads hs_code and origin
    raw = {"date": "2024-04-02", "items": [{"hs_code": "6403", "net_mass": "heavy"}]}
    assert engine.score(raw).fired
    with pytest.raises(DeclarationError) as info:
        engine.score(normalise_declaration(raw))
    assert str(info.value) == 'item 1, item.net_mass: expected a number, got "heavy"'
    with pytest.raises(DeclarationError) as info:
        engine.score({"items": [{"hs_code": "6403", "origin": ["CN"]}]}, DAY)
    assert str(info.value) == "item 1, item.origin: expected a code (text), got a list"
    with pytest.raises(DeclarationError) as info:
        engine.score({"date": "2.4.2024", "items": []})  # the engine reads the date itself
    assert str(info.value) == 'declaration.date: expected a date YYYY-MM-DD, got "2.4.2024"'


def test_batches_reject_bad_declarations_and_go_on() -> None:
    engine = Engine.load(sources={"a.rp": VALUES})
    batch: list[Any] = [
        {"id": "ok", "date": "2024-04-02", "items": [{"hs_code": "6403"}]},
        {"id": "bad", "date": "2024-04-02", "items": [{"net_mass": "heavy"}]},
        {"id": "undated", "items": [{"hs_code": "6403"}]},
    ]
    first, second, third = engine.score_many(batch)
    assert not isinstance(first, RejectedDeclaration) and first.fired
    assert isinstance(second, RejectedDeclaration)
    assert (second.position, second.declaration_id, second.field, second.item) == (
        1, "bad", "item.net_mass", 1,
    )  # fmt: skip
    assert "item 1, item.net_mass" in str(second)
    assert isinstance(third, RejectedDeclaration) and third.field == "declaration.date"
    (dated,) = [r for r in engine.score_many(batch[2:], DAY)]
    assert not isinstance(dated, RejectedDeclaration) and dated.fired


def test_a_batch_rejects_numbers_out_of_range_instead_of_raising() -> None:
    """Issue 11: ``customs_value = 10**400`` raised EvaluationError (OverflowError)."""
    engine = Engine.load(sources={"a.rp": VALUES})
    batch: list[Any] = [
        {"id": "huge", "date": "2024-04-02", "items": [{"customs_value": 10**400}]},
        {"id": "inf", "date": "2024-04-02", "items": [{"customs_value": "1e999"}]},
        {"id": "negative", "date": "2024-04-02", "items": [{}, {"net_mass": -1}]},
        {"id": "ok", "date": "2024-04-02", "items": [{"hs_code": "6403"}]},
    ]
    huge, inf, negative, ok = engine.score_many(batch)
    assert huge == RejectedDeclaration(
        0, "huge", "item.customs_value", 1,
        "an integer of 401 digits is out of range (a number may be at most 1e15 in magnitude)",
    )  # fmt: skip
    assert str(inf) == (
        'declaration #1 (inf): item 1, item.customs_value: "1e999" is out of range (a number '
        "may be at most 1e15 in magnitude)"
    )
    assert isinstance(negative, RejectedDeclaration)
    assert negative.to_dict() == {
        "rejected": True, "position": 2, "id": "negative", "field": "item.net_mass", "item": 2,
        "reason": "expected a number that is not negative, got -1",
    }  # fmt: skip
    assert not isinstance(ok, RejectedDeclaration) and ok.fired


def test_a_batch_goes_on_after_a_declaration_a_profile_fails_on() -> None:
    engine = Engine.load(sources={"a.rp": simple()}, use_index=False)
    broken = Declaration(header={"date": DAY}, items=({"hs_code": 6403},), id="broken")
    rejected, ok = engine.score_many([broken, {"date": "2024-04-02", "items": [{}]}])
    assert isinstance(rejected, RejectedDeclaration)
    assert (rejected.declaration_id, rejected.field, rejected.item) == ("broken", "", None)
    assert str(rejected).startswith("declaration #0 (broken): profile 2A/08/2024/00001-01 (a.rp:")
    assert not isinstance(ok, RejectedDeclaration)


def test_score_takes_the_declarations_own_date_when_as_of_is_omitted() -> None:
    engine = Engine.load(sources={"a.rp": simple(in_force="2024-04-01 .. 2024-04-30")})
    result = engine.score(FOOTWEAR)
    assert result.as_of == dt.date(2024, 4, 2) and result.fired
    assert engine.score({**FOOTWEAR, "date": "2024-05-02"}).fired == ()  # out of force
    with pytest.raises(DeclarationError) as info:
        engine.score({"items": [{"hs_code": "6403"}]})
    assert str(info.value) == "declaration.date: no as-of date: give as_of or a declaration date"


@pytest.mark.parametrize("explain", ["yes", 1, 0, "true", None, "Fired"])
def test_explain_takes_only_true_false_or_fired(explain: Any) -> None:
    engine = Engine.load(sources={"a.rp": simple()})
    message = f"explain must be True, False or 'fired', got {explain!r}"
    with pytest.raises(ValueError) as info:
        engine.score(FOOTWEAR, DAY, explain=explain)
    assert str(info.value) == message
    with pytest.raises(ValueError):
        engine.score_many([FOOTWEAR], explain=explain)


def test_negative_masses_and_values_are_rejected() -> None:
    engine = Engine.load(sources={"a.rp": VALUES})
    for field in ("net_mass", "gross_mass", "customs_value", "invoice_value"):
        with pytest.raises(DeclarationError) as info:
            engine.score({"items": [{field: -0.5}]}, DAY)
        assert str(info.value) == (
            f"item 1, item.{field}: expected a number that is not negative, got -0.5"
        )


def test_a_score_result_as_json() -> None:
    engine = Engine.load(sources={"a.rp": simple()})
    result = engine.score(FOOTWEAR)
    data = result.to_dict()
    assert data == {
        "id": "UA100110-2024-000001",
        "as_of": "2024-04-02",
        "bundle_revision": None,
        "selected": True,
        "lane": "red",
        "controls": [
            {"code": "102", "name": "Documentary check", "kind": "mandatory"},
            {"code": "201", "name": "Physical inspection", "kind": "mandatory when"},
        ],
        "fired": [
            {
                "key": "2A/08/2024/00001-01",
                "number": "2A/08/2024/00001-01",
                "name": "Footwear 2A/08/2024/00001-01",
                "degree": 70.0,
                "controls": [
                    {"code": "102", "name": "Documentary check", "kind": "mandatory"},
                    {"code": "201", "name": "Physical inspection", "kind": "mandatory when"},
                ],
                "message": data["fired"][0]["message"],
                "items": [1],
            }
        ],
    }
    assert json.loads(result.to_json()) == data
    explained = engine.score(FOOTWEAR, explain="fired")
    [why] = explained.to_dict()["explanations"]
    assert why["fired"] is True and "degree" in why["text"]
    assert "explanations" not in explained.to_dict(explanations=False)
    assert result.to_dict(explanations=True)["explanations"] == []


def test_invalid_profiles_are_rejected_with_diagnostics() -> None:
    with pytest.raises(ProfileError) as info:
        Engine.load(sources={"bad.rp": simple(degree="40 * footwear + item.nett_mass")})
    assert any(d.code == "RE201" for d in info.value.diagnostics)
    assert "bad.rp:" in str(info.value)


def test_generated_source_is_deterministic_and_names_profile_lines() -> None:
    text = simple()
    first = ProfileSet.load(sources={"a.rp": text}).profiles[0].default.generated
    second = ProfileSet.load(sources={"a.rp": text}).profiles[0].default.generated
    assert first.source == second.source
    assert first.filename == "<profile 2A/08/2024/00001-01 a.rp>"
    degree_line = text.splitlines().index("    degree = 40 * footwear + 30 * origin") + 1
    assert f"# a.rp:{degree_line}" in first.source
    assert linecache.getline(first.filename, 1).startswith("# Generated by riskengine")


def test_a_failure_inside_a_profile_names_the_profile_line_and_shows_in_tracebacks() -> None:
    engine = Engine.load(sources={"a.rp": simple()}, use_index=False)
    # a hand-made Declaration skips normalisation: a number where a code is expected
    decl = Declaration(header={}, items=({"hs_code": 6403, "origin": "CN"},))
    with pytest.raises(EvaluationError) as info:
        engine.score(decl, DAY)
    indicator_line = (
        simple()
        .splitlines()
        .index('        footwear "Footwear": item.hs_code starts with ("6403", "6404")')
        + 1
    )
    assert info.value.key == "2A/08/2024/00001-01"
    assert info.value.where == f"a.rp:{indicator_line}"
    cause = info.value.__cause__
    assert cause is not None
    shown = "".join(traceback.format_exception(cause))
    assert "<profile 2A/08/2024/00001-01 a.rp>" in shown
    assert f"# a.rp:{indicator_line}" in shown


def test_replace_swaps_the_set_atomically_while_threads_score() -> None:
    engine = Engine.load(sources={"a.rp": simple()})
    other = ProfileSet.load(sources={"b.rp": simple("2A/08/2024/00002-01")})
    raw = {"items": [{"hs_code": "6403", "origin": "CN"}]}
    seen: set[tuple[str, ...]] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def work() -> None:
        try:
            while not stop.is_set():
                seen.add(tuple(f.key for f in engine.score(raw, DAY).fired))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    old = engine.replace(other)
    for _ in range(50):
        engine.replace(old)
        engine.replace(other)
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert seen <= {("2A/08/2024/00001-01",), ("2A/08/2024/00002-01",)}
    assert engine.profiles is other
    assert [f.key for f in engine.score(raw, DAY).fired] == ["2A/08/2024/00002-01"]


def test_a_profile_loaded_twice_is_an_error() -> None:
    with pytest.raises(ProfileError, match="RE501"):
        Engine.load(sources={"a.rp": simple(), "b.rp": simple()})


def test_compiled_profile_alone() -> None:
    source = parse(simple(), "a.rp")
    from riskengine.evaluator import CompiledProfile

    cp = CompiledProfile(source.profiles[0], file="a.rp")
    fired = cp.evaluate({"items": [{"hs_code": "6403", "origin": "CN"}]}, DAY)
    assert fired is not None and fired.degree == 70.0
    assert cp.evaluate({"items": [{"hs_code": "7000"}]}, DAY) is None


def test_the_message_shows_history_even_when_the_degree_does_not_use_it() -> None:
    source = (
        simple()
        .replace(
            'message "Check {item.hs_code} from {item.origin}: degree {degree}"',
            'message "History {negative_history}/{positive_history}"',
        )
        .replace(
            "    controls {",
            """    history per declaration.declarant.id over 30 days {
        negative max 30 per case 10 { 0201: 1.0 }
        positive max 10 per clean control 2.5
    }
    controls {""",
        )
    )
    provider = InMemoryHistoryProvider(
        [Clearance(dt.date(2024, 4, 1), {"declaration.declarant.id": "1"}, False, ("0201",))],
        [ControlResult(dt.date(2024, 4, 1), {"declaration.declarant.id": "1"}, False)],
    )
    engine = Engine.load(sources={"m.rp": source}, history=provider)
    raw = {"declarant": {"id": "1"}, "items": [{"hs_code": "6403"}]}
    (fired,) = engine.score(raw, DAY).fired
    assert fired.message == "History 10/2.5"
    (explained,) = engine.score(raw, DAY, explain=True).fired
    assert explained.message == fired.message
