"""What names a job besides its folder: run records and pins, rewritten after a migration.

A conversion (``deprecated=``) gives jobs new identifiers, and a class rename moves their
folders under a new type id. The records of the runs that submitted them (``jobs.jsonl``
and the final states in ``run.json``) and the pins of the work directory
(``partita pin``) name the jobs by identifier: left alone, ``experiments show`` and
``load_run`` would not find the moved jobs, and ``partita gc`` would not keep what was
pinned.

The renames are read back from the migration records of the job folders themselves (each
moved folder notes ``from`` and ``to``), so that rewriting is resumable: a ``partita
migrate`` stopped after moving folders, before rewriting the records, leaves notes that the
next one reads and finishes from. Each file is replaced by one atomic write; a run in
progress is left alone (its records are being appended) and rewritten by a later migrate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from partita.workspace._atomic import atomic_write, write_json
from partita.workspace._gc import Retention, read_retention, update_retention
from partita.workspace._paths import JobPaths, Workspace
from partita.workspace._process import is_alive
from partita.workspace._runs import RunPaths, iter_runs, read_run

__all__ = ["Renames", "collect_renames", "rewrite_references"]


@dataclass
class Renames:
    """Former identifier of a moved job → its current ``(type id, identifier)``."""

    jobs: dict[str, tuple[str, str]] = field(default_factory=dict)

    def add(self, source: str, target: str) -> None:
        """Record that ``type/identifier`` ``source`` is now ``target``."""
        if source == target or "/" not in source or "/" not in target:
            return
        old = source.rpartition("/")[2]
        new_type, _, new = target.rpartition("/")
        self.jobs[old] = (new_type, new)

    def resolve(self, identifier: str) -> tuple[str, str] | None:
        """Where the job once named ``identifier`` is now (following chains), if it moved."""
        found = self.jobs.get(identifier)
        seen = {identifier}
        while found is not None and found[1] not in seen and found[1] in self.jobs:
            seen.add(found[1])
            nxt = self.jobs[found[1]]
            if nxt[1] == found[1] and nxt[0] == found[0]:
                break
            found = nxt
        return found


def collect_renames(workspace: Workspace, folders: list[JobPaths], read: Any) -> Renames:
    """The renames the migration records of ``folders`` note (``read``: the record reader).

    A former place that holds a job folder again (the old config was submitted again since)
    is not a rename any more: the runs naming it name that job.
    """
    renames = Renames()
    for paths in folders:
        record = read(paths)
        for entry in record.get("migrated") or []:
            if not isinstance(entry, dict):
                continue
            source, target = entry.get("from"), entry.get("to")
            if not (isinstance(source, str) and isinstance(target, str)):
                continue
            kind, _, ident = source.rpartition("/")
            if kind and ident and workspace.job(kind, ident).root.exists():
                continue
            renames.add(source, target)
    return renames


@dataclass
class Rewritten:
    """The run records and pins that name former identifiers (rewritten, or to be)."""

    runs: list[str] = field(default_factory=list)
    """``experiment/run`` of each run whose records name a moved job."""
    pins: int = 0
    """How many pinned jobs moved."""
    left: list[str] = field(default_factory=list)
    """Runs in progress left alone (a later ``partita migrate`` rewrites them)."""

    def to_json(self) -> dict[str, Any]:
        return {"runs": self.runs, "pins": self.pins, "left": self.left}


def _line(entry: dict[str, Any], renames: Renames) -> bool:
    changed = False
    ident = entry.get("id")
    if isinstance(ident, str):
        found = renames.resolve(ident)
        if found is not None:
            entry["type"], entry["id"] = found
            changed = True
    depends = entry.get("depends")
    if isinstance(depends, list):
        new = []
        for dep in depends:
            found = renames.resolve(dep) if isinstance(dep, str) else None
            new.append(found[1] if found is not None else dep)
        if new != depends:
            entry["depends"] = new
            changed = True
    return changed


def _submissions(paths: RunPaths, renames: Renames) -> bytes | None:
    """``jobs.jsonl`` with the moved jobs renamed (``None``: nothing to change)."""
    try:
        data = paths.submissions.read_bytes()
    except OSError:
        return None
    lines = data.split(b"\n")
    changed = False
    for number, raw in enumerate(lines[:-1]):  # the part after the last newline: as it is
        try:
            entry = json.loads(raw)
        except ValueError:
            continue  # damage stays as it is (read_submissions reports it)
        if isinstance(entry, dict) and _line(entry, renames):
            lines[number] = json.dumps(entry, sort_keys=True, ensure_ascii=False).encode()
            changed = True
    return b"\n".join(lines) if changed else None


def _record(paths: RunPaths, renames: Renames) -> dict[str, Any] | None:
    """``run.json`` with its final job states renamed (``None``: nothing to change)."""
    record = read_run(paths)
    states = record.data.get("jobs")
    if record.damage or not isinstance(states, dict):
        return None
    renamed = {}
    for ident, state in states.items():
        found = renames.resolve(ident)
        renamed[found[1] if found is not None else ident] = state
    if renamed == states:
        return None
    return {**record.data, "jobs": renamed}


def _in_progress(paths: RunPaths) -> bool:
    record = read_run(paths)
    return record.status == "running" and is_alive(record.process) is not False


def rewrite_references(workspace: Workspace, renames: Renames, *, write: bool) -> Rewritten:
    """Rename the moved jobs in every run record and in the pins; with ``write=False``
    only say which would change.

    Raises:
        OSError: a file could not be written (the next ``partita migrate`` finishes).
        WorkspaceError: the pins cannot be read or written.
    """
    out = Rewritten()
    if not renames.jobs:
        return out
    for paths in sorted(iter_runs(workspace), key=lambda p: p.root):
        submissions = _submissions(paths, renames)
        record = _record(paths, renames)
        if submissions is None and record is None:
            continue
        name = f"{paths.experiment}/{paths.run}"
        if _in_progress(paths):
            out.left.append(name)
            continue
        out.runs.append(name)
        if write:
            if submissions is not None:
                atomic_write(paths.submissions, submissions)
            if record is not None:
                write_json(paths.record, record)

    def moved(pins: Retention) -> list[str]:
        return [(renames.resolve(i) or ("", i))[1] for i in pins.pinned_jobs]

    settings = read_retention(workspace)
    new = moved(settings)
    out.pins = sum(1 for a, b in zip(settings.pinned_jobs, new, strict=True) if a != b)
    if write and out.pins:

        def change(pins: Retention) -> None:
            pins.pinned_jobs[:] = list(dict.fromkeys(moved(pins)))

        update_retention(workspace, change)
    return out
