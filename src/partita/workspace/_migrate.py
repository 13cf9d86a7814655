"""``partita migrate``: rewrite job folders recorded under former names (docs/identity.md).

A class renamed with ``renamed_from=`` keeps its identifiers, but its job folders are under
its former type id and their ``params.json`` names former classes and fields; a deprecated
class (``deprecated=convert``) gives its converted configs new identifiers. :func:`plan`
reads every job folder under the current code and says what changes; :func:`apply` moves
each folder under its new name and rewrites its ``params.json``.

Safety: planning reads only, and every conversion runs while planning, so a conversion
that raises stops the command before anything is written. Applying is done one job folder
at a time, each under the job's lock, in an order that can be resumed: the migration note
is written first (inside the old folder), then the folder is renamed (one atomic
``rename``), then ``params.json`` is replaced (an atomic write). A crash between the steps
leaves a folder that the next ``partita migrate`` plans again from what it finds, and
finishes.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from partita.config import Task, _migrations, _runtime
from partita.config._identity import identifier
from partita.config._seal import _resolve_generated
from partita.config._serial import dumps, migrated_document
from partita.errors import LoadError, MigrationError, PartitaError
from partita.workspace._atomic import atomic_write, write_json
from partita.workspace._journal import note_change
from partita.workspace._locks import FileLock
from partita.workspace._migrate_refs import (
    Renames,
    Rewritten,
    collect_renames,
    rewrite_references,
)
from partita.workspace._paths import JobPaths, Workspace
from partita.workspace._shared import drop_moved_refs, move_shared, refer_also, renamed_shared
from partita.workspace._state import JobState
from partita.workspace._status import read_status

_IDENT = re.compile(r"[0-9a-f]{64}")


@dataclass
class Change:
    """One job folder to migrate."""

    source: JobPaths
    """Where the job is now."""
    target: JobPaths
    """Where it belongs under the current code (the same folder if only params change)."""
    params: bytes
    """Its ``params.json`` under the current names."""
    changes: list[str]
    """What changed, in words (former type ids and fields, conversions, moved paths)."""
    state: str
    """Its state (``done``, ``failed``, ...; ``new`` if it never ran)."""

    @property
    def moves(self) -> bool:
        """Whether the folder moves."""
        return self.source.root != self.target.root

    def name(self, root: JobPaths) -> str:
        return f"{root.type_id}/{root.identifier}"

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.name(self.source),
            "to": self.name(self.target),
            "moves": self.moves,
            "changes": self.changes,
            "state": self.state,
        }


@dataclass
class Skipped:
    """A job folder left as it is, and why."""

    job: JobPaths
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"job": f"{self.job.type_id}/{self.job.identifier}", "reason": self.reason}


@dataclass
class Plan:
    """What ``partita migrate`` would do in a work directory."""

    workspace: Workspace
    changes: list[Change] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    unchanged: int = 0
    """Job folders already under the current names."""
    references: Rewritten = field(default_factory=Rewritten)
    """The run records and pins naming moved jobs: to rewrite (after :func:`apply`, rewritten)."""
    shared: list[tuple[Path, Path]] = field(default_factory=list)
    """The shared folders under a former type id of a renamed class, and where they go."""
    shared_left: list[str] = field(default_factory=list)
    """After :func:`apply`: the shared folders left where they are, and why."""

    def to_json(self) -> dict[str, Any]:
        root = self.workspace.root
        return {
            "shared": [
                {"from": s.relative_to(root).as_posix(), "to": t.relative_to(root).as_posix()}
                for s, t in self.shared
            ],
            "shared_left": self.shared_left,
            "workdir": str(self.workspace.root),
            "changes": [c.to_json() for c in self.changes],
            "skipped": [s.to_json() for s in self.skipped],
            "unchanged": self.unchanged,
            "references": self.references.to_json(),
        }


def import_code(items: Iterable[str]) -> None:
    """Import modules (``pkg.tasks``) or scripts (``xp.py``) that define the current classes.

    Raises:
        MigrationError: one cannot be imported.
    """
    for item in items:
        try:
            if item.endswith(".py") or os.sep in item:
                if not os.path.isfile(item):
                    raise MigrationError(
                        f"--import {item}: expected a Python file or module name, found no "
                        "such file."
                    )
                _runtime.import_script(os.path.abspath(item))
            else:
                importlib.import_module(item)
        except PartitaError:
            raise
        except Exception as exc:
            raise MigrationError(
                f"--import {item}: cannot import it ({type(exc).__name__}: {exc}). Pass a "
                "module importable from here (check PYTHONPATH) or the path of a script."
            ) from exc


def _job_folders(workspace: Workspace) -> list[JobPaths]:
    found = []
    with contextlib.suppress(FileNotFoundError):
        for type_dir in sorted(os.scandir(workspace.jobs), key=lambda e: e.name):
            if type_dir.name.startswith(".") or not type_dir.is_dir(follow_symlinks=False):
                continue
            for entry in sorted(os.scandir(type_dir.path), key=lambda e: e.name):
                if _IDENT.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False):
                    found.append(JobPaths(Path(entry.path)))
    return found


def _state(paths: JobPaths) -> str:
    status = read_status(paths, details=False)
    return status.state.value if status.state is not None else "new"


def _relative(workspace: Workspace, paths: JobPaths) -> str:
    return paths.root.relative_to(workspace.root).as_posix()


def plan(workspace: Workspace) -> Plan:
    """Read every job folder under the current code; what would change (nothing written).

    The classes must be imported already (:func:`import_code`, or the modules that
    ``params.json`` names, which are imported as they are read).

    Raises:
        MigrationError: a conversion of a deprecated class raised, or returned something
            else than a config (nothing has been written).
    """
    root = workspace.root
    _runtime.register_workspace(root)
    documents: dict[JobPaths, tuple[dict[str, Any], bytes, set[str]]] = {}
    result = Plan(workspace)
    for paths in _job_folders(workspace):
        try:
            data = paths.params.read_bytes()
            document = json.loads(data)
        except FileNotFoundError:
            continue  # a folder being created: no job yet
        except (OSError, ValueError) as exc:
            result.skipped.append(Skipped(paths, f"unreadable params.json: {exc}"))
            continue
        documents[paths] = (document, data, _folders_referenced(document, set()))
    moved: dict[str, str] = {}
    rounds = 0
    while True:
        rounds += 1
        changes: list[Change] = []
        skipped: list[Skipped] = []
        unchanged = 0
        new_moved: dict[str, str] = {}
        for paths, (document, data, referenced) in documents.items():
            try:
                cfg, notes = migrated_document(
                    document, workspace=root, moved=moved, source=str(paths.params)
                )
            except MigrationError:
                raise
            except (LoadError, PartitaError) as exc:
                skipped.append(Skipped(paths, f"cannot be read under the current code: {exc}"))
                continue
            if not isinstance(cfg, Task):
                raise MigrationError(
                    f"{paths.params}: its task became a {type(cfg).__qualname__}, which is not "
                    "a Task. The conversion of a deprecated task must return a task."
                )
            type_id = type(cfg)._partita_type_id
            ident = identifier(cfg)
            target = workspace.job(type_id, ident)
            if target.root != paths.root:
                new_moved[_relative(workspace, paths)] = _relative(workspace, target)
                _resolve_generated(cfg, target.root)
            elif any(" converted to " in note for note in notes):
                _resolve_generated(cfg, target.root)
            params = dumps(cfg)
            follows = any(folder in moved for folder in referenced)
            if not notes and target.root == paths.root and not follows:
                unchanged += 1
                continue
            if params == data and target.root == paths.root:
                unchanged += 1
                continue
            if follows:
                notes = [*notes, "paths into moved job folders follow them"]
            if paths.type_id != type_id and not any(type_id in note for note in notes):
                notes = [*notes, f"folder under the former type id {paths.type_id}"]
            changes.append(Change(paths, target, params, notes, ""))
        if new_moved == moved or rounds > len(documents) + 1:
            break
        moved = new_moved
    targets: dict[Path, Change] = {}
    for change in changes:
        other = targets.get(change.target.root)
        if other is not None:
            skipped.append(
                Skipped(
                    change.source,
                    f"{other.name(other.source)} becomes the same job "
                    f"({change.name(change.target)}): keep one of them (delete the other)",
                )
            )
            continue
        if change.moves and change.target.root.exists():
            skipped.append(
                Skipped(
                    change.source,
                    f"{change.name(change.target)} exists already (it ran again under the "
                    "new names): the old folder is left as it is; delete one of them",
                )
            )
            continue
        change.state = _state(change.source)
        if change.state in (JobState.RUNNING.value, JobState.WAITING.value):
            skipped.append(Skipped(change.source, f"{change.state}: migrate once it has ended"))
            continue
        targets[change.target.root] = change
    result.changes = list(targets.values())
    result.skipped.extend(skipped)
    result.unchanged = unchanged
    renames = _renames(workspace)
    for change in result.changes:
        renames.add(change.name(change.source), change.name(change.target))
    result.references = rewrite_references(workspace, renames, write=False)
    result.shared = renamed_shared(workspace, _migrations.renamed_ids())
    return result


def _renames(workspace: Workspace) -> Renames:
    """The moves the migration records of the job folders note (done by former migrates)."""
    return collect_renames(workspace, _job_folders(workspace), read_migration)


def _folders_referenced(value: Any, out: set[str]) -> set[str]:
    """The job folders (``jobs/<type>/<identifier>``) of the work-directory paths in a
    ``params.json`` value."""
    if isinstance(value, dict):
        if value.get("base") == "workspace" and isinstance(value.get("$path"), str):
            parts = value["$path"].split("/", 3)
            if len(parts) >= 3:
                out.add("/".join(parts[:3]))
        for item in value.values():
            _folders_referenced(item, out)
    elif isinstance(value, list):
        for item in value:
            _folders_referenced(item, out)
    return out


def _note(paths: JobPaths, change: Change) -> None:
    """Record the migration in the job folder (once, even when resumed)."""
    record = read_migration(paths)
    entries = list(record.get("migrated") or [])
    entry = {"from": change.name(change.source), "to": change.name(change.target)}
    if entries and entries[-1].get("to") == entry["to"]:
        return  # written by an interrupted run, which then continues
    entries.append({**entry, "changes": change.changes, "time": time.time()})
    # How an experiment matched it before is what this migration resolves: not kept.
    kept = {k: v for k, v in record.items() if k != "matched"}
    write_json(paths.migration, {**kept, "migrated": entries})


def apply(plan: Plan) -> tuple[list[Change], list[Skipped]]:
    """Migrate the planned job folders, one at a time; returns what was done and skipped.

    Each folder is migrated under its job lock; a job locked by a running process is
    skipped. An error on one folder (say, a full disk) leaves that folder resumable and
    stops: what was done is reported by the exception's message.

    Then the run records and pins that name a moved job by a former identifier are
    rewritten (:mod:`partita.workspace._migrate_refs`), from the migration records of the
    job folders: those of this migration and of any earlier one that stopped before this
    step. ``plan.references`` then says what was rewritten.
    """
    done: list[Change] = []
    skipped: list[Skipped] = []
    for change in plan.changes:
        lock = FileLock(change.source.lock, note={"migrate": os.getpid()})
        if not lock.acquire(blocking=False):
            skipped.append(Skipped(change.source, "in use by a running job: migrate later"))
            continue
        try:
            try:
                _note(change.source, change)
                if change.moves:
                    change.target.root.parent.mkdir(parents=True, exist_ok=True)
                    os.rename(change.source.root, change.target.root)
                atomic_write(change.target.params, change.params)
            except OSError as exc:
                raise MigrationError(
                    f"migrating {change.name(change.source)} failed: {exc}. "
                    f"{len(done)} job folder(s) were migrated before; run 'partita migrate' "
                    "again to finish (it resumes where it stopped)."
                ) from None
        finally:
            lock.release()
        note_change(change.target.root)  # the old folder's type folder changed: the index sees it
        if change.moves:
            with contextlib.suppress(OSError):
                change.source.root.parent.rmdir()  # the former type's folder, once empty
        done.append(change)
    try:
        _move_shared(plan)
        plan.references = rewrite_references(plan.workspace, _renames(plan.workspace), write=True)
    except OSError as exc:
        raise MigrationError(
            f"rewriting the run records and pins that name the moved jobs failed: {exc}. "
            f"{len(done)} job folder(s) were migrated; run 'partita migrate' again to finish "
            "(it resumes where it stopped)."
        ) from None
    return done, skipped


def _move_shared(plan: Plan) -> None:
    """Move the shared folders of renamed classes; the jobs' references follow them (the
    jobs refer to both places while a folder moves, so gc keeps it at every step)."""
    refer_also(plan.workspace, plan.shared)
    for source, target in plan.shared:
        why = move_shared(source, target)
        if why is not None:
            plan.shared_left.append(f"{source.relative_to(plan.workspace.root).as_posix()}: {why}")
    drop_moved_refs(plan.workspace, _migrations.renamed_ids())


def read_migration(paths: JobPaths) -> dict[str, Any]:
    """The migration record of a job folder: ``matched`` and ``migrated`` (empty if none)."""
    try:
        with open(paths.migration, "rb") as file:
            record = json.loads(file.read())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def record_match(paths: JobPaths, how: str) -> None:
    """Record that an experiment found this job through a migration (former names)."""
    record = read_migration(paths)
    if (record.get("matched") or {}).get("how") == how:
        return
    with contextlib.suppress(OSError):
        write_json(paths.migration, {**record, "matched": {"how": how, "time": time.time()}})


def describe_migration(record: dict[str, Any]) -> list[str]:
    """The lines ``partita jobs show`` and ``partita explain`` print for a migration record."""
    lines = []
    matched = record.get("matched")
    if isinstance(matched, dict) and matched.get("how"):
        lines.append(f"matched through a migration: {matched['how']}")
    for entry in record.get("migrated") or []:
        if not isinstance(entry, dict):
            continue
        what = "; ".join(str(c) for c in entry.get("changes") or []) or "params.json rewritten"
        where = (
            f"moved from {entry.get('from')}"
            if entry.get("from") != entry.get("to")
            else "rewritten in place"
        )
        lines.append(f"migrated by partita migrate ({where}): {what}")
    return lines
