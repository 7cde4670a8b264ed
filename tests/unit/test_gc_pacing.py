"""The normalizer loop's garbage-collector pacing: freeze per transaction, full pass per period."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from connector.normalize.gc_pacing import GC_THRESHOLDS, CollectorPacing


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _garbage_cycle() -> list[bool]:
    """A two-object cycle nothing references; the flag turns True once it is collected."""
    collected = [False]
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    weakref.finalize(a, collected.__setitem__, 0, True)
    return collected


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_sets_the_loop_thresholds_and_restores_everything_on_exit() -> None:
    before = gc.get_threshold()
    with CollectorPacing() as pacing:
        assert gc.get_threshold() == GC_THRESHOLDS
        pacing.after_transaction()
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_frozen_cycle_waits_for_the_periodic_full_collection() -> None:
    clock = _Clock()
    pacing = CollectorPacing(full_every_s=300, clock=clock)
    collected = _garbage_cycle()
    pacing.after_transaction()  # the cycle is frozen: the collector no longer sees it
    gc.collect()
    assert collected == [False]
    clock.now += 299
    pacing.after_transaction()
    gc.collect()
    assert collected == [False]
    clock.now += 1
    pacing.after_transaction()  # due: unfreeze, collect everything, freeze again
    assert collected == [True]


def test_collect_all_reports_what_it_found_and_restarts_the_period() -> None:
    clock = _Clock()
    pacing = CollectorPacing(full_every_s=60, clock=clock)
    collected = _garbage_cycle()
    gc.freeze()
    assert pacing.collect_all() >= 2 and collected == [True]
    assert gc.get_freeze_count() == 0
    clock.now += 59
    pacing.after_transaction()
    assert gc.get_freeze_count() > 0  # frozen, and no full collection yet
    clock.now += 1
    collected = _garbage_cycle()
    pacing.after_transaction()
    assert collected == [True]
