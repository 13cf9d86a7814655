"""A launcher kind defined by the test suite runs, follows, describes and kills real jobs.

Nothing in partita knows the kind ``test-process`` (tests/integration/kinds.py) or the
keys of its handles: everything goes through the registry.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import kinds
from click.testing import CliRunner
from xputil import Script, job_dirs, wait_for

from partita.cli import cli

HERE = Path(kinds.__file__).resolve().parent

TASKS = f"""
sys.path.insert(0, {str(HERE)!r})
from kinds import ProcessLauncher

class Shout(Task, id="kinds.shout"):
    word: Param[str]
    def execute(self):
        print(self.word.upper())

class Join(Task, id="kinds.join"):
    parts: Param[list[Shout]]
    def execute(self):
        print(" ".join(p.stdout().read_text().strip() for p in self.parts))

class Budget(partita.ResumableTask, id="kinds.budget"):
    def execute(self):
        print(self.remaining_time())

class Hold(Task, id="kinds.hold"):
    def execute(self):
        print("started", flush=True)
        time.sleep(120)
"""


def cli_ok(*args: Any) -> str:
    """Run ``partita ARGS`` in this process (where the kind is registered)."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert isinstance(result.exception, SystemExit | None), result.exception
    assert 0 == result.exit_code, result.output
    return result.stdout


def handle_of(folder: Path) -> dict[str, Any]:
    """The launcher handle recorded in a job folder."""
    handle: dict[str, Any] = json.loads((folder / "state.json").read_text())["launcher"]
    return handle


def test_an_experiment_runs_through_a_kind_defined_by_the_tests(script: Any) -> None:
    """Jobs run, depend, are reused and are described, all through the new kind."""
    xp: Script = script(
        TASKS
        + """
with experiment("wd", "kinds", launcher=ProcessLauncher()):
    a, b = Shout(word="hello").submit(), Shout(word="world").submit()
    Join(parts=[a, b]).submit()
"""
    )
    first = xp.run(timeout=60)
    assert 0 == first.returncode, first.stderr
    (join,) = job_dirs(xp.folder / "wd", "kinds.join")
    assert "HELLO WORLD" == (join / "stdout").read_text().strip()
    handle = handle_of(join)
    assert kinds.KIND == handle["kind"] and isinstance(handle["ticket"], int)
    again = xp.run(timeout=60)
    assert 0 == again.returncode, again.stderr
    assert "nothing to run: all 3 jobs were already done" in again.stdout + again.stderr

    shown = cli_ok("jobs", "show", join.name[:12], "-w", xp.folder / "wd")
    assert f"test-process, ticket {handle['ticket']}" in shown
    listed = json.loads(cli_ok("jobs", "list", xp.folder / "wd", "--json"))
    assert {"done"} == {job["state"] for job in listed}
    assert {kinds.KIND} == {job["launcher"]["kind"] for job in listed}


def test_remaining_time_is_asked_to_the_launcher_of_the_job(script: Any) -> None:
    """``ResumableTask.remaining_time()`` asks the job's own launcher, whatever its kind."""
    xp: Script = script(
        TASKS
        + """
with experiment("wd", "budget", launcher=ProcessLauncher(budget=500)):
    Budget().submit()
"""
    )
    result = xp.run(timeout=60)
    assert 0 == result.returncode, result.stderr
    (folder,) = job_dirs(xp.folder / "wd", "kinds.budget")
    left = float((folder / "stdout").read_text())
    assert 440 < left <= 500


def test_another_experiment_follows_and_the_cli_kills_a_job_of_the_new_kind(
    script: Any,
) -> None:
    """A second experiment waits for the job through the kind's follower; kill stops it."""
    owner: Script = script(
        TASKS + '\nwith experiment("wd", "owner", launcher=ProcessLauncher()):\n'
        "    Hold().submit()\n",
        name="owner",
    )
    follower: Script = script(
        TASKS + '\nwith experiment("wd", "follower"):\n    Hold().submit()\n', name="follower"
    )
    first = owner.popen()
    second: subprocess.Popen[str] | None = None
    try:
        workdir = owner.folder / "wd"
        wait_for(lambda: bool(job_dirs(workdir, "kinds.hold")), what="the job folder")
        (folder,) = job_dirs(workdir, "kinds.hold")
        stdout = folder / "stdout"
        wait_for(lambda: stdout.exists() and "started" in stdout.read_text(), what="the job")
        handle = handle_of(folder)
        assert kinds.KIND == handle["kind"]

        # The follower runs with the local launcher: it must follow the other kind's job.
        # Kill only once it follows: a job killed before the follower looked at it is one
        # it would rightly run again. Its stderr goes to a file, read while it runs.
        follower_err = follower.folder / "follower.err"
        with open(follower_err, "w") as err:
            second = subprocess.Popen(
                [sys.executable, str(follower.path)],
                cwd=follower.folder,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        wait_for(
            lambda: "run by another process; waiting" in follower_err.read_text(),
            what="the follower to follow the job",
        )

        listed = json.loads(cli_ok("jobs", "list", workdir, "--json"))
        assert ["running"] == [job["state"] for job in listed]
        assert f"test-process, ticket {handle['ticket']}" in cli_ok(
            "jobs", "show", folder.name[:12], "-w", workdir
        )
        killed = cli_ok("jobs", "kill", folder.name[:12], "--grace", "2", "--yes", "-w", workdir)
        assert "cancelled" in killed, killed

        first.communicate(timeout=60)
        second.communicate(timeout=60)
        err_second = follower_err.read_text()
        assert (folder / "cancelled").exists()
        assert 1 == stdout.read_text().count("started")  # executed once, by its owner
        assert handle == handle_of(folder)  # the follower never launched it again
        assert "cancelled" in err_second, err_second
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.communicate()


def test_a_dead_job_of_the_new_kind_is_reported_lost(script: Any) -> None:
    """The index probes the new kind's handles: a runner gone without an outcome is lost."""
    owner: Script = script(
        TASKS + '\nwith experiment("wd", "owner", launcher=ProcessLauncher()):\n'
        "    Hold().submit()\n",
        name="owner",
    )
    process = owner.popen()
    try:
        workdir = owner.folder / "wd"
        wait_for(lambda: bool(job_dirs(workdir, "kinds.hold")), what="the job folder")
        (folder,) = job_dirs(workdir, "kinds.hold")
        stdout = folder / "stdout"
        wait_for(lambda: stdout.exists() and "started" in stdout.read_text(), what="the job")
        handle = handle_of(folder)
        assert ["running"] == [
            j["state"] for j in json.loads(cli_ok("jobs", "list", workdir, "--json"))
        ]
        # Both the experiment and the job die at once, so nobody records an outcome.
        process.kill()
        process.communicate()
        os.killpg(int(handle["ticket"]), signal.SIGKILL)
        wait_for(lambda: kinds.ProcessLauncher.probe(handle) is False, what="the runner to die")
        (job,) = json.loads(cli_ok("jobs", "list", workdir, "--json"))
        assert ("failed", "lost") == (job["state"], job["reason"])
        # Following its log ends too: nothing more will be written.
        assert "started" in cli_ok("jobs", "log", folder.name[:12], "--follow", "-w", workdir)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
