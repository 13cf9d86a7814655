"""Local experiments, end to end, with real processes and real files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from xputil import ROOT, job_dirs, peak_concurrency

import partita
from partita.config import _runtime


def test_helloworld_runs_then_reuses(tmp_path: Path) -> None:
    """The shipped example prints HELLO WORLD; the second run executes nothing and says so."""
    shutil.copy(ROOT / "examples" / "helloworld.py", tmp_path)
    first = subprocess.run(
        [sys.executable, "helloworld.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert 0 == first.returncode, first.stderr
    workdir = tmp_path / "workdir"
    (concat,) = job_dirs(workdir, "helloworld.concat")
    assert "HELLO WORLD\n" == (concat / "stdout").read_text()
    says = job_dirs(workdir, "helloworld.say")
    assert 2 == len(says)
    for folder in [concat, *says]:
        for name in ("params.json", "stdout", "stderr", "state.json", "done"):
            assert (folder / name).exists(), f"{folder}/{name}"
        assert "done" == json.loads((folder / "state.json").read_text())["state"]
    mtimes = {f: (f / "done").stat().st_mtime_ns for f in [concat, *says]}
    second = subprocess.run(
        [sys.executable, "helloworld.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert 0 == second.returncode, second.stderr
    assert "nothing to run: all 3 jobs were already done" in second.stderr
    assert "running" not in second.stderr
    assert mtimes == {f: (f / "done").stat().st_mtime_ns for f in mtimes}


def test_parallel_then_dependent(script) -> None:  # type: ignore[no-untyped-def]
    """Independent jobs overlap in time; a dependent job starts after both ended."""
    xp = script("""
    class Slow(Task, id="t.slow"):
        n: Param[int]
        def execute(self):
            # Each waits until both are running: only jobs that run at once can finish.
            start = time.time()
            meet = Path(os.environ["MEET"])
            (meet / str(self.n)).touch()
            deadline = time.monotonic() + 60
            while len(list(meet.iterdir())) < 2:
                assert time.monotonic() < deadline, "the other job never ran at the same time"
                time.sleep(0.02)
            print(json.dumps([start, time.time()]))

    class Join(Task, id="t.join"):
        parts: Param[list[Slow]]
        def execute(self):
            print(json.dumps([time.time()]))

    with experiment("wd", "par", max_jobs=2) as xp:
        a = Slow(n=1).submit(); b = Slow(n=2).submit()
        Join(parts=[a, b]).submit()
    """)
    (xp.folder / "meet").mkdir()
    result = xp.run(env={"MEET": str(xp.folder / "meet")})
    assert 0 == result.returncode, result.stderr
    wd = xp.folder / "wd"
    spans = [json.loads((d / "stdout").read_text()) for d in job_dirs(wd, "t.slow")]
    (join,) = job_dirs(wd, "t.join")
    (join_start,) = json.loads((join / "stdout").read_text())
    assert max(s[0] for s in spans) < min(s[1] for s in spans), "the two jobs did not overlap"
    assert join_start >= max(s[1] for s in spans)


def test_max_jobs_bounds_concurrency(script) -> None:  # type: ignore[no-untyped-def]
    """With max_jobs=2, never more than two jobs run at once."""
    xp = script("""
    class Work(Task, id="t.work"):
        n: Param[int]
        def execute(self):
            start = time.time()
            if self.n < 2:  # the first two wait for each other: two do run at once
                meet = Path(os.environ["MEET"])
                (meet / str(self.n)).touch()
                deadline = time.monotonic() + 60
                while len(list(meet.iterdir())) < 2:
                    assert time.monotonic() < deadline, "the first two never ran at once"
                    time.sleep(0.02)
            time.sleep(0.3)
            print(json.dumps([start, time.time()]))

    with experiment("wd", "cap", max_jobs=2):
        for i in range(6):
            Work(n=i).submit()
    """)
    (xp.folder / "meet").mkdir()
    result = xp.run(env={"MEET": str(xp.folder / "meet")})
    assert 0 == result.returncode, result.stderr
    spans = [json.loads((d / "stdout").read_text()) for d in job_dirs(xp.folder / "wd", "t.work")]
    assert 6 == len(spans)
    assert 2 == peak_concurrency(spans)


def test_failure_fails_experiment_and_skips_dependents(script) -> None:  # type: ignore[no-untyped-def]
    """A failing task fails the experiment (non-zero exit), skips its dependents, keeps stderr."""
    xp = script("""
    class Boom(Task, id="t.boom"):
        x: Param[int]
        def execute(self):
            if os.environ.get("BOOM") == "1":
                raise RuntimeError("kaboom")
            print("fine")

    class After(Task, id="t.after"):
        dep: Param[Boom]
        def execute(self):
            print("after ran")

    class Other(Task, id="t.other"):
        def execute(self):
            print("other ran")

    with experiment("wd", "fail") as xp:
        b = Boom(x=1).submit()
        After(dep=b).submit()
        Other().submit()
    """)
    result = xp.run(env={"BOOM": "1"})
    assert 1 == result.returncode
    wd = xp.folder / "wd"
    (boom,) = job_dirs(wd, "t.boom")
    (after,) = job_dirs(wd, "t.after")
    (other,) = job_dirs(wd, "t.other")
    assert "did not complete" in result.stderr
    assert "Traceback" not in result.stderr  # the message and the paths, no traceback
    assert str(boom / "stderr") in result.stderr
    assert "kaboom" in (boom / "stderr").read_text()
    assert (boom / "failed").exists() and not (boom / "done").exists()
    assert "error" == json.loads((boom / "failed").read_text())["reason"]
    assert not (after / "stdout").exists(), "a dependent of a failed job must not run"
    assert "dependency" in result.stderr
    assert (other / "done").exists()
    # Fixed: the failed job and its dependent run; the done one is reused.
    other_done = (other / "done").stat().st_mtime_ns
    result = xp.run(env={"BOOM": "0"})
    assert 0 == result.returncode, result.stderr
    assert (boom / "done").exists() and not (boom / "failed").exists()
    assert "after ran\n" == (after / "stdout").read_text()
    assert other_done == (other / "done").stat().st_mtime_ns


def test_submit_returns_immediately(script) -> None:  # type: ignore[no-untyped-def]
    """submit() does not wait for the job; leaving the block does.

    The job cannot end before the script opens its gate, which it does only once submit()
    returned: had submit() waited for the job, the job would fail at its deadline.
    """
    xp = script("""
    GATE = Path(os.environ["GATE"])

    class Gated(Task, id="t.gated"):
        def execute(self):
            deadline = time.monotonic() + 60
            while not GATE.exists():
                assert time.monotonic() < deadline, "submit() waited for the job"
                time.sleep(0.02)

    with experiment("wd", "quick") as xp:
        folder = Gated().submit().jobdir
        GATE.touch()  # reached only once submit() returned
    print(json.dumps({"done after the block": (folder / "done").exists()}))
    """)
    result = xp.run(env={"GATE": str(xp.folder / "gate")}, timeout=120)
    assert 0 == result.returncode, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"done after the block": True} == outcome


def test_run_records_tags_and_dependencies(tmp_path: Path) -> None:
    """Each run records what it submitted, with tags and dependencies."""
    shutil.copy(ROOT / "examples" / "helloworld.py", tmp_path)
    for _ in range(2):
        subprocess.run(
            [sys.executable, "helloworld.py"],
            cwd=tmp_path,
            check=True,
            capture_output=True,
            timeout=60,
        )
    runs = sorted((tmp_path / "workdir" / "experiments" / "helloworld" / "runs").iterdir())
    assert 2 == len(runs)
    for run in runs:
        lines = [json.loads(x) for x in (run / "jobs.jsonl").read_text().splitlines()]
        by_type = {}
        for line in lines:
            by_type.setdefault(line["type"], []).append(line)
        (concat,) = by_type["helloworld.concat"]
        assert {"y": 1} == concat["tags"]
        assert sorted(x["id"] for x in by_type["helloworld.say"]) == sorted(concat["depends"])
        info = json.loads((run / "run.json").read_text())
        assert "done" == info["status"]
        assert {"done"} == set(info["jobs"].values())


def test_job_runner_imports_little() -> None:
    """`import partita.run` loads neither the scheduler, launchers, CLI, web nor asyncio."""
    code = (
        "import sys, partita.run; "
        "print(' '.join(m for m in sys.modules if m.startswith(('partita', 'asyncio'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    for forbidden in (
        "partita.scheduler",
        "partita.launchers",
        "partita.cli",
        "partita.web",
        "partita._experiment",
        "asyncio",
    ):
        assert not any(m == forbidden or m.startswith(forbidden + ".") for m in out), out


def test_class_after_experiment_block_is_refused(script) -> None:  # type: ignore[no-untyped-def]
    """A task class defined after `with experiment` cannot be imported by jobs: clear error."""
    xp = script("""
    with experiment("wd", "early"):
        pass

    class Late(Task, id="t.late"):
        def execute(self):
            print("ran")

    with experiment("wd", "late"):
        Late().submit()
    """)
    result = xp.run()
    assert 0 != result.returncode
    assert "TaskImportError" in result.stderr
    assert "move the class above it" in result.stderr
    assert not (xp.folder / "wd" / "jobs").exists()


def test_local_class_is_refused(script) -> None:  # type: ignore[no-untyped-def]
    """A task class defined inside a function is refused before anything is launched."""
    xp = script("""
    def make():
        class Inner(Task, id="t.inner"):
            def execute(self):
                pass
        return Inner

    with experiment("wd", "inner"):
        make()().submit()
    """)
    result = xp.run()
    assert 0 != result.returncode
    assert "defined inside a function" in result.stderr


def test_task_outputs_create_dependencies(script) -> None:  # type: ignore[no-untyped-def]
    """A config returned by outputs() carries its task: using it makes a dependency."""
    xp = script("""
    class Checkpoint(Config, id="t.checkpoint"):
        path: Param[Path]

    class Train(Task, id="t.train"):
        epochs: Param[int]
        model: Meta[Path] = field(default_factory=PathGenerator("model.txt"))
        def execute(self):
            time.sleep(0.3)
            self.model.write_text(f"trained {self.epochs}")
        def outputs(self):
            return Checkpoint(path=self.model)

    class Evaluate(Task, id="t.evaluate"):
        checkpoint: Param[Checkpoint]
        def execute(self):
            print(self.checkpoint.path.read_text())

    with experiment("wd", "outputs") as xp:
        ckpt = Train(epochs=3).submit()
        assert isinstance(ckpt, Checkpoint)
        Evaluate(checkpoint=ckpt).submit()
    """)
    result = xp.run()
    assert 0 == result.returncode, result.stderr
    wd = xp.folder / "wd"
    (train,) = job_dirs(wd, "t.train")
    (evaluate,) = job_dirs(wd, "t.evaluate")
    assert "trained 3\n" == (evaluate / "stdout").read_text()
    params = json.loads((evaluate / "params.json").read_text())
    paths = [o["fields"]["path"] for o in params["objects"] if o["type"] == "t.checkpoint"]
    assert [{"$path": f"jobs/t.train/{train.name}/model.txt", "base": "workspace"}] == paths


def test_load_script_task_from_job_folder(tmp_path: Path) -> None:
    """partita.load() rebuilds a task defined in the experiment script, with its identifier."""
    shutil.copy(ROOT / "examples" / "helloworld.py", tmp_path)
    subprocess.run(
        [sys.executable, "helloworld.py"], cwd=tmp_path, check=True, capture_output=True, timeout=60
    )
    (concat,) = job_dirs(tmp_path / "workdir", "helloworld.concat")
    try:
        cfg = partita.load(concat)
        assert concat.name == partita.identifier(cfg)
        assert ["hello", "world"] == [s.word for s in cfg.strings]
        assert "HELLO WORLD\n" == cfg.stdout().read_text()
    finally:
        _runtime.set_current_workspace(None)


def test_killed_job_is_lost_not_done(script) -> None:  # type: ignore[no-untyped-def]
    """A job process killed with SIGKILL is recorded as failed (lost), never done."""
    xp = script("""
    import signal
    class Victim(Task, id="t.victim"):
        def execute(self):
            os.kill(os.getpid(), signal.SIGKILL)

    with experiment("wd", "kill"):
        Victim().submit()
    """)
    result = xp.run()
    assert 1 == result.returncode
    (victim,) = job_dirs(xp.folder / "wd", "t.victim")
    assert not (victim / "done").exists()
    marker = json.loads((victim / "failed").read_text())
    assert "lost" == marker["reason"]
    assert "SIGKILL" in marker["detail"]


def test_task_sees_its_folder(script) -> None:  # type: ignore[no-untyped-def]
    """Inside execute(): cwd is the job folder; jobdir, stdout() and stderr() point into it."""
    xp = script("""
    class Where(Task, id="t.where"):
        def execute(self):
            print(json.dumps({"cwd": os.getcwd(), "jobdir": str(self.jobdir),
                              "stdout": str(self.stdout()), "stderr": str(self.stderr())}))

    with experiment("wd", "where"):
        Where().submit()
    """)
    result = xp.run()
    assert 0 == result.returncode, result.stderr
    (folder,) = job_dirs(xp.folder / "wd", "t.where")
    seen = json.loads((folder / "stdout").read_text())
    assert str(folder) == seen["jobdir"] == seen["cwd"]
    assert str(folder / "stdout") == seen["stdout"]
    assert str(folder / "stderr") == seen["stderr"]


@pytest.mark.parametrize("bad", ["", "../up", "a/b", ".hidden"])
def test_bad_experiment_name(tmp_path: Path, bad: str) -> None:
    """Invalid experiment names are refused with a clear error."""
    with pytest.raises(partita.errors.ExperimentError, match="experiment name"):
        partita.experiment(tmp_path / "wd", bad)


def test_broken_workdir_is_refused(tmp_path: Path) -> None:
    """A work directory that is a file, or a non-empty foreign folder, is refused."""
    (tmp_path / "file").write_text("x")
    with pytest.raises(partita.errors.WorkspaceError, match="found a file"):
        partita.experiment(tmp_path / "file", "x")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("x")
    with pytest.raises(partita.errors.WorkspaceError, match="not a partita work directory"):
        partita.experiment(foreign, "x")
    assert not (foreign / ".partita").exists()
    os.chmod(tmp_path, 0o755)
