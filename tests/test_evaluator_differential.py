"""The compiled evaluator agrees exactly with the reference interpreter (tests/), explanations
included, with and without the index; the closure compiler agrees with the generated code."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskengine import model as m
from riskengine.declaration import Declaration
from riskengine.evaluator import Engine, InMemoryHistoryProvider, ProfileSet
from riskengine.evaluator.compiled import EMPTY_ITEMS
from riskengine.evaluator.history import history_block, subject_of
from tests.closures_reference import compile_closures
from tests.eval_strategies import (
    AS_OF,
    declarations_for_history,
    history_events,
    profile_files,
    profiles,
)
from tests.reference_interpreter import reference_history, reference_score

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(files=profile_files(), data=st.data())
def test_compiled_equals_reference(files: list[m.SourceFile], data: st.DataObject) -> None:
    as_of: dt.date = data.draw(st.sampled_from(AS_OF))
    clearances, controls = data.draw(history_events(as_of))
    provider = InMemoryHistoryProvider(clearances, controls)
    indexed = Engine(ProfileSet.compile(files), history=provider)
    plain = Engine(ProfileSet.compile(files, use_index=False), history=provider)
    for _ in range(3):
        decl: Declaration = data.draw(declarations_for_history())
        expected = reference_score(files, decl, as_of, clearances=clearances, controls=controls)
        assert indexed.score(decl, as_of) == expected
        assert plain.score(decl, as_of) == expected
        explained = reference_score(
            files, decl, as_of, clearances=clearances, controls=controls, explain=True
        )
        assert indexed.score(decl, as_of, explain=True) == explained
        assert indexed.score(decl, as_of, explain="fired").fired == explained.fired


@SETTINGS
@given(files=profile_files(), data=st.data())
def test_closures_equal_generated_code(files: list[m.SourceFile], data: st.DataObject) -> None:
    as_of: dt.date = data.draw(st.sampled_from(AS_OF))
    clearances, controls = data.draw(history_events(as_of))
    hist = InMemoryHistoryProvider(clearances, controls).history
    compiled = ProfileSet.compile(files)
    for _ in range(3):
        decl: Declaration = data.draw(declarations_for_history())
        items = decl.items or EMPTY_ITEMS
        for cp in compiled:
            for k in [None, *range(len(cp.fills))]:
                variant = cp.variant(k)
                args = (decl.header, items, cp.region(k), hist, as_of)
                assert _raw(compile_closures(variant.unit)(*args)) == _raw(variant.evaluate(*args))


def _raw(result: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
    """A fast-path result with the fired item numbers as a tuple (a list or a tuple)."""
    if result is None:
        return None
    best, best_i, fired, mask, nh, ph = result
    return (best, best_i, tuple(fired), mask, nh, ph)


@settings(max_examples=200, deadline=None)
@given(profile=profiles(), data=st.data())
def test_in_memory_history_follows_the_formula(profile: m.Profile, data: st.DataObject) -> None:
    block = history_block(profile)
    if block is None:
        return
    as_of: dt.date = data.draw(st.sampled_from(AS_OF))
    clearances, controls = data.draw(history_events(as_of))
    provider = InMemoryHistoryProvider(clearances, controls)
    for event in [*clearances, *controls]:
        subject = subject_of(block, event.fields)
        if subject is None:
            continue
        got = provider.history(profile, subject, as_of)
        assert got == reference_history(block, subject, as_of, clearances, controls)
        assert got.negative >= 0.0 and got.positive >= 0.0
        assert all(r.date < as_of for r in got.records)
