"""The experiment process: its records, dry runs, exits and signals, in real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from xputil import Script

from partita.cli import cli
from partita.workspace import RunPaths, Workspace, iter_runs, read_run, read_submissions

TASKS = """
class Leaf(Task, id="xp.leaf"):
    n: Param[int]
    def execute(self):
        print("leaf", self.n)

class Sleeper(Task, id="xp.sleeper"):
    n: Param[int]
    def execute(self):
        Path(os.environ["STARTED_DIR"], str(self.n)).write_text(str(os.getpid()))
        time.sleep(60)
"""


def invoke(*args: Any) -> Any:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def wait_for(condition: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or condition}")


def runs_of(wd: Path, experiment: str) -> list[RunPaths]:
    return list(iter_runs(Workspace(wd, create=False), experiment))


# --- dry runs -------------------------------------------------------------------------------


def test_dry_run_neither_protects_nor_unprotects_jobs(
    script: Callable[..., Script], tmp_path: Path
) -> None:
    xp = script(
        TASKS
        + """
with experiment("wd", "study", max_jobs=2):
    for n in range(int(os.environ.get("N", "3"))):
        Leaf(n=n).submit()
"""
    )
    wd = tmp_path / "wd"
    assert xp.run().returncode == 0
    command = [sys.executable, "-m", "partita.cli", "run", str(xp.path), "--dry-run"]
    dry = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={**os.environ, "N": "1"},
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert "dry run: 0 of 1 job would run, 1 already done; nothing launched" in dry.stderr
    clean = invoke("jobs", "clean", "-w", wd).stdout
    assert "nothing to delete" in clean, clean
    assert clean.count("used by the latest run of experiment 'study'") == 3
    # The dry run is recorded, as a dry run, and is not the experiment's latest run.
    (dry_run,) = [p for p in runs_of(wd, "study") if read_run(p).dry_run]
    assert read_submissions(dry_run).entries == []
    latest = json.loads(dry_run.latest.read_text())["run"]
    assert latest != dry_run.run
    shown = invoke("experiments", "show", "study", "-w", wd).stdout
    assert "(dry run)" in shown
    assert f"jobs of the latest run ({latest})" in shown
    listed = json.loads(invoke("experiments", "list", "-w", wd, "--json").stdout)
    assert listed[0]["latest"]["run"] == latest and listed[0]["runs"] == 2


def test_dry_run_gives_jobs_and_a_summary(script: Callable[..., Script], tmp_path: Path) -> None:
    """``task.job`` works in a dry run: result-collecting code does not crash."""
    xp = script(
        TASKS
        + """
with experiment("wd", "collect") as xp:
    tasks = [Leaf(n=n).tag("n", n).tag("kernel", "linear") for n in range(int(os.environ["N"]))]
    for task in tasks:
        task.submit()
        task.job.on_completed(lambda job: print("callback", job.name))
    states = [task.job.wait(timeout=5).value for task in tasks]
print("states", states, xp.dry_run)
"""
    )
    assert xp.run(env={"N": "1"}).returncode == 0
    dry = xp.run(env={"PARTITA_DRY_RUN": "1", "N": "3"})
    assert dry.returncode == 0, dry.stderr
    assert "states ['done', 'waiting', 'waiting'] True\n" == dry.stdout
    assert "dry run: 2 of 3 jobs would run, 1 already done; nothing launched" in dry.stderr
    assert 'would run  kernel="linear" n=1' in dry.stderr  # tags as the command line takes them


# --- records written as the experiment goes -------------------------------------------------


def test_submissions_and_environment_are_on_disk_while_it_runs(
    script: Callable[..., Script], tmp_path: Path
) -> None:
    started = tmp_path / "started"
    started.mkdir()
    xp = script(
        TASKS
        + """
with experiment("wd", "slow", max_jobs=4):
    Leaf(n=0).submit()
    Sleeper(n=1).submit()
"""
    )
    process = xp.popen(env={"STARTED_DIR": str(started)})
    wd = tmp_path / "wd"
    try:
        wait_for(lambda: (started / "1").exists(), what="the sleeper to start")
        (run,) = runs_of(wd, "slow")
        assert len(read_submissions(run).entries) == 2
        environment = json.loads(run.environment.read_text())
        assert environment["python"] == sys.version
        listed = json.loads(invoke("jobs", "list", "-e", "slow", "-w", wd, "--json").stdout)
        assert len(listed) == 2
        process.kill()  # SIGKILL: nothing is flushed on the way out
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        pid = (started / "1").read_text() if (started / "1").exists() else ""
        if pid:
            with_suppress_kill(int(pid))
    listed = json.loads(invoke("jobs", "list", "-e", "slow", "-w", wd, "--json").stdout)
    assert len(listed) == 2
    shown = json.loads(invoke("experiments", "show", "slow", "-w", wd, "--json").stdout)
    assert shown["runs"][0]["jobs"] == 2


def with_suppress_kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def test_environment_is_written_when_the_script_ends_at_once(
    script: Callable[..., Script], tmp_path: Path
) -> None:
    xp = script(
        """
with experiment("wd", "quick"):
    pass
os._exit(0)  # ends without running any cleanup
"""
    )
    assert xp.run().returncode == 0
    (run,) = runs_of(tmp_path / "wd", "quick")
    environment = json.loads(run.environment.read_text())
    assert environment["executable"] == sys.executable
    assert "packages" in environment
