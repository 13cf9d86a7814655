"""The experiment process: its records, dry runs, exits and signals, in real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from xputil import Script, monitor, wait_for

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
    with monitor(wd, token="t") as client:
        (entry,) = client.get("/api/experiments?token=t").json()["experiments"]
        assert entry["latest"]["run"] == latest
        assert [run["dry_run"] for run in entry["runs"]] == [True, False]


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


def test_a_dry_run_of_a_pipeline_lists_every_step(script: Callable[..., Script]) -> None:
    """A task that needs another one the same dry run listed (not done yet: it would run
    first) is listed too, transient or not; nothing is launched."""
    xp = script(
        TASKS
        + """
class Pair(Task, id="xp.pair"):
    left: Param[Leaf]
    def execute(self):
        print("pair", self.left.n)

with experiment("wd", "pipeline"):
    Pair(left=Leaf(n=1).submit()).submit()
    Pair(left=Leaf(n=2).submit(transient=True)).submit()
"""
    )
    dry = xp.run(env={"PARTITA_DRY_RUN": "1"})
    assert dry.returncode == 0, dry.stderr
    assert "Traceback" not in dry.stderr
    assert dry.stderr.count("xp.pair/") == 2 and dry.stderr.count("xp.leaf/") == 2
    assert "dry run: 4 of 4 jobs would run; nothing launched" in dry.stderr
    assert not (xp.folder / "wd" / "jobs").exists() or not any(
        (xp.folder / "wd" / "jobs").iterdir()
    )
    real = xp.run()
    assert real.returncode == 0, real.stderr
    again = xp.run(env={"PARTITA_DRY_RUN": "1"})
    assert again.returncode == 0, again.stderr
    assert "0 of 4 jobs would run, 4 already done" in again.stderr


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
        # Recorded in its own thread, meanwhile (git may take a while on a busy machine).
        wait_for(run.environment.exists, what="the run's environment record")
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


# --- exits and signals ----------------------------------------------------------------------

FAILING = """
class Broken(Task, id="xp.broken"):
    def execute(self):
        raise RuntimeError("boom")

with experiment("wd", "fails"):
    Broken().submit()
"""


def test_a_failed_experiment_prints_its_message_without_a_traceback(
    script: Callable[..., Script], tmp_path: Path
) -> None:
    xp = script(FAILING)
    for command in (
        [sys.executable, str(xp.path)],
        [sys.executable, "-m", "partita.cli", "run", str(xp.path)],
    ):
        result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        assert "experiment 'fails': 1 of 1 job did not complete:" in result.stderr
        assert "stderr" in result.stderr and "xp.broken" in result.stderr
        assert "PARTITA_DEBUG=1" in result.stderr
    debug = xp.run(env={"PARTITA_DEBUG": "1"})
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "ExperimentFailed" in debug.stderr
    # An error of the script itself keeps its traceback.
    own = script('raise ValueError("my own bug")\n', name="own").run()
    assert "Traceback" in own.stderr and "my own bug" in own.stderr


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_sigint_cancels_even_when_the_shell_ignored_it(
    script: Callable[..., Script], tmp_path: Path
) -> None:
    """``python xp.py &`` in a shell script starts it with SIGINT ignored."""
    started = tmp_path / "started"
    started.mkdir()
    xp = script(
        TASKS
        + """
with experiment("wd", "background", max_jobs=2, grace_period=2):
    Sleeper(n=1).submit()
    Sleeper(n=2).submit()
"""
    )
    process = subprocess.Popen(
        [sys.executable, str(xp.path)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "STARTED_DIR": str(started)},
        preexec_fn=_ignore_sigint,
    )
    try:
        wait_for(lambda: len(list(started.iterdir())) == 2, what="both sleepers")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode in (130, -signal.SIGINT), stderr
    assert "interrupted: cancelling" in stderr
    assert "Traceback" not in stderr, stderr
    jobs = tmp_path / "wd" / "jobs" / "xp.sleeper"
    assert sorted(p.name for p in jobs.glob("*/cancelled")) == ["cancelled", "cancelled"]
    for pid_file in started.iterdir():
        pid = int(pid_file.read_text())
        wait_for(lambda pid=pid: not _alive(pid), what=f"job process {pid} to end")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose (its parent, the experiment, has exited).
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


# --- a full disk ------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs mounted for the test (needs root, as in CI)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


FULL = """
class Fill(Task, id="xp.fill"):
    def execute(self):
        # Fills the small disk; bounded (8 MB), should the file ever be elsewhere.
        if os.environ.get("NOFILL"):
            return
        written = 0
        with open(os.environ["FILLER"], "ab", buffering=0) as file:
            for size in (65536, 4096, 512, 1):
                try:
                    while written < 8 << 20:
                        written += file.write(b"x" * size)
                except OSError:
                    pass

with experiment(os.environ["WORKDIR"], "full", max_jobs=1):
    Fill().submit().job.wait()  # the disk is full from here on
    for n in range(2):
        Leaf(n=n).submit()
"""


def test_a_full_disk_is_said_plainly(
    script: Callable[..., Script], tmp_path: Path, small_disk: Path
) -> None:
    xp = script(TASKS + FULL)
    wd = small_disk / "wd"
    result = xp.run(env={"WORKDIR": str(wd), "FILLER": str(small_disk / "filler")})
    stderr = result.stderr
    assert result.returncode == 1, stderr
    assert "Traceback" not in stderr and "OSError" not in stderr, stderr
    assert "internal" not in stderr, stderr
    summary = [line for line in stderr.splitlines() if "no space left on device" in line]
    experiment_line = f"experiment 'full': no space left on device in the work directory {wd}"
    assert sum(experiment_line in line for line in summary) == 1, stderr
    failed = [line for line in summary if "FAILED (no_space)" in line]
    assert len(failed) == 3, stderr  # each job once
    # Space freed: the run record can be read, and the next run does the work.
    (small_disk / "filler").unlink()
    again = xp.run(env={"WORKDIR": str(wd), "NOFILL": "1"})
    assert again.returncode == 0, again.stderr
    assert not list(wd.rglob(".*.tmp")), "temporary files were left behind"


# --- the first thing a new user runs --------------------------------------------------------


def test_scripts_hello_shows_the_result(tmp_path: Path) -> None:
    """The example ``scripts/hello`` runs prints HELLO WORLD and where it is kept."""
    root = Path(__file__).resolve().parents[2]
    example = root / "examples" / "helloworld.py"
    for attempt in (1, 2):
        result = subprocess.run(
            [sys.executable, str(example)],
            cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0] == "HELLO WORLD"
        kept = lines[1].split(" kept in ")[1].rstrip(")")
        assert Path(kept).read_text() == "HELLO WORLD\n"
        assert Path(kept).is_relative_to(tmp_path / "workdir" / "jobs")
        if attempt == 2:
            assert "nothing to run: all 3 jobs were already done" in result.stderr
