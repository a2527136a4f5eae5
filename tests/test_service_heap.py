"""The service's heap freezing (riskengine.service.heap): the loaded bundle is kept out of the
garbage collector's walks, and what a swap leaves behind is still freed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from riskengine.evaluator import ProfileSet
from riskengine.service.heap import HeapFreezer
from tests.service_support import sample_texts


@pytest.fixture
def thawed() -> Iterator[None]:
    """Whatever a test freezes is thawed afterwards (the rest of the suite runs in this
    process)."""
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()


class _Engine:
    """Stands for a loaded bundle: an object in a reference cycle (as a bundle's generated
    functions and their globals are), so that only a collection frees it."""

    def __init__(self) -> None:
        self.me = self


def _bundle_cycle() -> weakref.ref[_Engine]:
    """A cycle, only weakly referenced from here."""
    return weakref.ref(_Engine())


def test_freeze_moves_the_loaded_profiles_out_of_the_collections(thawed: None) -> None:
    keep = ProfileSet.load(sources=sample_texts())
    tracked = len(gc.get_objects())
    heap = HeapFreezer()
    heap.freeze()
    # what was alive then, counted once; objects leave the permanent generation only when they
    # are freed (by reference counting), so the count can only fall afterwards
    assert heap.frozen > 0.9 * tracked > 1000
    assert gc.get_freeze_count() <= heap.frozen
    assert len(gc.get_objects()) < tracked / 10  # what a collection of the oldest walks
    assert len(keep) == len(sample_texts())


def test_a_swapped_out_bundle_is_freed_once_the_swap_settled(thawed: None) -> None:
    old = _bundle_cycle()
    heap = HeapFreezer(settle=0.0)
    heap.freeze()  # as at startup: the first bundle frozen
    gc.collect()
    assert old() is not None, "a frozen cycle is not collected"
    assert heap.maintain() is False  # no swap yet: nothing to do
    heap.swapped()
    assert heap.maintain() is True
    assert old() is None, "the old bundle was not freed after the swap settled"
    assert gc.get_freeze_count() > 0 and heap.refreezes == 1
    assert heap.maintain() is False  # once per swap


def test_the_refreeze_waits_for_the_settling_time(thawed: None) -> None:
    old = _bundle_cycle()
    heap = HeapFreezer(settle=3600.0)
    heap.freeze()
    heap.swapped()
    assert heap.maintain() is False  # requests scored with the old bundle may still run
    gc.collect()
    assert old() is not None


def test_disabled_freezes_nothing(thawed: None) -> None:
    heap = HeapFreezer(enabled=False, settle=0.0)
    heap.freeze()
    heap.swapped()
    assert gc.get_freeze_count() == 0
    assert heap.maintain() is False
