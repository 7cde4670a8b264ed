"""The normalizer's garbage-collection policy: state frozen after each transaction, cycles still
found by a full collection every `full_every` seconds, the interpreter's settings given back; no
freezing in a process shared with the sink."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from connector.normalize.collector import SHARED_THRESHOLDS, THRESHOLDS, CollectorPolicy
from connector.runtime.workers import role_workers
from connector.telemetry import Telemetry


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Node:
    """A reference cycle once `other` points back."""

    other: _Node | None = None


@pytest.fixture(autouse=True)
def _interpreter_gc_given_back() -> Iterator[None]:
    saved = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*saved)


def _frozen_cycle() -> weakref.ref[_Node]:
    """A cycle that is garbage already (found by any collection that looks at it)."""
    node = _Node()
    node.other = node
    return weakref.ref(node)


def test_inside_the_policy_the_thresholds_are_its_own() -> None:
    with CollectorPolicy(freeze=True):
        assert gc.get_threshold() == THRESHOLDS


def test_what_is_alive_after_a_transaction_is_frozen() -> None:
    with CollectorPolicy(freeze=True, clock=_Clock()) as policy:
        keep = [[i] for i in range(100)]
        assert any(item is keep[0] for item in gc.get_objects())
        policy.after_transaction()
        # Frozen objects sit in the permanent generation, which get_objects() does not list.
        assert not any(item is keep[0] for item in gc.get_objects())
        assert gc.get_freeze_count() >= len(keep)


def test_a_cycle_frozen_while_alive_is_found_by_the_next_due_full_collection() -> None:
    clock = _Clock()
    with CollectorPolicy(freeze=True, full_every=600, clock=clock) as policy:
        node = _Node()
        node.other = node
        ref = weakref.ref(node)
        policy.after_transaction()  # frozen while still referenced
        del node
        gc.collect()
        assert ref() is not None  # frozen: the ordinary collector no longer looks at it
        clock.now += 599
        policy.collect_if_due()
        assert ref() is not None
        clock.now += 1
        policy.collect_if_due()
        assert ref() is None


def test_a_full_collection_on_demand_unfreezes_and_finds_cycles() -> None:
    with CollectorPolicy(freeze=True, clock=_Clock()) as policy:
        ref = _frozen_cycle()
        policy.after_transaction()
        assert policy.collect_fully() >= 1
        assert ref() is None


def test_leaving_gives_the_interpreter_its_thresholds_back_unfrozen() -> None:
    gc.set_threshold(700, 10, 10)
    with CollectorPolicy(freeze=True, clock=_Clock()) as policy:
        policy.after_transaction()
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_leaving_on_an_error_gives_them_back_too() -> None:
    gc.set_threshold(700, 10, 10)
    with pytest.raises(RuntimeError), CollectorPolicy(freeze=True, clock=_Clock()) as policy:
        policy.after_transaction()
        raise RuntimeError("the loop failed")
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_a_shared_process_keeps_young_collections_and_never_freezes() -> None:
    clock = _Clock()
    with CollectorPolicy(full_every=600, clock=clock) as policy:  # the default: shared
        assert gc.get_threshold() == SHARED_THRESHOLDS
        gc.unfreeze()
        ref = _frozen_cycle()
        clock.now += 600
        policy.collect_if_due()
        policy.after_transaction()
        assert gc.get_freeze_count() == 0
        gc.collect()
        assert ref() is None  # the ordinary collector still finds it


@pytest.mark.parametrize(("role", "frozen"), [("normalizer", True), ("all", False)])
def test_only_a_normalizer_in_its_own_process_freezes(role: str, frozen: bool) -> None:
    worker = role_workers(role, Telemetry.disabled())["normalizer"]
    assert worker.keywords["freeze_state"] is frozen  # type: ignore[attr-defined]
