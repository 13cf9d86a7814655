"""Reading a work directory on a full disk and on a read-only mount.

These tests mount real file systems (a small tmpfs, a read-only bind mount), which needs
root: CI runs as root, and fails rather than skips them there.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from xputil import Script

pytestmark = [
    pytest.mark.mount,
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0, reason="mounting a tmpfs or a read-only bind mount needs root"
    ),
]

XP = """
class Step(Task, id="mnt.step"):
    n: Param[int]
    def execute(self):
        print("step", self.n)

class Broken(Task, id="mnt.broken"):
    def execute(self):
        raise RuntimeError("boom")

with experiment("wd", "mnt"):
    Step(n=1).tag("kernel", "linear").submit()
    Step(n=2).submit()
    Broken().submit()
"""


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mounts")
    result = Script(folder, "xp", XP).run()
    assert 1 == result.returncode, result.stderr  # mnt.broken fails, on purpose
    return folder / "wd"


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def mounted(*args: str, target: Path) -> Iterator[Path]:
    target.mkdir(parents=True, exist_ok=True)
    _mount(*args, str(target))
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)


def partita(*args: Any, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real command in its own process (a crash shows as a traceback on stderr)."""
    return subprocess.run(
        [sys.executable, "-m", "partita.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={k: v for k, v in os.environ.items() if k != "PARTITA_WORKDIR"},
    )


def fill(folder: Path) -> None:
    """Write a file into ``folder`` until its file system is full."""
    chunk = b"\0" * 65536
    with open(folder / "filler", "wb", buffering=0) as file:
        while True:
            try:
                file.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                break
    for size in (4096, 512, 1):  # the last blocks too
        with contextlib.suppress(OSError), open(folder / "filler", "ab", buffering=0) as file:
            while True:
                file.write(b"\0" * size)


READING = [
    ("status",),
    ("status", "--json"),
    ("jobs", "list"),
    ("jobs", "list", "--json"),
    ("experiments", "list"),
    ("experiments", "show", "mnt"),
]


def _reads(workdir: Path) -> dict[tuple[str, ...], subprocess.CompletedProcess[str]]:
    results = {}
    for command in READING:
        result = partita(*command, "-w", workdir)
        assert "Traceback" not in result.stderr, (command, result.stderr)
        assert 0 == result.returncode, (command, result.stderr)
        results[command] = result
    # A job that succeeded: a failed one's empty log adds a hint on stderr.
    listed = json.loads(results[("jobs", "list", "--json")].stdout)
    job = next(job["id"][:12] for job in listed if job["state"] == "done")
    for command in (("jobs", "show", job), ("jobs", "log", job), ("jobs", "path", job)):
        result = partita(*command, "-w", workdir)
        assert "Traceback" not in result.stderr, (command, result.stderr)
        assert 0 == result.returncode, (command, result.stderr)
        results[command] = result
    return results


@pytest.mark.parametrize("with_index", [False, True], ids=["no-index", "stale-index"])
def test_reading_on_a_full_disk(base: Path, tmp_path: Path, with_index: bool) -> None:
    """On a full disk every reading command answers, from the files, with one warning."""
    with mounted("-t", "tmpfs", "-o", "size=2m", "tmpfs", target=tmp_path / "disk") as disk:
        workdir = disk / "wd"
        shutil.copytree(base, workdir, ignore=shutil.ignore_patterns("index.sqlite*"))
        if with_index:
            assert 0 == partita("jobs", "list", "-w", workdir).returncode
            # A job changed since the index was written: refreshing it needs a write.
            state = next((workdir / "jobs" / "mnt.step").iterdir()) / "state.json"
            record = json.loads(state.read_text())
            record["tags"] = {"kernel": "rbf"}
            state.write_text(json.dumps(record))
        fill(disk)
        results = _reads(workdir)
        for command, result in results.items():
            if "--json" in command:
                json.loads(result.stdout)
        listed = json.loads(results[("jobs", "list", "--json")].stdout)
        assert 3 == len(listed)
        status = results[("status",)]
        assert "3 jobs: 1 failed, 2 done" in status.stdout
        if with_index:
            assert {"kernel": "rbf"} in [job["tags"] for job in listed]
        # The index cannot be written: each command says so in one clear line.
        for result in results.values():
            (warning,) = result.stderr.splitlines()
            assert warning.startswith("warning: cannot update the index"), warning
            assert "(the disk is full); reading the job folders directly" in warning


def test_reading_on_a_full_disk_without_a_temporary_directory(base: Path, tmp_path: Path) -> None:
    """Neither the work directory nor the temporary directory can hold an index."""
    with mounted("-t", "tmpfs", "-o", "size=2m", "tmpfs", target=tmp_path / "disk") as disk:
        workdir = disk / "wd"
        shutil.copytree(base, workdir, ignore=shutil.ignore_patterns("index.sqlite*"))
        temporary = disk / "tmp"
        temporary.mkdir()
        fill(disk)
        result = subprocess.run(
            [sys.executable, "-m", "partita.cli", "status", str(workdir)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "TMPDIR": str(temporary)},
        )
        assert 0 == result.returncode, result.stderr
        assert "3 jobs: 1 failed, 2 done" in result.stdout
        (warning,) = result.stderr.splitlines()
        assert warning.startswith("warning: cannot update the index")
        assert "the disk is full" in warning


@pytest.fixture
def read_only(base: Path, tmp_path: Path) -> Iterator[Path]:
    """A copy of ``base`` (with its index) seen through a read-only bind mount."""
    source = tmp_path / "source"
    shutil.copytree(base, source)
    assert 0 == partita("jobs", "list", "-w", source).returncode  # an index in WAL mode
    target = tmp_path / "ro"
    with mounted("--bind", str(source), target=target):
        _mount("-o", "remount,bind,ro", str(target))
        assert not os.access(target, os.W_OK)
        yield target


def test_reading_a_read_only_work_directory(read_only: Path) -> None:
    results = _reads(read_only)
    for result in results.values():
        assert "" == result.stderr.strip(), result.stderr
    assert 3 == len(json.loads(results[("jobs", "list", "--json")].stdout))
    assert "3 jobs: 1 failed, 2 done" in results[("status",)].stdout


def test_writing_commands_say_the_work_directory_is_read_only(read_only: Path) -> None:
    result = partita("jobs", "clean", "-w", read_only, "--include-referenced", "--yes")
    assert "Traceback" not in result.stderr
    assert 1 == result.returncode, result.stdout + result.stderr
    assert "read-only" in result.stderr
    # Nothing was deleted.
    assert 3 == len(json.loads(partita("jobs", "list", "-w", read_only, "--json").stdout))


def test_an_experiment_on_a_read_only_work_directory_says_so(read_only: Path) -> None:
    """Running an experiment there stops before anything runs, with one clear line."""
    folder = read_only.parent / "script"
    folder.mkdir()
    result = Script(folder, "xp", XP.replace('"wd"', repr(str(read_only)))).run()
    assert 1 == result.returncode
    assert "Traceback" not in result.stderr, result.stderr
    assert "Read-only file system" in result.stderr and str(read_only) in result.stderr
    assert 3 == len(json.loads(partita("jobs", "list", "-w", read_only, "--json").stdout))
