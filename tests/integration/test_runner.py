"""The experiment runner on real runs: overrides, config files, --multirun, --rerun, --show."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from xputil import ROOT, Script

XP = """
from partita import experiment_main, grid

class Model(Config, id="rt.model"):
    '''The model.

    Attributes:
        layers: How many layers.
    '''
    layers: Param[int] = 2

class Fit(Task, id="rt.fit"):
    C: Param[float]
    seed: Param[int]
    kernel: Param[str]
    layers: Param[int]
    def execute(self):
        if self.kernel == "broken":
            raise RuntimeError("this kernel does not work")
        print("fit", self.C, self.seed, self.kernel, self.layers)

class Setup(Config, id="rt.setup"):
    '''Digits sweep.'''
    C: Param[list[float]] = (0.1, 1.0)
    '''Regularisation values to try.'''
    kernel: Param[str] = "rbf"
    seeds: Param[int] = 1
    model: Param[Model] = field(default_factory=Model)

@experiment_main("digits", workdir="wd")
def main(xp, cfg: Setup) -> None:
    for C, seed in grid(C=cfg.C, seed=range(cfg.seeds)):
        Fit(C=C, seed=seed, kernel=cfg.kernel, layers=cfg.model.layers).submit()
"""


@pytest.fixture
def xp(script: Any) -> Script:
    made: Script = script(XP, name="xp")
    return made


def partita(
    folder: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "partita.cli", *args],
        cwd=folder, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})},
    )  # fmt: skip


def runs(folder: Path) -> list[Path]:
    base = folder / "wd" / "experiments" / "digits" / "runs"
    return sorted(base.iterdir()) if base.is_dir() else []


def config_of(run: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((run / "config.json").read_text())
    return value


def jobs(folder: Path, *filters: str) -> list[dict[str, Any]]:
    listed = partita(folder, "jobs", "list", "-w", str(folder / "wd"), "--json", *filters)
    assert 0 == listed.returncode, listed.stderr
    value: list[dict[str, Any]] = json.loads(listed.stdout)
    return value


def test_plain_script_runs_with_defaults_and_takes_overrides(xp: Script) -> None:
    done = xp.run()
    assert 0 == done.returncode, done.stderr
    assert [{"C": 0.1, "seed": 0}, {"C": 1.0, "seed": 0}] == sorted(
        (j["tags"] for j in jobs(xp.folder)), key=lambda t: t["C"]
    )
    [run] = runs(xp.folder)
    record = config_of(run)
    assert {"C": [0.1, 1.0], "kernel": "rbf", "seeds": 1, "model": {"layers": 2}} == record[
        "resolved"
    ]
    assert [] == record["overrides"] and str(xp.path) == record["script"]
    again = xp.run("model.layers=3", "C=[5]")
    assert 0 == again.returncode, again.stderr
    [job] = jobs(xp.folder, "--tag", "C=5")
    assert "fit 5.0 0 rbf 3" in (Path(job["path"]) / "stdout").read_text()


def test_overrides_through_partita_run_and_typed_errors(xp: Script) -> None:
    ok = partita(xp.folder, "run", str(xp.path), "C=[1,10]", "kernel=linear")
    assert 0 == ok.returncode, ok.stderr
    assert [1.0, 10.0] == sorted(j["tags"]["C"] for j in jobs(xp.folder))
    assert 1 == len(jobs(xp.folder, "--tag", "C=10"))
    nested = partita(xp.folder, "run", str(xp.path), "model={layers: 5}", "C=[1]", "--show")
    assert 0 == nested.returncode and "  layers: 5\n" in nested.stdout, nested.stderr
    assert 2 == len(jobs(xp.folder))
    before = runs(xp.folder)
    for args, message in [
        (["C=abc"], "C: expected list[float], found str 'abc'"),
        (["kernal=linear"], "Did you mean 'kernel'?"),
        (["model.layer=4"], "Did you mean 'model.layers'?"),
        (["kernel=linear,rbf"], "Add --multirun"),
        (["--multirun", "model={layers: 3},{layers: 4}"], "cannot sweep"),
        (["seeds=range(0,x)"], "expected range(stop)"),
        (["--nope"], "unknown option '--nope'"),
    ]:
        bad = partita(xp.folder, "run", str(xp.path), *args)
        assert 2 == bad.returncode, (args, bad.stderr)
        assert message in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    assert before == runs(xp.folder)  # nothing launched, no run recorded


def test_config_files_show_and_the_record(xp: Script) -> None:
    (xp.folder / "base.yaml").write_text("kernel: poly\nseeds: 3\n")
    paper = xp.folder / "paper.yaml"
    paper.write_text("defaults: [base]\nC: [2]\nmodel:\n  layers: 4\n")
    shown = partita(xp.folder, "run", str(xp.path), "--config", "paper.yaml", "seeds=2", "--show")
    assert 0 == shown.returncode, shown.stderr
    assert "C: [2.0]\nkernel: poly\nseeds: 2\nmodel:\n  layers: 4\n" == shown.stdout
    assert [] == runs(xp.folder)
    done = partita(xp.folder, "run", str(xp.path), "--config", "paper.yaml", "seeds=2")
    assert 0 == done.returncode, done.stderr
    assert 2 == len(jobs(xp.folder, "--tag", "C=2"))
    [run] = runs(xp.folder)
    record = config_of(run)
    assert ["seeds=2"] == record["overrides"]
    assert {
        str(paper): paper.read_text(),
        str(xp.folder / "base.yaml"): "kernel: poly\nseeds: 3\n",
    } == {f["path"]: f["text"] for f in record["files"]}
    show = partita(xp.folder, "experiments", "show", run.name, "--config", "-w", "wd")
    assert 0 == show.returncode, show.stderr
    for text in ("overrides  seeds=2", f"--- config file {paper}", "layers: 4", "kernel: poly"):
        assert text in show.stdout, show.stdout
    as_json = json.loads(
        partita(xp.folder, "experiments", "show", "digits", "--config", "--json", "-w", "wd").stdout
    )
    assert record["resolved"] == as_json["resolved"] and run.name == as_json["run"]
    # Bad files: exit 2, with the file and the line.
    broken = xp.folder / "broken.yaml"
    broken.write_text("C: [1, 2\nseeds: 2\n")
    bad = partita(xp.folder, "run", str(xp.path), "--config", "broken.yaml")
    assert 2 == bad.returncode and f"{broken}, line " in bad.stderr, bad.stderr
    (xp.folder / "a.yaml").write_text("include: b.yaml\n")
    (xp.folder / "b.yaml").write_text("include: a.yaml\n")
    cycle = partita(xp.folder, "run", str(xp.path), "--config", "a.yaml")
    assert 2 == cycle.returncode and "in a loop" in cycle.stderr, cycle.stderr
    assert [run] == runs(xp.folder)


def test_multirun_makes_one_run_per_combination_and_rerun_repeats_one(xp: Script) -> None:
    paper = xp.folder / "paper.yaml"
    paper.write_text("C: [3]\n")
    multi = partita(
        xp.folder, "run", str(xp.path), "--config", "paper.yaml", "--multirun",
        "kernel=linear,rbf", "model.layers=1,2",
    )  # fmt: skip
    assert 0 == multi.returncode, multi.stderr
    made = runs(xp.folder)
    assert 4 == len(made)
    records = [config_of(run) for run in made]
    combos = sorted((r["tags"]["kernel"], r["tags"]["model.layers"]) for r in records)
    assert [("linear", 1), ("linear", 2), ("rbf", 1), ("rbf", 2)] == combos
    assert all(4 == r["multirun"]["count"] for r in records)
    # Each run submitted its own job, tagged with its combination (and with grid's values).
    assert 4 == len(jobs(xp.folder))
    [job] = jobs(xp.folder, "--tag", 'kernel="rbf"', "--tag", "model.layers=2")
    assert {"C": 3.0, "seed": 0, "kernel": "rbf", "model.layers": 2} == job["tags"]
    for run in made:
        submitted = (run / "jobs.jsonl").read_text().splitlines()
        assert 1 == len(submitted)
    # Rerun one: the same values from its record, even though the file changed since.
    target = next(run for run, r in zip(made, records, strict=True) if r["tags"] == {
        "kernel": "linear", "model.layers": 2})  # fmt: skip
    paper.write_text("C: [99]\n")
    job_folder = Path(
        jobs(xp.folder, "--tag", 'kernel="linear"', "--tag", "model.layers=2")[0]["path"]
    )
    (job_folder / "done").unlink()  # make it run again, to see it reproduced
    rerun = partita(xp.folder, "run", "--rerun", target.name, "-w", "wd")
    assert 0 == rerun.returncode, rerun.stderr
    assert "rerun of digits/" in rerun.stderr and "1 ran" in rerun.stderr, rerun.stderr
    assert 5 == len(runs(xp.folder))
    [new] = [run for run in runs(xp.folder) if run not in made]
    record = config_of(new)
    old = config_of(target)
    assert target.name == record["rerun_of"]
    assert old["resolved"] == record["resolved"] and old["tags"] == record["tags"]
    assert (target / "jobs.jsonl").read_text().split('"id": ')[1][:66] == (
        new / "jobs.jsonl"
    ).read_text().split('"id": ')[1][:66]
    assert "fit 3.0 0 linear 2" in (job_folder / "stdout").read_text()
    # Usage errors of --rerun.
    for args in (["--rerun", "nosuchrun", "-w", "wd"], ["--rerun", target.name, "x=1", "-w", "wd"]):
        bad = partita(xp.folder, "run", *args)
        assert bad.returncode in (1, 2) and "error:" in bad.stderr, bad.stderr
    assert 2 == partita(xp.folder, "run", "--rerun", target.name, "x=1", "-w", "wd").returncode


def test_a_failed_job_exits_1_and_help_shows_the_parameters(xp: Script) -> None:
    failed = partita(xp.folder, "run", str(xp.path), "kernel=broken")
    assert 1 == failed.returncode, failed.stderr
    assert "did not complete" in failed.stderr
    # With --multirun, the other combinations still run; the exit code says one failed.
    multi = partita(xp.folder, "run", str(xp.path), "--multirun", "kernel=broken,linear", "C=[4]")
    assert 1 == multi.returncode, multi.stderr
    assert 3 == len(runs(xp.folder))
    [job] = jobs(xp.folder, "--tag", 'kernel="linear"')
    assert "done" == job["state"]
    latest = partita(xp.folder, "experiments", "show", "digits", "--config", "--json", "-w", "wd")
    assert {"kernel": "linear"} == json.loads(latest.stdout)["tags"]
    shown = partita(xp.folder, "run", str(xp.path), "--help")
    assert 0 == shown.returncode, shown.stderr
    assert shown.stdout.startswith("usage: partita run xp.py [KEY=VALUE ...]"), shown.stdout
    assert xp.run("--help").stdout.startswith("usage: python xp.py [KEY=VALUE ...]")
    for text in ("Digits sweep.", "Regularisation values to try.", "model.layers",
                 "How many layers.", "--multirun", "list[float]; default [0.1, 1.0]"):  # fmt: skip
        assert text in shown.stdout, shown.stdout
    assert "Example" in partita(xp.folder, "run", "--help").stdout


def test_the_job_runner_does_not_import_the_runner_nor_yaml() -> None:
    probe = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import partita.run"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )  # fmt: skip
    assert 0 == probe.returncode, probe.stderr
    modules = {line.rsplit("|", 1)[-1].strip() for line in probe.stderr.splitlines()}
    assert "partita.run" in modules
    assert not {"yaml", "partita.runner", "sphinx", "partita.sphinx"} & modules


def test_a_damaged_configuration_record_is_said_plainly(xp: Script) -> None:
    assert 0 == xp.run("C=[6]").returncode
    [run] = runs(xp.folder)
    (run / "config.json").write_text('{"files": 3, "argv": "x", "resolved": {}}')
    for args in (
        ["experiments", "show", run.name, "--config", "-w", "wd"],
        ["run", "--rerun", run.name, "-w", "wd"],
    ):
        shown = partita(xp.folder, *args)
        assert 1 == shown.returncode, shown.stderr
        assert "expected 'files' to be a list" in shown.stderr and "Traceback" not in shown.stderr
    (run / "config.json").write_text("{not json")
    shown = partita(xp.folder, "experiments", "show", run.name, "--config", "-w", "wd")
    assert 1 == shown.returncode and "config.json" in shown.stderr, shown.stderr
    (run / "config.json").unlink()
    shown = partita(xp.folder, "run", "--rerun", run.name, "-w", "wd")
    assert 1 == shown.returncode and "not started through @experiment_main" in shown.stderr


BELOW = """
from partita import experiment_main

class Setup(Config, id="rt.below.setup"):
    '''Setup.'''
    n: Param[int] = 1

@experiment_main("below", workdir="wd")
def main(xp, cfg: Setup) -> None:
    Late(n=cfg.n).submit()

class Late(Task, id="rt.below.late"):
    n: Param[int]
    def execute(self):
        print("ran")
"""


def test_a_task_class_below_the_decorated_function_is_explained(script: Any) -> None:
    """The function runs when the script reaches the decorator: a class below it does not
    exist yet. One line says so and where, instead of a bare NameError traceback."""
    below: Script = script(BELOW, name="below")
    done = below.run()
    assert 1 == done.returncode
    assert "Traceback" not in done.stderr, done.stderr
    line = next(x for x in done.stderr.splitlines() if x.startswith("error: "))
    assert "class Late at line" in line and "below.py" in line and "above it" in line
    # Other NameErrors are the script's own bugs: their traceback is kept.
    typo = script(BELOW.replace("Late(n=cfg.n)", "Lat(n=cfg.n)"), name="typo")
    failed = typo.run()
    assert 1 == failed.returncode and "NameError: name 'Lat' is not defined" in failed.stderr


def test_the_latest_run_of_an_experiment_is_never_a_dry_run(xp: Script) -> None:
    """`--rerun NAME` and `experiments show NAME --config` take its latest real run: a dry
    run launched nothing, and rerunning it would run values nobody ran."""
    real = partita(xp.folder, "run", str(xp.path), "C=[2]")
    assert 0 == real.returncode, real.stderr
    dry = partita(xp.folder, "run", "--dry-run", str(xp.path), "C=[7]")
    assert 0 == dry.returncode, dry.stderr
    assert 2 == len(runs(xp.folder))
    shown = partita(xp.folder, "experiments", "show", "digits", "--config", "-w", "wd")
    assert 0 == shown.returncode, shown.stderr
    assert "C=[2]" in shown.stdout and "C=[7]" not in shown.stdout
    rerun = partita(xp.folder, "run", "--rerun", "digits", "-w", "wd")
    assert 0 == rerun.returncode, rerun.stderr
    assert [] == jobs(xp.folder, "--tag", "C=7")  # the dry run's values never ran
    assert 1 == len(jobs(xp.folder, "--tag", "C=2"))
