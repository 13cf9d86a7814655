"""Transient tasks with real jobs: run only when a job that is not done needs them.

A transient ``Prep`` feeds a ``Train``. The first run runs both; the second (train done)
runs neither; ``partita gc`` deletes the transient job (its dependent is done) and keeps
the training; a later run still runs nothing. A transient task submitted alone runs
nothing, and ``jobs list``/``jobs show`` say which jobs are transient.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from xputil import Script, job_dirs

from partita.cli import cli

TASKS = """
LOG = Path(os.environ["TR_LOG"])

def note(what):
    with LOG.open("a") as f:
        f.write(what + "\\n")

class Prep(Task, id="tr.prep"):
    n: Param[int]
    def execute(self):
        note(f"prep {self.n}")
        (self.jobdir / "data.txt").write_text(str(self.n * 2))

class Train(Task, id="tr.train"):
    data: Param[Prep]
    def execute(self):
        note("train " + (self.data.jobdir / "data.txt").read_text())
"""


def _run(script: Script, log: Path, *args: str) -> list[str]:
    before = log.read_text().splitlines() if log.exists() else []
    result = script.run(*args, env={"TR_LOG": str(log)})
    assert result.returncode == 0, result.stderr
    after = log.read_text().splitlines() if log.exists() else []
    return after[len(before) :]


def test_transient_input_runs_only_while_needed_and_gc_removes_it(tmp_path: Path) -> None:
    script = Script(
        tmp_path,
        "transient_xp",
        TASKS
        + """
with experiment("wd", "pipeline"):
    data = Prep(n=21).submit(transient=True)
    Train(data=data).submit()
""",
    )
    log = tmp_path / "log.txt"
    wd = tmp_path / "wd"
    assert _run(script, log) == ["prep 21", "train 42"]
    assert _run(script, log) == []  # the training is done: its transient input is not run

    runner = CliRunner()
    listing = runner.invoke(cli, ["jobs", "list", "--json", "--workdir", str(wd)])
    assert listing.exit_code == 0, listing.output
    flags = {job["type"]: job["transient"] for job in json.loads(listing.output)}
    assert flags == {"tr.prep": True, "tr.train": False}
    table = runner.invoke(cli, ["jobs", "list", "--workdir", str(wd)])
    assert "transient" in next(line for line in table.output.splitlines() if "tr.prep" in line)
    (prep,) = job_dirs(wd, "tr.prep")
    shown = runner.invoke(cli, ["jobs", "show", prep.name[:12], "--workdir", str(wd)])
    assert shown.exit_code == 0, shown.output
    assert "transient" in shown.output

    # The default policy keeps both runs (and the training), not the transient input.
    plan = runner.invoke(cli, ["gc", "--json", "--workdir", str(wd)])
    assert [job["type"] for job in json.loads(plan.output)["jobs"]] == ["tr.prep"]
    deleted = runner.invoke(cli, ["gc", "--yes", "--workdir", str(wd)])
    assert deleted.exit_code == 0, deleted.output
    assert not prep.exists()
    assert len(job_dirs(wd, "tr.train")) == 1
    # The training's dependency is gone, and still named by its task (from params.json).
    (train,) = job_dirs(wd, "tr.train")
    shown = runner.invoke(cli, ["jobs", "show", train.name[:12], "--workdir", str(wd)])
    assert f"tr.prep/{prep.name[:12]}  missing (its folder was deleted" in shown.output
    detail = runner.invoke(cli, ["jobs", "show", train.name[:12], "--json", "--workdir", str(wd)])
    assert json.loads(detail.output)["dependencies"] == [
        {"id": prep.name, "type": "tr.prep", "state": "missing"}
    ]

    assert _run(script, log) == []  # still nothing to run, and nothing comes back
    assert job_dirs(wd, "tr.prep") == []


def test_a_new_dependent_runs_the_transient_input_again(tmp_path: Path) -> None:
    script = Script(
        tmp_path,
        "transient_more",
        TASKS
        + """
class Eval(Task, id="tr.eval"):
    data: Param[Prep]
    def execute(self):
        note("eval " + (self.data.jobdir / "data.txt").read_text())

with experiment("wd", "pipeline"):
    data = Prep(n=1).submit(transient=True)
    Train(data=data).submit()
    if sys.argv[1:] == ["eval"]:
        Eval(data=data).submit()
""",
    )
    log = tmp_path / "log.txt"
    wd = tmp_path / "wd"
    assert _run(script, log) == ["prep 1", "train 2"]
    runner = CliRunner()
    assert runner.invoke(cli, ["gc", "--yes", "--workdir", str(wd)]).exit_code == 0
    assert job_dirs(wd, "tr.prep") == []
    # A dependent that is not done needs the input: it is run again, then the eval.
    assert _run(script, log, "eval") == ["prep 1", "eval 2"]


def test_a_transient_task_alone_runs_nothing(tmp_path: Path) -> None:
    script = Script(
        tmp_path,
        "transient_alone",
        TASKS
        + """
with experiment("wd", "alone"):
    Prep(n=3).submit(transient=True)
""",
    )
    log = tmp_path / "log.txt"
    result = script.run(env={"TR_LOG": str(log)})
    assert result.returncode == 0, result.stderr
    assert not log.exists()
    assert job_dirs(tmp_path / "wd", "tr.prep") == []
    assert "1 transient task(s) not run" in result.stderr


def test_transient_must_be_a_bool(tmp_path: Path) -> None:
    script = Script(
        tmp_path,
        "transient_bad",
        TASKS
        + """
with experiment("wd", "bad"):
    Prep(n=3).submit(transient="yes")
""",
    )
    result = script.run(env={"TR_LOG": str(tmp_path / "log.txt")})
    assert result.returncode != 0
    assert "transient: expected True or False, found str" in result.stderr
    assert job_dirs(tmp_path / "wd", "tr.prep") == []


def test_jobs_clean_and_gc_agree_on_transient_jobs_and_shared_folders(tmp_path: Path) -> None:
    script = Script(
        tmp_path,
        "transient_clean",
        TASKS
        + """
class Fit(Task, id="tr.fit", shared={"ckpt": ("epochs",)}):
    data: Param[Prep]
    epochs: Param[int]
    def execute(self):
        with self.shared("ckpt") as folder:
            (folder / f"epoch{self.epochs}").write_text((self.data.jobdir / "data.txt").read_text())
        note(f"fit {self.epochs}")

with experiment("wd", "fits"):
    data = Prep(n=4).submit(transient=True)
    Fit(data=data, epochs=1).submit()
    Fit(data=data, epochs=2).submit()
""",
    )
    log = tmp_path / "log.txt"
    wd = tmp_path / "wd"
    assert sorted(_run(script, log)) == ["fit 1", "fit 2", "prep 4"]
    (prep,) = job_dirs(wd, "tr.prep")
    fits = job_dirs(wd, "tr.fit")
    (folder,) = {wd / json.loads((fit / "shared.json").read_text())[0] for fit in fits}
    assert sorted(p.name for p in folder.iterdir()) == ["epoch1", "epoch2"]
    runner = CliRunner()

    def clean(*args: str) -> str:
        result = runner.invoke(cli, ["jobs", "clean", *args, "--workdir", str(wd)])
        assert result.exit_code == 0, result.output
        return result.output

    # Both commands keep the fits (the latest run) and drop the transient input (done with).
    plan = runner.invoke(cli, ["gc", "--json", "--workdir", str(wd)])
    assert [job["type"] for job in json.loads(plan.output)["jobs"]] == ["tr.prep"]
    listing = clean()
    assert "would delete 1 job" in listing, listing
    assert prep.name[:12] in listing
    assert all(fit.name[:12] not in listing.split("kept")[0] for fit in fits), listing
    clean("--yes")
    assert not prep.exists()
    assert all(fit.exists() for fit in fits) and folder.is_dir()

    # Deleting one fit keeps the shared folder (the other refers to it); the last takes it.
    first = clean(fits[0].name[:12], "--include-referenced", "--yes")
    assert "shared folder" not in first, first
    assert not fits[0].exists() and folder.is_dir()
    dry = clean(fits[1].name[:12], "--include-referenced")
    assert "would delete 1 shared folder no other job refers to" in dry, dry
    assert folder.is_dir()
    last = clean(fits[1].name[:12], "--include-referenced", "--yes")
    assert "deleted 1 shared folder no other job refers to" in last, last
    assert not fits[1].exists()
    assert not folder.exists()
    assert not folder.with_name(folder.name + ".lock").exists()


def test_the_job_of_a_held_transient_task_says_why_there_is_none(tmp_path: Path) -> None:
    script = Script(
        tmp_path,
        "transient_job",
        TASKS
        + """
from partita.errors import NoExperimentError

with experiment("wd", "job"):
    prep = Prep(n=5)
    prep.submit(transient=True)
    try:
        prep.job
    except NoExperimentError as exc:
        print("HELD:", exc)
    Train(data=prep).submit()
    print("NOW:", prep.job.name)
""",
    )
    log = tmp_path / "log.txt"
    result = script.run(env={"TR_LOG": str(log)})
    assert result.returncode == 0, result.stderr
    held = next(line for line in result.stdout.splitlines() if line.startswith("HELD:"))
    assert held == (
        "HELD: Prep was submitted with transient=True and is held: it gets a job (and runs) "
        "only when a task that needs it, and is not done, is submitted in this experiment. "
        "Submit that task first, or submit Prep without transient=True to run it anyway."
    )
    (prep,) = job_dirs(tmp_path / "wd", "tr.prep")
    assert f"NOW: tr.prep/{prep.name[:12]}" in result.stdout, result.stdout
    assert log.read_text().splitlines() == ["prep 5", "train 10"]
