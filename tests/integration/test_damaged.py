"""A damaged file never breaks a whole work directory: every reader shows what is wrong.

Each test copies a work directory written by a real experiment run, damages one file the
way a crash, a full disk or a careless edit would, and runs every reading command (and the
monitor's JSON API) on it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from xputil import Script, monitor

from partita.cli import cli

XP = """
class Step(Task, id="dmg.step"):
    n: Param[int]
    def execute(self):
        partita.progress(0.5, "half way")
        print("step", self.n)

class Broken(Task, id="dmg.broken"):
    def execute(self):
        raise RuntimeError("boom")

with experiment("wd", "dmg"):
    Step(n=1).tag("kernel", "linear").submit()
    Step(n=2).submit()
    Broken().submit()
"""


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("damaged")
    result = Script(folder, "xp", XP).run()
    assert 1 == result.returncode, result.stderr  # dmg.broken fails, on purpose
    return folder / "wd"


def _job(workdir: Path, type_id: str, n: int | None = None) -> Path:
    for folder in sorted((workdir / "jobs" / type_id).iterdir()):
        params = json.loads((folder / "params.json").read_text())
        fields = params["objects"][params["root"]].get("fields", {})
        if n is None or fields.get("n") == n:
            return folder
    raise AssertionError(f"no {type_id} job with n={n}")


def _run(workdir: Path) -> Path:
    (run,) = (workdir / "experiments" / "dmg" / "runs").iterdir()
    return run


def _write(path: Path, text: str) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    path.write_text(text)


def _make_dir(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "x").write_text("{}")


# Each kind of damage: (what it damages, the file named in the message, how to damage it).
Damage = Callable[[Path], None]
JOB_DAMAGE: dict[str, tuple[str, Damage]] = {
    "state-list": ("state.json", lambda job: _write(job / "state.json", "[1, 2]")),
    "state-not-json": ("state.json", lambda job: _write(job / "state.json", '{"state": "do')),
    "state-empty": ("state.json", lambda job: _write(job / "state.json", "")),
    "state-directory": ("state.json", lambda job: _make_dir(job / "state.json")),
    "state-fields": (
        "state.json",
        lambda job: _write(
            job / "state.json",
            json.dumps(
                {
                    "state": "running",
                    "attempt": "1",
                    "launched": "noon",
                    "started": [1],
                    "launcher": "local",
                    "tags": ["kernel"],
                    "history": [{"state": "running", "time": "x"}, 7],
                }
            ),
        ),
    ),
    "state-history": (
        "state.json",
        lambda job: _write(job / "state.json", json.dumps({"state": "done", "history": "x"})),
    ),
    "marker-list": ("done", lambda job: _write(job / "done", "[1]")),
    "marker-fields": (
        "done",
        lambda job: _write(job / "done", json.dumps({"time": "late", "attempt": 1.5})),
    ),
    "progress-list": ("progress.json", lambda job: _write(job / "progress.json", "[0.5]")),
    "progress-fields": (
        "progress.json",
        lambda job: _write(job / "progress.json", json.dumps({"fraction": "half"})),
    ),
    "params-list": ("params.json", lambda job: _write(job / "params.json", "[]")),
}

RUN_DAMAGE: dict[str, tuple[str, Damage]] = {
    "run-list": ("run.json", lambda run: _write(run / "run.json", "[]")),
    "run-fields": (
        "run.json",
        lambda run: _write(
            run / "run.json",
            json.dumps({"status": 3, "started": "x", "pid": "1", "jobs": [], "process": 1}),
        ),
    ),
    "run-directory": ("run.json", lambda run: _make_dir(run / "run.json")),
    "jsonl-bad-lines": (
        "jobs.jsonl",
        lambda run: (run / "jobs.jsonl").write_text(
            "[1]\n{}\n" + '{"id": 5}\n' + "garbage\n" + (run / "jobs.jsonl").read_text()
        ),
    ),
}


def invoke(*args: Any) -> Result:
    """``partita ARGS`` in-process; it may fail cleanly but never crash."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert isinstance(result.exception, SystemExit | None), (args, result.exception)
    assert "Traceback" not in result.output, (args, result.output)
    return result


def read_commands(workdir: Path, job: str) -> list[list[Any]]:
    """Every reading command, in table and JSON form."""
    return [
        ["jobs", "list", workdir],
        ["jobs", "list", workdir, "--json"],
        ["jobs", "list", workdir, "--tag", 'kernel="linear"'],
        ["jobs", "show", job, "-w", workdir],
        ["jobs", "show", job, "-w", workdir, "--json"],
        ["jobs", "path", job, "-w", workdir],
        ["jobs", "log", job, "-w", workdir],
        ["status", workdir],
        ["status", workdir, "--json"],
        ["experiments", "list", workdir],
        ["experiments", "list", workdir, "--json"],
        ["experiments", "show", "dmg", "-w", workdir],
        ["experiments", "show", "dmg", "-w", workdir, "--json"],
        ["jobs", "clean", "-w", workdir],
    ]


@pytest.mark.parametrize("kind", sorted(JOB_DAMAGE))
def test_damaged_job_is_shown_and_the_rest_still_lists(
    base: Path, tmp_path: Path, kind: str
) -> None:
    workdir = tmp_path / "wd"
    shutil.copytree(base, workdir)
    damaged = _job(workdir, "dmg.step", 1)
    name, damage = JOB_DAMAGE[kind]
    damage(damaged)

    for command in read_commands(workdir, damaged.name[:12]):
        result = invoke(*command)
        assert result.exit_code in (0, 1), (command, result.output)
        if command[:2] != ["jobs", "log"]:
            assert 0 == result.exit_code, (command, result.output)

    listed = {
        job["id"]: job for job in json.loads(invoke("jobs", "list", workdir, "--json").stdout)
    }
    # Every job is listed, the damaged one included.
    assert 3 == len(listed)
    if name != "params.json":
        entry = listed[damaged.name]
        assert entry["damage"], entry
        assert all(item.startswith(f"{name}:") for item in entry["damage"])
        # The others are intact.
        assert [] == [
            job["damage"] for job in listed.values() if job["id"] != damaged.name and job["damage"]
        ]
        table = invoke("jobs", "list", workdir).stdout
        assert "cannot be read" in table and f"{name}:" in table
        shown = invoke("jobs", "show", damaged.name[:12], "-w", workdir).stdout
        assert "damaged" in shown and f"{name}:" in shown
    if name in ("done", "progress.json"):
        # A done marker decides, whatever its contents: the job is still done.
        assert "done" == listed[damaged.name]["state"]
    if kind in ("state-list", "state-not-json", "state-empty", "state-directory"):
        # No marker would say otherwise... but this job has one: its state is known.
        assert "done" == listed[damaged.name]["state"]


def test_damaged_job_without_marker_reads_as_damaged(base: Path, tmp_path: Path) -> None:
    """With no final marker and an unreadable state.json, the state is unknown: 'damaged'."""
    workdir = tmp_path / "wd"
    shutil.copytree(base, workdir)
    damaged = _job(workdir, "dmg.step", 2)
    (damaged / "done").unlink()
    _write(damaged / "state.json", "[]")
    listed = {
        job["id"]: job for job in json.loads(invoke("jobs", "list", workdir, "--json").stdout)
    }
    assert "damaged" == listed[damaged.name]["state"]
    assert ["state.json: expected a JSON object, found a list"] == listed[damaged.name]["damage"]
    status = json.loads(invoke("status", workdir, "--json").stdout)
    assert {"done": 1, "failed": 1, "damaged": 1} == status["jobs"]
    assert [damaged.name] == [job["id"] for job in status["damaged"]]
    assert "1 job with files that cannot be read" in invoke("status", workdir).stdout


@pytest.mark.parametrize("kind", sorted(RUN_DAMAGE))
def test_damaged_run_record(base: Path, tmp_path: Path, kind: str) -> None:
    workdir = tmp_path / "wd"
    shutil.copytree(base, workdir)
    name, damage = RUN_DAMAGE[kind]
    damage(_run(workdir))
    job = _job(workdir, "dmg.step", 1).name[:12]
    for command in read_commands(workdir, job):
        result = invoke(*command)
        assert result.exit_code in (0, 1), (command, result.output)
        if command[:2] != ["jobs", "log"]:
            assert 0 == result.exit_code, (command, result.output)
    assert 3 == len(json.loads(invoke("jobs", "list", workdir, "--json").stdout))
    listed = invoke("experiments", "list", workdir).stdout
    assert "cannot be read" in listed and f"{name}:" in listed
    if name == "jobs.jsonl":
        # The good lines still count: the run's three jobs are known.
        shown = json.loads(invoke("experiments", "show", "dmg", "-w", workdir, "--json").stdout)
        assert 3 == sum(len(jobs) for jobs in shown["jobs"].values())


@pytest.mark.parametrize("kind", ["state-list", "state-fields", "marker-list"])
def test_clean_never_deletes_what_it_cannot_read(base: Path, tmp_path: Path, kind: str) -> None:
    workdir = tmp_path / "wd"
    shutil.copytree(base, workdir)
    damaged = _job(workdir, "dmg.step", 1)
    JOB_DAMAGE[kind][1](damaged)
    result = invoke("jobs", "clean", "-w", workdir, "--include-referenced", "--yes")
    assert 0 == result.exit_code, result.output
    assert damaged.is_dir()
    assert "cannot be read" in result.output
    # What could be read was deleted.
    assert not _job_exists(workdir, "dmg.step", 2)


def _job_exists(workdir: Path, type_id: str, n: int) -> bool:
    try:
        _job(workdir, type_id, n)
    except (AssertionError, FileNotFoundError):
        return False
    return True


def test_no_traceback_from_the_real_command(base: Path, tmp_path: Path) -> None:
    """The installed command, in its own process, on a work directory with every damage."""
    workdir = tmp_path / "wd"
    shutil.copytree(base, workdir)
    JOB_DAMAGE["state-fields"][1](_job(workdir, "dmg.step", 1))
    JOB_DAMAGE["marker-list"][1](_job(workdir, "dmg.step", 2))
    JOB_DAMAGE["progress-list"][1](_job(workdir, "dmg.broken"))
    RUN_DAMAGE["run-list"][1](_run(workdir))
    RUN_DAMAGE["jsonl-bad-lines"][1](_run(workdir))
    job = _job(workdir, "dmg.step", 1).name[:12]
    for command in read_commands(workdir, job):
        done = subprocess.run(
            [sys.executable, "-m", "partita.cli", *map(str, command)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "Traceback" not in done.stdout + done.stderr, (command, done.stderr)
        assert done.returncode in (0, 1), (command, done.stderr)


def test_monitor_api_on_damaged_files(base: Path, tmp_path: Path) -> None:
    """The monitor's JSON API answers for every job and run, damaged ones included."""
    import warnings

    workdir = tmp_path / "wd"
    shutil.copytree(base, workdir)
    first = _job(workdir, "dmg.step", 1)
    JOB_DAMAGE["state-fields"][1](first)
    JOB_DAMAGE["marker-list"][1](_job(workdir, "dmg.step", 2))
    JOB_DAMAGE["progress-list"][1](_job(workdir, "dmg.broken"))
    run = _run(workdir)
    RUN_DAMAGE["run-list"][1](run)
    RUN_DAMAGE["jsonl-bad-lines"][1](run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with monitor(workdir, token="t" * 20) as client:
            jobs = client.get("/api/jobs")
            assert 200 == jobs.status_code
            listed = {job["id"]: job for job in jobs.json()["jobs"]}
            assert 3 == len(listed)
            assert any("state.json:" in item for item in listed[first.name]["damage"])
            for identifier in listed:
                detail = client.get(f"/api/jobs/{identifier}")
                assert 200 == detail.status_code, detail.text
            assert 200 == client.get("/api/experiments").status_code
            answer = client.get(f"/api/experiments/dmg/runs/{run.name}")
            assert 200 == answer.status_code, answer.text


def test_clean_deletes_a_job_whose_only_damage_is_its_progress(base: Path, tmp_path: Path) -> None:
    """progress.json does not decide a job's state: a done job with a bad one can go."""
    workdir = tmp_path / "wd"
    shutil.copytree(base, workdir)
    damaged = _job(workdir, "dmg.step", 1)
    JOB_DAMAGE["progress-list"][1](damaged)
    result = invoke("jobs", "clean", "-w", workdir, "--include-referenced", "--yes")
    assert 0 == result.exit_code, result.output
    assert not damaged.exists()
