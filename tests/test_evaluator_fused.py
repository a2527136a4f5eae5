"""The fused scoring function (riskengine/evaluator/fused.py): a small central set without
history scores data in one generated function, and its results are the general path's.

The general path is reached by scoring the :class:`Declaration` the set's reader gives
(``score(Declaration)`` never takes the fused path), so every comparison here is between the
two paths on the same input."""

from __future__ import annotations

import copy
import datetime as dt
import json
import pickle
import threading
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.bench_evaluator import ONE_PROFILE
from benchmarks.bench_input_path import zen_data
from benchmarks.gen_profiles import declarations as generated_declarations
from benchmarks.gen_profiles import profile_sources
from riskengine import model as m
from riskengine.declaration import Declaration, DeclarationError, JsonInputError
from riskengine.demo.output import raw_declaration
from riskengine.diagnostics import RiskEngineError
from riskengine.evaluator import (
    Engine,
    InMemoryHistoryProvider,
    LaneConfig,
    ProfileSet,
    RandomSelection,
)
from riskengine.evaluator.fused import FUSE_MAX, PendingResult, fuse_problem
from riskengine.evaluator.history import Clearance, ControlResult
from riskengine.evaluator.random_selection import RandomRate
from riskengine.evaluator.results import Lane, ScoreResult
from tests.eval_strategies import (
    AS_OF,
    declarations_for_history,
    history_events,
    profile_files,
)

DAY = dt.date(2024, 4, 2)


def _general(engine: Engine, raw: dict[str, Any], as_of: dt.date | None = None) -> ScoreResult:
    """The general path's result for the same data."""
    return engine.score(engine.profiles.reader.read(raw), as_of)


def _raw(decl: Declaration) -> dict[str, Any]:
    """Plain data (as a clearance system sends it) for a normalised declaration: the demo's
    input form (nested groups, ISO dates), with the declaration's id."""
    raw = raw_declaration(decl)
    if decl.id is not None:
        raw["id"] = decl.id
    return raw


@pytest.fixture(scope="module")
def footwear() -> Engine:
    return Engine(ProfileSet.load(sources={"one.rp": ONE_PROFILE}))


def test_the_footwear_set_is_fused_and_scores_data_in_one_function(footwear: Engine) -> None:
    scorer = footwear.profiles.fused
    assert scorer is not None
    assert scorer.source.count("def score(raw, as_of, engine):") == 1
    assert "h.get(" not in scorer.source and "it.get(" not in scorer.source
    _, one_item, full = zen_data(400)
    for raw in one_item + full:
        result = footwear.score(raw)
        assert type(result) is PendingResult  # nothing read yet
        assert result == _general(footwear, raw)
        assert type(result) is ScoreResult  # compared: built, and now a plain result


def test_a_pending_result_behaves_as_the_plain_one(footwear: Engine) -> None:
    _, one_item, _ = zen_data(20)
    fired = next(raw for raw in one_item if _general(footwear, raw).selected)
    quiet = next(raw for raw in one_item if not _general(footwear, raw).selected)
    for raw in (fired, quiet):
        plain = _general(footwear, raw)
        assert footwear.score(raw).selected is plain.selected
        assert type(footwear.score(raw)) is PendingResult  # .selected builds nothing
        assert plain == footwear.score(raw) and footwear.score(raw) == plain
        assert (footwear.score(raw) != plain) is False
        assert hash(footwear.score(raw)) == hash(plain)
        assert repr(footwear.score(raw)) == repr(plain)
        assert footwear.score(raw).to_dict() == plain.to_dict()
        assert footwear.score(raw).lane is plain.lane
        assert footwear.score(raw).fired == plain.fired
        unpickled = pickle.loads(pickle.dumps(footwear.score(raw)))
        assert type(unpickled) is ScoreResult and unpickled == plain
        assert copy.copy(footwear.score(raw)) == plain
        assert copy.deepcopy(footwear.score(raw)) == plain
        evolved = attrs.evolve(footwear.score(raw), declaration_id="X")
        assert evolved == attrs.evolve(plain, declaration_id="X")
        assert isinstance(footwear.score(raw), ScoreResult)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            footwear.score(raw).lane = Lane.RED  # type: ignore[misc]
    assert footwear.score(fired).fired[0].message == "Check 6403990000"


def test_the_lanes_are_those_of_the_scoring_moment(footwear: Engine) -> None:
    engine = Engine(footwear.profiles)
    _, one_item, _ = zen_data(20)
    raw = next(raw for raw in one_item if _general(engine, raw).selected)
    before = engine.score(raw)
    engine.lanes = LaneConfig(red=frozenset({"102"}))
    assert before.lane is Lane.YELLOW  # built now, with the lanes it was scored with
    assert engine.score(raw).lane is Lane.RED


def test_threads_building_one_result_at_once_agree(footwear: Engine) -> None:
    _, one_item, _ = zen_data(50)
    fired = [raw for raw in one_item if _general(footwear, raw).selected]
    results = [footwear.score(raw) for raw in fired]
    seen: list[list[Any]] = []
    barrier = threading.Barrier(4)

    def read() -> None:
        barrier.wait()
        seen.append([(r.lane, r.fired, r.controls, r.declaration_id) for r in results])

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = [_general(footwear, raw) for raw in fired]
    assert len(seen) == 4
    for got in seen:
        assert got == [(r.lane, r.fired, r.controls, r.declaration_id) for r in expected]


#: Bad input to the footwear set: (data, the field and item the error names).
BAD_INPUTS = [
    ({"date": "2024-04-02", "items": [{"net_mass": -1}]}, "item.net_mass", 1),
    ({"date": "2024-04-02", "items": [{"net_mass": float("nan")}]}, "item.net_mass", 1),
    ({"date": "2024-04-02", "items": [{"net_mass": 1e16}]}, "item.net_mass", 1),
    ({"date": "2024-04-02", "items": [{}, {"customs_value": "x"}]}, "item.customs_value", 2),
    ({"date": "2024-04-02", "items": [{"hs_code": ["6403"]}]}, "item.hs_code", 1),
    ({"date": "2024-04-02", "declarant": {"aeo": "yes"}}, "declaration.declarant.aeo", None),
    ({"date": "2024-04-02", "declarant": "AEO"}, "declaration.declarant", None),
    ({"date": "2024-02-30", "items": [{}]}, "declaration.date", None),
    ({"date": "2024-04-02", "items": {"hs_code": "6403"}}, "items", None),
    ({"date": "2024-04-02", "items": [["6403"]]}, "item", 1),
    ({"items": [{}]}, "declaration.date", None),  # no date to score on
]


@pytest.mark.parametrize(("raw", "field", "item"), BAD_INPUTS)
def test_bad_input_gets_the_general_paths_error(
    footwear: Engine, raw: dict[str, Any], field: str, item: int | None
) -> None:
    with pytest.raises(DeclarationError) as fused:
        footwear.score(raw)
    assert (fused.value.field, fused.value.item) == (field, item)
    if field != "declaration.date" or "date" in raw:
        with pytest.raises(DeclarationError) as reader:
            footwear.profiles.reader.read(raw)
        assert str(fused.value) == str(reader.value)


def test_as_of_is_checked_and_honoured(footwear: Engine) -> None:
    raw = {"date": "2024-04-02", "items": [{"hs_code": "6403", "origin": "CN"}]}
    with pytest.raises(RiskEngineError, match="as_of must be a date"):
        footwear.score(raw, dt.datetime(2024, 4, 2, 10, 0))
    assert footwear.score(raw, dt.date(2031, 1, 1)).selected is False  # out of force then
    assert footwear.score(raw, dt.date(2031, 1, 1)) == _general(footwear, raw, dt.date(2031, 1, 1))
    assert footwear.score(raw, DAY).as_of == DAY


def test_declarations_without_items_and_with_empty_items(footwear: Engine) -> None:
    for raw in (
        {"date": "2024-04-02"},
        {"date": "2024-04-02", "items": None},
        {"date": "2024-04-02", "items": []},
        {"date": "2024-04-02", "items": [{}]},
        {"date": "2024-04-02", "items": [{}, {}]},
        {"date": "2024-04-02", "items": ({"hs_code": "6403", "origin": "CN"},)},
        {"date": "2024-04-02", "items": [{"hs_code": "6403", "origin": "CN"}] * 3},
    ):
        assert footwear.score(raw) == _general(footwear, raw), raw


def test_random_selection_on_the_fused_path() -> None:
    random = RandomSelection(b"k" * 24, [RandomRate("UA100110", "40", 1.0)], rate=0.0)
    engine = Engine(ProfileSet.load(sources={"one.rp": ONE_PROFILE}), random=random)
    assert engine.profiles.fused is not None
    chosen = {"id": "D1", "date": "2024-04-02", "office": "UA100110", "regime": "40", "items": [{}]}
    other = {**chosen, "regime": "10"}
    fired = {**chosen, "items": [{"hs_code": "6403", "origin": "CN"}]}
    for raw in (chosen, other, fired):
        assert engine.score(raw) == _general(engine, raw)
    assert engine.score(chosen).random_selected is True
    assert engine.score(chosen).lane is Lane.RED
    assert engine.score(other).random_selected is False
    assert engine.score(other).lane is Lane.GREEN


def test_which_sets_are_fused() -> None:
    samples = ProfileSet.load(["profiles"])
    assert fuse_problem(samples.profiles) is None and samples.fused is not None
    source = samples.fused.source
    assert "hist = engine._history_now()" in source  # every sample reads history
    assert source.count("sel = on[") == 1  # one regional profile: its office's fill chosen
    many = ProfileSet.load(sources=profile_sources(40, seed=1))
    assert fuse_problem(many.profiles) == f"40 profiles (fused up to {FUSE_MAX})"
    assert many.fused is None
    raw = generated_declarations(1, seed=3)[0]
    assert type(Engine(many).score(raw)) is ScoreResult  # not fused: scored as before


def samples_scenario() -> tuple[ProfileSet, InMemoryHistoryProvider, list[dict[str, Any]]]:
    """The nine samples, a history of 600 declarations of their traders, and 900 declarations
    to score (every 5th reaches the Kyiv office's regional fills, both variants)."""
    samples = ProfileSet.load(["profiles"])
    decls = generated_declarations(1500, seed=5)
    clearances, controls = [], []
    for k, raw in enumerate(decls[:600]):  # the first 600 are these traders' history
        day = dt.date(2024, 1, 1) + dt.timedelta(days=k % 90)
        subjects = {"declaration.declarant.id": raw["declarant"]["id"]}
        for item in raw["items"]:
            subjects = {**subjects, "item.hs_code": item["hs_code"]}
            clearances.append(
                Clearance(day, subjects, completed=k % 3 != 0, reasons=("0101",) if k % 3 == 0
                          else (), declaration_id=f"H{k}")
            )  # fmt: skip
            controls.append(
                ControlResult(day, subjects, violation=k % 4 == 0, declaration_id=f"K{k}")
            )
    for k, raw in enumerate(decls[600:]):  # every 5th reaches the Kyiv office's regional fills
        if k % 5 == 0:
            raw["office"] = "UA100110"
            raw["date"] = ("2024-05-14", "2026-11-20")[k % 2]  # the Q4 2026 fill has its own
            raw["declarant"]["aeo"] = False  # message and controls: another variant
            raw["items"][0].update(
                hs_code="8418100000", origin="CN", customs_value=1000.0, net_mass=100.0
            )
    return samples, InMemoryHistoryProvider(clearances, controls), decls[600:]


def test_the_samples_with_history_and_regional_fills_agree_with_the_general_path() -> None:
    samples, history, raws = samples_scenario()
    engine = Engine(samples, history=history)
    variants = {len(vs) for _, vs, _ in samples.fused.entries}  # type: ignore[union-attr]
    assert max(variants) > 1
    fired = regional = 0
    messages = set()
    for raw in raws:
        result = engine.score(raw)
        assert result == _general(engine, raw)
        fired += result.selected
        for fp in result.fired:
            if fp.key == "1A/20/2023/00005-01":
                regional += 1
                messages.add(fp.message.split(":")[0] if fp.message else None)
    assert fired > 100 and regional > 50
    assert len(messages) > 1  # both variants' messages


def generated_sets() -> tuple[list[dict[str, Any]], Callable[[int], ProfileSet]]:
    """300 generated declarations, and a set of the first ``size`` of 300 generated central
    profiles, those that fire on these declarations first (at least three do)."""
    decls = generated_declarations(300, seed=3)
    pool = ProfileSet.load(sources=profile_sources(300, seed=1))
    central = [cp for cp in pool.profiles if fuse_problem([cp]) is None]
    everyone = Engine(ProfileSet(central, catalogue=pool.catalogue))  # not fused: too many
    firing = {fp.key for raw in decls for fp in everyone.score(raw).fired}
    central.sort(key=lambda cp: cp.key not in firing)  # those that fire on these first
    assert len(firing) >= 3
    return decls, lambda size: ProfileSet(central[:size], catalogue=pool.catalogue)


def test_generated_sets_of_every_fused_size_agree_with_the_general_path() -> None:
    decls, first = generated_sets()
    for size in (1, 3, FUSE_MAX):
        profile_set = first(size)
        engine = Engine(profile_set)
        assert profile_set.fused is not None
        fired = 0
        for raw in decls:
            result = engine.score(raw)
            fired += result.selected
            assert result == _general(engine, raw)
        assert fired > 0


def test_replace_swaps_the_fused_function_too(footwear: Engine) -> None:
    engine = Engine(footwear.profiles)
    other = ProfileSet.load(
        sources={"one.rp": ONE_PROFILE.replace('("CN", "VN")', '("TR")')}, allow_drafts=True
    )
    assert other._fused is True  # not compiled by loading
    engine.replace(other)
    assert other.fused is not None and other._fused is other.fused  # compiled before the swap
    raw = {"date": "2024-04-02", "items": [{"hs_code": "6403", "origin": "TR"}]}
    assert engine.score(raw).fired[0].degree == 70.0


SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@SETTINGS
@given(files=profile_files(max_profiles=4), data=st.data())
def test_generated_profiles_and_declarations_agree(
    files: list[m.SourceFile], data: st.DataObject
) -> None:
    """Regional profiles with fills, history blocks, editions and validity included."""
    profile_set = ProfileSet.compile(files)
    assert profile_set.fused is not None
    day = data.draw(st.sampled_from(AS_OF))
    clearances, controls = data.draw(history_events(day))
    engine = Engine(profile_set, history=InMemoryHistoryProvider(clearances, controls))
    for _ in range(4):
        raw = _raw(data.draw(declarations_for_history()))
        as_of: dt.date | None = None
        given = data.draw(st.sampled_from(("as_of", "as_of", "date", "date", "neither")))
        if given == "as_of":
            as_of = day
        elif given == "date":
            raw["date"] = day.isoformat()
        else:
            raw.pop("date", None)  # no date to score on: the same error from both
        try:
            expected: ScoreResult | str = _general(engine, raw, as_of)
        except RiskEngineError as exc:
            expected = f"{type(exc).__name__}: {exc}"
        try:
            got: ScoreResult | str = engine.score(raw, as_of)
        except RiskEngineError as exc:
            got = f"{type(exc).__name__}: {exc}"
        assert got == expected


def test_json_text_and_batches_take_the_fused_path_with_the_same_outcome(
    footwear: Engine,
) -> None:
    _, one_item, full = zen_data(100)
    texts = [json.dumps(raw) for raw in one_item + full]
    for text in texts:
        result = footwear.score_json(text.encode())
        assert type(result) is PendingResult
        assert result == footwear.score(footwear.profiles.reader.read_json(text))
    bad = [
        b"{not json",
        b"[1, 2]",
        b'{"date": "2024-04-02", "items": [{"net_mass": -1}]}',
        b'{"items": [{}]}',
        {"date": "2024-04-02", "items": [{"hs_code": 6403}]},
    ]
    batch: list[Any] = [*texts[:5], *bad, *one_item[:5]]
    got = footwear.score_many(batch)
    assert all(type(r) is PendingResult for r in got[:5] + got[-5:])
    expected = []
    for position, item in enumerate(batch):
        try:
            if isinstance(item, dict):
                decl = footwear.profiles.reader.read(item)
            else:
                decl = footwear.profiles.reader.read_json(item)
            expected.append(footwear.score(decl))
        except RiskEngineError as exc:
            expected.append((position, type(exc).__name__))
    assert [r if isinstance(r, ScoreResult) else r.position for r in got[:5]] == expected[:5]
    outcomes = got[5:10]
    assert [type(r).__name__ for r in outcomes] == ["RejectedDeclaration"] * 4 + ["PendingResult"]
    fields = ["", "declaration", "item.net_mass", "declaration.date"]
    assert [r.field for r in outcomes[:4]] == fields  # type: ignore[union-attr]
    assert outcomes[4] == expected[9]  # an int HS code is read as text, as the reader reads it
    assert got[10:] == expected[10:]
    with pytest.raises(JsonInputError):
        footwear.score_json(b"{not json")


def test_changing_the_input_after_scoring_does_not_change_the_result(footwear: Engine) -> None:
    raw = {"id": "D9", "date": "2024-04-02", "items": [{"hs_code": "6403", "origin": "CN"}]}
    expected = _general(footwear, raw)
    result = footwear.score(raw)
    raw["items"][0]["hs_code"] = "9999"
    raw["id"] = "other"
    assert result == expected and result.fired[0].message == "Check 6403"


def test_a_set_from_the_load_cache_is_fused_alike(tmp_path: Any) -> None:
    first = Engine.load(["profiles"], cache=tmp_path)
    cached = Engine.load(["profiles"], cache=tmp_path)
    assert cached.profiles.timings.cached and cached.profiles.fused is not None
    for raw in generated_declarations(200, seed=11):
        assert cached.score(raw) == _general(cached, raw) == first.score(raw)


def test_registry_windows_and_suspensions_are_honoured_alike() -> None:
    from riskengine.evaluator.windows import Window

    loaded = ProfileSet.load(sources={"one.rp": ONE_PROFILE})
    key = loaded.profiles[0].key
    window = Window(
        dt.date(2024, 1, 1), dt.date(2024, 12, 31), ((dt.date(2024, 4, 1), dt.date(2024, 4, 30)),)
    )
    windowed = ProfileSet(loaded.profiles, catalogue=loaded.catalogue, windows={key: window})
    engine = Engine(windowed)
    assert windowed.fused is not None
    raw = {"date": "2024-04-02", "items": [{"hs_code": "6403", "origin": "CN"}]}
    days = [dt.date(2023, 12, 31), dt.date(2024, 3, 31), dt.date(2024, 4, 2), dt.date(2024, 5, 1)]
    selected = [engine.score(raw, day).selected for day in days]
    assert selected == [_general(engine, raw, day).selected for day in days]
    assert selected == [False, True, False, True]
