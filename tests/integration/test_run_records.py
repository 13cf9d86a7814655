"""Run folders: their paths, the readers that survive damage, and what a run records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from partita.cli import cli
from partita.workspace import (
    Index,
    RunPaths,
    RunWriter,
    Workspace,
    iter_runs,
    read_run,
    read_submissions,
)

TASKS = """
class Leaf(Task, id="runs.leaf"):
    n: Param[int]
    def execute(self):
        print("leaf", self.n)
"""


def _write_run(workspace: Workspace, experiment: str, run: str, **record: Any) -> RunPaths:
    paths = RunPaths.of(workspace, experiment, run)
    writer = RunWriter(paths)
    writer.create({"experiment": experiment, "run": run, "status": "running", **record})
    return paths


def test_run_paths_name_every_file(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "wd")
    paths = RunPaths.of(workspace, "xp", "20260101-000000-abcdef")
    assert paths.root == workspace.experiments / "xp" / "runs" / "20260101-000000-abcdef"
    assert paths.experiment == "xp"
    assert paths.run == "20260101-000000-abcdef"
    assert {paths.record.parent, paths.submissions.parent, paths.environment.parent} == {paths.root}
    assert paths.latest.parent == workspace.experiments / "xp"
    assert list(iter_runs(workspace)) == []
    _write_run(workspace, "xp", "r1", started=1.0)
    assert [p.run for p in iter_runs(workspace)] == ["r1"]
    assert [p.run for p in iter_runs(workspace, "other")] == []


def test_writer_appends_visibly_and_finishes(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "wd")
    paths = RunPaths.of(workspace, "xp", "r1")
    writer = RunWriter(paths)
    writer.create({"status": "running", "started": 5.0})
    assert json.loads(paths.latest.read_text()) == {"run": "r1"}
    writer.append({"id": "a" * 64, "type": "t", "tags": {"k": 1}, "depends": [], "time": 6.0})
    # Visible to another reader before the run ends (nothing buffered in this process).
    assert read_submissions(paths).identifiers() == ["a" * 64]
    writer.finish({"status": "done", "started": 5.0, "ended": 7.0, "jobs": {"a" * 64: "done"}})
    record = read_run(paths)
    assert (record.status, record.ended, record.job_states) == ("done", 7.0, {"a" * 64: "done"})
    assert record.damage == []


def test_lines_of_jobs_found_done_wait_for_the_next_launch(tmp_path: Path) -> None:
    """Deferred lines (jobs found done) are written, in order, with the next line that is not
    deferred, by flush() and by finish(), and never more than DEFERRED_LINES wait."""
    from partita.workspace._runs import DEFERRED_LINES

    workspace = Workspace(tmp_path / "wd")
    paths = RunPaths.of(workspace, "xp", "r1")
    writer = RunWriter(paths)
    writer.create({"status": "running", "started": 5.0})

    def line(n: int) -> dict[str, Any]:
        return {"id": f"{n:064x}", "type": "t", "tags": {}, "depends": [], "time": 6.0}

    writer.append(line(1), defer=True)
    writer.append(line(2), defer=True)
    assert read_submissions(paths).identifiers() == []
    writer.append(line(3))  # a job that may be launched: on disk with those before it
    assert read_submissions(paths).identifiers() == [f"{n:064x}" for n in (1, 2, 3)]
    writer.append(line(4), defer=True)
    writer.flush()
    assert len(read_submissions(paths).identifiers()) == 4
    for n in range(DEFERRED_LINES):
        writer.append(line(10 + n), defer=True)
    assert len(read_submissions(paths).identifiers()) == 4 + DEFERRED_LINES
    writer.append(line(5), defer=True)
    writer.finish({"status": "done", "started": 5.0, "ended": 7.0, "jobs": {}})
    ids = read_submissions(paths).identifiers()
    assert len(ids) == 5 + DEFERRED_LINES and ids[-1] == f"{5:064x}"


def test_a_dry_run_does_not_become_latest(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "wd")
    RunWriter(RunPaths.of(workspace, "xp", "real")).create({"status": "running"})
    RunWriter(RunPaths.of(workspace, "xp", "dry")).create({"dry_run": True}, latest=False)
    assert json.loads((workspace.experiments / "xp" / "latest.json").read_text()) == {"run": "real"}


def test_readers_report_damage_and_read_the_rest(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "wd")
    paths = _write_run(workspace, "xp", "r1")
    good = {"id": "b" * 64, "type": "t", "tags": {}, "depends": [], "time": 1.0}
    paths.submissions.write_text(
        json.dumps(good)
        + "\n"
        + "{not json\n"
        + "[1, 2]\n"
        + json.dumps({"id": "c" * 64, "tags": "nope", "depends": [3, "d"]})
        + "\n"
        + '{"id": "half-writ'  # a line being written: skipped, not damage
    )
    paths.record.write_text("[1, 2, 3]\n")
    record = read_run(paths)
    assert record.data == {} and record.status is None
    assert len(record.damage) == 1 and "expected a JSON object, found a list" in record.damage[0]
    subs = read_submissions(paths)
    assert subs.identifiers() == ["b" * 64, "c" * 64]
    assert subs.entries[1].tags == {} and subs.entries[1].depends == ["d"]
    assert [d.split(" line ")[1] for d in subs.damage] == [
        "2: expected a JSON object with an 'id'",
        "3: expected a JSON object with an 'id'",
    ]
    paths.record.write_text("{truncated")
    assert read_run(paths).damage[0].startswith("run.json: not valid JSON")


def test_index_and_cli_survive_damaged_run_records(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "wd")
    ok = _write_run(workspace, "xp", "r1", started=1.0)
    ok.submissions.write_text(json.dumps({"id": "e" * 64, "time": 1.0}) + "\n" + "oops\n")
    bad = _write_run(workspace, "xp", "r2", started=2.0)
    bad.record.write_text('"a string"\n')
    with Index(workspace) as index:
        index.refresh()
        runs = {run.run: run for run in index.runs("xp")}
        assert index.run_jobs("xp", "r1") == ["e" * 64]
        assert len(runs["r1"].damage) == 1 and "line 2" in runs["r1"].damage[0]
        assert runs["r2"].status is None and "found the string" in runs["r2"].damage[0]
    result = CliRunner().invoke(cli, ["experiments", "show", "xp", "-w", str(workspace.root)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["experiments", "list", "-w", str(workspace.root)])
    assert result.exit_code == 0, result.output
