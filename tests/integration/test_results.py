"""Results a task reports, the results table, load_run and explain, on real jobs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from xputil import Script, job_dirs

from partita.workspace import JobPaths, read_job_environment, read_results

REPORTING = """
class Fit(Task, id="res.fit"):
    n: Param[int]
    def execute(self):
        for epoch in range(3):
            partita.report(loss=1.0 / (epoch + 1))
        partita.report(step=10, loss=float("nan"))
        partita.report(accuracy=0.5 + self.n / 10, note="ok", extra={"a": [1, 2]})
        (partita.artifacts() / "model.txt").write_text("weights")
        if self.n == 2:
            partita.report(bad=object())

with experiment(sys.argv[1], "fit") as xp:
    for n in (1, 2):
        Fit(n=n).submit()
"""


ONCE = """
import json

class Once(Task, id="res.once"):
    how: Param[str]
    def execute(self):
        # Nothing recorded yet while the task runs: the environment is written at the end.
        with open("state.json") as state:
            partita.report(present="environment" in json.load(state))
        if self.how == "raise":
            raise RuntimeError("boom")

with experiment(sys.argv[1], "once") as xp:
    for how in ("return", "raise"):
        Once(how=how).submit()
"""


def test_environment_is_written_once_when_the_task_ends(tmp_path: Path) -> None:
    """One environment per attempt, written with its final state however the task ends."""
    out = Script(tmp_path, "once", ONCE).run(str(tmp_path / "wd"))
    assert out.returncode == 1, out.stderr
    folders = job_dirs(tmp_path / "wd", "res.once")
    assert len(folders) == 2
    for folder in folders:
        paths = JobPaths(folder)
        assert read_results(paths)["values"]["present"] is False
        env = read_job_environment(paths)
        assert env["damage"] == []
        # What is known at the start and what is measured at the end, in one record.
        assert env["attempt"] == "1" and env["code"]["class"] == "Once"
        assert env["started"] <= env["ended"] and env["cpu_seconds"] > 0
        # In the final state itself (the done/failed marker links the same file): no file
        # of its own to create for each job.
        marker = folder / ("done" if (folder / "done").exists() else "failed")
        assert json.loads(marker.read_text())["environment"]["pid"] == env["pid"]
        assert not paths.environment.exists()


RETRIED = """
import os
from pathlib import Path
from partita import Retry

class Twice(Task, id="res.twice"):
    def execute(self):
        flag = Path(os.environ["FLAG"])
        if not flag.exists():
            flag.write_text(str(os.getpid()))
            raise RuntimeError("first attempt fails")

with experiment(sys.argv[1], "twice") as xp:
    Twice().submit(retries=Retry(count=1, on={"error"}))
"""


def test_an_earlier_attempts_environment_is_set_aside_with_its_files(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    out = Script(tmp_path, "twice", RETRIED).run(str(tmp_path / "wd"), env={"FLAG": str(flag)})
    assert out.returncode == 0, out.stderr
    (folder,) = job_dirs(tmp_path / "wd", "res.twice")
    paths = JobPaths(folder)
    current = read_job_environment(paths)
    assert current["damage"] == [] and current["attempt"] == "2"
    first = json.loads((paths.attempt_dir(1) / paths.environment.name).read_text())
    assert first["attempt"] == "1" and first["pid"] == int(flag.read_text())
    assert "first attempt fails" in (paths.attempt_dir(1) / "stderr").read_text()


def test_report_writes_values_series_and_artifacts(tmp_path: Path) -> None:
    script = Script(tmp_path, "fit", REPORTING)
    out = script.run(str(tmp_path / "wd"))
    assert out.returncode == 1, out.stderr
    folders = job_dirs(tmp_path / "wd", "res.fit")
    assert len(folders) == 2
    done = [f for f in folders if (f / "done").exists()]
    failed = [f for f in folders if (f / "failed").exists()]
    assert len(done) == 1 and len(failed) == 1
    results = read_results(JobPaths(done[0]))
    assert results["damage"] == []
    assert results["values"]["accuracy"] == pytest.approx(0.6)
    assert results["values"]["note"] == "ok"
    assert results["values"]["extra"] == {"a": [1, 2]}
    assert math.isnan(results["values"]["loss"])
    steps = [point[0] for point in results["series"]["loss"]]
    assert steps == [1, 2, 3, 10]
    assert [point[1] for point in results["series"]["loss"][:3]] == pytest.approx([1, 0.5, 1 / 3])
    assert "note" not in results["series"]
    assert (done[0] / "artifacts" / "model.txt").read_text() == "weights"
    # The value that could not be stored failed its job, with a message in stderr.
    stderr = (failed[0] / "stderr").read_text()
    assert "ReportError" in stderr and "report(bad=...)" in stderr
    # What was reported before the bad value is kept.
    assert read_results(JobPaths(failed[0]))["values"]["accuracy"] == pytest.approx(0.7)
    env = read_job_environment(JobPaths(done[0]))
    assert env["damage"] == []
    assert env["wall_seconds"] >= 0 and env["cpu_seconds"] > 0
    assert env["peak_memory_bytes"] > 1_000_000
    assert env["code"]["class"] == "Fit" and len(env["code"]["class_sha256"]) == 64
    assert env["code"]["file"] == str(script.path)


def test_read_results_survives_damage(tmp_path: Path) -> None:
    paths = JobPaths(tmp_path)
    assert read_results(paths) == {"values": {}, "series": {}, "damage": []}
    paths.results.write_text("{not json")
    damaged = read_results(paths)
    assert damaged["values"] == {} and damaged["damage"][0].startswith("results.json: not valid")
    paths.results.write_text(
        json.dumps({"values": {"a": 1, "b": "nan"}, "series": {"a": [[1, 1, 2.0], "x"], "c": 3}})
    )
    partial = read_results(paths)
    assert partial["values"] == {"a": 1, "b": "nan"}
    assert partial["series"] == {"a": [[1, 1, 2.0]]}
    assert len(partial["damage"]) == 2


SWEEP = """
class Split(Task, id="res.split"):
    seed: Param[int]
    def execute(self):
        partita.report(size=100 + self.seed)

class Train(Task, id="res.train"):
    split: Param[Split]
    lr: Param[float]
    layers: Param[int] = 2
    def execute(self):
        if self.lr == 0.3 and os.environ.get("FAIL_LR"):
            raise RuntimeError("diverged")
        for epoch in range(3):
            partita.report(loss=self.lr / (epoch + 1))

class Evaluate(Task, id="res.eval"):
    model: Param[Train]
    def execute(self):
        partita.report(accuracy=1 - self.model.lr, metrics={"f1": 0.5})

LRS = [float(x) for x in os.environ.get("LRS", "0.1,0.2,0.3").split(",")]
with experiment(sys.argv[1] if len(sys.argv) > 1 else "wd", "sweep") as xp:
    split = Split(seed=tag(7)).submit()
    for lr in LRS:
        for layers in [int(x) for x in os.environ.get("LAYERS", "2,4").split(",")]:
            model = Train(split=split, lr=tag(lr), layers=tag(layers)).submit()
            Evaluate(model=model).submit()
"""


def _sweep(tmp_path: Path) -> tuple[Script, Path]:
    """The sweep, run once with a failure (lr=0.3 diverges), then again without."""
    script = Script(tmp_path, "sweep", SWEEP)
    workdir = tmp_path / "wd"
    first = script.run(str(workdir), env={"FAIL_LR": "1"})
    assert first.returncode == 1, first.stderr
    assert "diverged" in first.stderr
    second = script.run(str(workdir))
    assert second.returncode == 0, second.stderr
    return script, workdir


def test_results_table_of_a_real_sweep(tmp_path: Path) -> None:
    import partita

    _, workdir = _sweep(tmp_path)
    table = partita.results(workdir, task="res.eval")
    assert len(table) == 6
    assert set(table["state"]) == {"done"}
    # Parameters follow producers: the Train's lr and layers, the Split's seed.
    assert sorted(zip(table["model.lr"], table["model.layers"], strict=True)) == [
        (lr, layers) for lr in (0.1, 0.2, 0.3) for layers in (2, 4)
    ]
    assert set(table["model.split.seed"]) == {7}
    assert table["accuracy"].tolist() == pytest.approx([1 - lr for lr in table["model.lr"]])
    assert set(table["metrics.f1"]) == {0.5}
    # Varying columns first (after id, task, state); constant ones after the results.
    columns = list(table.columns)
    assert columns[:3] == ["id", "task", "state"]
    assert set(columns[3:7]) == {"lr", "layers", "model.lr", "model.layers"}
    assert columns.index("accuracy") < columns.index("model.split.seed")
    assert columns[-4:] == ["submitted", "started", "ended", "duration"]
    assert str(table["started"].dtype).startswith("datetime64")
    narrow = partita.results(workdir, task="res.eval", varying_only=True)
    assert "model.split.seed" not in narrow.columns and "model.lr" in narrow.columns
    # The rerun made the failed Train done; every Train reported its series.
    trains = partita.results(workdir, experiment="sweep", task="res.train", tags={"lr": 0.3})
    assert len(trains) == 2 and set(trains["state"]) == {"done"}
    assert trains["loss"].tolist() == pytest.approx([0.1, 0.1])
    everything = partita.results(workdir, state=None)
    assert len(everything) == 13
    assert set(everything["task"]) == {"res.split", "res.train", "res.eval"}
    # The tag "lr" and the Train's own lr share one column.
    assert "tag.lr" not in everything.columns
    # A selection that matches nothing says why.
    with pytest.raises(partita.errors.ResultsError, match=r"did you mean: res\.eval"):
        partita.results(workdir, task="res.evl")
    with pytest.raises(partita.errors.ResultsError, match=r"lr=0\.5.*0\.1"):
        partita.results(workdir, tags={"lr": 0.5})
    with pytest.raises(partita.errors.ResultsError, match=r"no job has the tag 'lrr'.*lr"):
        partita.results(workdir, tags={"lrr": 0.1})
    with pytest.raises(partita.errors.ResultsError, match="none is failed"):
        partita.results(workdir, state="failed")
    with pytest.raises(partita.errors.ResultsError, match="expected a job state"):
        partita.results(workdir, state="fail")
    with pytest.raises(partita.errors.ResultsError, match="did you mean: sweep"):
        partita.results(workdir, experiment="swep")

    run = partita.load_run(workdir, "sweep")
    assert len(run.tasks) == 13 and run.status == "done"
    splits = {id(task.split) for task in run.tasks if type(task).__name__ == "Train"}
    assert len(splits) == 1  # one Split object under every Train, as submitted
    evaluate = run.jobs[2]
    assert evaluate.task.model is run.tasks[1]
    assert evaluate.state == "done" and evaluate.results["accuracy"] == pytest.approx(0.9)
    first = partita.load_run(
        workdir,
        "sweep",
        # The other run: run ids are not ordered within one second.
        run=next(
            p.name
            for p in (workdir / "experiments" / "sweep" / "runs").iterdir()
            if p.name != run.run
        ),
    )
    assert first.run != run.run and len(first.jobs) == 13
    with pytest.raises(partita.errors.ResultsError, match="no run of 'nope'"):
        partita.load_run(workdir, "nope")


def test_results_and_explain_commands(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from partita.cli import cli

    script, workdir = _sweep(tmp_path)
    runner = CliRunner()
    wd = ["-w", str(workdir)]
    out = runner.invoke(cli, ["results", *wd, "--task", "res.eval", "--csv"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    header = lines[0].split(",")
    assert header[:3] == ["id", "task", "state"] and "model.split.seed" in header
    assert len(lines) == 7
    out = runner.invoke(cli, ["results", *wd, "--tag", "layers=4", "--json", "--varying"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert len(data["rows"]) == 6
    assert "model.split.seed" not in data["columns"]
    assert "layers" not in data["columns"]  # the same in every row selected
    assert {row["lr"] for row in data["rows"]} == {0.1, 0.2, 0.3}
    out = runner.invoke(cli, ["results", *wd, "--task", "res.eval"])
    assert out.exit_code == 0 and "accuracy" in out.output and "6 jobs" in out.output
    out = runner.invoke(cli, ["results", *wd, "--task", "evl"])
    assert out.exit_code == 1 and "no task matches 'evl'" in out.output
    out = runner.invoke(cli, ["results", *wd, "--csv", "--json"])
    assert out.exit_code == 2
    # A damaged results file: a warning, and the job is still a row.
    evaluations = job_dirs(workdir, "res.eval")
    (evaluations[0] / "results.json").write_text("{broken")
    out = runner.invoke(cli, ["results", *wd, "--task", "res.eval", "--json"])
    assert out.exit_code == 0
    assert len(json.loads(out.stdout)["rows"]) == 6 and "results.json: not valid" in out.stderr

    # A new learning rate: explain names the parameter that differs from its nearest sibling.
    third = script.run(str(workdir), env={"LRS": "0.1,0.25", "LAYERS": "2"})
    assert third.returncode == 0, third.stderr
    table = json.loads(
        runner.invoke(
            cli, ["results", *wd, "--json", "--tag", "lr=0.25", "--task", "res.train"]
        ).output
    )
    new = table["rows"][0]["id"]
    out = runner.invoke(cli, ["explain", *wd, new[:10]])
    assert out.exit_code == 0, out.output
    assert "lr: 0.2 → 0.25" in out.output or "lr: 0.3 → 0.25" in out.output
    assert "the code of Train is the same" in out.output
    out = runner.invoke(cli, ["explain", *wd, new[:10], "--json"])
    explained = json.loads(out.output)
    assert [change["path"] for change in explained["changes"]] == ["lr"]
    assert explained["siblings"] == 6 and explained["code"]["class_changed"] is False
    # The failed-then-rerun job says it ran twice.
    rerun = json.loads(
        runner.invoke(
            cli, ["results", *wd, "--json", "--tag", "lr=0.3", "--tag", "layers=2", "-t", "train"]
        ).output
    )["rows"][0]["id"]
    out = runner.invoke(cli, ["explain", *wd, rerun[:10]])
    assert "it ran 2 times: attempt 1 failed (error), attempt 2 done" in out.output

    # Train's code changes: explain and jobs show say so; the identity does not move.
    source = script.path.read_text()
    script.path.write_text(source.replace("for epoch in range(3):", "for epoch in range(4):"))
    out = runner.invoke(cli, ["explain", *wd, new[:10]])
    assert "Train's code changed since this job ran" in out.output
    assert "bump a Constant to rerun" in out.output
    out = runner.invoke(cli, ["jobs", "show", *wd, new[:10]])
    assert out.exit_code == 0, out.output
    assert "Train's code changed since this job ran" in out.output
    assert "loss = 0.0833" in out.output and "(3 points)" in out.output
    assert "peak memory" in out.output and "cpu time" in out.output
    shown = json.loads(runner.invoke(cli, ["jobs", "show", *wd, new[:10], "--json"]).output)
    assert shown["code"]["class_changed"] is True
    assert len(shown["results"]["series"]["loss"]) == 3
    assert shown["environment"]["host"] and shown["environment"]["wall_seconds"] >= 0
    # An Evaluate's class did not change: its module did, which is said in explain only.
    evaluation = json.loads(
        runner.invoke(
            cli, ["results", *wd, "--json", "--tag", "lr=0.25", "--task", "res.eval"]
        ).output
    )["rows"][0]["id"]
    out = runner.invoke(cli, ["explain", *wd, evaluation[:10]])
    assert "the module of Evaluate" in out.output and "its class did not" in out.output
    out = runner.invoke(cli, ["explain", *wd, "zzzz"])
    assert out.exit_code == 1 and "error:" in out.output

    # The run's environment: command line, host, Python, packages.
    out = runner.invoke(cli, ["experiments", "show", *wd, "sweep"])
    assert out.exit_code == 0, out.output
    assert "command" in out.output and "sweep.py" in out.output and "packages" in out.output
    env = json.loads(runner.invoke(cli, ["experiments", "show", *wd, "sweep", "--json"]).output)[
        "environment"
    ]
    assert env["argv"][0].endswith("sweep.py") and env["host"] and "packages" in env


def test_the_run_environment_records_the_scripts_git_state(tmp_path: Path) -> None:
    import subprocess

    from partita.workspace import RunPaths, Workspace, iter_runs, read_environment

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    script = Script(tmp_path, "fit", REPORTING.replace("(1, 2)", "(1,)"))
    git("init", "-q")
    git("add", "fit.py")
    git("commit", "-q", "-m", "first")
    commit = git("rev-parse", "HEAD")
    script.path.write_text(script.path.read_text() + "# an uncommitted line\n")
    (tmp_path / "notes.txt").write_text("untracked")
    (tmp_path / ".gitignore").write_text("wd/\n")
    out = script.run(str(tmp_path / "wd"), "--flag")
    assert out.returncode == 0, out.stderr
    (run,) = list(iter_runs(Workspace(tmp_path / "wd", create=False), "fit"))
    env = read_environment(RunPaths(run.root))
    assert env["git"]["commit"] == commit and env["git"]["dirty"] is True
    assert "+# an uncommitted line" in env["git"]["diff"]
    assert "notes.txt" in env["git"]["untracked"]
    assert env["argv"][1:] == [str(tmp_path / "wd"), "--flag"]
    assert env["script"] == str(script.path) and env["host"]
    assert "partita" in env["packages"] or "partita" in env["editable"]


RESUMABLE = """
class Long(partita.ResumableTask, id="res.long"):
    def execute(self):
        partita.report(loss=1.0 / self.attempt, attempt=self.attempt)
        if os.environ.get("STOP"):
            raise RuntimeError("preempted, say")

with experiment(sys.argv[1], "long"):
    Long().submit()
"""


def test_a_resumed_task_keeps_its_results(tmp_path: Path) -> None:
    script = Script(tmp_path, "long", RESUMABLE)
    assert script.run(str(tmp_path / "wd"), env={"STOP": "1"}).returncode == 1
    out = script.run(str(tmp_path / "wd"))
    assert out.returncode == 0, out.stderr
    (folder,) = job_dirs(tmp_path / "wd", "res.long")
    results = read_results(JobPaths(folder))
    assert results["values"]["attempt"] == 2
    assert [point[:2] for point in results["series"]["loss"]] == [[1, 1.0], [2, 0.5]]
