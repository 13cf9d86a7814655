"""Results reported from inside a task: ``partita.report(accuracy=0.93)``.

Runs in the job's process (it imports the workspace's atomic writer only, when first
used). Every call rewrites the job's results file atomically, so a reader sees the values
before or after a call, never part of one, and a job that is killed keeps what it reported
until then. The file (see docs/results.md)::

    {"values": {name: last value}, "series": {name: [[step, value, unix time], ...]}}

Numbers are also appended to the series of their name (a history: per-epoch loss); the
step is the number of numeric reports of that name so far (1, 2, ...) unless ``step=`` is
given. JSON has no NaN or infinity: such a number is stored as the string ``"nan"``,
``"inf"`` or ``"-inf"`` and :func:`partita.workspace.read_results` turns it back.
"""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from partita.errors import ReportError

if TYPE_CHECKING:
    from partita.workspace import JobPaths

__all__ = ["MAX_VALUE_BYTES", "artifacts", "report"]

#: The largest JSON encoding of one reported value; larger outputs belong in ``artifacts()``.
MAX_VALUE_BYTES = 64 * 1024

_target: list[JobPaths] = []
_values: dict[str, Any] = {}
_series: dict[str, list[list[Any]]] = {}
_pending = [False]
#: One report at a time: threads of a task share the file (and its temporary name).
_lock = threading.Lock()


def _set_target(paths: JobPaths | None) -> None:
    """Direct reports to the job folder ``paths`` (the job runner calls this), or nowhere."""
    _target.clear()
    _values.clear()
    _series.clear()
    _pending[0] = False
    if paths is not None:
        _target.append(paths)
        _resume(paths)


def _resume(paths: JobPaths) -> None:
    """Continue from what an earlier attempt left in the folder (a ``ResumableTask``'s)."""
    if not paths.results.exists():
        return
    from partita.workspace._results import read_results

    earlier = read_results(paths)
    _values.update({k: _storable(k, v) for k, v in earlier["values"].items() if _safe(k, v)})
    for name, points in earlier["series"].items():
        _series[name] = [[step, _number(value), when] for step, value, when in points]


def _safe(name: str, value: Any) -> bool:
    try:
        _storable(name, value)
    except ReportError:
        return False
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: int | float) -> int | float | str:
    """A number as stored: itself, or ``"nan"``/``"inf"``/``"-inf"`` (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _storable(name: str, value: Any, depth: int = 0) -> Any:
    """``value`` as stored in JSON, or a :class:`ReportError` saying why it cannot be."""
    if value is None or isinstance(value, bool | str):
        return value
    if _is_number(value):
        return _number(int(value) if isinstance(value, int) else float(value))
    if depth > 8:
        raise ReportError(
            f"report({name}=...): expected a small value, found containers nested more than "
            "8 deep. Write it to a file in partita.artifacts() and report its name."
        )
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ReportError(
                    f"report({name}=...): expected a dict with string keys, found the key "
                    f"{key!r} ({type(key).__name__}). Convert the keys to strings."
                )
            out[key] = _storable(f"{name}.{key}", item, depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_storable(f"{name}[{i}]", item, depth + 1) for i, item in enumerate(value)]
    number = _numpy_scalar(value)
    if number is not None:
        return _storable(name, number, depth)
    raise ReportError(
        f"report({name}=...): expected a number, a string, a boolean, None, or a small "
        f"dict/list of those, found {type(value).__qualname__}. Convert it (e.g. float(x)), "
        "or save it to a file in partita.artifacts()."
    )


def _numpy_scalar(value: Any) -> int | float | bool | None:
    """A NumPy (or similar) scalar as a Python number: anything with ``item()`` and no size."""
    item = getattr(value, "item", None)
    if item is None or getattr(value, "shape", None) != ():
        return None
    try:
        result = item()
    except (TypeError, ValueError):
        return None
    return result if isinstance(result, int | float | bool) else None


def report(step: int | None = None, **values: Any) -> None:
    """Record results of the current job: ``partita.report(accuracy=0.93, loss=0.1)``.

    Values are numbers, strings, booleans, ``None``, or small dicts and lists of those
    (at most 64 KiB of JSON each). Call it as often as you like: the last value of each
    name wins, and every number is also appended to the series of its name with its step
    (the number of numeric reports of that name so far, from 1, unless ``step`` is given)
    and the time. The file is written at once and atomically; ``partita results`` and
    ``partita.results()`` read it.

    A value that cannot be stored raises :class:`partita.errors.ReportError` right here,
    inside the job, rather than being lost. Outside a job (calling ``execute()`` by hand)
    values are checked, then dropped. Threads of the task may report; child processes
    should hand their values to the task's process, which reports them.
    """
    if step is not None and (not isinstance(step, int) or isinstance(step, bool)):
        raise ReportError(
            f"report(step=...): expected an integer step, found {step!r}. "
            "Pass step=epoch (an int), or leave it out to count the calls."
        )
    stored: dict[str, Any] = {}
    for name, value in values.items():
        encoded = _storable(name, value)
        size = len(json.dumps(encoded, ensure_ascii=False))
        if size > MAX_VALUE_BYTES:
            raise ReportError(
                f"report({name}=...): expected a small value (at most {MAX_VALUE_BYTES} bytes "
                f"of JSON), found {size} bytes. Save it to a file in partita.artifacts() and "
                "report its name instead."
            )
        stored[name] = encoded
    with _lock:
        if _target:
            _record(values, stored, step)


def _record(values: dict[str, Any], stored: dict[str, Any], step: int | None) -> None:
    now = time.time()
    for name, encoded in stored.items():
        _values[name] = encoded
        value = values[name]
        if _is_number(value) or _is_number(_numpy_scalar(value)):
            points = _series.setdefault(name, [])
            points.append([len(points) + 1 if step is None else step, encoded, now])
    _write(fsync=False)


def _write(*, fsync: bool) -> None:
    from partita.workspace._atomic import write_json

    try:
        write_json(_target[0].results, {"values": _values, "series": _series}, fsync=fsync)
    except OSError as exc:
        raise ReportError(
            f"cannot write the results of this job to {_target[0].results}: "
            f"{exc.strerror or exc}. Free disk space or check the folder's permissions."
        ) from None
    _pending[0] = fsync is False


def _flush() -> None:
    """Write the results once more, to disk for good (the job runner calls this at the end)."""
    with _lock:
        if _target and _pending[0]:
            try:
                _write(fsync=True)
            except ReportError:
                pass


def artifacts() -> Path:
    """The folder for the current job's larger outputs (created on first call).

    Files written there stay with the job (``WORKDIR/jobs/<task>/<id>/artifacts/``): model
    weights, predictions, figures. Report small values with :func:`report`, and what a
    reader needs to find a file (its name) too. Outside a job this raises
    :class:`partita.errors.ReportError`.
    """
    if not _target:
        raise ReportError(
            "partita.artifacts(): expected to be called inside a task's execute() while the "
            "job runs, found no running job. Use self.jobdir when testing a task by hand."
        )
    folder = _target[0].artifacts
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise ReportError(
            f"cannot create the artifacts folder {folder}: {exc.strerror or exc}."
        ) from None
    return folder
