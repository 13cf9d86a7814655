"""Processes a job leaves behind end with it, unless they left its process group."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from xputil import Script, job_dirs

from partita.workspace import is_alive

TASKS = """
import subprocess

class Leave(Task, id="leftovers.leave"):
    how: Param[str]
    def execute(self):
        if self.how in ("plain", "die"):
            argv, extra = ["sleep", "600"], {}
        elif self.how == "stubborn":  # ignores SIGTERM (says so once the trap is set)
            argv, extra = ["sh", "-c", "trap '' TERM; : > trapped; exec sleep 600"], {}
        else:  # "own-session": deliberately outlives the job
            argv, extra = ["sleep", "600"], {"start_new_session": True}
        child = subprocess.Popen(argv, **extra)
        from partita.workspace import identity
        Path("grandchild.json").write_text(json.dumps(identity(child.pid)))
        if self.how == "stubborn":  # the sweep must meet the trap, not an sh still starting
            deadline = time.monotonic() + 60
            while not Path("trapped").exists():
                assert time.monotonic() < deadline, "sh never set its trap"
                time.sleep(0.02)
        if self.how == "die":
            os.kill(os.getpid(), 9)  # the runner dies without cleaning up after itself
        print("returned", flush=True)
"""


def wait_until(condition: Any, timeout: float, what: str) -> float:
    """Poll ``condition()`` until true; return the seconds it took (fail after ``timeout``)."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, f"timed out after {timeout} s: {what}"
        time.sleep(0.05)
    return time.monotonic() - start


def run_leave(script: Any, how: str, grace: float = 5.0) -> tuple[Path, dict[str, Any]]:
    """Run one ``Leave`` job; return its folder and the identity of its grandchild."""
    xp: Script = script(
        TASKS
        + f"""
from partita import LocalLauncher
with experiment("wd", "leave", launcher=LocalLauncher(2, leftover_grace={grace})):
    Leave(how={how!r}).submit()
"""
    )
    result = xp.run(timeout=60)
    (folder,) = job_dirs(xp.folder / "wd", "leftovers.leave")
    grandchild: dict[str, Any] = json.loads((folder / "grandchild.json").read_text())
    if how != "die":
        assert 0 == result.returncode, result.stderr
        assert (folder / "done").exists()
    return folder, grandchild


def test_a_grandchild_ends_with_its_done_job(script: Any) -> None:
    """A ``sleep 600`` started by a task that returned is gone once the job is done."""
    _, grandchild = run_leave(script, "plain")
    wait_until(lambda: is_alive(grandchild) is False, 10, "the grandchild to end")


def test_a_grandchild_that_ignores_sigterm_is_killed_after_the_grace(script: Any) -> None:
    """SIGTERM first; what ignores it is killed when ``leftover_grace`` has passed."""
    started = time.monotonic()
    _, grandchild = run_leave(script, "stubborn", grace=1.0)
    # The experiment waits for the sweep before it exits: the process is already gone.
    assert is_alive(grandchild) is False
    assert time.monotonic() - started < 30


def test_a_grandchild_of_a_killed_runner_is_ended_by_the_launcher(script: Any) -> None:
    """A runner killed by SIGKILL cannot clean up: the local launcher ends its group."""
    folder, grandchild = run_leave(script, "die")
    assert "lost" == json.loads((folder / "failed").read_text())["reason"]
    wait_until(lambda: is_alive(grandchild) is False, 10, "the grandchild to end")


def test_a_process_in_its_own_session_outlives_its_job(script: Any) -> None:
    """The opt-out: a process started with ``start_new_session=True`` is left alone."""
    _, grandchild = run_leave(script, "own-session", grace=0.5)
    try:
        time.sleep(1.0)  # longer than the grace: had it been swept, it would be gone now
        assert is_alive(grandchild) is True
    finally:
        if is_alive(grandchild):
            os.kill(int(grandchild["pid"]), signal.SIGKILL)


@pytest.mark.slurm
def test_a_grandchild_ends_with_its_done_job_on_slurm(slurm_env: Any, script: Any) -> None:
    """On Slurm too, a grandchild left by a task that returned is gone after the job."""
    xp: Script = script(
        TASKS
        + """
from partita import SlurmLauncher
with experiment("wd", "leave", launcher=SlurmLauncher(time="5:00", mem="200M")):
    Leave(how="plain").submit()
"""
    )
    result = xp.run(timeout=120)
    assert 0 == result.returncode, result.stderr
    (folder,) = job_dirs(xp.folder / "wd", "leftovers.leave")
    assert (folder / "done").exists()
    grandchild = json.loads((folder / "grandchild.json").read_text())
    wait_until(lambda: is_alive(grandchild) is False, 30, "the grandchild to end")
