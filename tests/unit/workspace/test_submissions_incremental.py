"""A run's ``jobs.jsonl`` is read incrementally: a refresh reads the lines appended since.

Counts of bytes read (not times) show what a read touched. A file replaced, truncated or
rewritten in place is read again from its start; a half-written last line is left for the
next read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from partita.workspace import Index, RunPaths, RunWriter, Workspace, read_submissions
from partita.workspace import _runs as runs_module

N = 2000


def ident(i: int) -> str:
    return f"{i:064x}"


def line(i: int, **extra: Any) -> bytes:
    entry = {"id": ident(i), "type": "t", "tags": {"i": i}, "depends": [], "time": float(i)}
    entry.update(extra)
    return (json.dumps(entry, sort_keys=True) + "\n").encode()


class Reads:
    """Bytes read from ``jobs.jsonl`` files (every read goes through ``_read_from``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.bytes = 0
        self.calls: list[int] = []  # offsets read from
        real = runs_module._read_from

        def counted(fd: int, offset: int) -> bytes:
            data = real(fd, offset)
            self.bytes += len(data)
            self.calls.append(offset)
            return data

        monkeypatch.setattr(runs_module, "_read_from", counted)

    def reset(self) -> None:
        self.bytes = 0
        self.calls.clear()


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Reads:
    return Reads(monkeypatch)


@pytest.fixture
def run(tmp_path: Path) -> Iterator[tuple[Workspace, RunPaths, RunWriter]]:
    workspace = Workspace(tmp_path / "wd")
    paths = RunPaths.of(workspace, "xp", "r1")
    writer = RunWriter(paths)
    writer.create({"status": "running", "started": 1.0})
    yield workspace, paths, writer
    writer.finish({"status": "done", "started": 1.0, "ended": 2.0})


def append(paths: RunPaths, data: bytes) -> None:
    with open(paths.submissions, "ab") as f:
        f.write(data)


def test_a_read_from_a_mark_reads_only_what_was_appended(
    run: tuple[Workspace, RunPaths, RunWriter], reads: Reads
) -> None:
    _, paths, _ = run
    append(paths, b"".join(line(i) for i in range(N)))
    size = paths.submissions.stat().st_size
    first = read_submissions(paths)
    assert len(first.entries) == N and not first.appended and reads.bytes == size
    assert first.mark is not None and (first.mark.offset, first.mark.lines) == (size, N)

    reads.reset()
    new = line(N) + b"oops\n" + line(N + 1)
    append(paths, new)
    second = read_submissions(paths, first.mark)
    assert second.appended
    assert [e.id for e in second.entries] == [ident(N), ident(N + 1)]
    # The new lines, and the few bytes before the mark that tell it is the same file.
    assert reads.bytes == len(new) + runs_module.TAIL_CHECK
    # Damage is numbered by the line of the whole file.
    assert second.damage == [f"jobs.jsonl: line {N + 2}: expected a JSON object with an 'id'"]
    assert second.mark is not None and second.mark.lines == N + 3

    reads.reset()
    third = read_submissions(paths, second.mark)
    assert third.appended and third.entries == [] and third.damage == []
    assert reads.bytes == runs_module.TAIL_CHECK and third.mark == second.mark


def test_a_half_written_line_is_left_for_the_next_read(
    run: tuple[Workspace, RunPaths, RunWriter], reads: Reads
) -> None:
    _, paths, _ = run
    whole = line(1)
    append(paths, line(0) + whole[:10])
    first = read_submissions(paths)
    assert [e.id for e in first.entries] == [ident(0)] and first.damage == []
    assert first.mark is not None and first.mark.offset == len(line(0))

    # Still incomplete: nothing consumed, the mark stays.
    append(paths, whole[10:-1])
    second = read_submissions(paths, first.mark)
    assert second.appended and second.entries == [] and second.damage == []
    assert second.mark == first.mark

    append(paths, whole[-1:])
    reads.reset()
    third = read_submissions(paths, second.mark)
    assert third.appended and [e.id for e in third.entries] == [ident(1)]
    assert reads.bytes == len(whole) + runs_module.TAIL_CHECK
    assert third.mark is not None and third.mark.offset == len(line(0)) + len(whole)


def test_a_replaced_truncated_or_rewritten_file_is_read_again(
    run: tuple[Workspace, RunPaths, RunWriter], reads: Reads
) -> None:
    _, paths, _ = run
    append(paths, b"".join(line(i) for i in range(10)))
    mark = read_submissions(paths).mark
    assert mark is not None

    # Replaced by another file (another inode), longer than the mark.
    other = paths.submissions.with_name("other")
    other.write_bytes(b"".join(line(i) for i in range(20, 32)))
    os.replace(other, paths.submissions)
    reads.reset()
    replaced = read_submissions(paths, mark)
    assert not replaced.appended and replaced.entries[0].id == ident(20)
    assert len(replaced.entries) == 12 and reads.calls[-1] == 0

    # Truncated in place (same inode): shorter than the mark.
    mark = replaced.mark
    assert mark is not None
    with open(paths.submissions, "r+b") as f:
        f.truncate(len(line(20)) * 3)
    truncated = read_submissions(paths, mark)
    assert not truncated.appended and len(truncated.entries) == 3

    # Rewritten in place, as long or longer, with other content before the mark.
    mark = truncated.mark
    assert mark is not None
    with open(paths.submissions, "r+b") as f:
        f.write(line(40) + line(41) + line(42, transient=True) + line(43))
    rewritten = read_submissions(paths, mark)
    assert not rewritten.appended
    assert [e.id for e in rewritten.entries] == [ident(i) for i in (40, 41, 42, 43)]
    assert rewritten.entries[2].transient

    # Gone: nothing, and no mark to continue from.
    paths.submissions.unlink()
    gone = read_submissions(paths, rewritten.mark)
    assert gone.entries == [] and gone.mark is None and not gone.appended


def run_jobs(index: Index) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in index._db.execute("SELECT * FROM run_jobs"))


def fresh(workspace: Workspace) -> tuple[list[tuple[Any, ...]], list[Any]]:
    """What an index built from scratch records of the runs."""
    with Index(workspace, memory=True) as index:
        index.refresh()
        return run_jobs(index), index.runs()


def test_the_index_reads_a_growing_run_incrementally(
    run: tuple[Workspace, RunPaths, RunWriter], reads: Reads
) -> None:
    workspace, paths, writer = run
    for i in range(N):
        writer.append(json.loads(line(i)))
    with Index(workspace, memory=True) as index:
        index.refresh()
        assert len(index.run_jobs("xp", "r1")) == N
        size = paths.submissions.stat().st_size
        assert reads.bytes == size

        # A refresh with nothing new reads nothing of jobs.jsonl.
        reads.reset()
        assert index.refresh() == set()
        assert reads.bytes == 0

        # New submissions: only they are read, and they are the jobs that changed.
        reads.reset()
        added = [line(i) for i in range(N, N + 5)]
        for data in added:
            writer.append(json.loads(data))
        # A job submitted again with other tags (a later line of a job replaces it).
        writer.append(json.loads(line(3, tags={"again": True})))
        changed = index.refresh()
        assert changed == {ident(i) for i in (3, *range(N, N + 5))}
        assert reads.bytes == sum(map(len, added)) + len(line(3, tags={"again": True})) + 64
        assert len(index.run_jobs("xp", "r1")) == N + 5
        (tags,) = index._db.execute("SELECT tags FROM run_jobs WHERE job=?", (ident(3),)).fetchone()
        assert json.loads(tags) == {"again": True}

        # A half-written line is not read as damage, and is read when complete.
        partial = line(N + 5)
        append(paths, partial[:7])
        assert index.refresh() == set()
        assert index.runs()[0].damage == []
        append(paths, partial[7:] + b"{broken\n")
        assert index.refresh() == {ident(N + 5)}
        assert index.runs()[0].damage == [
            f"jobs.jsonl: line {N + 8}: expected a JSON object with an 'id'"
        ]
        # The same as an index built from scratch.
        assert (run_jobs(index), index.runs()) == fresh(workspace)

        # Rewritten with fewer lines (e.g. by hand): read again, the others are gone.
        reads.reset()
        paths.submissions.write_bytes(line(0) + line(1))
        changed = index.refresh()
        assert changed == {ident(i) for i in range(2, N + 6)}
        assert reads.calls == [0] and index.run_jobs("xp", "r1") == [ident(0), ident(1)]
        assert index.runs()[0].damage == []
        assert (run_jobs(index), index.runs()) == fresh(workspace)


def test_a_changed_run_record_alone_does_not_read_the_submissions(
    run: tuple[Workspace, RunPaths, RunWriter], reads: Reads
) -> None:
    workspace, paths, writer = run
    for i in range(50):
        writer.append(json.loads(line(i)))
    with Index(workspace, memory=True) as index:
        index.refresh()
        reads.reset()
        writer.write_record({"status": "running", "started": 1.0, "host": "elsewhere"})
        index.refresh()
        assert reads.bytes == 0
        (info,) = index.runs()
        assert info.host == "elsewhere" and info.jobs == 50
        paths.record.write_text("{damaged")
        index.refresh()
        assert reads.bytes == 0 and index.runs()[0].damage[0].startswith("run.json:")


def test_the_mark_is_kept_by_the_index_file_between_processes(
    run: tuple[Workspace, RunPaths, RunWriter], reads: Reads
) -> None:
    """Each CLI command opens ``index.sqlite`` afresh: it continues from the mark stored there."""
    workspace, _, writer = run
    for i in range(N):
        writer.append(json.loads(line(i)))
    with Index(workspace) as index:
        index.refresh()
    reads.reset()
    writer.append(json.loads(line(N)))
    with Index(workspace) as index:
        assert index.refresh() == {ident(N)}
        assert len(index.run_jobs("xp", "r1")) == N + 1
    assert reads.bytes == len(line(N)) + runs_module.TAIL_CHECK


@pytest.mark.parametrize(
    "entry",
    [
        {"id": ident(1), "type": "bench.noop", "tags": {}, "depends": [], "time": 1764700000.123},
        {"id": ident(2), "type": 'tâche"x', "tags": {}, "depends": [ident(3)], "time": 1e22},
        {"id": ident(4), "type": "t", "tags": {}, "depends": [ident(5), ident(6)], "time": 5e-324},
        {"id": ident(7), "type": "t", "tags": {"b": 1, "a": "é"}, "depends": [], "time": 0.5},
        {"id": ident(8), "type": "t", "tags": {}, "depends": [], "time": 0.5, "transient": True},
        {"id": ident(9), "type": "t", "tags": {}, "depends": ["not/an id"], "time": 0.5},
        {"id": ident(9), "type": "t", "tags": {}, "depends": [], "time": 2},
    ],
)
def test_a_submission_line_is_the_json_encoders_line(entry: dict[str, Any]) -> None:
    """The common line is written without the JSON encoder: byte for byte the same."""
    expected = (json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    assert runs_module._submission_line(entry) == expected
