"""The file steps of an attempt (``partita.scheduler._attempt``) on real job folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from partita.launchers.local import LocalLauncher
from partita.scheduler import _attempt as disk
from partita.workspace import JobPaths, JobState, read_status
from partita.workspace._state import write_final

PARAMS = b'{"format": "test"}\n'


def _paths(tmp_path: Path, name: str = "a" * 64) -> JobPaths:
    return JobPaths(tmp_path / "jobs" / "test.type" / name)


def test_prepare_makes_a_new_folder_with_its_params_and_lock(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    status = disk.prepare(paths, PARAMS, None)
    assert status == read_status(paths)  # what reading the new folder would have said
    assert status.state is None and not status.damage
    assert paths.params.read_bytes() == PARAMS
    assert paths.lock.exists()
    assert sorted(p.name for p in paths.root.iterdir()) == ["lock", "params.json"]


def test_prepare_reads_a_folder_that_exists_even_without_params(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    paths.root.mkdir(parents=True)
    (paths.root / "done").write_text("{}")
    status = disk.prepare(paths, PARAMS, None)
    assert status.state is JobState.DONE
    assert not paths.params.exists()  # a done job's folder is left as it is


def test_begin_reuses_the_record_read_under_the_lock(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    disk.prepare(paths, PARAMS, None)
    first, record = disk.begin(paths, owner={}, placeholder={"kind": "x"}, tags={}, resumable=True)
    assert first == 1
    write_final(paths, JobState.FAILED, attempt=1, reason="error", record=record)
    on_disk = json.loads(paths.state.read_text())
    on_disk["extra"] = {"kept": True}  # a field this version does not know is kept
    paths.state.write_text(json.dumps(on_disk))
    status = read_status(paths)
    second, record = disk.begin(
        paths, owner={}, placeholder={"kind": "x"}, tags={}, resumable=True, status=status
    )
    assert second == 2
    assert record["extra"] == {"kept": True}
    assert [h["state"] for h in record["history"]] == [h["state"] for h in on_disk["history"]]
    assert status.record["history"] == on_disk["history"]  # not changed in place


def test_begin_reads_the_file_again_when_the_status_was_damaged(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    disk.prepare(paths, PARAMS, None)
    paths.state.write_text(json.dumps({"attempt": "3", "state": "failed"}))
    status = read_status(paths)
    assert status.damage
    attempt, record = disk.begin(
        paths, owner={}, placeholder={"kind": "x"}, tags={}, resumable=True, status=status
    )
    assert "attempt" not in status.record
    assert record["attempt"] == attempt


@pytest.mark.parametrize("marker", ['{"attempt": 2, "detail": "ok"}', "", "[1]", '{"attempt": 1}'])
def test_written_final_reads_the_done_marker_of_its_attempt(tmp_path: Path, marker: str) -> None:
    paths = _paths(tmp_path)
    disk.prepare(paths, PARAMS, None)
    paths.state.write_text(json.dumps({"state": "done", "attempt": 2, "detail": "ok"}))
    paths.done.write_text(marker)
    found = disk.written_final(paths, 2)
    if marker == '{"attempt": 1}':
        assert found is None  # the marker of another attempt
    else:
        assert found is not None and found.state is JobState.DONE
        assert found.detail == "ok"  # from the marker, or (damaged marker) state.json


def test_the_job_environment_follows_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    launcher = LocalLauncher(1)
    first = launcher._environment({"A": "1"})
    assert launcher._environment({"A": "1"}) is first  # not made again
    monkeypatch.setenv("PARTITA_TEST_VARIABLE", "x")
    second = launcher._environment({"A": "1"})
    assert second is not first and second["PARTITA_TEST_VARIABLE"] == "x"
    assert launcher._environment({"A": "2"})["A"] == "2"
    monkeypatch.delenv("PARTITA_TEST_VARIABLE")
    assert "PARTITA_TEST_VARIABLE" not in launcher._environment({"A": "2"})
