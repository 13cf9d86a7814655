"""An attempt whose runner never started (``Exit(started=False)``) is launched again."""

from __future__ import annotations

import dataclasses
from typing import Any

from schedharness import Harness

from partita.launchers import Exit
from partita.testing import Done, FakeLauncher, Killed
from partita.workspace import JobState, read_state


class _FirstNeverStarted(FakeLauncher):
    """Reports the first attempt as never started (a packed task whose worker died first)."""

    async def wait(self, handle: dict[str, Any]) -> Exit:
        exit_ = await super().wait(handle)
        if int(handle["fake"]) == 1:
            return dataclasses.replace(exit_, started=False, detail="its worker died first")
        return exit_


def test_an_attempt_that_never_started_is_launched_again_without_a_retry(
    harness: Harness,
) -> None:
    fake = _FirstNeverStarted({"schedtest.step": [Killed("lost"), Done()]})
    job = harness.submit(1, fake, retry=0)
    assert job.wait(5) is JobState.DONE
    assert 2 == fake.attempts("schedtest.step")
    history = read_state(job.paths)["history"]
    assert ["running", "cancelled", "running", "done"] == [h["state"] for h in history]
    assert 2 == history[2]["attempt"]


def test_without_the_flag_the_same_exit_is_a_failure(harness: Harness) -> None:
    fake = FakeLauncher({"schedtest.step": [Killed("lost"), Done()]})
    job = harness.submit(1, fake, retry=0)
    assert job.wait(5) is JobState.FAILED and job.reason == "lost"
    assert 1 == fake.attempts("schedtest.step")
