"""``partita.load_run``: the configs a run submitted, rebuilt, with their jobs."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from partita.analysis._flat import valid_document
from partita.config import Config, _runtime, identifier
from partita.config._serial import FORMAT, _Reader
from partita.errors import LoadError, ResultsError
from partita.workspace import (
    JobPaths,
    RunPaths,
    Workspace,
    iter_runs,
    read_json,
    read_results,
    read_run,
    read_status,
    read_submissions,
)

__all__ = ["LoadedJob", "LoadedRun", "load_run"]


@dataclass(frozen=True)
class LoadedJob:
    """One task a run submitted: its config (rebuilt, frozen) and what its job folder says."""

    task: Config
    identifier: str
    type_id: str
    paths: JobPaths
    state: str
    """``done``, ``failed``, ``cancelled``, ``running`` or ``waiting`` (never launched)."""
    tags: dict[str, Any]

    @property
    def results(self) -> dict[str, Any]:
        """What the job reported (``partita.report``): its last value of each name."""
        values: dict[str, Any] = read_results(self.paths)["values"]
        return values


@dataclass(frozen=True)
class LoadedRun:
    """What one run of an experiment submitted, in submission order."""

    experiment: str
    run: str
    status: str | None
    started: float | None
    jobs: list[LoadedJob]
    damage: list[str] = field(default_factory=list)

    @property
    def tasks(self) -> list[Config]:
        """The submitted configs, in submission order (shared sub-configs are one object)."""
        return [job.task for job in self.jobs]

    def job(self, task: Config) -> LoadedJob:
        """The job of a config of this run."""
        for job in self.jobs:
            if job.task is task:
                return job
        raise LookupError(f"{type(task).__qualname__} was not submitted by run {self.run}.")


def _pick_run(workspace: Workspace, experiment: str, run: str) -> RunPaths:
    runs = sorted(p.run for p in iter_runs(workspace, experiment))
    if not runs:
        names = sorted({p.experiment for p in iter_runs(workspace)})
        known = f" (experiments: {', '.join(names)})" if names else ""
        raise ResultsError(
            f"expected an experiment with runs in {workspace.root}, found no run of "
            f"{experiment!r}{known}. Check the name."
        )
    if run == "latest":
        pointer = read_json(RunPaths.of(workspace, experiment, runs[-1]).latest)
        name = pointer.get("run") if isinstance(pointer, dict) else None
        chosen = name if isinstance(name, str) and name in runs else runs[-1]
        return RunPaths.of(workspace, experiment, chosen)
    matches = [r for r in runs if r == run] or [r for r in runs if r.startswith(run)]
    if len(matches) != 1:
        what = "no run" if not matches else f"{len(matches)} runs"
        raise ResultsError(
            f"expected one run of {experiment!r} named {run!r}, found {what} "
            f"(runs: {', '.join(runs[-5:])}). Pass a run id from "
            f"'partita experiments show {experiment}', or 'latest'."
        )
    return RunPaths.of(workspace, experiment, matches[0])


def _merge(documents: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[int]]:
    """One object list for several params documents: equal identities become one entry."""
    merged: list[dict[str, Any]] = []
    by_id: dict[str, int] = {}
    roots: list[int] = []

    def remap(value: Any, local: list[int]) -> Any:
        if isinstance(value, list):
            return [remap(v, local) for v in value]
        if isinstance(value, dict):
            if "$ref" in value and isinstance(value["$ref"], int):
                return {**value, "$ref": local[value["$ref"]]}
            return {k: remap(v, local) for k, v in value.items()}
        return value

    for document in documents:
        local: list[int] = []
        for entry in document["objects"]:
            ident = entry.get("id")
            if isinstance(ident, str) and ident in by_id:
                local.append(by_id[ident])
                continue
            copied = copy.deepcopy(entry)
            copied["fields"] = remap(copied.get("fields", {}), local)
            if isinstance(copied.get("producer"), int):
                copied["producer"] = local[copied["producer"]]
            local.append(len(merged))
            if isinstance(ident, str):
                by_id[ident] = len(merged)
            merged.append(copied)
        roots.append(local[document["root"]])
    return merged, roots


def load_run(workdir: str | os.PathLike[str], experiment: str, run: str = "latest") -> LoadedRun:
    """The configs run ``run`` of ``experiment`` submitted, rebuilt, with their jobs.

    ``run`` is a run id (or a unique prefix of one) or ``"latest"``. Each config is rebuilt
    from its job's ``params.json`` (the task classes are imported, as ``partita.load``
    does), and a sub-config shared by several tasks (one ``Split`` under every ``Train``)
    is one object, as when the run submitted it. Each :class:`LoadedJob` says the job's
    state, tags and folder, and reads its reported results.

    Raises :class:`partita.errors.ResultsError` for an unknown experiment or run, and
    :class:`partita.errors.LoadError` when a config cannot be rebuilt (its code changed).
    """
    workspace = Workspace(Path(workdir), create=False)
    paths = _pick_run(workspace, experiment, run)
    record = read_run(paths)
    submissions = read_submissions(paths)
    damage = list(record.damage) + list(submissions.damage)
    seen: dict[str, dict[str, Any]] = {}
    for entry in submissions.entries:
        if entry.id in seen:
            seen[entry.id]["tags"].update(entry.tags)
            continue
        if entry.type is None:
            damage.append(f"jobs.jsonl: the submission of {entry.id[:12]} has no type")
            continue
        job = workspace.job(entry.type, entry.id)
        document = read_json(job.params)
        if not valid_document(document):
            damage.append(f"{entry.type}/{entry.id[:12]}: params.json is missing or damaged")
            continue
        seen[entry.id] = {"paths": job, "document": document, "tags": dict(entry.tags)}
    merged, roots = _merge([item["document"] for item in seen.values()])
    _runtime.register_workspace(workspace.root)
    if _runtime.current_workspace() is None:
        _runtime.set_current_workspace(workspace.root)
    reader = _Reader(
        {"format": FORMAT, "objects": merged, "root": 0},
        workspace.root,
        f"run {paths.run} of {experiment}",
    )
    try:
        for obj in merged:
            reader.objects.append(reader.build_one(obj))
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise LoadError(
            f"run {paths.run} of {experiment}: a params.json is not valid "
            f"({type(exc).__name__}: {exc}). Restore it or delete the job folder."
        ) from None
    jobs = []
    for (ident, item), root in zip(seen.items(), roots, strict=True):
        task = reader.objects[root]
        if identifier(task) != ident:
            raise LoadError(
                f"{item['paths'].params}: the current code of {type(task).__qualname__} gives "
                f"identifier {identifier(task)[:12]}…, not {ident[:12]}…: a Constant, a "
                "default or a type id changed since the run. Restore it to load this run."
            )
        status = read_status(item["paths"])
        jobs.append(
            LoadedJob(
                task=task,
                identifier=ident,
                type_id=item["paths"].type_id,
                paths=item["paths"],
                state=status.state.value if status.state is not None else "waiting",
                tags=item["tags"],
            )
        )
    return LoadedRun(experiment, paths.run, record.status, record.started, jobs, damage)
