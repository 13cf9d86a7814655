"""``index.sqlite`` is a cache: a damaged, foreign or unwritable index never stops a reader."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from xputil import Script, monitor

from partita.cli import cli
from partita.workspace import Workspace, _index_open, open_index

XP = """
class Step(Task, id="idx.step"):
    n: Param[int]
    def execute(self):
        print("step", self.n)

with experiment("wd", "idx"):
    for n in range(3):
        Step(n=n).submit()
"""


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("index")
    result = Script(folder, "xp", XP).run()
    assert 0 == result.returncode, result.stderr
    return folder / "wd"


@pytest.fixture
def workdir(base: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "wd"
    shutil.copytree(base, copy, ignore=shutil.ignore_patterns("index.sqlite*"))
    return copy


def invoke(*args: Any) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert isinstance(result.exception, SystemExit | None), result.exception
    assert 0 == result.exit_code, result.output
    return result


def listed(workdir: Path) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = json.loads(invoke("jobs", "list", workdir, "--json").stdout)
    return jobs


def indexed_jobs(path: Path) -> int:
    with sqlite3.connect(path) as db:
        count: int = db.execute("SELECT count(*) FROM jobs").fetchone()[0]
    return count


def test_garbage_index_is_rebuilt(workdir: Path) -> None:
    (workdir / "index.sqlite").write_bytes(b"this is not a database" * 500)
    assert 3 == len(listed(workdir))
    assert 3 == indexed_jobs(workdir / "index.sqlite")


def test_truncated_index_is_rebuilt(workdir: Path) -> None:
    assert 3 == len(listed(workdir))
    index = workdir / "index.sqlite"
    with sqlite3.connect(index) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for suffix in ("-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    data = index.read_bytes()
    assert len(data) > 8192
    # Keep the header, lose the pages: SQLite reports "database disk image is malformed".
    index.write_bytes(data[:100] + b"\xff" * (len(data) - 100))
    with pytest.raises(sqlite3.DatabaseError), sqlite3.connect(index) as db:
        db.execute("SELECT count(*) FROM jobs").fetchone()
    assert 3 == len(listed(workdir))
    assert 3 == indexed_jobs(index)


def test_index_of_another_schema_version_is_replaced(workdir: Path) -> None:
    index = workdir / "index.sqlite"
    with sqlite3.connect(index) as db:
        db.executescript(
            "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
            "INSERT INTO meta VALUES('schema', '1');"
            "CREATE TABLE jobs(id TEXT PRIMARY KEY, state TEXT);"
            "INSERT INTO jobs VALUES('feed', 'done');"
            "CREATE TABLE runs(experiment TEXT);"
        )
    jobs = listed(workdir)
    assert 3 == len(jobs)
    assert "feed" not in {job["id"] for job in jobs}
    with sqlite3.connect(index) as db:
        from partita.workspace._index import SCHEMA_VERSION

        assert (SCHEMA_VERSION,) == db.execute("SELECT value FROM meta").fetchone()


def test_directory_in_place_of_the_index(workdir: Path) -> None:
    """Nothing is deleted that partita did not write; the message says what to remove."""
    index = workdir / "index.sqlite"
    index.mkdir()
    (index / "notes.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["jobs", "list", str(workdir), "--json"])
    assert 0 == result.exit_code, result.output
    assert 3 == len(json.loads(result.stdout))
    assert f"rm -r {index}" in result.stderr
    assert 1 == result.stderr.count("warning:")
    assert "mine" == (index / "notes.txt").read_text()


def test_processes_rebuilding_at_once(workdir: Path) -> None:
    """Several commands find the same corrupt index at once: each answers, one index remains."""
    (workdir / "index.sqlite").write_bytes(b"\x00garbage" * 2000)
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "partita.cli", "jobs", "list", str(workdir), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ},
        )
        for _ in range(4)
    ]
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert 0 == process.returncode, err
        assert "Traceback" not in err
        assert 3 == len(json.loads(out))
    assert 3 == indexed_jobs(workdir / "index.sqlite")


def test_open_index_in_memory_when_nothing_can_be_written(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The library entry point falls back to reading the files (index in memory)."""
    (workdir / "index.sqlite").mkdir()
    blocked = workdir / "not-a-dir"
    blocked.write_text("")
    # The private index in the temporary directory cannot be written either.
    monkeypatch.setattr(_index_open, "_private_path", lambda workspace: blocked / "index.sqlite")
    index = open_index(Workspace(workdir, create=False))
    try:
        assert index.memory
        assert index.warning and "is a directory" in index.warning
        assert 3 == len(index.jobs())
    finally:
        index.close()


def test_monitor_survives_an_index_corrupted_under_it(workdir: Path) -> None:
    """The monitor keeps its index open for days: corrupted in place, it is rebuilt."""
    import warnings

    pytest.importorskip("starlette")
    from partita.web import _monitor as web_monitor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with monitor(workdir, token="t" * 20) as client:
            assert 3 == len(client.get("/api/jobs").json()["jobs"])
            index = workdir / "index.sqlite"
            with sqlite3.connect(index) as db:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            size = index.stat().st_size
            with open(index, "r+b") as file:  # same file, every page overwritten
                file.write(b"\xff" * size)
            # A job changes, so that the next refresh must read (and write) the index.
            state = next((workdir / "jobs" / "idx.step").iterdir()) / "state.json"
            record = json.loads(state.read_text())
            record["tags"] = {"seen": True}
            state.write_text(json.dumps(record))
            monkey = pytest.MonkeyPatch()
            monkey.setattr(web_monitor, "REFRESH_INTERVAL", 0.0)
            try:
                answer = client.get("/api/jobs")
            finally:
                monkey.undo()
            assert 200 == answer.status_code, answer.text
            jobs = answer.json()["jobs"]
            assert 3 == len(jobs)
            assert {"seen": "true"} in [job["tags"] for job in jobs]
    assert 3 == indexed_jobs(workdir / "index.sqlite")
