"""Run records and pins naming moved jobs: what ``partita migrate`` rewrites, and what not."""

from __future__ import annotations

import json
from pathlib import Path

from partita.workspace import Workspace, identity
from partita.workspace._gc import read_retention, update_retention
from partita.workspace._migrate_refs import Renames, rewrite_references
from partita.workspace._runs import RunPaths

A, B, C, D = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)


def _run(ws: Workspace, name: str, lines: bytes, record: dict[str, object]) -> RunPaths:
    paths = RunPaths.of(ws, "xp", name)
    paths.root.mkdir(parents=True)
    paths.submissions.write_bytes(lines)
    paths.record.write_text(json.dumps(record))
    return paths


def _line(ident: str, kind: str, depends: list[str]) -> bytes:
    entry = {"id": ident, "type": kind, "depends": depends, "tags": {}, "time": 1.0}
    return (json.dumps(entry, sort_keys=True) + "\n").encode()


def test_moves_are_followed_through_chains_and_only_ended_runs_are_rewritten(
    tmp_path: Path,
) -> None:
    ws = Workspace(tmp_path / "wd")
    renames = Renames()
    renames.add(f"old.t/{A}", f"mid.t/{B}")
    renames.add(f"mid.t/{B}", f"new.t/{C}")  # migrated twice
    assert ("new.t", C) == renames.resolve(A) == renames.resolve(B)
    assert renames.resolve(D) is None
    damaged = b"{not json\n"
    being_written = b'{"id": "' + A.encode()  # no newline yet: left as it is
    ended = _run(
        ws,
        "1",
        _line(A, "old.t", []) + damaged + _line(D, "other", [A]) + being_written,
        {"status": "done", "jobs": {A: "done", D: "done"}},
    )
    live = _run(ws, "2", _line(A, "old.t", []), {"status": "running", "process": identity()})
    untouched = _run(ws, "3", _line(D, "other", []), {"status": "done", "jobs": {D: "done"}})
    update_retention(ws, lambda pins: pins.pinned_jobs.extend([A, D]))
    before = {p: p.submissions.read_bytes() for p in (ended, live, untouched)}

    planned = rewrite_references(ws, renames, write=False)
    assert (["xp/1"], 1, ["xp/2"]) == (planned.runs, planned.pins, planned.left)
    assert before == {p: p.submissions.read_bytes() for p in before}, "a dry run wrote"

    done = rewrite_references(ws, renames, write=True)
    assert (["xp/1"], 1, ["xp/2"]) == (done.runs, done.pins, done.left)
    lines = ended.submissions.read_bytes().split(b"\n")
    first, third = json.loads(lines[0]), json.loads(lines[2])
    assert (C, "new.t") == (first["id"], first["type"])
    assert (D, [C]) == (third["id"], third["depends"])
    assert damaged.rstrip(b"\n") == lines[1] and being_written == lines[3]
    assert {C: "done", D: "done"} == json.loads(ended.record.read_text())["jobs"]
    assert before[live] == live.submissions.read_bytes()
    assert before[untouched] == untouched.submissions.read_bytes()
    assert [C, D] == read_retention(ws).pinned_jobs

    again = rewrite_references(ws, renames, write=True)
    assert ([], 0) == (again.runs, again.pins)


def test_a_shared_folder_moves_only_when_free_and_jobs_refer_to_it_at_every_step(
    tmp_path: Path,
) -> None:
    from partita import _layout
    from partita.workspace import FileLock
    from partita.workspace._shared import (
        drop_moved_refs,
        move_shared,
        read_shared_refs,
        record_shared,
        refer_also,
        renamed_shared,
    )

    ws = Workspace(tmp_path / "wd")
    old = _layout.shared_folder(ws.root, "old.t", "ckpt", A)
    old.mkdir(parents=True)
    (old / "epoch.txt").write_text("10")
    job = ws.job("old.t", B)
    job.root.mkdir(parents=True)
    old_ref = old.relative_to(ws.root).as_posix()
    record_shared(job, [old_ref])
    current = {"old.t": "new.t"}
    (move,) = renamed_shared(ws, current)
    new = _layout.shared_folder(ws.root, "new.t", "ckpt", A)
    assert (old, new) == move
    new_ref = new.relative_to(ws.root).as_posix()

    refer_also(ws, [move])
    assert [new_ref, old_ref] == read_shared_refs(job)
    held = FileLock(_layout.shared_lock(old))
    assert held.acquire(blocking=False)
    try:
        assert "busy" in (move_shared(old, new) or "")
        assert (old / "epoch.txt").exists() and not new.exists()
        assert 0 == drop_moved_refs(ws, current), "dropped the place still in use"
    finally:
        held.release()
    assert move_shared(old, new) is None
    assert "10" == (new / "epoch.txt").read_text()
    assert not _layout.shared_lock(old).exists() and not (ws.shared / "old.t").exists()
    assert 1 == drop_moved_refs(ws, current)
    assert [new_ref] == read_shared_refs(job)
    assert move_shared(old, new) is None  # done already: nothing to do


def test_renames_come_from_the_moved_folders_notes_unless_the_old_place_is_used_again(
    tmp_path: Path,
) -> None:
    from partita.workspace._migrate import _renames
    from partita.workspace._migrate_refs import collect_renames

    ws = Workspace(tmp_path / "wd")
    for kind, ident, old in (("new.t", C, f"old.t/{A}"), ("new.t", D, f"old.t/{B}")):
        job = ws.job(kind, ident)
        job.root.mkdir(parents=True)
        note = {"migrated": [{"from": old, "to": f"{kind}/{ident}", "changes": []}]}
        job.migration.write_text(json.dumps(note))
    assert {A: ("new.t", C), B: ("new.t", D)} == _renames(ws).jobs
    ws.job("old.t", B).root.mkdir(parents=True)  # the old config ran again since
    assert {A: ("new.t", C)} == _renames(ws).jobs
    assert {} == collect_renames(ws, [], lambda paths: {}).jobs
