"""What a job reported and where it ran: :func:`read_results`, :func:`read_job_environment`.

Like :func:`read_status`, they never raise for a missing or damaged file: what cannot be
read is described in the ``"damage"`` list of the answer and left out, so one bad file
never hides the results of a whole sweep. The results file is written by
``partita.report`` (``partita._report``): ``{"values": {...}, "series": {name: [[step,
value, time], ...]}}``; numbers JSON cannot hold are the strings ``"nan"``, ``"inf"`` and
``"-inf"`` there, and numbers again here.
"""

from __future__ import annotations

import math
from typing import Any

from partita.workspace._paths import JobPaths
from partita.workspace._state import ENVIRONMENT
from partita.workspace._status import _kind, is_number, read_document

__all__ = ["read_job_environment", "read_results"]

_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _point(name: str, position: int, entry: Any, damage: list[str]) -> list[Any] | None:
    where = f"results.json: series[{name!r}][{position}]"
    if not isinstance(entry, list) or len(entry) != 3:
        damage.append(f"{where}: expected [step, value, time], found {_kind(entry)}")
        return None
    step, value, when = entry
    if isinstance(value, str) and value in _NON_FINITE:
        value = _NON_FINITE[value]
    elif not is_number(value):
        damage.append(f"{where}: expected a number as the value, found {_kind(value)}")
        return None
    if not (is_number(step) and is_number(when)):
        damage.append(f"{where}: expected numbers as step and time, found {entry!r:.60}")
        return None
    return [step, value, when]


def read_results(paths: JobPaths) -> dict[str, Any]:
    """What the job reported: ``{"values": {...}, "series": {...}, "damage": [...]}``.

    ``values`` maps each name to its last reported value; ``series`` maps each name that
    was given numbers to ``[[step, value, unix time], ...]`` in the order reported.
    Never raises: a missing file gives empty mappings, a damaged one what could be read
    and one ``"results.json: ..."`` line per problem in ``damage``.
    """
    damage: list[str] = []
    document = read_document(paths.results, damage)
    values: dict[str, Any] = {}
    series: dict[str, list[list[Any]]] = {}
    if document is not None:
        raw_values = document.get("values", {})
        raw_series = document.get("series", {})
        if not isinstance(raw_series, dict):
            damage.append(
                f"results.json: expected 'series' to be an object, found {_kind(raw_series)}"
            )
            raw_series = {}
        for name, points in raw_series.items():
            if not isinstance(points, list):
                damage.append(
                    f"results.json: expected series[{name!r}] to be a list, found {_kind(points)}"
                )
                continue
            checked = [_point(name, i, entry, damage) for i, entry in enumerate(points)]
            series[name] = [point for point in checked if point is not None]
        if isinstance(raw_values, dict):
            for name, value in raw_values.items():
                last = series.get(name)
                if (
                    isinstance(value, str)
                    and value in _NON_FINITE
                    and last
                    and isinstance(last[-1][1], float)
                    and not math.isfinite(last[-1][1])
                ):
                    value = _NON_FINITE[value]
                values[name] = value
        else:
            damage.append(
                f"results.json: expected 'values' to be an object, found {_kind(raw_values)}"
            )
    return {"values": values, "series": series, "damage": damage}


def read_job_environment(paths: JobPaths) -> dict[str, Any]:
    """Where and how the job last ran, plus a ``"damage"`` list.

    Written by the job runner when its task ends, with its final state (``state.json``,
    under ``"environment"``; a folder made before that has it in ``environment.json``):
    ``host``, ``pid``, ``python``, ``gpus`` (from ``nvidia-smi`` when present),
    ``started``/``ended``, ``wall_seconds``, ``cpu_seconds``, ``peak_memory_bytes`` and
    ``code`` (the task's source fingerprint). Empty (with no damage) for a job that never
    ran. Never raises.
    """
    damage: list[str] = []
    # What is wrong with state.json itself is the job's status's to report (read_status).
    record = read_document(paths.state, [])
    document = record.get(ENVIRONMENT) if record is not None else None
    if document is None:
        document = read_document(paths.environment, damage)
    elif not isinstance(document, dict):
        damage.append(
            f"state.json: expected {ENVIRONMENT!r} to be a JSON object, found {_kind(document)}"
        )
        document = None
    info: dict[str, Any] = dict(document) if document is not None else {}
    info["damage"] = damage
    return info
