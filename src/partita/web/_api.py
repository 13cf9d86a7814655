"""The monitor's pages and JSON API (``/api/...``)."""

from __future__ import annotations

import functools
import importlib.util
import os
import time
from pathlib import Path
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from partita._version import __version__
from partita.web import _data, _monitor
from partita.web._data import BadRequest, NotFound
from partita.web._monitor import filtered, monitor_of
from partita.workspace import JobInfo, RunPaths, read_environment, read_run, read_services

STATIC = Path(__file__).parent / "static"


def _error(exc: Exception) -> JSONResponse:
    status = 404 if isinstance(exc, NotFound) else 400
    return JSONResponse({"error": str(exc)}, status_code=status)


async def page(request: Request) -> Response:
    """Every page is the same document; the script draws the page the address names."""
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


async def api_info(request: Request) -> Response:
    """The work directory, the CSRF token for POSTs, versions."""
    state = monitor_of(request)
    return JSONResponse(
        {
            "workdir": str(state.workspace.root),
            "csrf": state.csrf,
            "version": __version__,
            "host": os.uname().nodename,
            "now": time.time(),
        }
    )


async def api_experiments(request: Request) -> Response:
    """Experiments with their runs, most recent first."""
    state = monitor_of(request)
    await state.call(state.refresh, max_age=_monitor.REFRESH_INTERVAL)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for run in state.runs:
        by_name.setdefault(run["experiment"], []).append(run)
    counts: dict[str, dict[str, int]] = {}
    for job in state.jobs.values():
        for name in job["experiments"]:
            per = counts.setdefault(name, {})
            per[job["state"]] = per.get(job["state"], 0) + 1
    names = sorted(by_name, key=lambda name: -(by_name[name][0].get("started") or 0))
    experiments = [
        {
            "name": name,
            "runs": by_name[name],
            "latest": next((r for r in by_name[name] if not r.get("dry_run")), by_name[name][0]),
            "states": counts.get(name, {}),
        }
        for name in names
    ]
    return JSONResponse({"experiments": experiments})


async def api_run(request: Request) -> Response:
    """One run: its record, its jobs and the dependency graph between them."""
    state = monitor_of(request)
    name, run = request.path_params["name"], request.path_params["run"]
    if not _data.valid_name(name) or not _data.valid_name(run):
        return _error(NotFound(f"no run {name}/{run}."))

    def collect() -> dict[str, Any]:
        state.refresh(max_age=_monitor.REFRESH_INTERVAL)
        index = state.index()
        found = [r for r in index.runs(name) if r.run == run]
        if not found:
            raise NotFound(f"no run {run!r} of experiment {name!r}.")
        ids = index.run_jobs(name, run)
        return {"run": found[0].to_json(), "ids": ids}

    try:
        data = await state.call(collect)
    except NotFound as exc:
        return _error(exc)
    paths = RunPaths.of(state.workspace, name, run)
    record = read_run(paths).data
    environment = read_environment(paths)
    ids: list[str] = data["ids"]
    members = set(ids)
    jobs = [state.jobs[i] for i in ids if i in state.jobs]
    external = sorted({d for j in jobs for d in j["depends"] if d not in members})
    edges = [[d, j["id"]] for j in jobs for d in j["depends"]]
    return JSONResponse(
        {
            **data["run"],
            "argv": record.get("argv"),
            "cwd": record.get("cwd"),
            "git": environment.get("git"),
            "python": environment.get("python"),
            "services": [
                {k: service.get(k) for k in ("name", "url", "state", "kind", "started")}
                for service in read_services(paths)
            ],
            "submitted": data["run"]["jobs"],
            "jobs": jobs,
            "external": [
                state.jobs.get(
                    i, {"id": i, "short": i[:12], "type": None, "state": "unknown", "depends": []}
                )
                for i in external
            ],
            "edges": edges,
        }
    )


def _job_filters(request: Request) -> dict[str, Any]:
    params = request.query_params
    states: list[str] = []
    for value in params.getlist("state"):
        states += [s for s in value.split(",") if s]
    tags = dict(_data.parse_tag(t) for t in params.getlist("tag") if t.strip())
    since = params.get("since")
    try:
        since_value = float(since) if since else None
    except ValueError:
        raise BadRequest(f"since: expected a timestamp, found {since!r}.") from None
    return {
        "states": states,
        "task": params.get("task") or None,
        "experiment": params.get("experiment") or None,
        "tags": tags or None,
        "since": since_value,
    }


async def api_jobs(request: Request) -> Response:
    """Jobs, filtered like ``partita jobs list``; ``counts`` ignores the state filter."""
    state = monitor_of(request)
    try:
        filters = _job_filters(request)
    except BadRequest as exc:
        return _error(exc)
    wanted = set(filters["states"])

    def collect() -> list[JobInfo]:
        state.refresh(max_age=_monitor.REFRESH_INTERVAL)
        return filtered(state, {**filters, "states": ()})

    infos = await state.call(collect)
    counts: dict[str, int] = {}
    for info in infos:
        counts[info.state] = counts.get(info.state, 0) + 1
    jobs = [_data.job_summary(i) for i in infos if not wanted or i.state in wanted]
    return JSONResponse({"jobs": jobs, "counts": counts, "total": len(infos)})


async def api_job(request: Request) -> Response:
    """One job: params, tags, state and history, dependencies, paths."""
    state = monitor_of(request)

    def collect() -> dict[str, Any]:
        state.refresh(max_age=_monitor.REFRESH_INTERVAL)
        info = _data.lookup(state.index(), request.path_params["ident"])
        return _data.job_detail(state.workspace, info, state.jobs)

    try:
        return JSONResponse(await state.call(collect))
    except (NotFound, BadRequest) as exc:
        return _error(exc)


async def api_results(request: Request) -> Response:
    """What a job reported: ``{values, series: {name: [[step, value, time], ...]}, damage}``."""
    state = monitor_of(request)

    def collect() -> dict[str, Any]:
        info = _data.lookup(state.index(), request.path_params["ident"])
        paths = _data.job_paths(state.workspace, info)
        return {"id": info.identifier, "state": info.state, **_data.job_results(paths)}

    try:
        return JSONResponse(await state.call(collect))
    except (NotFound, BadRequest) as exc:
        return _error(exc)


def plotly_script() -> Path | None:
    """``plotly.min.js`` from the installed ``plotly`` package (``None`` if it is not)."""
    try:
        spec = importlib.util.find_spec("plotly")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "package_data" / "plotly.min.js"
        if candidate.is_file():
            return candidate
    return None


async def vendor_plotly(request: Request) -> Response:
    """The charting library, served from the ``plotly`` Python package (no copy, no CDN)."""
    script = plotly_script()
    if script is None:
        return Response(
            "plots in the monitor need the plotly package: pip install 'partita[web]'\n",
            status_code=404,
            media_type="text/plain; charset=utf-8",
        )
    return FileResponse(
        script,
        media_type="text/javascript; charset=utf-8",
        headers={"cache-control": "private, max-age=86400"},
    )


async def api_log(request: Request) -> Response:
    """``?stream=stdout|stderr&offset=N`` → ``{content, start, offset, size}``."""
    state = monitor_of(request)
    stream = request.query_params.get("stream", "stdout")
    if stream not in ("stdout", "stderr"):
        return _error(BadRequest(f"stream: expected stdout or stderr, found {stream!r}."))
    raw = request.query_params.get("offset")
    try:
        offset = int(raw) if raw not in (None, "") else None
    except ValueError:
        return _error(BadRequest(f"offset: expected a byte offset, found {raw!r}."))
    if offset is not None and offset < 0:
        return _error(BadRequest("offset: expected 0 or more."))

    def collect() -> dict[str, Any]:
        info = _data.lookup(state.index(), request.path_params["ident"])
        paths = _data.job_paths(state.workspace, info)
        result = _data.read_log(getattr(paths, stream), offset)
        return {**result, "stream": stream, "id": info.identifier, "state": info.state}

    try:
        return JSONResponse(await state.call(collect))
    except (NotFound, BadRequest) as exc:
        return _error(exc)


async def api_kill(request: Request) -> Response:
    """Stop a running job (POST, with the CSRF header; the guard checked both)."""
    state = monitor_of(request)

    def find() -> JobInfo:
        state.refresh()
        return _data.lookup(state.index(), request.path_params["ident"])

    try:
        info = await state.call(find)
        _data.job_paths(state.workspace, info)
    except NotFound as exc:
        return _error(exc)
    if info.state != "running":
        return JSONResponse(
            {
                "error": f"{info.name} is {info.state}: only a running job can be killed.",
                "state": info.state,
            },
            status_code=409,
        )
    from partita._control import kill_job

    message = await anyio.to_thread.run_sync(
        functools.partial(kill_job, info, source="the web monitor")
    )
    await state.call(state.refresh)
    job = state.jobs.get(info.identifier)
    return JSONResponse({"message": message, "state": job["state"] if job else None})


async def not_found(request: Request, exc: Exception) -> Response:
    """Unknown address: JSON below /api/, text elsewhere."""
    status = getattr(exc, "status_code", 404)
    detail = getattr(exc, "detail", "Not Found")
    headers = getattr(exc, "headers", None)
    if request.url.path.startswith("/api/"):
        return JSONResponse(
            {"error": f"{detail}: {request.url.path}"}, status_code=status, headers=headers
        )
    return Response(
        f"{status}: {detail}\n",
        status_code=status,
        headers=headers,
        media_type="text/plain; charset=utf-8",
    )
