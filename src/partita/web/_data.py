"""What the monitor shows, as JSON: job summaries, job details, rendered params, log tails.

Nothing here knows about HTTP. Every file read goes through :func:`job_paths`, which
rebuilds a job's folder from the work directory and the job's identity as the index knows
it, so that no client-supplied text ever becomes a path.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sqlite3
import stat
from pathlib import Path
from typing import Any

from partita.errors import JobLookupError, WorkspaceError
from partita.launchers import handle_host, handle_kind, probe_handle
from partita.workspace import (
    Index,
    JobInfo,
    JobPaths,
    RunInfo,
    Workspace,
    describe_migration,
    read_job_environment,
    read_json,
    read_migration,
    read_shared_refs,
    read_status,
)
from partita.workspace import open_index as workspace_open_index

# A job reference in a URL: a (prefix of a) hexadecimal identifier, nothing else.
_IDENTIFIER = re.compile(r"^[0-9a-f]{1,64}$")
# An experiment name (as partita.experiment() accepts it) and a run id.
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
# A task type id as it appears as a folder name below jobs/.
_TYPE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")

LOG_TAIL = 64 * 1024
"""Bytes shown when a log is opened (its end)."""
LOG_CHUNK = 512 * 1024
"""Most bytes returned by one log request."""


class NotFound(LookupError):
    """The thing asked for does not exist (HTTP 404)."""


class BadRequest(ValueError):
    """The request is malformed (HTTP 400)."""


def open_index(workspace: Workspace) -> Index:
    """The index of ``workspace`` (see :func:`partita.workspace.open_index`).

    When the files have to be read directly (a full disk, a broken index), the reason is
    logged once.
    """
    index = workspace_open_index(workspace, probe_handle)
    if index.warning:
        logging.getLogger("partita.web").warning("%s", index.warning)
    return index


def refreshed(index: Index, workspace: Workspace) -> tuple[Index, set[str] | None]:
    """``index`` brought up to date and the jobs that changed, or a new index and ``None``.

    A monitor runs for days: its index may be deleted, corrupted or left unwritable (a full
    disk) under it. The index is then opened again, which rebuilds it or reads the files,
    and what changed is not known (``None``: read every job again).
    """
    try:
        return index, index.refresh()
    except sqlite3.Error as exc:
        logging.getLogger("partita.web").warning("the index failed (%s); opening it again", exc)
        index.close()
        return open_index(workspace), None


def valid_name(text: str) -> bool:
    """Whether ``text`` is a possible experiment name or run id."""
    return bool(_NAME.match(text)) and len(text) <= 200


def parse_tag(text: str) -> tuple[str, Any]:
    """``name=value`` → ``(name, value)``; the value is parsed as JSON when possible.

    ``y=1`` is the int 1, ``y=1.0`` the float, ``y="1"`` and ``y=abc`` strings, as on the
    command line.
    """
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise BadRequest(f"tag filter: expected 'name=value' (e.g. y=1), found {text!r}.")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return name, value


def tag_text(value: Any) -> str:
    """How a tag value is written in a filter (``parse_tag`` reads it back as the same value)."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def job_summary(info: JobInfo, results: dict[str, Any] | None = None) -> dict[str, Any]:
    """The part of a job the lists and the live feed need (no duration: it ticks).

    ``results``: the scalar values the job reported (:func:`result_values`), shown as
    columns of the jobs table.
    """
    return {
        "id": info.identifier,
        "short": info.short,
        "type": info.type_id,
        "state": info.state,
        "reason": info.reason,
        "detail": info.detail,
        "attempt": info.attempt,
        "submitted": info.submitted,
        "started": info.started,
        "ended": info.ended,
        "tags": {k: tag_text(v) for k, v in info.tags.items()},
        "progress": info.progress,
        "message": info.message or None,
        "experiments": list(info.experiments),
        "depends": list(info.depends),
        "damage": list(info.damage),
        "host": handle_host(info.launcher),
        "launcher": handle_kind(info.launcher),
        "transient": info.transient,
        "results": results or {},
    }


MAX_RESULT_COLUMNS = 40
"""Most reported values of one job carried by the job lists (the job page shows all)."""


def plain_number(value: Any) -> Any:
    """``value``, with a number JSON cannot hold (NaN, infinity) as ``None``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def result_values(reported: dict[str, Any]) -> dict[str, Any]:
    """The scalars among a job's reported values, small dicts flattened (``a.b``).

    Numbers JSON cannot hold become ``None``; lists and nested values deeper than two
    levels are left out (the job page shows them).
    """
    out: dict[str, Any] = {}

    def add(name: str, value: Any, depth: int) -> None:
        if len(out) >= MAX_RESULT_COLUMNS:
            return
        if value is None or isinstance(value, bool | int | float | str):
            out[name] = plain_number(value)
        elif isinstance(value, dict) and depth < 2:
            for key, item in value.items():
                add(f"{name}.{key}", item, depth + 1)

    for name, value in reported.items():
        add(str(name), value, 0)
    return out


def job_results(paths: JobPaths) -> dict[str, Any]:
    """Everything a job reported, for its page: values, series (``[[step, value, time]]``)
    and what could not be read; numbers JSON cannot hold are ``None``."""
    from partita.workspace import read_results

    reported = read_results(paths)

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return plain_number(value)

    return {
        "values": clean(reported["values"]),
        "series": {name: clean(points) for name, points in reported["series"].items()},
        "damage": list(reported["damage"]),
    }


def run_summary(run: RunInfo) -> dict[str, Any]:
    """A run of an experiment as JSON."""
    return run.to_json()


def lookup(index: Index, reference: str) -> JobInfo:
    """The job whose identifier starts with ``reference`` (hexadecimal only)."""
    text = reference.strip().lower()
    if not _IDENTIFIER.match(text):
        raise NotFound(f"no job {reference!r}: expected a hexadecimal job identifier.")
    try:
        return index.job(text)
    except JobLookupError as exc:
        raise NotFound(str(exc)) from None


def job_paths(workspace: Workspace, info: JobInfo) -> JobPaths:
    """The folder of ``info``, rebuilt from the work directory (never from stored paths)."""
    if not _TYPE_ID.match(info.type_id) or not _IDENTIFIER.match(info.identifier):
        raise NotFound(f"job {info.identifier!r} has an unexpected name.")
    try:
        return workspace.job(info.type_id, info.identifier)
    except WorkspaceError:
        raise NotFound(f"job {info.identifier!r} is not inside the work directory.") from None


def render_params(document: Any, workspace: Workspace) -> Any:
    """``params.json`` as a tree to display: ``$ref`` replaced by what it points to.

    A referenced task (it has a job folder) becomes ``{"$job": {"type", "id"}}``; another
    config becomes ``{"$config": {"type", "id", "fields", "producer"?, "pretasks"?}}``.
    Floats with an integral value become ``{"$float": "1.0"}`` so that ``1.0`` and ``1``
    stay distinct. Other tagged values (``$path``, ``$enum``, ``$tuple``, ``$set``,
    ``$dict``) are kept.
    """
    if not isinstance(document, dict) or not isinstance(document.get("objects"), list):
        return None
    objects: list[Any] = document["objects"]

    def is_job(obj: dict[str, Any]) -> bool:
        type_id, ident = obj.get("type"), obj.get("id")
        return (
            isinstance(type_id, str)
            and isinstance(ident, str)
            and bool(_TYPE_ID.match(type_id))
            and bool(_IDENTIFIER.match(ident))
            and JobPaths(workspace.jobs / type_id / ident).params.exists()
        )

    def config(position: Any, depth: int) -> Any:
        if not isinstance(position, int) or not 0 <= position < len(objects) or depth > 40:
            return {"$missing": position}
        obj = objects[position]
        if not isinstance(obj, dict):
            return {"$missing": position}
        if depth > 0 and is_job(obj):
            return {"$job": {"type": obj.get("type"), "id": obj.get("id")}}
        out: dict[str, Any] = {
            "type": obj.get("type"),
            "id": obj.get("id"),
            "class": obj.get("class"),
            "fields": {k: value(v, depth + 1) for k, v in (obj.get("fields") or {}).items()},
        }
        if "producer" in obj:
            out["producer"] = config(obj["producer"], depth + 1)
        if isinstance(obj.get("ignored"), list):
            out["ignored"] = [str(name) for name in obj["ignored"]]  # held with ignore()
        if isinstance(obj.get("instance"), str):
            out["instance"] = obj["instance"]  # a distinct() instance
        pretasks = obj.get("pretasks")
        if isinstance(pretasks, list) and pretasks:  # a task's pre-tasks, in order
            out["pretasks"] = [config(p, depth + 1) for p in pretasks]
        return out if depth == 0 else {"$config": out}

    def value(v: Any, depth: int) -> Any:
        if isinstance(v, float):
            if math.isfinite(v) and v == int(v):
                return {"$float": repr(v)}
            return v
        if isinstance(v, list):
            return [value(x, depth) for x in v]
        if isinstance(v, dict):
            if set(v) == {"$ref"}:
                return config(v["$ref"], depth)
            if "$tuple" in v or "$set" in v:
                key = "$tuple" if "$tuple" in v else "$set"
                items = v[key] if isinstance(v[key], list) else []
                return {key: [value(x, depth) for x in items]}
            if "$dict" in v and isinstance(v["$dict"], dict):
                return {"$dict": {k: value(x, depth) for k, x in v["$dict"].items()}}
            if any(k.startswith("$") for k in v):
                return v
            return {k: value(x, depth) for k, x in v.items()}
        return v

    return config(document.get("root"), 0)


def job_outputs(paths: JobPaths, workspace: Workspace, limit: int = 100) -> list[dict[str, Any]]:
    """What the job published (``partita.publish``), each once: the last ``limit``.

    A config is shown like the parameters (:func:`render_params`), a JSON value as it is.
    """
    from partita.workspace import read_outputs

    found = []
    for entry in read_outputs(paths, once=True):
        document = entry.get("config")
        found.append(
            {
                "name": entry["name"],
                "seq": entry.get("seq"),
                "attempt": entry.get("attempt"),
                "time": entry.get("time"),
                "config": render_params(document, workspace) if document is not None else None,
                "value": entry.get("value"),
            }
        )
    return found[-limit:]


def job_detail(
    workspace: Workspace, info: JobInfo, known: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Everything the job page shows. ``known``: summaries of all jobs, by identifier."""
    paths = job_paths(workspace, info)
    record = read_status(paths).record
    params = read_json(paths.params)

    def brief(ident: str) -> dict[str, Any]:
        job = known.get(ident)
        if job is None:
            return {"id": ident, "short": ident[:12], "type": None, "state": "unknown"}
        return {k: job[k] for k in ("id", "short", "type", "state", "progress", "tags")}

    dependents = [j["id"] for j in known.values() if info.identifier in j["depends"]]
    attempts = []
    if paths.attempts.is_dir():
        attempts = sorted((p.name for p in paths.attempts.iterdir() if p.name.isdigit()), key=int)
    return {
        **job_summary(info),
        "duration": info.duration,
        "launcher_handle": info.launcher,
        "params": render_params(params, workspace),
        "history": list(record.get("history") or []),
        "exit_code": record.get("exit_code"),
        "dependencies": [brief(d) for d in info.depends],
        "dependents": [brief(d) for d in dependents],
        "attempts": attempts,
        "environment": read_job_environment(paths),
        "outputs": job_outputs(paths, workspace),
        "paths": {
            "folder": str(paths.root),
            "params": str(paths.params),
            "stdout": str(paths.stdout),
            "stderr": str(paths.stderr),
        },
        "logs": {name: _size(getattr(paths, name)) for name in ("stdout", "stderr")},
        "cancel_requested": paths.cancel_request.exists(),
        "migration": describe_migration(read_migration(paths)),
        "shared": shared_of_job(workspace, paths),
    }


def shared_of_job(workspace: Workspace, paths: JobPaths) -> list[dict[str, Any]] | None:
    """The shared folders a job's task uses (its ``shared.json``), for the job page.

    ``None`` if the record cannot be read. Each folder: ``name`` (``type/group/short id``),
    ``group``, ``path`` and whether it ``exists`` yet. Only entries of the form
    ``shared/<type id>/<group>/<identifier>`` are shown: the file's text never becomes
    another path.
    """
    refs = read_shared_refs(paths)
    if refs is None:
        return None
    found = []
    for ref in refs:
        parts = ref.split("/")
        if (
            len(parts) != 4
            or parts[0] != workspace.shared.name
            or not all(_TYPE_ID.match(part) for part in parts[1:3])
            or not _IDENTIFIER.match(parts[3])
        ):
            continue
        folder = workspace.shared.joinpath(*parts[1:])
        found.append(
            {
                "name": f"{parts[1]}/{parts[2]}/{parts[3][:12]}",
                "group": parts[2],
                "path": str(folder),
                "exists": folder.is_dir(),
            }
        )
    return found


def _size(path: Path) -> int | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def read_log(path: Path, offset: int | None, *, limit: int = LOG_CHUNK) -> dict[str, Any]:
    """Read a log from ``offset`` (or its last :data:`LOG_TAIL` bytes when ``None``).

    Returns ``{content, start, offset, size}``: ``content`` begins at byte ``start`` and
    ends at byte ``offset``, where the next read should start. A trailing incomplete UTF-8
    character is left for the next read. If the file shrank below ``offset`` (a new
    attempt), reading starts again at 0 and ``reset`` is true. Symbolic links and anything
    but a regular file read as empty.
    """
    result: dict[str, Any] = {
        "content": "",
        "start": 0,
        "offset": 0,
        "size": 0,
        "reset": False,
        "exists": False,
    }
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        if offset:
            result["offset"] = result["start"] = offset
        return result
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return result
        size = st.st_size
        result.update(exists=True, size=size)
        skip_partial_line = False
        if offset is None:
            start = max(0, size - LOG_TAIL)
            skip_partial_line = start > 0
        elif offset > size:
            start = 0
            result["reset"] = True
        else:
            start = offset
        data = os.pread(fd, min(limit, size - start), start) if size > start else b""
    finally:
        os.close(fd)
    if skip_partial_line:
        newline = data.find(b"\n")
        if newline >= 0:
            data = data[newline + 1 :]
            start += newline + 1
    data = _complete_utf8(data)
    result.update(
        content=data.decode("utf-8", errors="replace"), start=start, offset=start + len(data)
    )
    return result


def _complete_utf8(data: bytes) -> bytes:
    """``data`` without a trailing, incomplete UTF-8 sequence."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:  # continuation byte: keep looking for the lead
            continue
        if byte & 0x80 == 0:  # ASCII
            return data
        need = 2 if byte & 0xE0 == 0xC0 else 3 if byte & 0xF0 == 0xE0 else 4
        return data if back >= need else data[:-back]
    return data
