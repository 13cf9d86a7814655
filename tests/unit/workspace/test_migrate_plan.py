"""The planner and mover of ``partita migrate`` on job folders written as partita writes them.

The folders hold the ``params.json`` of a class since renamed (its recorded class name no
longer exists in this module), as a work directory made before the rename would.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from partita import Config, Param, Task, field
from partita.config import _runtime, dumps, identifier
from partita.workspace import FileLock, JobPaths, Workspace, _migrate, open_index


class Before(Task, id="unit.migrate.before"):
    rate: Param[float]

    def execute(self) -> None:
        pass


class After(Task, id="unit.migrate.after", renamed_from="unit.migrate.before"):
    lr: Param[float] = field(renamed_from="rate")

    def execute(self) -> None:
        pass


class Plain(Config, id="unit.migrate.plain"):
    x: Param[int] = 0


class Stale(Task, id="unit.migrate.stale", deprecated=lambda old: Plain()):
    x: Param[int] = 0

    def execute(self) -> None:
        pass


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    _runtime.register_workspace(tmp_path / "wd")
    return Workspace(tmp_path / "wd")


def old_job(ws: Workspace, rate: float, *, done: bool = True) -> JobPaths:
    """A job folder of ``Before`` recorded before the rename of its class."""
    task = Before(rate=rate)
    document = json.loads(dumps(task))
    document["objects"][0]["class"] = "test_migrate_plan:RenamedSince"
    paths = ws.job("unit.migrate.before", identifier(task))
    paths.root.mkdir(parents=True)
    paths.params.write_text(json.dumps(document))
    if done:
        paths.done.write_text("{}")
    return paths


def test_plan_writes_nothing_and_apply_moves(ws: Workspace) -> None:
    jobs = [old_job(ws, 0.1), old_job(ws, 0.2, done=False)]
    before = sorted(p.as_posix() for p in ws.jobs.rglob("*"))
    plan = _migrate.plan(ws)
    assert before == sorted(p.as_posix() for p in ws.jobs.rglob("*"))
    assert 2 == len(plan.changes) and [] == plan.skipped
    assert {"done", "new"} == {c.state for c in plan.changes}
    done, skipped = _migrate.apply(plan)
    assert (2, []) == (len(done), skipped)
    assert not (ws.jobs / "unit.migrate.before").exists()
    for paths in jobs:
        moved = ws.job("unit.migrate.after", paths.identifier)
        entry = json.loads(moved.params.read_text())["objects"][0]
        assert ("unit.migrate.after", ["lr"]) == (entry["type"], sorted(entry["fields"]))
    with open_index(ws) as index:
        assert {("unit.migrate.after", p.identifier) for p in jobs} == {
            (info.type_id, info.identifier) for info in index.jobs()
        }
    again = _migrate.plan(ws)
    assert ([], 2) == (again.changes, again.unchanged)


def test_a_folder_whose_new_place_exists_is_left_alone(ws: Workspace) -> None:
    old = old_job(ws, 0.1)
    taken = ws.job("unit.migrate.after", old.identifier)
    taken.root.mkdir(parents=True)
    taken.params.write_bytes(dumps(After(lr=0.1)))
    plan = _migrate.plan(ws)
    assert [] == plan.changes
    (skipped,) = plan.skipped
    assert old == skipped.job
    assert "exists already (it ran again under the new names)" in skipped.reason
    assert old.params.exists() and taken.params.exists()


def test_a_locked_job_is_skipped(ws: Workspace) -> None:
    old = old_job(ws, 0.1, done=False)
    plan = _migrate.plan(ws)
    with FileLock(old.lock):
        done, skipped = _migrate.apply(plan)
    assert [] == done
    assert ["in use by a running job: migrate later"] == [s.reason for s in skipped]
    assert old.params.exists()
    assert "unit.migrate.before" == json.loads(old.params.read_text())["objects"][0]["type"]


def test_jobs_of_classes_that_cannot_be_imported_are_listed_not_fatal(ws: Workspace) -> None:
    old_job(ws, 0.1)
    stranger = ws.job("other.task", "0" * 64)
    stranger.root.mkdir(parents=True)
    document = json.loads(dumps(After(lr=1.0)))
    document["objects"][0].update({"class": "no_such_module_here:Task", "type": "other.task"})
    stranger.params.write_text(json.dumps(document))
    plan = _migrate.plan(ws)
    assert 1 == len(plan.changes)
    (skipped,) = plan.skipped
    assert stranger == skipped.job
    assert "cannot be read under the current code" in skipped.reason
    assert "no_such_module_here" in skipped.reason


@pytest.mark.parametrize("step", ["rename", "params"])
def test_a_failure_between_steps_is_finished_by_the_next_run(
    ws: Workspace, step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk error at the rename or at params.json: a MigrationError that says to run it
    again, the folder left where a new plan finds it, and one note of where it came from."""
    from partita.errors import MigrationError

    first, second = old_job(ws, 0.1), old_job(ws, 0.2)

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    if step == "rename":
        monkeypatch.setattr(_migrate.os, "rename", fail)
    else:
        monkeypatch.setattr(_migrate, "atomic_write", fail)
    with pytest.raises(MigrationError) as caught:
        _migrate.apply(_migrate.plan(ws))
    assert "No space left on device" in str(caught.value)
    assert "0 job folder(s) were migrated before; run 'partita migrate' again" in str(caught.value)
    monkeypatch.undo()
    where = ws.job("unit.migrate.after" if step == "params" else "unit.migrate.before", "x")
    assert where.root.parent.joinpath(first.identifier).is_dir()
    assert second.root.is_dir()  # not touched
    done, skipped = _migrate.apply(_migrate.plan(ws))
    assert (2, []) == (len(done), skipped)
    for old in (first, second):
        moved = ws.job("unit.migrate.after", old.identifier)
        assert "lr" in json.loads(moved.params.read_text())["objects"][0]["fields"]
        note = json.loads(moved.migration.read_text())
        assert [f"unit.migrate.before/{old.identifier}"] == [m["from"] for m in note["migrated"]]


def test_a_task_converted_to_a_plain_config_is_refused_before_any_write(ws: Workspace) -> None:
    from partita.errors import MigrationError

    old_job(ws, 0.1)
    stale = ws.job("unit.migrate.stale", identifier(Stale()))
    stale.root.mkdir(parents=True)
    stale.params.write_bytes(dumps(Stale()))
    before = sorted(p.as_posix() for p in ws.jobs.rglob("*"))
    with pytest.raises(MigrationError, match="became a Plain, which is not a Task"):
        _migrate.plan(ws)
    assert before == sorted(p.as_posix() for p in ws.jobs.rglob("*"))
