"""Migrations with real jobs: a renamed task keeps its jobs, and ``partita migrate`` moves them.

The task classes live in a module on disk (``demo_tasks.py``), rewritten between runs as a
user would: the experiment script, the job processes and ``partita migrate`` (each its own
Python process) import whatever the module says at the time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from xputil import Script, monitor

BEFORE = """
from pathlib import Path
from partita import Task, Config, Param, Meta, PathGenerator, field

class Train(Task, id="demo.train"):
    learning_rate: Param[float]
    epochs: Param[int] = 1
    out: Meta[Path] = field(default_factory=PathGenerator("out.txt"))
    def execute(self):
        self.out.write_text("trained")
        with open(Path(__file__).with_name("runs.txt"), "a") as f:
            f.write(f"train {self.learning_rate} {self.epochs}\\n")
"""

AFTER = """
from pathlib import Path
from partita import Task, Config, Param, Meta, PathGenerator, field

class Fit(Task, id="demo.fit", renamed_from="demo.train"):
    lr: Param[float] = field(renamed_from="learning_rate")
    epochs: Param[int] = 1
    out: Meta[Path] = field(default_factory=PathGenerator("out.txt"))
    def execute(self):
        self.out.write_text("trained")
        with open(Path(__file__).with_name("runs.txt"), "a") as f:
            f.write(f"fit {self.lr} {self.epochs}\\n")
"""

SCRIPT_BEFORE = """
from demo_tasks import Train
with experiment("wd", "demo"):
    Train(learning_rate=0.1).submit()
    Train(learning_rate=0.2, epochs=3).submit()
"""

SCRIPT_AFTER = """
from demo_tasks import Fit
with experiment("wd", "demo"):
    Fit(lr=0.1).submit()
    Fit(lr=0.2, epochs=3).submit()
"""


def _env(folder: Path) -> dict[str, str]:
    path = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": f"{folder}{os.pathsep}{path}" if path else str(folder)}


def _partita(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "partita.cli", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **_env(folder)},
    )


def _runs(folder: Path) -> list[str]:
    runs = folder / "runs.txt"
    return runs.read_text().splitlines() if runs.exists() else []


def _folders(wd: Path) -> dict[str, list[str]]:
    jobs = wd / "jobs"
    return {
        t.name: sorted(j.name for j in t.iterdir())
        for t in sorted(jobs.iterdir())
        if t.is_dir() and not t.name.startswith(".")
    }


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "demo_tasks.py").write_text(textwrap.dedent(BEFORE))
    return tmp_path


def _run(project: Path, body: str) -> subprocess.CompletedProcess[str]:
    result = Script(project, "xp", body).run(env=_env(project))
    assert result.returncode == 0, result.stderr
    return result


def test_a_renamed_task_reuses_its_jobs_and_migrate_moves_them(project: Path) -> None:
    """The issue's "done when": run, rename class and field, rerun (nothing runs), migrate,
    rerun (nothing runs, the folders are under the new name)."""
    wd = project / "wd"
    _run(project, SCRIPT_BEFORE)
    assert ["train 0.1 1", "train 0.2 3"] == sorted(_runs(project))
    before = _folders(wd)
    assert ["demo.train"] == list(before)
    identifiers = before["demo.train"]

    (project / "demo_tasks.py").write_text(textwrap.dedent(AFTER))
    second = _run(project, SCRIPT_AFTER)
    assert 2 == len(_runs(project)), "a renamed task ran again"
    assert before == _folders(wd), "a folder was created under the new name"
    assert "matched through a migration" in second.stderr
    assert "'demo.train'" in second.stderr and "partita migrate" in second.stderr

    # Never silently: the job says how it was found.
    show = _partita(project, "jobs", "show", identifiers[0][:12], "-w", "wd")
    assert show.returncode == 0, show.stderr
    assert "matched through a migration: found under the former type id 'demo.train'" in (
        " ".join(show.stdout.split())
    )
    explain = _partita(project, "explain", identifiers[0][:12], "-w", "wd", "--json")
    assert explain.returncode == 0, explain.stderr
    assert "former type id" in json.loads(explain.stdout)["migration"]["matched"]["how"]
    # The code fingerprint follows the rename: Fit is Train.
    shown = " ".join(show.stdout.split())
    assert "Train is now Fit (the same task: its id= or renamed_from=)" in shown
    assert "no longer defines" not in shown
    code = json.loads(explain.stdout)["code"]
    assert ("Train", "Fit", False) == (code["class"], code["renamed_to"], code["missing"])

    # A dry run (the default) lists and writes nothing.
    dry = _partita(project, "migrate", "wd", "--json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["dry_run"] is True and [] == plan["migrated"]
    assert sorted(f"demo.train/{i}" for i in identifiers) == sorted(
        c["from"] for c in plan["changes"]
    )
    assert sorted(f"demo.fit/{i}" for i in identifiers) == sorted(c["to"] for c in plan["changes"])
    assert {"type id demo.train is now demo.fit", "field demo.fit.learning_rate is now lr"} <= set(
        plan["changes"][0]["changes"]
    )
    assert before == _folders(wd)

    done = _partita(project, "migrate", "wd", "--yes")
    assert done.returncode == 0, done.stderr
    assert "migrated 2 job folders" in done.stdout
    assert {"demo.fit": identifiers} == _folders(wd)
    for ident in identifiers:
        params = json.loads((wd / "jobs" / "demo.fit" / ident / "params.json").read_text())
        (entry,) = params["objects"]
        assert ("demo.fit", "demo_tasks:Fit") == (entry["type"], entry["class"])
        assert "lr" in entry["fields"] and "learning_rate" not in entry["fields"]

    third = _run(project, SCRIPT_AFTER)
    assert 2 == len(_runs(project)), "a migrated task ran again"
    assert {"demo.fit": identifiers} == _folders(wd)
    assert "matched through a migration" not in third.stderr
    show = _partita(project, "jobs", "show", f"demo.fit/{identifiers[0][:12]}", "-w", "wd")
    assert "migrated by partita migrate (moved from demo.train/" in " ".join(show.stdout.split())
    assert "Train is now Fit (the same task: its id= or renamed_from=)" in " ".join(
        show.stdout.split()
    )

    # Loading a migrated job gives the current class, with its identifier.
    load = subprocess.run(
        [
            sys.executable,
            "-c",
            "import partita, sys; t = partita.load(sys.argv[1]); "
            "print(type(t).__name__, t.lr, partita.identifier(t), t.out.read_text(), t.out)",
            str(wd / "jobs" / "demo.fit" / identifiers[0]),
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **_env(project)},
    )
    assert load.returncode == 0, load.stderr
    name, _, ident, text, out = load.stdout.split()
    assert ("Fit", identifiers[0], "trained") == (name, ident, text)
    # The generated path followed the folder.
    assert wd / "jobs" / "demo.fit" / identifiers[0] / "out.txt" == Path(out)

    again = _partita(project, "migrate", "wd", "--yes", "--json")
    assert [] == json.loads(again.stdout)["changes"]
    assert 2 == json.loads(again.stdout)["unchanged"]

    # The monitor's job page says it too.
    with monitor(wd, token="migrate-token-0123456789") as client:
        detail = client.get(f"/api/jobs/{identifiers[0]}").json()
    assert "demo.fit" == detail["type"]
    assert ["migrated by partita migrate (moved from demo.train/"] == [
        line[: len("migrated by partita migrate (moved from demo.train/")]
        for line in detail["migration"]
    ]


def _tree(wd: Path) -> dict[str, bytes]:
    """Every file under jobs/ (but the index's journal) with its bytes."""
    jobs = wd / "jobs"
    return {
        p.relative_to(jobs).as_posix(): p.read_bytes()
        for p in sorted(jobs.rglob("*"))
        if p.is_file() and p.name != ".changes"
    }


CRASH = """
import os, sys
from partita.workspace import Workspace, _migrate

def killed(path, data, **kw):
    os._exit(9)  # the process dies between the rename of the folder and its params.json

_migrate.atomic_write = killed
_migrate.import_code(["demo_tasks"])
_migrate.apply(_migrate.plan(Workspace("wd", create=False)))
"""


def test_a_migration_killed_between_its_steps_is_finished_by_the_next(project: Path) -> None:
    wd = project / "wd"
    _run(project, SCRIPT_BEFORE)
    identifiers = _folders(wd)["demo.train"]
    (project / "demo_tasks.py").write_text(textwrap.dedent(AFTER))
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **_env(project)},
    )
    assert 9 == crashed.returncode, crashed.stderr
    # Half done: the first folder moved, with its old params.json; the second untouched.
    folders = _folders(wd)
    assert {"demo.fit": identifiers[:1], "demo.train": identifiers[1:]} == folders
    moved = json.loads((wd / "jobs" / "demo.fit" / identifiers[0] / "params.json").read_text())
    assert "learning_rate" in moved["objects"][0]["fields"]
    # An experiment meanwhile still finds both jobs.
    _run(project, SCRIPT_AFTER)
    assert 2 == len(_runs(project))

    done = _partita(project, "migrate", "wd", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    assert 2 == len(json.loads(done.stdout)["migrated"])
    assert {"demo.fit": identifiers} == _folders(wd)
    for ident in identifiers:
        folder = wd / "jobs" / "demo.fit" / ident
        params = json.loads((folder / "params.json").read_text())
        assert "lr" in params["objects"][0]["fields"]
        note = json.loads((folder / "migration.json").read_text())
        # The interrupted folder keeps the note written before its move: where it came from.
        assert [f"demo.train/{ident}"] == [m["from"] for m in note["migrated"]]
    _run(project, SCRIPT_AFTER)
    assert 2 == len(_runs(project))


CONVERT_BEFORE = """
from pathlib import Path
from partita import Task, Config, Param, field

class Opt(Config, id="demo.opt"):
    lr: Param[float]
    steps: Param[int] = 10

class Train(Task, id="demo.train"):
    opt: Param[Config]
    def execute(self):
        with open(Path(__file__).with_name("runs.txt"), "a") as f:
            f.write(f"train {type(self.opt).__name__}\\n")

class Evaluate(Task, id="demo.evaluate"):
    train: Param[Train]
    def execute(self):
        with open(Path(__file__).with_name("runs.txt"), "a") as f:
            f.write("evaluate\\n")
"""

CONVERT_AFTER = CONVERT_BEFORE.replace(
    'class Opt(Config, id="demo.opt"):',
    """class Sgd(Config, id="demo.sgd"):
    lr: Param[float]

class Schedule(Config, id="demo.schedule"):
    steps: Param[int]

class SgdScheduled(Config, id="demo.sgd-scheduled"):
    sgd: Param[Sgd]
    schedule: Param[Schedule]

def to_scheduled(old):
    CONVERSION
    return SgdScheduled(sgd=Sgd(lr=old.lr), schedule=Schedule(steps=old.steps))

class Opt(Config, id="demo.opt", deprecated=to_scheduled):""",
)

CONVERT_SCRIPT_BEFORE = """
from demo_tasks import Evaluate, Opt, Train
with experiment("wd", "demo"):
    Evaluate(train=Train(opt=Opt(lr=0.1)).submit()).submit()
"""

CONVERT_SCRIPT_AFTER = """
from demo_tasks import Evaluate, Schedule, Sgd, SgdScheduled, Train
with experiment("wd", "demo"):
    opt = SgdScheduled(sgd=Sgd(lr=0.1), schedule=Schedule(steps=10))
    Evaluate(train=Train(opt=opt).submit()).submit()
"""


def test_a_deprecated_config_replaced_by_a_split_one(project: Path) -> None:
    """Jobs holding a deprecated config get the identity of its conversion and move there;
    so does a job that depends on them. A conversion that raises changes nothing."""
    wd = project / "wd"
    (project / "demo_tasks.py").write_text(textwrap.dedent(CONVERT_BEFORE))
    _run(project, CONVERT_SCRIPT_BEFORE)
    assert ["evaluate", "train Opt"] == sorted(_runs(project))
    before = _tree(wd)

    broken = CONVERT_AFTER.replace("CONVERSION", "raise ValueError('which schedule?')")
    (project / "demo_tasks.py").write_text(textwrap.dedent(broken))
    failed = _partita(project, "migrate", "wd", "--yes")
    assert 1 == failed.returncode
    assert "the conversion to_scheduled of the deprecated Opt raised ValueError: which " in (
        failed.stderr
    )
    assert "nothing was migrated" in failed.stderr
    assert before == _tree(wd)

    (project / "demo_tasks.py").write_text(textwrap.dedent(CONVERT_AFTER.replace("CONVERSION", "")))
    done = _partita(project, "migrate", "wd", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    moved = {c["from"].split("/")[0]: c for c in json.loads(done.stdout)["migrated"]}
    assert {"demo.train", "demo.evaluate"} == set(moved)
    assert all(c["moves"] for c in moved.values())
    assert "demo.opt converted to demo.sgd-scheduled" in moved["demo.train"]["changes"]

    _run(project, CONVERT_SCRIPT_AFTER)
    assert 2 == len(_runs(project)), "a converted job ran again"
    assert {"demo.evaluate": [moved["demo.evaluate"]["to"].split("/")[1]]} == {
        k: v for k, v in _folders(wd).items() if k == "demo.evaluate"
    }


SLOW = """
import time
from pathlib import Path
from partita import Task, Param

class Hold(Task, id="demo.hold"):
    n: Param[int]
    def execute(self):
        here = Path(__file__).parent
        (here / "holding").write_text("")
        deadline = time.monotonic() + 60
        while not (here / "release").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
"""

SCRIPT_HOLD = """
from demo_tasks import Fit
from slow_tasks import Hold
with experiment("wd", "hold"):
    Fit(lr=0.1).submit()
    Hold(n=1).submit()
"""


def test_migrate_refuses_while_an_experiment_runs(project: Path) -> None:
    wd = project / "wd"
    _run(project, SCRIPT_BEFORE)
    before = _folders(wd)
    (project / "demo_tasks.py").write_text(textwrap.dedent(AFTER))
    (project / "slow_tasks.py").write_text(textwrap.dedent(SLOW))
    holding = Script(project, "hold", SCRIPT_HOLD).popen(env=_env(project))
    try:
        deadline = time.monotonic() + 60
        while not (project / "holding").exists():
            assert holding.poll() is None, holding.communicate()
            assert time.monotonic() < deadline, "the task never started"
            time.sleep(0.05)
        refused = _partita(project, "migrate", "wd", "--yes")
        assert 1 == refused.returncode
        assert "an experiment is running in" in refused.stderr
        assert "hold (run " in refused.stderr and "nothing was migrated" in refused.stderr
        assert before == {k: v for k, v in _folders(wd).items() if k != "demo.hold"}
        dry = _partita(project, "migrate", "wd")  # a dry run is always allowed
        assert 0 == dry.returncode and "would migrate 2 job folders" in dry.stdout
    finally:
        (project / "release").write_text("")
        _out, err = holding.communicate(timeout=60)
    assert 0 == holding.returncode, err
    done = _partita(project, "migrate", "wd", "--yes")
    assert 0 == done.returncode, done.stderr
    assert before["demo.train"] == _folders(wd)["demo.fit"]


PATHS_BEFORE = (
    BEFORE
    + """
class Score(Task, id="demo.score"):
    after: Param[Task]
    model: Param[Path]
    def execute(self):
        with open(Path(__file__).with_name("runs.txt"), "a") as f:
            f.write(f"score {self.model.read_text()}\\n")
"""
)

PATHS_AFTER = (
    AFTER
    + """
class Score(Task, id="demo.score"):
    after: Param[Task]
    model: Param[Path]
    def execute(self):
        with open(Path(__file__).with_name("runs.txt"), "a") as f:
            f.write(f"score {self.model.read_text()}\\n")
"""
)

SCRIPT_PATHS_BEFORE = """
from demo_tasks import Score, Train
with experiment("wd", "demo"):
    train = Train(learning_rate=0.1).submit()
    Score(after=train, model=train.out).submit()
"""

SCRIPT_PATHS_AFTER = """
from demo_tasks import Fit, Score
with experiment("wd", "demo"):
    fit = Fit(lr=0.1).submit()
    Score(after=fit, model=fit.out).submit()
"""


def test_a_path_into_a_renamed_tasks_folder_follows_it(project: Path) -> None:
    """``Score`` holds a plain path into the folder of the renamed task: found before the
    migration (the task's folder is found under its former id), moved with it after."""
    wd = project / "wd"
    (project / "demo_tasks.py").write_text(textwrap.dedent(PATHS_BEFORE))
    _run(project, SCRIPT_PATHS_BEFORE)
    assert ["score trained", "train 0.1 1"] == sorted(_runs(project))
    (score,) = _folders(wd)["demo.score"]
    (project / "demo_tasks.py").write_text(textwrap.dedent(PATHS_AFTER))
    _run(project, SCRIPT_PATHS_AFTER)
    assert 2 == len(_runs(project)), "a job ran again before the migration"

    done = _partita(project, "migrate", "wd", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    moved = {c["from"]: c for c in json.loads(done.stdout)["migrated"]}
    assert f"demo.score/{score}" in moved
    assert "paths into moved job folders follow them" in moved[f"demo.score/{score}"]["changes"]
    (fit,) = _folders(wd)["demo.fit"]
    (new_score,) = _folders(wd)["demo.score"]
    assert new_score != score  # its path, hence its identity, changed with the folder
    params = json.loads((wd / "jobs" / "demo.score" / new_score / "params.json").read_text())
    assert {"$path": f"jobs/demo.fit/{fit}/out.txt", "base": "workspace"} == params["objects"][
        params["root"]
    ]["fields"]["model"]
    _run(project, SCRIPT_PATHS_AFTER)
    assert 2 == len(_runs(project)), "a job ran again after the migration"


REFS_CRASH = """
import os
from partita.workspace import Workspace, _migrate

def killed(workspace, renames, *, write):
    if write:
        os._exit(9)  # the folders are moved, the run records and pins not yet rewritten
    return _real(workspace, renames, write=write)

_real = _migrate.rewrite_references
_migrate.rewrite_references = killed
_migrate.import_code(["demo_tasks"])
_migrate.apply(_migrate.plan(Workspace("wd", create=False)))
"""

LOAD_RUN = """
import partita
run = partita.load_run("wd", "demo")
for job in sorted(run.jobs, key=lambda j: j.type_id):
    print(job.type_id, job.identifier, job.state, type(job.task).__name__)
"""


def test_pins_and_run_records_follow_converted_jobs(project: Path) -> None:
    """A conversion gives jobs new identifiers: the pinned run and the pinned job name them
    after the migration (even one stopped before rewriting them), so gc keeps them and the
    run loads them."""
    wd = project / "wd"
    (project / "demo_tasks.py").write_text(textwrap.dedent(CONVERT_BEFORE))
    _run(project, CONVERT_SCRIPT_BEFORE)
    _run(project, CONVERT_SCRIPT_BEFORE)  # a second run: the pinned one is not the latest
    runs = sorted(p.name for p in (wd / "experiments" / "demo" / "runs").iterdir())
    (train_id,) = _folders(wd)["demo.train"]
    pinned = _partita(project, "pin", f"demo/{runs[0]}", train_id[:12], "-w", "wd")
    assert pinned.returncode == 0, pinned.stderr

    (project / "demo_tasks.py").write_text(textwrap.dedent(CONVERT_AFTER.replace("CONVERSION", "")))
    dry = _partita(project, "migrate", "wd", "--json")
    references = json.loads(dry.stdout)["references"]
    assert {"runs": [f"demo/{r}" for r in runs], "pins": 1, "left": []} == references
    text = _partita(project, "migrate", "wd")
    assert "would rename the moved jobs in the records of 2 runs and in 1 pin" in text.stdout
    crashed = subprocess.run(
        [sys.executable, "-c", REFS_CRASH],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **_env(project)},
    )
    assert crashed.returncode == 9, crashed.stderr
    moved = _folders(wd)
    (new_train,) = moved["demo.train"]
    (new_eval,) = moved["demo.evaluate"]
    assert new_train != train_id
    assert train_id in (wd / "retention.json").read_text(), "the crash came too late"

    resumed = _partita(project, "migrate", "wd", "--yes", "--json")
    assert resumed.returncode == 0, resumed.stderr
    out = json.loads(resumed.stdout)
    assert [] == out["changes"]
    assert {"runs": [f"demo/{r}" for r in runs], "pins": 1, "left": []} == out["references"]
    pins = json.loads(_partita(project, "pin", "-w", "wd", "--json").stdout)
    assert [new_train] == pins["jobs"]
    for run in runs:
        lines = (wd / "experiments" / "demo" / "runs" / run / "jobs.jsonl").read_text()
        assert train_id not in lines and new_train in lines and new_eval in lines
        states = json.loads((wd / "experiments" / "demo" / "runs" / run / "run.json").read_text())
        assert {new_train, new_eval} == set(states["jobs"])

    # Nothing left to do: a third migrate rewrites nothing.
    again = json.loads(_partita(project, "migrate", "wd", "--yes", "--json").stdout)
    assert {"runs": [], "pins": 0, "left": []} == again["references"]

    # The run loads the moved jobs under their new identifiers.
    load = Script(project, "load", LOAD_RUN).run(env=_env(project))
    assert load.returncode == 0, load.stderr
    assert [
        f"demo.evaluate {new_eval} done Evaluate",
        f"demo.train {new_train} done Train",
    ] == [line for line in load.stdout.splitlines() if line.startswith("demo.")]

    # experiments show lists them under their new identifiers, none missing.
    shown = _partita(project, "experiments", "show", "demo", "-w", "wd", "--json")
    assert shown.returncode == 0, shown.stderr
    jobs = json.loads(shown.stdout)["jobs"]
    assert ["done"] == list(jobs)
    assert {new_train, new_eval} == {job["id"] for job in jobs["done"]}

    # gc keeping nothing but pins keeps the pinned run's moved jobs.
    gc = _partita(project, "gc", "-w", "wd", "--keep-last", "0", "--keep-days", "0", "--yes")
    assert gc.returncode == 0, gc.stderr
    assert {"demo.train": [new_train], "demo.evaluate": [new_eval]} == {
        k: v for k, v in _folders(wd).items() if k in ("demo.train", "demo.evaluate")
    }
    assert [runs[0]] == sorted(p.name for p in (wd / "experiments" / "demo" / "runs").iterdir())


SHARED_BEFORE = """
from pathlib import Path
from partita import Task, Param

class Train(Task, id="demo.train", shared={"checkpoints": ("max_epochs",)}):
    learning_rate: Param[float]
    max_epochs: Param[int]
    def execute(self):
        with self.shared("checkpoints") as folder:
            checkpoint = folder / "epoch.txt"
            start = int(checkpoint.read_text()) if checkpoint.exists() else 0
            checkpoint.write_text(str(max(start, self.max_epochs)))
        with open(Path(__file__).with_name("runs.txt"), "a") as f:
            f.write(f"from {start} to {self.max_epochs}\\n")
"""

SHARED_AFTER = SHARED_BEFORE.replace(
    'class Train(Task, id="demo.train", ',
    'class Fit(Task, id="demo.fit", renamed_from="demo.train", ',
).replace("learning_rate: Param[float]", 'lr: Param[float] = field(renamed_from="learning_rate")')
SHARED_AFTER = SHARED_AFTER.replace("from partita import Task, Param", "from partita import *")

SHARED_SCRIPT = """
import sys
from demo_tasks import {name}
with experiment("wd", "demo"):
    {name}({field}=0.1, max_epochs=int(sys.argv[1])).submit()
"""


def test_a_renamed_task_keeps_its_shared_folders(project: Path) -> None:
    """Before the migration the renamed task finds its shared folder under the former type
    id; migrate moves it (and what the jobs record of it) under the new one."""
    wd = project / "wd"
    (project / "demo_tasks.py").write_text(textwrap.dedent(SHARED_BEFORE))
    before = Script(project, "xp", SHARED_SCRIPT.format(name="Train", field="learning_rate"))
    assert before.run("10", env=_env(project)).returncode == 0
    (old,) = (wd / "shared" / "demo.train" / "checkpoints").glob("[0-9a-f]*[0-9a-f]")

    (project / "demo_tasks.py").write_text(textwrap.dedent(SHARED_AFTER))
    after = Script(project, "xp", SHARED_SCRIPT.format(name="Fit", field="lr"))
    second = after.run("20", env=_env(project))
    assert second.returncode == 0, second.stderr
    assert ["from 0 to 10", "from 10 to 20"] == _runs(project)
    assert not (wd / "shared" / "demo.fit").exists(), "a new shared folder was made"

    dry = json.loads(_partita(project, "migrate", "wd", "--json").stdout)
    new = wd / "shared" / "demo.fit" / "checkpoints" / old.name
    moved = {"from": old.relative_to(wd).as_posix(), "to": new.relative_to(wd).as_posix()}
    assert [moved] == dry["shared"]
    done = _partita(project, "migrate", "wd", "--yes")
    assert done.returncode == 0, done.stderr
    assert "moved the shared folder shared/demo.train/checkpoints/" in done.stdout
    assert "20" == (new / "epoch.txt").read_text()
    assert not (wd / "shared" / "demo.train").exists()
    for job in (wd / "jobs" / "demo.fit").iterdir():
        assert [moved["to"]] == json.loads((job / "shared.json").read_text())

    third = after.run("30", env=_env(project))
    assert third.returncode == 0, third.stderr
    assert "from 20 to 30" == _runs(project)[-1]
    # gc keeps the folder every remaining job refers to.
    gc = _partita(project, "gc", "-w", "wd", "--yes")
    assert gc.returncode == 0, gc.stderr
    assert "30" == (new / "epoch.txt").read_text()


def test_diff_compares_an_old_named_job_under_the_current_names(project: Path) -> None:
    wd = project / "wd"
    _run(project, SCRIPT_BEFORE)
    old = {
        json.loads((wd / "jobs" / "demo.train" / i / "params.json").read_text())["objects"][0][
            "fields"
        ]["learning_rate"]: i
        for i in _folders(wd)["demo.train"]
    }
    (project / "demo_tasks.py").write_text(textwrap.dedent(AFTER))
    _run(
        project,
        'from demo_tasks import Fit\nwith experiment("wd", "demo"):\n    Fit(lr=0.5).submit()\n',
    )
    (new,) = _folders(wd)["demo.fit"]
    shown = _partita(project, "diff", old[0.1][:12], new[:12], "-w", "wd", "--json")
    assert shown.returncode == 0, shown.stderr
    out = json.loads(shown.stdout)
    assert [("lr", "0.1", "0.5")] == [(c["path"], c["before"], c["after"]) for c in out["changes"]]
    assert "field demo.fit.learning_rate is now lr" in out["renamed"]
    text = _partita(project, "diff", old[0.2][:12], new[:12], "-w", "wd")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert "different tasks" not in text.stdout
    assert any(
        line.startswith("compared under the current names: type id demo.train") for line in lines
    )
    assert {"lr: 0.2 → 0.5", "epochs: 3 → 1"} <= {line.strip() for line in lines}
    assert "learning_rate" not in "\n".join(x for x in lines if not x.startswith("compared"))


ENUM_BEFORE = """
import enum
from pathlib import Path
from partita import Task, Param

class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"

class Paint(Task, id="demo.paint"):
    colour: Param[Colour]
    coats: Param[int] = 1
    def execute(self):
        with open(Path(__file__).with_name("runs.txt"), "a") as f:
            f.write(f"paint {self.colour.name} {self.coats}\\n")
"""

ENUM_AFTER = (
    ENUM_BEFORE.replace("from partita import Task, Param", "from partita import *")
    .replace(
        "class Colour(enum.Enum):",
        '@renamed_enum("demo_tasks.Colour", members={"CRIMSON": "RED"})\nclass Color(enum.Enum):',
    )
    .replace('RED = "red"', 'CRIMSON = "red"')
    .replace("Param[Colour]", "Param[Color]")
)


ENUM_SCRIPT = """
from demo_tasks import *
with experiment("wd", "p"):
    Paint(colour={value}, coats={n}).submit()
"""


def test_a_renamed_enum_keeps_its_jobs_and_migrate_rewrites_them(project: Path) -> None:
    wd = project / "wd"
    (project / "demo_tasks.py").write_text(textwrap.dedent(ENUM_BEFORE))
    _run(project, ENUM_SCRIPT.format(value="Colour.RED", n=1))
    (ident,) = _folders(wd)["demo.paint"]
    (project / "demo_tasks.py").write_text(textwrap.dedent(ENUM_AFTER))
    after = ENUM_SCRIPT.replace("{value}", "Color.CRIMSON")
    _run(project, after.format(n=1))
    assert ["paint RED 1"] == _runs(project), "the renamed enum's job ran again"
    _run(project, after.format(n=2))
    assert "paint CRIMSON 2" == _runs(project)[-1]
    (other,) = set(_folders(wd)["demo.paint"]) - {ident}

    diffed = json.loads(
        _partita(project, "diff", ident[:12], other[:12], "-w", "wd", "--json").stdout
    )
    assert [("coats", "1", "2")] == [
        (c["path"], c["before"], c["after"]) for c in diffed["changes"]
    ]
    assert ["enum value Colour.RED is now Color.CRIMSON"] == diffed["renamed"]

    done = _partita(project, "migrate", "wd", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    (change,) = json.loads(done.stdout)["migrated"]
    assert f"demo.paint/{ident}" == change["from"] == change["to"]
    assert "enum member Color.RED is now CRIMSON" in change["changes"]
    params = json.loads((wd / "jobs" / "demo.paint" / ident / "params.json").read_text())
    value = params["objects"][0]["fields"]["colour"]
    assert ("demo_tasks:Color", "CRIMSON") == (value["$enum"], value["name"])
    _run(project, after.format(n=1))
    assert 2 == len(_runs(project)), "a migrated job ran again"


def test_the_code_fingerprint_follows_a_class_moved_to_another_module(project: Path) -> None:
    """Same class, same explicit id, another module: after migrate, jobs show compares the
    class where it is now (its code did not change)."""
    wd = project / "wd"
    _run(project, SCRIPT_BEFORE)
    ident = _folders(wd)["demo.train"][0]
    (project / "demo_models.py").write_text(textwrap.dedent(BEFORE))
    (project / "demo_tasks.py").write_text("")
    done = _partita(project, "migrate", "wd", "--import", "demo_models", "--yes")
    assert done.returncode == 0, done.stderr
    params = json.loads((wd / "jobs" / "demo.train" / ident / "params.json").read_text())
    assert "demo_models:Train" == params["objects"][0]["class"]
    show = _partita(project, "jobs", "show", ident[:12], "-w", "wd", "--json")
    assert show.returncode == 0, show.stderr
    code = json.loads(show.stdout)["code"]
    assert str(project / "demo_models.py") == code["moved_to"]
    assert (False, False) == (code["missing"], code["class_changed"])
    assert "Train moved to " in code["message"] and "did not change" in code["message"]
