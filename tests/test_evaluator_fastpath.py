"""The scoring path's shortcuts (issue 13, second pass) change no result: results and
declarations made through their slots are the objects their initialisers make, and the lane and
combined controls an engine remembers per combination of fired profiles are those it would
compute afresh, also after the lane configuration changes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import attrs
import pytest

from riskengine.declaration import Declaration
from riskengine.evaluator import Engine, Lane, LaneConfig, ProfileSet
from riskengine.evaluator.inputs_typed import make_declaration
from riskengine.evaluator.making import slotted_maker
from riskengine.evaluator.results import ScoreResult, make_result

ROOT = Path(__file__).resolve().parent.parent


def test_made_through_the_slots_is_what_the_initialiser_makes() -> None:
    day = dt.date(2024, 4, 2)
    fields = ("UA-1", day, (), (), Lane.RED, (), True, 7)
    made, built = make_result(*fields), ScoreResult(*fields)
    assert made == built and hash(made) == hash(built) and repr(made) == repr(built)
    assert attrs.evolve(made, lane=Lane.GREEN) == attrs.evolve(built, lane=Lane.GREEN)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        made.lane = Lane.GREEN  # type: ignore[misc]
    header = {"id": "UA-1", "date": day}
    raw = {"id": "UA-1", "date": "2024-04-02", "extra": 1}
    declaration = make_declaration(header, ({"hs_code": "6403"},), "UA-1", raw)
    assert declaration == Declaration(header, ({"hs_code": "6403"},), "UA-1", raw)
    assert declaration.raw is raw and declaration.get("item.hs_code", 0) == "6403"


def test_the_maker_refuses_classes_whose_initialiser_does_more() -> None:
    @attrs.frozen
    class Checked:
        value: int = attrs.field(validator=attrs.validators.instance_of(int))

    @attrs.frozen
    class Converted:
        value: int = attrs.field(converter=int)

    @attrs.frozen(slots=False)
    class Plain:
        value: int

    for cls in (Checked, Converted, Plain):
        with pytest.raises(TypeError):
            slotted_maker(cls)


def _demo_declarations(count: int) -> list[Declaration]:
    from riskengine import demo

    return [r.declaration for r in demo.generate(count, seed=11)]


def test_remembered_lanes_and_controls_are_the_ones_computed_afresh() -> None:
    """Every demo declaration scored by one engine (which remembers combinations) gives the
    result of an engine that has never seen a declaration; then the lane configuration changes
    and the remembered lanes follow it."""
    profiles = ProfileSet.load(ROOT / "profiles")
    engine = Engine(profiles)
    declarations = _demo_declarations(600)
    fired_several = 0
    for declaration in declarations:
        result = engine.score(declaration)
        assert result == Engine(profiles).score(declaration)
        fired_several += len(result.fired) > 1
    assert fired_several > 0 and engine._combinations  # several fired profiles were combined
    strict = LaneConfig(red=frozenset(), yellow=frozenset(), unknown=Lane.RED)
    engine.lanes = strict
    lanes = set()
    for declaration in declarations:
        result = engine.score(declaration)
        assert result == Engine(profiles, lanes=strict).score(declaration)
        lanes.add(result.lane)
    assert Lane.RED in lanes and Lane.YELLOW not in lanes
