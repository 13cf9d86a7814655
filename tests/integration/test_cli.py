"""The ``partita`` command line, on work directories written by real experiment runs."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from xputil import Script

from partita.cli import cli

TASKS = """
class Prepare(Task, id="cli.prepare"):
    n: Param[int]
    def execute(self):
        print("prepared", self.n)

class Train(Task, id="cli.train"):
    data: Param[Prepare]
    lr: Param[float]
    def execute(self):
        for epoch in range(3):
            partita.progress((epoch + 1) / 4, f"epoch {epoch + 1}")
        print("trained", self.lr)

class Evaluate(Task, id="cli.evaluate"):
    model: Param[Train]
    def execute(self):
        print("evaluated")

class Echo(Task, id="cli.echo"):
    value: Param[int | str | bool]
    def execute(self):
        print(repr(self.value))

class Broken(Task, id="cli.broken"):
    def execute(self):
        partita.progress(0.3, "step 3")
        raise RuntimeError("boom")

class After(Task, id="cli.after"):
    broken: Param[Broken]
    def execute(self):
        print("never")

class Old(Task, id="cli.old"):
    def execute(self):
        print("old")
"""

STUDY = (
    TASKS
    + """
with experiment("wd", "study", max_jobs=4):
    if "--old" in sys.argv:
        Old().submit()
    data = Prepare(n=1).submit()
    model = Train(data=data, lr=tag(0.1)).submit()
    Evaluate(model=model).submit()
    Train(data=Prepare(n=2).submit(), lr=tag(0.2)).submit()
    Echo(value=1).tag("y", 1).submit()
    Echo(value="1").tag("y", "1").submit()
    Echo(value=True).tag("flag", True).tag("ratio", 0.5).submit()
    After(broken=Broken().submit()).submit()
"""
)

OTHER = (
    TASKS
    + """
with experiment("wd", "other"):
    Prepare(n=1).submit()
    Prepare(n=3).submit()
"""
)

LONG = """
class Tiny(Task, id="cli.tiny"):
    def execute(self):
        pass

class Long(Task, id="cli.long"):
    first: Param[Tiny]
    n: Param[int]
    def execute(self):
        print("started", flush=True)
        partita.progress(0.1, "sleeping")
        time.sleep(60)

with experiment("wd", "longxp", max_jobs=4, grace_period=2):
    tiny = Tiny().submit()
    Long(first=tiny, n=tag(1)).submit()
    Long(first=tiny, n=tag(2)).submit()
"""


# --- helpers ------------------------------------------------------------------------------


def invoke(
    *args: Any, code: int = 0, env: dict[str, str] | None = None, input: str | None = None
) -> Result:
    """Run ``partita ARGS`` in-process; check the exit code and that nothing crashed."""
    result = CliRunner().invoke(cli, [str(a) for a in args], env=env, input=input)
    assert isinstance(result.exception, SystemExit | None), result.exception
    assert code == result.exit_code, result.output
    return result


def as_json(*args: Any) -> Any:
    """Run ``partita ARGS --json`` and parse its output."""
    return json.loads(invoke(*args, "--json").stdout)


def ids(jobs: list[dict[str, Any]]) -> set[str]:
    """Identifiers of JSON job records."""
    return {job["id"] for job in jobs}


def by_type(workdir: Path, type_id: str) -> list[dict[str, Any]]:
    """JSON records of the jobs of one task type."""
    return as_json("jobs", "list", workdir, "--task", type_id)


def copy_workdir(workdir: Path, target: Path) -> Path:
    """A copy of a work directory (without its index), for tests that change it."""
    shutil.copytree(workdir, target, ignore=shutil.ignore_patterns("index.sqlite*"))
    return target


@pytest.fixture(scope="module")
def wd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs of 'study' (the first also submits cli.old) and one run of 'other'."""
    folder = tmp_path_factory.mktemp("cli")
    study = Script(folder, "study", STUDY)
    first = study.run("--old")
    assert 1 == first.returncode, first.stderr  # cli.broken fails, on purpose
    second = study.run()
    assert 1 == second.returncode, second.stderr
    other = Script(folder, "other", OTHER).run()
    assert 0 == other.returncode, other.stderr
    return folder / "wd"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No $PARTITA_WORKDIR."""
    monkeypatch.delenv("PARTITA_WORKDIR", raising=False)
    yield


# --- jobs list ------------------------------------------------------------------------------


def test_list_table_shows_states_tags_and_progress(wd: Path) -> None:
    """The table lists every job with its state, typed tags and reported progress."""
    output = invoke("jobs", "list", wd).stdout
    for text in ("cli.train", "cli.broken", "failed (error)", "lr=0.1", 'y="1"', "y=1"):
        assert text in output
    (broken,) = [line for line in output.splitlines() if line.startswith("cli.broken")]
    assert "30% step 3" in broken
    assert "█" in broken
    assert "12 jobs: 2 failed, 10 done" in output


def test_list_json(wd: Path) -> None:
    """--json prints one record per job, as JobInfo.to_json()."""
    jobs = as_json("jobs", "list", wd)
    assert 12 == len(jobs)
    assert {"id", "short", "type", "state", "tags", "progress", "experiments"} <= set(jobs[0])
    (broken,) = [job for job in jobs if job["type"] == "cli.broken"]
    assert ("failed", "error", 0.3, "step 3") == (
        broken["state"],
        broken["reason"],
        broken["progress"],
        broken["message"],
    )
    shared = [job["experiments"] for job in jobs if len(job["experiments"]) > 1]
    assert [["study", "other"]] == shared  # Prepare(n=1), submitted by both


def test_list_filters(wd: Path) -> None:
    """--state, --task (exact or part), --experiment select jobs; filters combine."""
    failed = as_json("jobs", "list", wd, "--state", "failed")
    assert {"cli.broken", "cli.after"} == {job["type"] for job in failed}
    assert {"error", "dependency"} == {job["reason"] for job in failed}
    several = as_json("jobs", "list", wd, "-s", "failed", "-s", "done")
    assert 12 == len(several)
    assert 2 == len(as_json("jobs", "list", wd, "--task", "cli.train"))
    assert 2 == len(as_json("jobs", "list", wd, "--task", "train"))
    other = as_json("jobs", "list", wd, "--experiment", "other")
    assert {"cli.prepare"} == {job["type"] for job in other}
    assert 2 == len(other)
    both = as_json("jobs", "list", wd, "--experiment", "other", "--task", "prepare", "-s", "done")
    assert ids(other) == ids(both)
    assert "no job matches these filters" in invoke("jobs", "list", wd, "-t", "nothing").stdout


def test_tag_filter_compares_types(wd: Path) -> None:
    """y=1 is the int, y="1" the string; true, floats and bare words parse as typed."""
    (one,) = as_json("jobs", "list", wd, "--tag", "y=1")
    (text,) = as_json("jobs", "list", wd, "--tag", 'y="1"')
    assert (1, "1") == (one["tags"]["y"], text["tags"]["y"])
    assert one["id"] != text["id"]
    (flagged,) = as_json("jobs", "list", wd, "--tag", "flag=true", "--tag", "ratio=0.5")
    assert {"flag": True, "ratio": 0.5} == flagged["tags"]
    assert [] == as_json("jobs", "list", wd, "--tag", "flag=1")
    assert [] == as_json("jobs", "list", wd, "--tag", "y=abc")
    assert 2 == len(as_json("jobs", "list", wd, "--tag", "lr=0.1"))  # Train and Evaluate


def test_since(wd: Path) -> None:
    """--since takes durations (30m, 1h30m, 2d) and ISO dates."""
    recent = as_json("jobs", "list", wd, "--since", "1h")
    assert 12 == len(recent)
    assert 12 == len(as_json("jobs", "list", wd, "--since", "1h30m"))
    assert 12 == len(as_json("jobs", "list", wd, "--since", "2d"))
    later = (date.today() + timedelta(days=2)).isoformat()
    assert [] == as_json("jobs", "list", wd, "--since", later)
    assert [] == as_json("jobs", "list", wd, "--since", f"{later}T10:30")


# --- jobs show / log / path ---------------------------------------------------------------


def test_show(wd: Path) -> None:
    """show prints parameters (dependencies by name), tags, history, files and dependencies."""
    (train,) = [j for j in by_type(wd, "cli.train") if j["tags"]["lr"] == 0.1]
    (prepare,) = [j for j in by_type(wd, "cli.prepare") if j["id"] in train["depends"]]
    output = invoke("jobs", "show", train["id"][:10], "-w", wd).stdout
    assert f"cli.train/{train['id']}  done" in output
    assert "lr = 0.1" in output
    assert f"data = cli.prepare/{prepare['short']}" in output
    assert f"cli.prepare/{prepare['short']}  done" in output  # dependencies
    assert "tags         lr=0.1" in output
    assert "experiments  study" in output
    assert "running  (attempt 1)" in output
    assert str(wd.resolve() / "jobs" / "cli.train" / train["id"] / "stdout") in output


def test_show_json(wd: Path) -> None:
    """show --json adds the parameters as plain JSON, the history and dependencies."""
    (train,) = [j for j in by_type(wd, "cli.train") if j["tags"]["lr"] == 0.2]
    record = as_json("jobs", "show", f"cli.train/{train['short']}", "-w", wd)
    assert train["id"] == record["id"]
    assert 0.2 == record["params"]["lr"]
    assert {"$type": "cli.prepare", "n": 2} == {
        k: v for k, v in record["params"]["data"].items() if k != "$id"
    }
    assert ["running", "done"] == [entry["state"] for entry in record["history"]]
    assert [("cli.prepare", "done")] == [(d["type"], d["state"]) for d in record["dependencies"]]
    assert record["files"]["stderr"].endswith("/stderr")


def test_show_failed_job_and_folder_reference(wd: Path) -> None:
    """A failed job shows its reason and detail; a job folder path works as a reference."""
    (broken,) = by_type(wd, "cli.broken")
    folder = wd / "jobs" / "cli.broken" / broken["id"]
    output = invoke("jobs", "show", folder, "-w", wd).stdout
    assert "failed (error)" in output
    assert "RuntimeError: boom" in output
    assert "30% step 3" in output


def test_log(wd: Path) -> None:
    """log prints stdout, --stderr the traceback, --lines the end; --follow stops at the end."""
    (train,) = [j for j in by_type(wd, "cli.train") if j["tags"]["lr"] == 0.1]
    assert "trained 0.1\n" == invoke("jobs", "log", train["id"][:8], "-w", wd).stdout
    (broken,) = by_type(wd, "cli.broken")
    stderr = invoke("jobs", "log", broken["id"][:8], "--stderr", "-w", wd).stdout
    assert "RuntimeError: boom" in stderr
    last = invoke("jobs", "log", broken["id"][:8], "--stderr", "-n", "1", "-w", wd).stdout
    assert 1 == len(last.splitlines())
    assert last.strip() in stderr
    empty = invoke("jobs", "log", broken["id"][:8], "-w", wd)
    assert "" == empty.stdout
    hint = f"partita jobs log {broken['id'][:8]} --stderr"
    assert "failed and wrote nothing to stdout" in empty.stderr
    assert hint in empty.stderr
    followed = invoke("jobs", "log", train["id"][:8], "--follow", "-w", wd).stdout
    assert "trained 0.1\n" == followed
    (after,) = by_type(wd, "cli.after")
    missing = invoke("jobs", "log", after["id"][:8], "-w", wd, code=1)
    assert "has no stdout yet" in missing.stderr


def test_path(wd: Path) -> None:
    """path prints the job folder, ready for cd."""
    (broken,) = by_type(wd, "cli.broken")
    output = invoke("jobs", "path", broken["id"][:6], "-w", wd).stdout
    assert f"{wd.resolve() / 'jobs' / 'cli.broken' / broken['id']}\n" == output


# --- diff ---------------------------------------------------------------------------------


def test_diff_nested_and_types(wd: Path) -> None:
    """diff follows nested configs and shows type changes."""
    first, second = sorted(by_type(wd, "cli.train"), key=lambda j: j["tags"]["lr"])
    output = invoke("diff", first["id"][:8], second["id"][:8], "-w", wd).stdout
    assert "data.n: 1 → 2" in output
    assert "lr: 0.1 → 0.2" in output
    (one,) = as_json("jobs", "list", wd, "--tag", "y=1")
    (text,) = as_json("jobs", "list", wd, "--tag", 'y="1"')
    typed = invoke("diff", one["id"][:8], text["id"][:8], "-w", wd).stdout
    assert "value: 1 (int) → '1' (str)" in typed
    report = as_json("diff", first["id"][:8], second["id"][:8], "-w", wd)
    assert {("data.n", "1", "2"), ("lr", "0.1", "0.2")} <= {
        (c["path"], c["before"], c["after"]) for c in report["changes"]
    }
    (evaluate,) = by_type(wd, "cli.evaluate")
    across = invoke("diff", evaluate["id"][:8], first["id"][:8], "-w", wd).stdout
    assert "different tasks: cli.evaluate → cli.train" in across
    assert "model: <cli.train> → (absent)" in across
    assert "lr: (absent) → 0.1" in across


# --- experiments and status ---------------------------------------------------------------


def test_experiments_list(wd: Path) -> None:
    """experiments list: runs, latest status and its jobs by state (text and JSON)."""
    output = invoke("experiments", "list", wd).stdout
    assert "study" in output
    assert "other" in output
    summaries = {entry["name"]: entry for entry in as_json("experiments", "list", wd)}
    assert (2, "failed") == (summaries["study"]["runs"], summaries["study"]["latest"]["status"])
    assert {"failed": 2, "done": 8} == summaries["study"]["latest"]["states"]
    assert {"done": 2} == summaries["other"]["latest"]["states"]


def test_experiments_show(wd: Path) -> None:
    """experiments show: runs with status and host, latest run's jobs grouped by state."""
    output = invoke("experiments", "show", "study", "-w", wd).stdout
    assert "experiment study: 2 runs" in output
    assert "failed (2)" in output
    assert "done (8)" in output
    assert "cli.after" in output and "dependency" in output  # its dependency failed
    record = as_json("experiments", "show", "study", "-w", wd)
    assert ["failed", "failed"] == [run["status"] for run in record["runs"]]
    assert record["latest"] == record["runs"][0]["run"]
    assert {"cli.broken", "cli.after"} == {job["type"] for job in record["jobs"]["failed"]}
    unknown = invoke("experiments", "show", "nope", "-w", wd, code=1)
    assert "no experiment named 'nope'" in unknown.stderr
    assert "Experiments: other, study." in unknown.stderr


def test_status(wd: Path) -> None:
    """status: experiments, counts by state, running jobs (none here)."""
    output = invoke("status", wd).stdout
    assert f"work directory {wd.resolve()}" in output
    assert "12 jobs: 2 failed, 10 done" in output
    summary = as_json("status", wd)
    assert {"failed": 2, "done": 10} == summary["jobs"]
    assert [] == summary["running"]
    assert ["other", "study"] == [entry["name"] for entry in summary["experiments"]]


# --- clean --------------------------------------------------------------------------------


def test_clean_dry_run_then_yes(wd: Path, tmp_path: Path) -> None:
    """Dry run by default; --yes deletes; jobs of latest runs are kept unless asked."""
    copy = copy_workdir(wd, tmp_path / "wd")
    (old,) = by_type(copy, "cli.old")
    old_folder = copy / "jobs" / "cli.old" / old["id"]
    dry = invoke("jobs", "clean", "-w", copy).stdout
    assert "would delete 1 job:" in dry
    (listed,) = [line for line in dry.splitlines() if line.startswith("cli.old")]
    assert old["short"] in listed
    assert " kB" in listed or " B" in listed  # its size
    assert "used by the latest run of experiment 'study'" in dry
    assert "dry run: nothing deleted" in dry
    assert old_folder.is_dir()

    failed = invoke("jobs", "clean", "--state", "failed", "-w", copy).stdout
    assert "cli.broken" in failed
    assert "nothing to delete" in failed

    done = invoke("jobs", "clean", "--yes", "-w", copy).stdout
    assert "deleted 1 job:" in done
    assert not old_folder.exists()
    assert 11 == len(as_json("jobs", "list", copy))

    forced = invoke(
        "jobs", "clean", "--state", "failed", "--include-referenced", "--yes", "-w", copy
    ).stdout
    assert "deleted 2 jobs:" in forced  # cli.broken and cli.after (its dependency failed)
    assert [] == by_type(copy, "cli.broken")
    assert [] == [p for p in copy.iterdir() if p.name.startswith(".deleting")]


# --- errors -------------------------------------------------------------------------------


def test_unknown_and_ambiguous_prefix(wd: Path, tmp_path: Path) -> None:
    """An unknown prefix and an ambiguous one give one-line errors (exit 1) with candidates."""
    copy = copy_workdir(wd, tmp_path / "wd")
    (broken,) = by_type(copy, "cli.broken")
    twin = copy / "jobs" / "cli.broken" / (broken["id"][0] + "f" * 63)
    if twin.name == broken["id"]:
        twin = copy / "jobs" / "cli.broken" / (broken["id"][0] + "e" * 63)
    shutil.copytree(copy / "jobs" / "cli.broken" / broken["id"], twin)
    ambiguous = invoke("jobs", "show", broken["id"][0], "-w", copy, code=1)
    assert ambiguous.stderr.startswith("error: ")
    assert "matches several jobs" in ambiguous.stderr
    assert f"cli.broken/{broken['short']}" in ambiguous.stderr
    assert f"cli.broken/{twin.name[:12]}" in ambiguous.stderr
    assert "Traceback" not in ambiguous.output
    known = ids(as_json("jobs", "list", copy))
    unknown_id = next(c * 12 for c in "0123456789" if not any(i.startswith(c * 12) for i in known))
    unknown = invoke("jobs", "show", unknown_id, "-w", copy, code=1)
    assert f"error: no job matches '{unknown_id}'" in unknown.stderr
    assert 1 == len(unknown.stderr.strip().splitlines())
    not_hex = invoke("jobs", "log", "train!", "-w", copy, code=1)
    assert "expected a job identifier prefix" in not_hex.stderr


def test_bad_tag_and_since(wd: Path) -> None:
    """Bad --tag or --since syntax is a usage error (exit 2) with a one-line message."""
    for args in (["--tag", "y"], ["--tag", "=1"], ["--since", "yesterdayish"], ["--since", "5x"]):
        result = invoke("jobs", "list", wd, *args, code=2)
        assert 1 == len(result.stderr.strip().splitlines()), result.stderr
        assert result.stderr.startswith(f"error: {args[0]}: expected")


def test_missing_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None) -> None:
    """No work directory to be found, or a wrong one given: a clear usage error."""
    monkeypatch.chdir(tmp_path)
    nothing = invoke("status", code=2)
    assert "error: no work directory" in nothing.stderr
    assert "$PARTITA_WORKDIR" in nothing.stderr
    absent = invoke("jobs", "list", tmp_path / "absent", code=2)
    assert "does not exist" in absent.stderr
    (tmp_path / "plain").mkdir()
    plain = invoke("jobs", "list", "-w", tmp_path / "plain", code=2)
    assert "is not a partita work directory" in plain.stderr
    env = invoke("status", code=2, env={"PARTITA_WORKDIR": str(tmp_path / "plain")})
    assert "(from $PARTITA_WORKDIR)" in env.stderr


def test_workdir_defaults(
    wd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    """$PARTITA_WORKDIR, then ./workdir, then the current directory."""
    with_env = invoke("status", "--json", env={"PARTITA_WORKDIR": str(wd)})
    assert str(wd.resolve()) == json.loads(with_env.stdout)["workdir"]
    (tmp_path / "workdir").symlink_to(wd)
    monkeypatch.chdir(tmp_path)
    assert str(tmp_path / "workdir") == as_json("status")["workdir"]
    monkeypatch.chdir(wd)
    assert str(wd.resolve()) == as_json("status")["workdir"]


def test_help_teaches() -> None:
    """Every command's --help has examples."""
    commands = [
        [], ["jobs"], ["jobs", "list"], ["jobs", "show"], ["jobs", "log"], ["jobs", "path"],
        ["jobs", "kill"], ["jobs", "clean"], ["experiments"], ["experiments", "list"],
        ["experiments", "show"], ["diff"], ["status"], ["run"], ["monitor"],
    ]  # fmt: skip
    for command in commands:
        output = invoke(*command, "--help").stdout
        assert "Example" in output, command


# --- kill, on a running experiment ----------------------------------------------------------


def test_kill_running_jobs(script: Any, tmp_path: Path) -> None:
    """Running jobs show progress, are kept by clean, and end cancelled when killed."""
    experiment = script(LONG, name="long").popen()
    wd = tmp_path / "wd"
    follower = None
    try:
        running: list[dict[str, Any]] = []
        deadline = time.time() + 30
        while time.time() < deadline:
            if (wd / "jobs").is_dir():
                running = as_json("jobs", "list", wd, "--state", "running")
                if len(running) == 2 and all(j["message"] == "sleeping" for j in running):
                    break
            time.sleep(0.1)
        first, second = sorted(running, key=lambda j: j["tags"]["n"])
        folders = [wd / "jobs" / "cli.long" / job["id"] for job in (first, second)]

        listed = invoke("jobs", "list", wd).stdout
        assert "10% sleeping" in listed
        status = as_json("status", wd)
        assert ids(running) == ids(status["running"])
        assert "sleeping" in invoke("status", wd).stdout

        kept = invoke("jobs", "clean", "--include-referenced", "--yes", "-w", wd).stdout
        assert f"cli.long/{first['short']} (running): running" in kept
        (tiny,) = by_type(wd, "cli.tiny")
        # The run's submissions are on disk while it runs: its finished jobs are kept too.
        assert f"cli.tiny/{tiny['short']} (done): submitted by run " in kept
        assert "of experiment 'longxp', which is still running" in kept
        assert all(folder.is_dir() for folder in folders)

        follower = subprocess.Popen(
            [sys.executable, "-m", "partita.cli", "jobs", "log", "-f", first["short"], "-w", wd],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        refused = invoke("jobs", "kill", "-w", wd, code=2)
        assert "say which jobs to kill" in refused.stderr
        declined = invoke("jobs", "kill", "--task", "cli.long", "-w", wd, input="n\n", code=1)
        assert "Kill these 2 jobs?" in declined.output
        assert 2 == len(as_json("jobs", "list", wd, "--state", "running"))

        killed = invoke("jobs", "kill", first["short"], "--yes", "--grace", "5", "-w", wd)
        assert f"cli.long/{first['short']} cancelled" in killed.stdout
        assert (folders[0] / "cancelled").exists()
        out, _ = follower.communicate(timeout=15)
        assert "started\n" == out  # --follow ended with the job

        rest = invoke("jobs", "kill", "--tag", "n=2", "-t", "long", "--grace", "5", "-w", wd)
        assert f"cli.long/{second['short']} cancelled" in rest.stdout
        assert (folders[1] / "cancelled").exists()
        assert 0 != experiment.wait(timeout=30)
        again = invoke("jobs", "kill", first["id"][:8], "-w", wd, code=1)
        assert "is cancelled: nothing to kill" in again.stdout
    finally:
        for process in (experiment, follower):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        for state in wd.glob("jobs/*/*/state.json"):
            pid = (json.loads(state.read_text()).get("launcher") or {}).get("pid")
            if pid and not (state.parent / "cancelled").exists():
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)


def test_kill_by_filters_needs_running_jobs(script: Any, tmp_path: Path) -> None:
    """Filters select running jobs only; nothing running means nothing to do."""
    result = invoke("jobs", "kill", "--task", "cli", "-w", _tiny_workdir(script, tmp_path))
    assert "no running job matches these filters" in result.stdout
    state = invoke("jobs", "kill", "--state", "done", "-w", tmp_path / "wd", code=2)
    assert "only running jobs can be killed" in state.stderr


def _tiny_workdir(script: Any, tmp_path: Path) -> Path:
    done = script(
        """
class Tiny(Task, id="cli.tiny"):
    def execute(self):
        pass

with experiment("wd", "tiny"):
    Tiny().submit()
""",
        name="tiny",
    ).run()
    assert 0 == done.returncode, done.stderr
    return tmp_path / "wd"


# --- run and monitor ----------------------------------------------------------------------


def test_run_dry_run_and_exit_code(script: Any, tmp_path: Path) -> None:
    """run --dry-run launches nothing; arguments and the exit code pass through."""
    xp = script(
        """
class Tiny(Task, id="cli.tiny"):
    n: Param[int]
    def execute(self):
        pass

with experiment("wd", "tiny"):
    Tiny(n=len(sys.argv)).submit()
print("args", sys.argv[1:], os.environ.get("PARTITA_DETACH"))
sys.exit(int(os.environ.get("CODE", "0")))
""",
        name="tiny",
    )
    command = [sys.executable, "-m", "partita.cli", "run"]
    dry = subprocess.run(
        [*command, "--detach", str(xp.path), "--dry-run", "--lr", "0.1", "--", "--detach"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert 0 == dry.returncode, dry.stderr
    assert "[dry run] cli.tiny/" in dry.stderr
    assert "would run" in dry.stderr
    assert "args ['--lr', '0.1', '--detach'] 1\n" == dry.stdout
    assert [] == list((tmp_path / "wd" / "jobs").glob("*/*/done"))
    real = subprocess.run(
        [*command, str(xp.path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={**os.environ, "CODE": "3"},
    )  # fmt: skip
    assert 3 == real.returncode, real.stderr
    assert "args [] None\n" == real.stdout
    assert 1 == len(list((tmp_path / "wd" / "jobs").glob("*/*/done")))


def test_monitor_calls_web_serve(wd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """monitor hands the work directory, host and port to partita.web.serve."""
    calls: list[tuple[Any, ...]] = []
    fake = types.ModuleType("partita.web")
    fake.serve = lambda workdir, host, port: calls.append((workdir, host, port))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "partita.web", fake)
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    invoke("monitor", wd, "--port", "8123")
    assert [(wd.resolve(), "127.0.0.1", 8123)] == calls


def test_monitor_without_web_extra(wd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without starlette/uvicorn, monitor says which extra to install (exit 1)."""
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    result = invoke("monitor", wd, code=1)
    assert (
        "error: the web monitor needs the 'web' extra: pip install 'partita[web]'\n"
        == result.stderr
    )


def test_launchers_explain(tmp_path: Path) -> None:
    """launchers explain shows the needs, the rules file, the chosen launcher and why."""
    rules = tmp_path / "launchers.py"
    rules.write_text(
        "from partita import LocalLauncher\n"
        "big = LocalLauncher(16)\n"
        "def find_launcher(needs, task):\n"
        "    return (big, 'wants many cpus') if (needs.cpus or 0) > 4 else None\n"
    )
    chosen = invoke("launchers", "explain", "--cpus", "8", "--time", "2h", "--rules", rules)
    assert "launcher: local (16 at once)" in chosen.stdout
    assert "why: wants many cpus" in chosen.stdout
    assert "'time': 7200.0" in chosen.stdout
    default = invoke("launchers", "explain", "--cpus", "1", "--rules", rules)
    assert "launcher: local\n" in default.stdout
    bad = invoke("launchers", "explain", "--mem", "lots", "--rules", rules, code=1)
    assert "expected a size" in bad.stderr


# --- wording ------------------------------------------------------------------------------


def test_show_lists_only_logs_that_exist(wd: Path) -> None:
    """A job that never ran (its dependency failed) has no log paths to show."""
    (after,) = by_type(wd, "cli.after")
    folder = wd / "jobs" / "cli.after" / after["id"]
    assert not (folder / "stdout").exists() and not (folder / "stderr").exists()
    output = invoke("jobs", "show", after["id"][:10], "-w", wd).stdout
    assert "stdout" not in output and "stderr" not in output
    assert f"params       {folder.resolve() / 'params.json'}" in output
    record = as_json("jobs", "show", after["id"][:10], "-w", wd)
    assert {"folder", "params"} == set(record["files"])
    (broken,) = by_type(wd, "cli.broken")
    record = as_json("jobs", "show", broken["id"][:10], "-w", wd)
    assert {"folder", "params", "stdout", "stderr"} == set(record["files"])


def test_tags_read_the_same_everywhere(wd: Path) -> None:
    """A tag reads as it is typed in a filter: y="1" (a string), y=1 (an int), everywhere."""
    (string,) = [j for j in by_type(wd, "cli.echo") if j["tags"].get("y") == "1"]
    listed = invoke("jobs", "list", wd, "--task", "cli.echo").stdout
    shown = invoke("jobs", "show", string["id"][:10], "-w", wd).stdout
    experiment = invoke("experiments", "show", "study", "-w", wd).stdout
    assert 'tags         y="1"' in shown
    for output in (listed, experiment):
        assert 'y="1"' in output
        assert "y=1" in output.replace('y="1"', "")
        assert "flag=true" in output
    assert 1 == len(as_json("jobs", "list", wd, "--tag", 'y="1"'))


def test_counts_are_plural_only_when_more_than_one(wd: Path, tmp_path: Path) -> None:
    """'1 job', '2 jobs', '[1 item]': never '1 jobs'."""
    copy = copy_workdir(wd, tmp_path / "wd")
    for folder in (copy / "jobs").glob("*/*"):
        if folder.parent.name != "cli.old":
            shutil.rmtree(folder)
    assert "1 job: 1 done" in invoke("status", copy).stdout
    assert "1 job: 1 done" in invoke("jobs", "list", copy).stdout
    output = invoke("jobs", "clean", "-w", copy, "--include-referenced").stdout
    assert "would delete 1 job:" in output
    assert "1 jobs" not in output


def test_python_dash_m_partita_is_the_command(tmp_path: Path) -> None:
    """`python -m partita` works like the `partita` console script (same exit codes)."""
    ran = subprocess.run(
        [sys.executable, "-m", "partita", "gc", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert ran.returncode == 0, ran.stderr
    assert "Usage: partita gc" in ran.stdout
    wrong = subprocess.run(
        [sys.executable, "-m", "partita", "jobs", "list", "-w", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert wrong.returncode == 2 and "error:" in wrong.stderr, wrong.stderr


def test_the_closing_line_of_a_run_of_one_job_says_1_job(script: Any) -> None:
    xp = script(
        """
class One(Task, id="cli.one"):
    def execute(self):
        pass

with experiment("wd", "one"):
    One().submit()
"""
    )
    first = xp.run()
    assert first.returncode == 0, first.stderr
    assert "one: 1 job: 1 done (1 ran, 0 already done)" in first.stderr, first.stderr
    again = xp.run()
    assert "nothing to run: the 1 job was already done" in again.stderr, again.stderr
    assert "1 jobs" not in first.stderr + again.stderr


def test_the_closing_line_of_a_run_without_jobs(script: Any) -> None:
    xp = script(
        """
with experiment("wd", "empty"):
    pass
"""
    )
    done = xp.run()
    assert done.returncode == 0, done.stderr
    assert "empty: no job was submitted (" in done.stderr, done.stderr
    assert "0 jobs:  (" not in done.stderr
