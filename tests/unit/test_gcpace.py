"""The garbage-collector pacing of large experiments (partita._gcpace)."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest

from partita import Param, Task, _gcpace, experiment
from partita._gcpace import GcPacer
from partita.testing import FakeLauncher


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


class Tiny(Task, id="gcpace.tiny"):
    """One of a sweep."""

    index: Param[int]

    def execute(self) -> None:  # pragma: no cover - the fake launcher never calls it
        raise AssertionError("not executed under FakeLauncher")


@pytest.fixture
def pacer(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(_gcpace, "START", 3)
    pacer = GcPacer()
    yield pacer
    pacer.release()


def test_nothing_changes_below_the_start(pacer: GcPacer) -> None:
    pacer.submitted()
    pacer.submitted()
    gc.collect()
    assert 0 == gc.get_freeze_count()
    assert pacer._after not in gc.callbacks


def test_survivors_of_a_full_collection_are_frozen_then_released(pacer: GcPacer) -> None:
    for _ in range(3):
        pacer.submitted()
    assert pacer._after in gc.callbacks
    kept = Node()
    gc.collect()
    assert gc.get_freeze_count() > 0  # the survivors, ``kept`` among them
    dropped = weakref.ref(kept)
    del kept
    gc.collect()
    assert dropped() is not None  # a frozen cycle waits for the end of the experiment
    pacer.release()
    assert 0 == gc.get_freeze_count()
    assert pacer._after not in gc.callbacks
    gc.collect()
    assert dropped() is None  # released: collected as usual


def test_garbage_is_collected_before_it_is_frozen(pacer: GcPacer) -> None:
    for _ in range(3):
        pacer.submitted()
    garbage = Node()
    gone = weakref.ref(garbage)
    del garbage
    gc.collect()
    assert gone() is None  # a cycle that was garbage at the collection is freed, not frozen


def test_an_experiment_past_the_start_unfreezes_when_it_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_gcpace, "START", 5)
    callbacks = list(gc.callbacks)
    with experiment(tmp_path / "wd", "sweep", launcher=FakeLauncher(), quiet=True):
        for i in range(20):
            Tiny(index=i).submit()
        gc.collect()
        assert gc.get_freeze_count() > 0  # pacing is on past START submissions
    assert 0 == gc.get_freeze_count()
    assert callbacks == gc.callbacks
    assert 20 == len(list((tmp_path / "wd" / "jobs" / "gcpace.tiny").iterdir()))
