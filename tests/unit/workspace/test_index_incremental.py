"""The incremental index: a refresh reads the job folders the change journal names, no others.

Job folders are written through the protocol (``begin_attempt``, ``record_final``), as an
experiment and its job runner do, or by hand (as a user or a foreign tool might). Counts of
folders read, listed and looked at (not times) show what a refresh touched.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from jobfolders import begin, finish, ident, make_job
from partita.cli import cli
from partita.workspace import Index, JobState, Workspace
from partita.workspace import _index as index_module
from partita.workspace._journal import JOURNAL, reset_journal

TYPE = "inc.task"
OTHER = "inc.other"
N = 120


def age_type_folders(workspace: Workspace) -> None:
    """Date the type folders back, as in a work directory nobody added to for a while."""
    past = time.time() - 60
    for folder in workspace.jobs.iterdir():
        if folder.is_dir():
            os.utime(folder, (past, past))


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path / "wd")
    for i in range(N):
        make_job(ws, TYPE if i % 4 else OTHER, i, JobState.DONE)
    age_type_folders(ws)
    return ws


class Touches:
    """Counts what an index does to job folders: reads, listings of type folders, stats."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counts: Counter[str] = Counter()
        self.read: list[str] = []

        def counted(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                self.counts[name] += 1
                if name == "read":
                    self.read.append(args[0].root.name)
                return fn(*args, **kwargs)

            return wrapper

        monkeypatch.setattr(index_module, "read_job", counted("read", index_module.read_job))
        monkeypatch.setattr(index_module, "_job_dirs", counted("list", index_module._job_dirs))
        monkeypatch.setattr(index_module, "_signature", counted("stat", index_module._signature))

    def reset(self) -> None:
        self.counts.clear()
        self.read.clear()


@pytest.fixture
def touches(monkeypatch: pytest.MonkeyPatch) -> Touches:
    return Touches(monkeypatch)


@pytest.fixture
def index(workspace: Workspace) -> Iterator[Index]:
    with Index(workspace) as idx:
        assert N == len(idx.refresh())  # the first refresh: a full scan
        yield idx


def states(index: Index) -> dict[str, str]:
    return {info.identifier: info.state for info in index.jobs()}


def full_states(workspace: Workspace) -> dict[str, str]:
    """What a scan of every folder finds, by an index of its own (in memory)."""
    with Index(workspace, memory=True) as fresh:
        fresh.refresh(full=True)
        return states(fresh)


def test_a_refresh_without_changes_touches_no_job_folder(index: Index, touches: Touches) -> None:
    assert set() == index.refresh()
    assert {} == dict(touches.counts)
    assert set() == index.refresh()
    assert {} == dict(touches.counts)


def test_a_full_refresh_looks_at_every_folder_and_reads_none_unchanged(
    index: Index, touches: Touches
) -> None:
    assert set() == index.refresh(full=True)
    assert (N, 0) == (touches.counts["stat"], touches.counts["read"])


def test_a_change_through_the_protocol_is_read_alone(
    workspace: Workspace, index: Index, touches: Touches
) -> None:
    paths = workspace.job(TYPE, ident(5))
    attempt = begin(paths)  # a new attempt: running
    assert {ident(5)} == index.refresh()
    assert [ident(5)] == touches.read
    assert "running" == states(index)[ident(5)]
    touches.reset()
    finish(paths, JobState.FAILED, attempt)
    assert {ident(5)} == index.refresh()
    assert [ident(5)] == touches.read
    assert "failed" == states(index)[ident(5)]
    touches.reset()
    assert set() == index.refresh()
    assert {} == dict(touches.counts)  # no job runs any more: nothing to look at
    assert full_states(workspace) == states(index)


def test_a_running_job_is_looked_at_every_time(
    workspace: Workspace, index: Index, touches: Touches
) -> None:
    """Its process may die without a word: a running job is read at each refresh (only it)."""
    begin(workspace.job(TYPE, ident(9)))
    index.refresh()
    touches.reset()
    assert set() == index.refresh()
    assert [ident(9)] == touches.read


def test_new_and_removed_folders_are_seen(
    workspace: Workspace, index: Index, touches: Touches
) -> None:
    make_job(workspace, TYPE, N + 1, JobState.DONE)
    make_job(workspace, "inc.new", N + 2, JobState.DONE)
    shutil.rmtree(workspace.job(TYPE, ident(1)).root)
    shutil.rmtree(workspace.jobs / OTHER)
    removed = {ident(i) for i in range(N) if i % 4 == 0}
    assert {ident(N + 1), ident(N + 2), ident(1)} | removed == index.refresh()
    assert {ident(N + 1), ident(N + 2)} == set(touches.read)
    assert full_states(workspace) == states(index)
    assert N + 2 - 1 - len(removed) == len(states(index))


def hand_edit(workspace: Workspace, i: int) -> None:
    """Turn a done job into a failed one by hand: no journal line."""
    paths = workspace.job(TYPE, ident(i))
    paths.done.unlink()
    record = json.loads(paths.state.read_text())
    record.update(state="failed", reason="by-hand")
    paths.state.write_text(json.dumps(record))
    paths.failed.write_text(json.dumps({"attempt": record["attempt"], "reason": "by-hand"}))


def test_a_hand_edit_is_missed_until_the_journal_says_so_or_a_full_scan(
    workspace: Workspace, index: Index, touches: Touches
) -> None:
    """The journal is how a refresh learns of a change; ``full=True`` looks at everything."""
    hand_edit(workspace, 3)
    assert set() == index.refresh()
    assert "done" == states(index)[ident(3)]
    assert {ident(3)} == index.refresh(full=True)
    assert "failed" == states(index)[ident(3)]
    assert [ident(3)] == touches.read  # every folder looked at, only the changed one read


def test_a_missing_journal_means_one_full_scan(
    workspace: Workspace, index: Index, touches: Touches
) -> None:
    (workspace.jobs / JOURNAL).unlink()
    hand_edit(workspace, 3)
    assert {ident(3)} == index.refresh()
    assert (N, [ident(3)]) == (touches.counts["stat"], touches.read)
    assert (workspace.jobs / JOURNAL).exists()  # a new one, for next time
    touches.reset()
    assert set() == index.refresh()
    assert {} == dict(touches.counts)
    paths = workspace.job(TYPE, ident(6))
    begin(paths)
    assert {ident(6)} == index.refresh()  # incremental again
    assert [ident(6)] == touches.read


@pytest.mark.parametrize(
    "damage",
    [
        b"this is not a job name\n",
        b"\xff\xfe\n",
        b"../../etc/passwd\n",
    ],
    ids=["words", "binary", "path"],
)
def test_a_damaged_journal_means_one_full_scan(
    workspace: Workspace, index: Index, touches: Touches, damage: bytes
) -> None:
    hand_edit(workspace, 3)
    with open(workspace.jobs / JOURNAL, "ab") as journal:
        journal.write(damage)
    assert {ident(3)} == index.refresh()
    assert (N, [ident(3)]) == (touches.counts["stat"], touches.read)
    touches.reset()
    begin(workspace.job(TYPE, ident(6)))
    assert {ident(6)} == index.refresh()  # past the damage: incremental again
    assert [ident(6)] == touches.read
    assert full_states(workspace) == states(index)


def test_a_journal_truncated_mid_line_means_one_full_scan(
    workspace: Workspace, index: Index, touches: Touches
) -> None:
    """Cut in the middle of a line, below where the index stopped: its offset means nothing."""
    journal = workspace.jobs / JOURNAL
    size = journal.stat().st_size
    os.truncate(journal, size // 2 + 7)  # no longer ends with a newline
    hand_edit(workspace, 3)
    assert {ident(3)} == index.refresh()
    assert N == touches.counts["stat"]
    touches.reset()
    # The next writer's line follows the cut line: it is still read as one job.
    paths = workspace.job(TYPE, ident(10))
    begin(paths)
    assert {ident(10)} == index.refresh()
    assert [ident(10)] == touches.read
    assert full_states(workspace) == states(index)


def test_a_half_written_line_waits_for_its_end(
    workspace: Workspace, index: Index, touches: Touches
) -> None:
    """A line without its newline yet (a writer between two writes) is read once complete."""
    journal = workspace.jobs / JOURNAL
    paths = workspace.job(TYPE, ident(11))
    attempt = begin(paths)
    index.refresh()
    finish_without_journal = json.loads(paths.state.read_text())
    finish_without_journal.update(state="done", ended=time.time())
    paths.state.write_text(json.dumps(finish_without_journal))
    paths.done.write_text(json.dumps({"attempt": attempt}))
    line = f"{TYPE}/{ident(11)}\n".encode()
    with open(journal, "ab") as file:
        file.write(line[:10])
    touches.reset()
    assert {ident(11)} == index.refresh()  # it was running: looked at anyway
    assert "done" == states(index)[ident(11)]
    with open(journal, "ab") as file:
        file.write(line[10:])
    touches.reset()
    assert set() == index.refresh()
    assert [ident(11)] == touches.read  # the completed line: read, found unchanged
    assert 0 == touches.counts["list"]


def test_an_index_of_another_journal_generation_scans_once(
    workspace: Workspace, index: Index, touches: Touches
) -> None:
    """An older copy of the index, after the journal was started afresh, finds every change."""
    old = workspace.root / "old-index.sqlite"
    with sqlite3.connect(old) as backup:
        index._db.backup(backup)
    attempt = begin(workspace.job(TYPE, ident(7)))
    finish(workspace.job(TYPE, ident(7)), JobState.FAILED, attempt)
    index.refresh()
    reset_journal(workspace.jobs / JOURNAL)  # as an index does past JOURNAL_LIMIT
    hand_edit(workspace, 3)
    with Index(workspace, path=old) as stale:
        touches.reset()
        assert {ident(7), ident(3)} == stale.refresh()
        assert N == touches.counts["stat"]
        assert full_states(workspace) == states(stale)


def test_an_older_index_catches_up_from_its_offset(
    workspace: Workspace, index: Index, touches: Touches
) -> None:
    """An index copy that stopped earlier in the same journal reads on from there."""
    old = workspace.root / "old-index.sqlite"
    with sqlite3.connect(old) as backup:
        index._db.backup(backup)
    for i in (13, 14):
        paths = workspace.job(TYPE, ident(i))
        finish(paths, JobState.FAILED, begin(paths))
    with Index(workspace, path=old) as stale:
        touches.reset()
        assert {ident(13), ident(14)} == stale.refresh()
        assert (2, 0) == (touches.counts["stat"], touches.counts["list"])
        assert full_states(workspace) == states(stale)


def test_a_copied_work_directory_is_scanned_once(workspace: Workspace, index: Index) -> None:
    """A copy's journal is another file: its index (copied along) does not trust its offset."""
    index.close()
    copy = workspace.root.with_name("copy")
    shutil.copytree(workspace.root, copy)
    hand_edit(Workspace(copy), 3)
    with Index(Workspace(copy)) as copied:
        assert {ident(3)} == copied.refresh()


def cli_answers(root: Path) -> tuple[Any, ...]:
    def run(*args: str) -> str:
        result = CliRunner().invoke(cli, [*args])
        assert 0 == result.exit_code, result.output
        return result.output

    listed = json.loads(run("jobs", "list", str(root), "--json"))
    running = run("jobs", "list", str(root), "--state", "running")
    failed = json.loads(run("jobs", "list", str(root), "--state", "failed", "--json"))
    status = run("status", str(root))
    return (
        sorted((j["id"], j["state"]) for j in listed),
        running,
        sorted(j["id"] for j in failed),
        status,
    )


def test_the_cli_answers_as_after_a_full_scan(workspace: Workspace) -> None:
    cli_answers(workspace.root)  # builds the index
    for i in (2, 5, 6):
        paths = workspace.job(TYPE, ident(i))
        attempt = begin(paths)
        if i != 6:
            finish(paths, JobState.FAILED, attempt)
    make_job(workspace, TYPE, N + 5, JobState.CANCELLED)
    shutil.rmtree(workspace.job(TYPE, ident(9)).root)
    incremental = cli_answers(workspace.root)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{workspace.index_path}{suffix}").unlink(missing_ok=True)
    assert incremental == cli_answers(workspace.root)  # an index built from scratch
    listed = dict(incremental[0])
    assert ("failed", "failed", "running", "cancelled") == tuple(
        listed[ident(i)] for i in (2, 5, 6, N + 5)
    )
    assert ident(9) not in listed


def test_jobs_list_json_streams_what_a_list_would_print(workspace: Workspace) -> None:
    """``jobs list --json`` writes a job at a time, exactly as the whole list would print."""
    from partita.cli._app import job_json

    for i in (5, 6):
        begin(workspace.job(TYPE, ident(i)))
    result = CliRunner().invoke(cli, ["jobs", "list", str(workspace.root), "--json"])
    assert 0 == result.exit_code, result.output
    with Index(workspace) as idx:
        idx.refresh()
        whole = [job_json(workspace, info) for info in idx.jobs()]
        assert json.dumps(whole, indent=2, ensure_ascii=False) + "\n" == result.output
        tagged = list(idx.iter_jobs(states=["running"], batch=1))
        assert {ident(5), ident(6)} == {info.identifier for info in tagged}
    empty = CliRunner().invoke(
        cli, ["jobs", "list", str(workspace.root), "-s", "waiting", "--json"]
    )
    assert "[]\n" == empty.output


def test_jobs_a_run_records_are_reported_when_the_run_changes(
    workspace: Workspace, index: Index, touches: Touches
) -> None:
    """A run that submits done jobs (a re-run) changes their tags and experiments, not their
    folders: refresh() reports those jobs, and only those; a deleted run reports its jobs."""
    from partita.workspace._runs import RunPaths, RunWriter

    writer = RunWriter(RunPaths.of(workspace, "rerun", "r1"))
    writer.create({"status": "running", "started": time.time()})
    for i in (1, 2):
        writer.append({"id": ident(i), "type": TYPE, "tags": {"seed": i}, "depends": []})
    assert {ident(1), ident(2)} == index.refresh()
    assert 0 == touches.counts["read"]  # no job folder was read for it
    assert {"seed": 1} == index.job(ident(1)).tags
    assert ["rerun"] == index.job(ident(2)).experiments
    writer.append({"id": ident(3), "type": TYPE, "tags": {}, "depends": [ident(1)]})
    assert {ident(3)} == index.refresh()  # the lines already read did not change
    writer.write_record({"status": "done", "started": time.time()})
    assert set() == index.refresh()  # the record alone: no job's info changed
    shutil.rmtree(workspace.experiments / "rerun")
    assert {ident(1), ident(2), ident(3)} == index.refresh()
    assert {} == index.job(ident(1)).tags


def test_jobs_and_iter_jobs_select_alike(workspace: Workspace) -> None:
    """One filter builder: the list and the stream of the index take the same filters."""
    begin(workspace.job(TYPE, ident(1)), tags={"seed": 1})
    broken = workspace.job(TYPE, ident(N + 1))  # running, then its state.json unreadable
    broken.root.mkdir(parents=True)
    broken.params.write_text("{}\n")
    begin(broken)
    broken.state.write_text("{not json")
    with Index(workspace) as idx:
        idx.refresh()
        for filters in (
            {},
            {"states": ["done"]},
            {"task": OTHER},
            {"tags": {"seed": 1}},
            {"tags": {"seed": "1"}},
            {"damaged": True},
            {"states": ["done"], "task": TYPE, "since": 0.0},
        ):
            listed = [info.identifier for info in idx.jobs(**filters)]
            streamed = [info.identifier for info in idx.iter_jobs(**filters, batch=7)]
            assert sorted(listed) == sorted(streamed), filters
        assert [ident(1)] == [info.identifier for info in idx.iter_jobs(tags={"seed": 1})]
        assert [] == list(idx.iter_jobs(tags={"seed": "1"}))
        assert [ident(N + 1)] == [info.identifier for info in idx.iter_jobs(damaged=True)]
