"""The results table: one row per job, its parameters (following producers) and results.

:func:`result_rows` builds plain rows (no pandas: the command line prints them as they
are); :func:`results` turns them into a pandas ``DataFrame``.
"""

from __future__ import annotations

import difflib
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from partita.analysis._flat import flat_params, same, valid_document
from partita.errors import ResultsError
from partita.launchers import probe_handle
from partita.workspace import (
    Index,
    JobInfo,
    Workspace,
    open_index,
    read_job_environment,
    read_json,
    read_results,
)

if TYPE_CHECKING:
    import pandas

__all__ = ["ResultRows", "result_rows", "results"]

#: The states a job can be in, as ``state=`` accepts them.
STATES = ("waiting", "running", "done", "failed", "cancelled", "damaged")
#: The columns every row has, first.
META = ("id", "task", "state")
#: The columns every row has, last.
TIMES = ("submitted", "started", "ended", "duration")
#: Columns of jobs measured by an energy meter (their environment record), after the times.
ENERGY = ("energy_kwh", "emissions_kg")

ANALYSIS_HINT = (
    "partita.results() returns a pandas DataFrame and needs the 'analysis' extra: "
    "pip install 'partita[analysis]' (or use 'partita results --csv/--json', which does not)."
)


@dataclass
class ResultRows:
    """The rows of a results table and its columns in display order."""

    columns: list[str]
    rows: list[dict[str, Any]]
    varying: list[str]
    """Parameter and tag columns whose value is not the same in every row (that has it)."""
    results: list[str] = field(default_factory=list)
    """The columns of reported results."""
    damage: list[str] = field(default_factory=list)
    """Files that could not be read (``"<task>/<id>: results.json: ..."``)."""


def _states(state: str | Iterable[str] | None) -> list[str]:
    if state is None or state == "all":
        return []
    chosen = [state] if isinstance(state, str) else list(state)
    if "all" in chosen:
        return []
    unknown = [s for s in chosen if s not in STATES]
    if unknown:
        raise ResultsError(
            f"expected a job state among {', '.join(STATES)} (or None for every state), "
            f"found {unknown[0]!r}."
        )
    return chosen


def _nearest(word: str, choices: Iterable[str]) -> str:
    options = sorted({str(c) for c in choices})
    close = difflib.get_close_matches(word, options, n=3, cutoff=0.4)
    shown = close or options[:8]
    if not shown:
        return ""
    lead = "did you mean" if close else "known"
    return f" ({lead}: {', '.join(shown)})"


def _why_empty(
    index: Index,
    workspace: Workspace,
    experiment: str | None,
    task: str | None,
    tags: dict[str, Any],
    states: list[str],
) -> str:
    """Why a selection matched no job, and what is there instead."""
    where = f"in {workspace.root}"
    if experiment is not None:
        names = {run.experiment for run in index.runs()}
        if experiment not in names:
            return f"no experiment named {experiment!r} {where}{_nearest(experiment, names)}."
    if task is not None and not index.jobs(experiment=experiment, task=task):
        types = {info.type_id for info in index.jobs(experiment=experiment)}
        scope = f" of experiment {experiment!r}" if experiment else ""
        return f"no task{scope} matches {task!r} {where}{_nearest(task, types)}."
    candidates = index.jobs(experiment=experiment, task=task)
    if not candidates:
        return f"no job at all {where}: run an experiment first."
    for name, value in tags.items():
        having = [info for info in candidates if name in info.tags]
        if not having:
            keys = {key for info in candidates for key in info.tags}
            return f"no job has the tag {name!r}{_nearest(name, keys)}."
        matching = [info for info in having if same(info.tags[name], value)]
        if not matching:
            values = {repr(info.tags[name]) for info in having}
            return (
                f"no job has the tag {name}={value!r}{_nearest(repr(value), values)}"
                ". Values are typed: 1 is not '1' nor 1.0."
            )
        candidates = matching
    counts = Counter(info.state for info in candidates)
    summary = ", ".join(f"{count} {state}" for state, count in sorted(counts.items()))
    noun = "job matches" if len(candidates) == 1 else "jobs match"
    wanted = " or ".join(states)
    return (
        f"{len(candidates)} {noun} but none is {wanted} ({summary}). "
        "Pass state=None (--state all) for every state."
    )


def _flatten_value(prefix: str, value: Any, into: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten_value(f"{prefix}.{key}", item, into)
    else:
        into[prefix] = value


def _row(workspace: Workspace, info: JobInfo, damage: list[str]) -> tuple[dict[str, Any], ...]:
    """(meta, params, tags, results, times) of one job."""
    paths = workspace.job(info.type_id, info.identifier)
    document = read_json(paths.params)
    params: dict[str, Any] = {}
    if valid_document(document):
        try:
            params = flat_params(document)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            damage.append(f"{info.name}: params.json: cannot be read ({exc})")
    elif paths.params.exists():
        damage.append(f"{info.name}: params.json: not a params document")
    reported = read_results(paths)
    damage.extend(f"{info.name}: {item}" for item in reported["damage"])
    values: dict[str, Any] = {}
    for name, value in reported["values"].items():
        _flatten_value(name, value, values)
    meta = {"id": info.identifier, "task": info.type_id, "state": info.state}
    times = {
        "submitted": info.submitted,
        "started": info.started,
        "ended": info.ended,
        "duration": info.duration,
    }
    energy = read_job_environment(paths).get("energy")
    if isinstance(energy, dict):
        for name in ENERGY:
            if isinstance(energy.get(name), int | float):
                times[name] = energy[name]
    return meta, params, dict(info.tags), values, times


def _agrees(parts: list[tuple[dict[str, Any], ...]], name: str) -> bool:
    """Whether the tag ``name`` equals the parameter ``name`` in every job that has both."""
    return all(
        same(part[2][name], part[1][name]) for part in parts if name in part[1] and name in part[2]
    )


def result_rows(
    workdir: str | os.PathLike[str],
    *,
    experiment: str | None = None,
    task: str | None = None,
    tags: dict[str, Any] | None = None,
    state: str | Iterable[str] | None = "done",
    varying_only: bool = False,
) -> ResultRows:
    """The rows of :func:`results` as plain dicts (see there); no pandas needed."""
    states = _states(state)
    tags = dict(tags or {})
    workspace = Workspace(Path(workdir), create=False)
    with open_index(workspace, probe_handle) as index:
        infos = index.jobs(states=states, task=task, experiment=experiment, tags=tags or None)
        if not infos:
            raise ResultsError(
                "the selection matches no job: "
                + _why_empty(index, workspace, experiment, task, tags, states)
            )
    infos.sort(key=lambda i: (i.type_id, i.submitted or i.started or 0.0, i.identifier))
    damage: list[str] = []
    parts = [_row(workspace, info, damage) for info in infos]

    def columns_of(position: int) -> list[str]:
        return list(dict.fromkeys(name for part in parts for name in part[position]))

    param_names, tag_names, result_names = columns_of(1), columns_of(2), columns_of(3)
    taken = set(META) | set(TIMES) | set(ENERGY)
    merged_tags = {name for name in tag_names if name in param_names and _agrees(parts, name)}
    taken |= set(param_names) - merged_tags
    tag_columns = {name: (f"tag.{name}" if name in taken else name) for name in tag_names}
    taken |= set(tag_columns.values())
    result_columns = {name: (f"result.{name}" if name in taken else name) for name in result_names}
    rows: list[dict[str, Any]] = []
    for meta, params, job_tags, values, times in parts:
        row = dict(meta)
        row.update(params)
        row.update({tag_columns[name]: value for name, value in job_tags.items()})
        row.update({result_columns[name]: value for name, value in values.items()})
        row.update(times)
        rows.append(row)

    def varies(name: str) -> bool:
        values = [row[name] for row in rows if name in row]
        if any(not same(value, values[0]) for value in values[1:]):
            return True
        # Jobs of one task with and without it differ too (an empty list of configs beside
        # a list whose items are flattened into `heads[0].n`, a tag given to some jobs).
        tasks = {row["task"] for row in rows if name in row}
        return any(name not in row for row in rows if row["task"] in tasks)

    described = list(dict.fromkeys([*tag_columns.values(), *param_names]))
    varying = [name for name in described if varies(name)]
    constant = [name for name in described if name not in varying]
    columns = [*META, *varying, *result_columns.values()]
    if not varying_only:
        columns += constant
    columns += TIMES
    columns += [name for name in ENERGY if any(name in row for row in rows)]
    if varying_only:
        for row in rows:
            for name in constant:
                row.pop(name, None)
    return ResultRows(columns, rows, varying, list(result_columns.values()), damage)


def results(
    workdir: str | os.PathLike[str],
    *,
    experiment: str | None = None,
    task: str | None = None,
    tags: dict[str, Any] | None = None,
    state: str | Iterable[str] | None = "done",
    varying_only: bool = False,
) -> pandas.DataFrame:
    """The jobs of a work directory as a table: one row per job, a ``pandas.DataFrame``.

    Columns: ``id``, ``task``, ``state``; then the tags and parameters that vary within the
    selection; then what the jobs reported with ``partita.report`` (a dict value ``{"f1":
    ...}`` under ``metrics`` becomes ``metrics.f1``); then the tags and parameters that are
    the same in every row (left out with ``varying_only=True``); then ``submitted``,
    ``started``, ``ended`` (UTC timestamps) and ``duration`` (seconds); and when jobs were
    measured by an energy meter (the ``energy`` extra), ``energy_kwh`` and ``emissions_kg``.

    Parameters are flattened with dotted names and follow the tasks that produced a job's
    inputs: an ``Evaluate`` whose ``model`` field holds a ``Train`` has ``model.lr`` and
    ``model.split.seed``. A tag or a result whose name is also a parameter's is prefixed
    (``tag.lr``, ``result.lr``).

    Select with ``experiment`` (jobs any of its runs submitted), ``task`` (a type id, or a
    part of one), ``tags`` (typed: ``{"lr": 0.1}`` matches the float 0.1) and ``state``
    (``"done"`` by default; a list, or ``None`` for every state). A selection that matches
    nothing raises :class:`partita.errors.ResultsError` saying why and what is there.
    ``df.attrs["damage"]`` lists files that could not be read (their jobs are still rows).
    """
    try:
        import pandas
    except ImportError:
        raise ResultsError(ANALYSIS_HINT) from None
    table = result_rows(
        workdir,
        experiment=experiment,
        task=task,
        tags=tags,
        state=state,
        varying_only=varying_only,
    )
    frame = pandas.DataFrame.from_records(table.rows, columns=table.columns)
    for name in ("submitted", "started", "ended"):
        frame[name] = pandas.to_datetime(frame[name], unit="s", utc=True)
    frame.attrs["damage"] = table.damage
    frame.attrs["varying"] = table.varying
    return frame
