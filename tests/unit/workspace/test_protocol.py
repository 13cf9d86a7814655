"""The job-folder protocol (writer side): attempts, finals, set-aside, history, paths."""

from __future__ import annotations

import ast
import errno
import json
import os
import threading
from pathlib import Path

import pytest

import partita.run
from partita.errors import WorkspaceError
from partita.workspace import (
    FileLock,
    JobPaths,
    JobState,
    Workspace,
    append_history,
    begin_attempt,
    claim_attempt,
    hold,
    read_job,
    read_state,
    record_final,
)
from partita.workspace._state import HISTORY_LIMIT


@pytest.fixture
def paths(tmp_path: Path) -> JobPaths:
    job = Workspace(tmp_path / "work").job("demo.task", "ab" * 32)
    job.root.mkdir(parents=True)
    job.params.write_text("{}\n")
    return job


def begin(paths: JobPaths, *, resumable: bool = False) -> int:
    with hold(paths.lock):
        return begin_attempt(
            paths,
            read_state(paths),
            owner={"experiment": "x"},
            placeholder={"kind": "local"},
            tags={},
            keep_previous=resumable,
        )


def test_a_final_is_recorded_only_for_the_current_attempt(paths: JobPaths) -> None:
    assert begin(paths) == 1
    assert begin(paths) == 2  # attempt 1 vanished: 2 is in charge now
    assert record_final(paths, JobState.FAILED, attempt=1, reason="lost") is None
    assert not paths.failed.exists()
    done = record_final(paths, JobState.DONE, attempt=2)
    assert done is not None and done.written and paths.done.exists()
    later = record_final(paths, JobState.FAILED, attempt=2, reason="lost")
    assert later is not None and not later.written and later.state is JobState.DONE
    assert not paths.failed.exists()


def test_amend_replaces_the_same_attempts_marker(paths: JobPaths) -> None:
    begin(paths)
    record_final(paths, JobState.FAILED, attempt=1, reason="error", detail="exit 1")
    amended = record_final(paths, JobState.FAILED, attempt=1, reason="timeout", amend=True)
    assert amended is not None and amended.written
    assert (read_job(paths).state, read_job(paths).reason) == ("failed", "timeout")


def test_never_launched_is_recorded_unless_an_attempt_runs(paths: JobPaths) -> None:
    begin(paths)
    assert record_final(paths, JobState.CANCELLED, attempt=None, reason="dependency") is None
    fresh = JobPaths(paths.root.parent / ("cd" * 32))
    fresh.root.mkdir()
    recorded = record_final(fresh, JobState.CANCELLED, attempt=None, reason="dependency")
    assert recorded is not None and recorded.written
    assert read_job(fresh).state == "cancelled" and read_state(fresh)["attempt"] == 0


def test_record_final_gives_up_on_a_held_lock(paths: JobPaths) -> None:
    begin(paths)
    taken = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with FileLock(paths.lock):
            taken.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    taken.wait(5)
    try:
        assert record_final(paths, JobState.FAILED, attempt=1, blocking=False) is None
        assert record_final(paths, JobState.FAILED, attempt=1, timeout=0.05) is None
    finally:
        release.set()
        thread.join()
    assert record_final(paths, JobState.FAILED, attempt=1, reason="lost") is not None


def test_the_runner_claims_only_its_attempt(paths: JobPaths) -> None:
    begin(paths)
    begin(paths)
    stale = claim_attempt(paths, 1)
    assert stale.attempt is None and "attempt 2" in stale.why
    current = claim_attempt(paths, 2)
    assert current.attempt == 2 and read_state(paths)["started"] is not None
    record_final(paths, JobState.DONE, attempt=2)
    assert claim_attempt(paths, 2).done


def test_a_new_attempt_sets_the_previous_one_aside(paths: JobPaths) -> None:
    begin(paths)
    paths.stdout.write_text("first\n")
    (paths.root / "model.pt").write_text("weights")
    record_final(paths, JobState.FAILED, attempt=1, reason="error")
    assert begin(paths) == 2
    aside = paths.attempt_dir(1)
    assert (aside / "stdout").read_text() == "first\n" and (aside / "model.pt").exists()
    assert not paths.failed.exists()  # the old marker is gone; the history keeps it
    assert [h["state"] for h in read_state(paths)["history"]][-1] == "failed"
    assert paths.params.exists() and paths.state.exists()
    record_final(paths, JobState.FAILED, attempt=2, reason="error")
    paths.stdout.write_text("second\n")
    assert begin(paths, resumable=True) == 3
    assert paths.stdout.read_text() == "second\n"  # resumable: kept in place


def test_history_is_bounded(paths: JobPaths) -> None:
    record: dict[str, object] = {}
    for i in range(HISTORY_LIMIT + 7):
        append_history(record, JobState.RUNNING, attempt=i)
    history = record["history"]
    assert isinstance(history, list) and len(history) == HISTORY_LIMIT
    assert history[0]["attempt"] == 7 and history[-1]["attempt"] == HISTORY_LIMIT + 6


def test_job_paths_stay_inside_the_work_directory(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "work")
    for type_id, ident in [("..", "x"), ("a", "../../etc"), ("a/b", "c"), (".hidden", "c")]:
        with pytest.raises(WorkspaceError, match="inside"):
            workspace.job(type_id, ident)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (workspace.jobs / "demo.task").mkdir(parents=True)
    (workspace.jobs / "demo.task" / "linked").symlink_to(outside)
    with pytest.raises(WorkspaceError, match="outside"):
        workspace.job("demo.task", "linked")
    assert workspace.job("demo.task", "ab" * 32).root == workspace.jobs / "demo.task" / ("ab" * 32)


def test_the_runner_spells_no_file_name_of_a_job_folder() -> None:
    names = {"params.json", "state.json", "done", "failed", "cancelled", "lock", ".attempts"}
    names |= {"stdout", "stderr", "progress.json", "cancel-requested"}
    tree = ast.parse(Path(partita.run.__file__).read_text())
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    assert not names & strings


def test_lock_note_is_replaced_whole_by_a_shorter_one(tmp_path: Path) -> None:
    """The holder's note is written over the previous one: nothing of a longer note is left."""
    from partita.workspace._locks import FileLock, holder

    path = tmp_path / "lock"
    with FileLock(path, note={"role": "launcher", "long": "x" * 500}):
        assert "x" * 500 == (holder(path) or {}).get("long")
    with FileLock(path, note={"role": "runner"}):
        note = holder(path)
        assert note is not None and "runner" == note["role"] and "long" not in note


def test_a_final_marker_is_a_hard_link_to_the_final_state(paths: JobPaths) -> None:
    """The marker is made last, as a link to the state.json written (and fsynced) before it."""
    from partita.workspace import read_status

    begin(paths)
    recorded = record_final(paths, JobState.FAILED, attempt=1, reason="error", detail="boom")
    assert recorded is not None and recorded.written
    assert os.path.samefile(paths.failed, paths.state)
    status = read_status(paths)
    assert status.state is JobState.FAILED and status.damage == ()
    # Read as the small marker would be: its time is the record's end.
    ended = read_state(paths)["ended"]
    expected = {"time": ended, "attempt": 1, "reason": "error", "detail": "boom"}
    assert expected == dict(status.final or {})
    # A new attempt removes the marker and replaces state.json (never edits it).
    begin(paths)
    assert not paths.failed.exists() and read_state(paths)["attempt"] == 2


def test_a_marker_of_its_own_where_no_link_can_be_made(
    paths: JobPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    from partita.workspace import read_status

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, "no hard links here")

    begin(paths)
    monkeypatch.setattr(os, "link", refuse)
    record_final(paths, JobState.DONE, attempt=1)
    assert not os.path.samefile(paths.done, paths.state)
    marker = json.loads(paths.done.read_text())
    assert marker["attempt"] == 1 and marker["time"] == read_state(paths)["ended"]
    assert read_status(paths).state is JobState.DONE


def test_old_markers_are_read_as_before(paths: JobPaths) -> None:
    """A small marker (an older work directory) still reads; one without ``time`` too."""
    from partita.workspace import final_marker, read_job, read_status

    begin(paths)
    paths.failed.write_text('{"attempt": 1, "reason": "lost", "time": 12.5}\n')
    status = read_status(paths)
    assert status.state is JobState.FAILED and dict(status.final or {})["time"] == 12.5
    assert final_marker(paths) == (JobState.FAILED, {"attempt": 1, "reason": "lost", "time": 12.5})
    paths.failed.write_text('{"attempt": 1, "reason": "lost"}\n')
    record = read_state(paths)
    record["ended"] = 20.0
    paths.state.write_text(json.dumps(record))
    assert read_job(paths).ended == 20.0  # no time in the marker: the record's end


def test_a_locally_started_runner_finds_its_claim_written(paths: JobPaths) -> None:
    """The local launcher records the runner it started; that runner writes no claim."""
    from partita.workspace import identity, read_status, record_handle

    with hold(paths.lock):
        record = read_state(paths)
        begin_attempt(
            paths,
            record,
            owner={"experiment": "x"},
            placeholder={"kind": "local"},
            tags={},
            keep_previous=False,
            write=False,
        )
        record_handle(paths, record, {"kind": "local", **identity()}, started=True)
    written = read_state(paths)
    assert written["started"] is not None and written["runner"]["pid"] == os.getpid()
    assert [h["state"] for h in written["history"]] == ["running"]
    assert read_status(paths).state is JobState.RUNNING
    before = paths.state.stat().st_ino
    claim = claim_attempt(paths, 1)
    assert claim.attempt == 1 and claim.record == written
    assert paths.state.stat().st_ino == before  # nothing written
    # Another process (a cluster runner) still claims.
    with hold(paths.lock):
        record = read_state(paths)
        record["runner"] = {**record["runner"], "pid": os.getpid() + 1}
        paths.state.write_text(json.dumps(record))
    claim_attempt(paths, 1)
    assert read_state(paths)["runner"]["pid"] == os.getpid()


def test_a_cluster_handle_records_no_runner(paths: JobPaths) -> None:
    from partita.workspace import record_handle

    begin(paths)
    with hold(paths.lock):
        record = read_state(paths)
        record_handle(paths, record, {"kind": "slurm", "job_id": "12"})
    assert read_state(paths)["started"] is None and "runner" not in read_state(paths)
    claim_attempt(paths, 1)
    assert read_state(paths)["started"] is not None
