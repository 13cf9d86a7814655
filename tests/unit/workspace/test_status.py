"""read_status: one reader of a job folder, which never raises for bad files."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from partita.workspace import JobPaths, JobState, Reason, read_progress, read_status
from partita.workspace._state import write_final, write_state


@pytest.fixture
def paths(tmp_path: Path) -> JobPaths:
    root = tmp_path / "jobs" / "demo.task" / ("ab" * 32)
    root.mkdir(parents=True)
    return JobPaths(root)


def _write(path: Path, value: Any) -> None:
    path.write_text(value if isinstance(value, str) else json.dumps(value))


def test_never_launched(paths: JobPaths) -> None:
    status = read_status(paths)
    assert status.state is None
    assert status.reason is None
    assert dict(status.record) == {}
    assert status.final is None
    assert status.damage == ()
    assert not status.done


def test_missing_folder_is_not_damage(tmp_path: Path) -> None:
    status = read_status(JobPaths(tmp_path / "nowhere" / "x"))
    assert (status.state, status.damage) == (None, ())


def test_running(paths: JobPaths) -> None:
    write_state(paths, {"state": "running", "attempt": 2, "launched": 1.5})
    status = read_status(paths)
    assert status.state is JobState.RUNNING
    assert status.record["attempt"] == 2
    assert status.damage == ()


def test_failed_marker_gives_state_and_reason(paths: JobPaths) -> None:
    write_state(paths, {"state": "running", "attempt": 1})
    write_final(paths, JobState.FAILED, attempt=1, reason="timeout", detail="too long")
    status = read_status(paths)
    assert status.state is JobState.FAILED
    assert status.reason is Reason.TIMEOUT
    assert status.final is not None and status.final["detail"] == "too long"
    assert status.record["history"][-1]["state"] == "failed"
    assert status.damage == ()


def test_done_wins_over_other_markers(paths: JobPaths) -> None:
    _write(paths.failed, {"reason": "error"})
    _write(paths.done, {"time": 3.0, "attempt": 1})
    status = read_status(paths)
    assert status.done and status.reason is None


def test_empty_marker_is_a_marker(paths: JobPaths) -> None:
    paths.done.touch()
    status = read_status(paths)
    assert status.done
    assert status.final == {}
    assert status.damage == ()


def test_final_state_in_state_json_without_marker_is_not_final(paths: JobPaths) -> None:
    """The marker is written last: without it, the job did not finish."""
    write_state(paths, {"state": "done", "attempt": 1})
    status = read_status(paths)
    assert status.state is None
    assert not status.done


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[1, 2]", "state.json: expected a JSON object, found a list"),
        ('"running"', "state.json: expected a JSON object, found the string 'running'"),
        (
            '{"state": "done",\n not json',
            "state.json: not valid JSON (expecting property name enclosed in double quotes"
            " at line 2, column 2)",
        ),
        ("", "state.json: the file is empty"),
    ],
)
def test_unreadable_state_json(paths: JobPaths, content: str, expected: str) -> None:
    _write(paths.state, content)
    status = read_status(paths)
    assert status.state is None
    assert dict(status.record) == {}
    assert len(status.damage) == 1
    assert status.damage[0].startswith(expected)


def test_state_json_directory(paths: JobPaths) -> None:
    paths.state.mkdir()
    status = read_status(paths)
    assert status.damage == ("state.json: expected a file, found a directory",)


def test_unreadable_permissions() -> None:
    """A state.json the reader may not open is damage (as root: read as an unprivileged user)."""
    base = Path(tempfile.mkdtemp(prefix="partita-perm-"))
    try:
        _check_unreadable(base)
    finally:
        shutil.rmtree(base)


def _check_unreadable(base: Path) -> None:
    root = base / "jobs" / "demo.task" / ("ab" * 32)
    root.mkdir(parents=True)
    for folder in (base, *root.relative_to(base).parents):
        (base / folder).chmod(0o755)  # traversable by anyone: only state.json is closed
    root.chmod(0o755)
    paths = JobPaths(root)
    write_state(paths, {"state": "running"})
    paths.state.chmod(0)
    if os.geteuid() != 0:
        status = read_status(paths)
        assert status.damage and "cannot read it" in status.damage[0]
        return
    # Root reads files whatever their mode: read from a child that gave its privileges up.
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(reader)
            os.setgid(65534)
            os.setuid(65534)
            damage = read_status(paths).damage
            os.write(writer, "\n".join(damage).encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        damage_text = pipe.read().decode()
    os.waitpid(pid, 0)
    assert "state.json: cannot read it (Permission denied)" in damage_text


def test_other_os_errors_are_damage(paths: JobPaths) -> None:
    """An error other than 'no such file' (here a symbolic link loop) is damage, not a crash."""
    paths.state.symlink_to(paths.state.name)
    status = read_status(paths)
    assert status.state is None
    assert status.damage == ("state.json: cannot read it (Too many levels of symbolic links)",)


def test_fields_of_the_wrong_type_are_left_out(paths: JobPaths) -> None:
    _write(
        paths.state,
        {
            "state": "sleeping",
            "attempt": "2",
            "started": "yesterday",
            "ended": True,
            "launcher": [1],
            "tags": "lr=1",
            "reason": 3,
            "history": {"state": "running"},
            "extra": "kept",
        },
    )
    status = read_status(paths)
    assert dict(status.record) == {"extra": "kept"}
    assert status.state is None
    joined = "\n".join(status.damage)
    for field in ("state", "attempt", "started", "ended", "launcher", "tags", "reason", "history"):
        assert f"'{field}'" in joined
    assert "expected 'attempt' to be an integer, found the string '2'" in joined
    assert "expected 'history' to be a list, found an object" in joined


def test_bad_history_entries_are_dropped(paths: JobPaths) -> None:
    _write(
        paths.state,
        {
            "state": "running",
            "history": [
                {"state": "running", "time": 1.0, "attempt": 1},
                "garbage",
                {"state": "running", "time": "noon"},
            ],
        },
    )
    status = read_status(paths)
    assert status.state is JobState.RUNNING
    assert status.record["history"] == [
        {"state": "running", "time": 1.0, "attempt": 1},
        {"state": "running"},
    ]
    assert status.damage == (
        "state.json: history[1]: expected a JSON object, found the string 'garbage'",
        "state.json: history[2]: expected 'time' to be a number, found the string 'noon'",
    )


@pytest.mark.parametrize("marker", ["done", "failed", "cancelled"])
def test_damaged_marker_still_decides_the_state(paths: JobPaths, marker: str) -> None:
    """A done job whose marker is unreadable is still done: it must never run again."""
    _write(getattr(paths, marker), "[]")
    status = read_status(paths)
    assert status.state is JobState(marker)
    assert status.final == {}
    assert status.damage == (f"{marker}: expected a JSON object, found a list",)


def test_marker_with_bad_fields(paths: JobPaths) -> None:
    _write(paths.failed, {"reason": "gremlins", "time": "now", "attempt": 1})
    write_state(paths, {"state": "failed", "reason": "error"})
    status = read_status(paths)
    assert status.state is JobState.FAILED
    assert status.final == {"attempt": 1}
    # The marker's reason is unreadable: the one state.json recorded for it is used.
    assert status.reason is Reason.ERROR
    assert len(status.damage) == 2


def test_record_is_read_only(paths: JobPaths) -> None:
    write_state(paths, {"state": "running"})
    status = read_status(paths)
    with pytest.raises(TypeError):
        status.record["state"] = "done"  # type: ignore[index]


def test_progress(paths: JobPaths) -> None:
    assert read_progress(paths).fraction is None
    _write(paths.progress, {"fraction": 0.5, "message": "epoch 2"})
    progress = read_progress(paths)
    assert (progress.fraction, progress.message, progress.damage) == (0.5, "epoch 2", ())
    _write(paths.progress, {"fraction": "half", "message": 3})
    progress = read_progress(paths)
    assert progress.fraction is None and progress.message is None
    assert len(progress.damage) == 2
    _write(paths.progress, "[0.5]")
    assert read_progress(paths).damage == ("progress.json: expected a JSON object, found a list",)
