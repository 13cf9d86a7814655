"""Watching live outputs in the scheduler: delivered while the job runs, once each, all of them.

A ``FakeLauncher`` holds the job running (behind a gate) while the test appends to its
outputs record the way ``partita.publish`` does.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from schedharness import Harness, Step

from partita.errors import ExperimentError
from partita.scheduler import Scheduler
from partita.testing import Done, FakeLauncher, submission
from partita.workspace import JobState
from partita.workspace._outputs import append_output


def _publish(job: Any, name: str, key: str, value: Any) -> None:
    append_output(job.paths, {"name": name, "key": key, "seq": 0, "value": value})


def test_delivered_while_running_once_each_and_all_before_idle(harness: Harness) -> None:
    gate = threading.Event()
    job = harness.submit(1, FakeLauncher(default=Done(gate=gate)))
    got: list[Any] = []
    job.watch_output("ckpt", got.append)
    harness.wait_for(lambda: job.state is JobState.RUNNING)
    _publish(job, "ckpt", "a", 1)
    _publish(job, "loss", "b", 0.5)  # another name: not for this watch
    harness.wait_for(lambda: got == [1])
    assert job.state is JobState.RUNNING
    _publish(job, "ckpt", "a", 1)  # the same output again
    _publish(job, "ckpt", "c", 3)  # published just before the job ends
    gate.set()
    assert harness.scheduler.wait_idle(10)
    assert got == [1, 3]
    assert harness.scheduler.callback_errors == []


def test_a_done_job_delivers_everything_at_once(harness: Harness) -> None:
    job = harness.submit(1, FakeLauncher())
    assert job.wait(5) is JobState.DONE
    for n in range(5):
        _publish(job, "ckpt", f"k{n}", n)
    again = harness.submit(1, FakeLauncher(), scheduler=harness.new_scheduler("rerun"))
    got: list[Any] = []
    again.watch_output("ckpt", got.append)
    assert harness.schedulers[-1].wait_idle(10)
    assert again.reused
    assert got == [0, 1, 2, 3, 4]
    assert again.outputs("ckpt") == [0, 1, 2, 3, 4]


def test_callback_errors_are_kept_and_later_outputs_still_delivered(harness: Harness) -> None:
    job = harness.submit(1, FakeLauncher())
    assert job.wait(5) is JobState.DONE
    _publish(job, "ckpt", "a", 1)
    _publish(job, "ckpt", "b", 2)
    got: list[Any] = []

    def callback(value: Any) -> None:
        if value == 1:
            raise ValueError("bad checkpoint")
        got.append(value)

    job.watch_output("ckpt", callback)
    assert harness.scheduler.wait_idle(10)
    assert got == [2]
    (error,) = harness.scheduler.callback_errors
    assert "watch_output('ckpt')" in error and "bad checkpoint" in error


def test_bad_watches_are_refused(harness: Harness) -> None:
    job = harness.submit(1, FakeLauncher())
    with pytest.raises(ExperimentError, match="expected the name"):
        job.watch_output("", print)
    with pytest.raises(ExperimentError, match="expected a function"):
        job.watch_output("ckpt", "print")  # type: ignore[arg-type]
    # A scheduler that has closed watches nothing any more.
    own = Scheduler(harness.workspace, owner={"experiment": "closed", "run": "r1"}, grace=1.0)
    own.start()
    ended = own.submit(submission(harness.workspace, Step(n=2), FakeLauncher()))
    assert ended.wait(5) is JobState.DONE
    assert own.wait_idle(10)
    own.close()
    with pytest.raises(ExperimentError, match="has ended"):
        ended.watch_output("ckpt", print)


def test_on_completed_comes_after_the_last_output(harness: Harness) -> None:
    gate = threading.Event()
    job = harness.submit(1, FakeLauncher(default=Done(gate=gate)))
    order: list[Any] = []
    job.watch_output("ckpt", order.append)
    job.on_completed(lambda j: order.append("completed"))
    harness.wait_for(lambda: job.state is JobState.RUNNING)
    for n in range(3):
        _publish(job, "ckpt", f"k{n}", n)
    gate.set()  # the outputs are read after the job ends: on_completed must wait for them
    assert harness.scheduler.wait_idle(10)
    job.on_completed(lambda j: order.append("late"))  # after everything: at once
    assert harness.scheduler.wait_idle(10)
    assert order == [0, 1, 2, "completed", "late"]
