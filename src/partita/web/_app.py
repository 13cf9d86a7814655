"""The monitor's Starlette application: pages, JSON API, WebSocket feed, and their guard."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import anyio
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from partita._version import __version__
from partita.web import _data
from partita.web._data import BadRequest, NotFound
from partita.workspace import Index, JobInfo, RunPaths, Workspace, read_environment, read_run

log = logging.getLogger("partita.web")

STATIC = Path(__file__).parent / "static"
REFRESH_INTERVAL = 0.5
"""Seconds between two looks at the work directory."""
CSRF_HEADER = "x-partita-csrf"

T = TypeVar("T")


class MonitorState:
    """What the application shares between requests: the index and the latest snapshot.

    The SQLite index is used from one dedicated thread only (``call``); the event loop never
    blocks on it. ``version`` grows whenever a refresh found a change; WebSocket clients
    wait on ``changed``.
    """

    def __init__(self, workspace: Workspace, token: str) -> None:
        self.workspace = workspace
        self.token = token
        digest = hashlib.sha256(token.encode()).hexdigest()
        # Cookies ignore ports: a name of its own per monitor lets several run side by side.
        self.cookie = f"partita-{digest[:10]}"
        self.csrf = hmac.new(token.encode(), b"partita-csrf", hashlib.sha256).hexdigest()
        self._executor: ThreadPoolExecutor | None = None
        self._index: Index | None = None
        self.jobs: dict[str, dict[str, Any]] = {}
        self.runs: list[dict[str, Any]] = []
        self.version = 0
        self.refreshed = 0.0
        self._notified = 0
        self._changed: asyncio.Event | None = None
        self.clients = 0
        """Open WebSocket connections (the watcher reads the files only while there are some)."""

    # --- the index thread --------------------------------------------------------------------

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` in the index thread."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="partita-monitor-index")
        result = await asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(fn, *args, **kwargs)
        )
        self._notify()
        return result

    def index(self) -> Index:
        """The index (index thread only)."""
        if self._index is None:
            self._index = _data.open_index(self.workspace)
        return self._index

    def refresh(self, *, max_age: float = 0.0) -> bool:
        """Refresh the index and the snapshot (index thread only); True if anything changed."""
        if max_age and time.monotonic() - self.refreshed < max_age:
            return False
        index = self._index = _data.refreshed(self.index(), self.workspace)
        self.refreshed = time.monotonic()
        jobs = {info.identifier: _data.job_summary(info) for info in index.jobs()}
        runs = [_data.run_summary(run) for run in index.runs()]
        if jobs == self.jobs and runs == self.runs:
            return False
        self.jobs, self.runs = jobs, runs
        self.version += 1
        return True

    def close(self) -> None:
        """Close the index and stop its thread."""
        if self._executor is not None:
            with contextlib.suppress(Exception):
                self._executor.submit(self._close_index).result(timeout=10)
            self._executor.shutdown(wait=False)
            self._executor = None

    def _close_index(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None

    # --- change notification (event loop) -------------------------------------------------------

    def _event(self) -> asyncio.Event:
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def _notify(self) -> None:
        if self.version != self._notified:
            self._notified = self.version
            event, self._changed = self._event(), asyncio.Event()
            event.set()

    async def wait_change(self, version: int, timeout: float, wake: asyncio.Event) -> None:
        """Return once ``version`` is out of date, ``wake`` is set, or after ``timeout`` s."""
        if self.version != version or wake.is_set():
            return
        waiters = {asyncio.ensure_future(self._event().wait()), asyncio.ensure_future(wake.wait())}
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def watch(self) -> None:
        """While a live page is open, refresh every :data:`REFRESH_INTERVAL` seconds.

        A refresh of a very large work directory can take a while: the pause is then twice
        its duration, so that the monitor never keeps a core busy. Without any open page
        nothing is read (API requests refresh what they need themselves).
        """
        failure = None
        while True:
            pause = REFRESH_INTERVAL
            if self.clients:
                started = time.monotonic()
                try:
                    await self.call(self.refresh)
                    failure = None
                except Exception as exc:
                    if repr(exc) != failure:  # say it once, not twice a second
                        failure = repr(exc)
                        log.exception("partita monitor: reading the work directory failed")
                pause = max(pause, 2 * (time.monotonic() - started))
            await asyncio.sleep(pause)


# --- the guard: token, cookie, CSRF, headers -----------------------------------------------------


class Guard:
    """ASGI middleware: nothing passes without the token; unsafe methods also need CSRF.

    The token is accepted from ``?token=`` or from the monitor's cookie. A page opened
    with ``?token=`` sets the cookie (HttpOnly, SameSite=Strict) and redirects to the same
    address without the token, so it does not linger in the address bar or history.
    """

    def __init__(self, app: ASGIApp, state: MonitorState, hosts: HostCheck | None) -> None:
        self.app = app
        self.state = state
        self.hosts = hosts

    def _valid(self, candidate: str | None) -> bool:
        return candidate is not None and hmac.compare_digest(
            candidate.encode(), self.state.token.encode()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if self.hosts is not None and not self.hosts.accepts(headers.get("host")):
            # DNS rebinding: a page of another site whose name now points at this machine.
            refusal = self.hosts.refusal(headers.get("host"))
            if kind == "websocket":
                await self._refuse_websocket(receive, send, scope, refusal, 421)
            else:
                await _plain(421, refusal, scope, receive, send)
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"))
        from_query = next((v for k, v in query if k == "token"), None)
        cookies = SimpleCookie()
        with contextlib.suppress(Exception):
            cookies.load(headers.get("cookie", ""))
        morsel = cookies.get(self.state.cookie)
        from_cookie = morsel.value if morsel is not None else None
        authorised = self._valid(from_query) or self._valid(from_cookie)
        if kind == "websocket":
            await self._websocket(scope, receive, send, headers, authorised)
            return
        if not authorised:
            await _plain(401, _UNAUTHORISED, scope, receive, send)
            return
        method = scope["method"]
        path: str = scope["path"]
        if method not in ("GET", "HEAD", "OPTIONS"):
            problem = self._csrf_problem(headers)
            if problem:
                await _plain(403, problem, scope, receive, send, json_body=True)
                return
        if (
            self._valid(from_query)
            and method == "GET"
            and not path.startswith(("/api/", "/static/"))
        ):
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            # One leading slash only: "//host/x" would send the browser elsewhere.
            location = "/" + path.lstrip("/\\") + (f"?{rest}" if rest else "")
            response = Response(status_code=303, headers={"location": location})
            self._set_cookie(response)
            await response(scope, receive, _secure(send))
            return
        await self.app(scope, receive, _secure(send))

    def _set_cookie(self, response: Response) -> None:
        response.set_cookie(
            self.state.cookie, self.state.token, httponly=True, samesite="strict", path="/"
        )

    def _csrf_problem(self, headers: Headers) -> str | None:
        given = headers.get(CSRF_HEADER)
        if given is None or not hmac.compare_digest(given.encode(), self.state.csrf.encode()):
            return (
                f"missing or wrong {CSRF_HEADER} header: state-changing requests need "
                "the CSRF token given by GET /api/info."
            )
        return _origin_problem(headers)

    async def _websocket(
        self, scope: Scope, receive: Receive, send: Send, headers: Headers, authorised: bool
    ) -> None:
        problem = None if authorised else _UNAUTHORISED
        status = 401
        if problem is None:
            problem, status = _origin_problem(headers), 403
        if problem is None:
            await self.app(scope, receive, send)
            return
        await self._refuse_websocket(receive, send, scope, problem, status)

    @staticmethod
    async def _refuse_websocket(
        receive: Receive, send: Send, scope: Scope, problem: str, status: int
    ) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if "websocket.http.response" in scope.get("extensions", {}):
            body = problem.encode()
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008, "reason": problem[:100]})


class HostCheck:
    """The host names a monitor answers to (the ``Host`` header), to resist DNS rebinding.

    ``names`` are host names or addresses, compared without the port. A wildcard address
    (``0.0.0.0``, ``::``) among them also accepts any IP address literal: a rebinding page
    needs a DNS name, never an address.
    """

    _WILDCARDS = frozenset({"0.0.0.0", "::", ""})

    def __init__(self, names: Iterable[str]) -> None:
        given = {_host_name(n) for n in names}
        self.any_address = bool(given & self._WILDCARDS)
        self.names = frozenset(given - self._WILDCARDS)

    def accepts(self, header: str | None) -> bool:
        """Whether a request with this ``Host`` header is for this monitor."""
        if not header:
            return False
        name = _host_name(header, with_port=True)
        if name in self.names:
            return True
        if self.any_address:
            try:
                ipaddress.ip_address(name)
            except ValueError:
                return False
            return True
        return False

    def refusal(self, header: str | None) -> str:
        """The message of a refused request."""
        names = ", ".join(sorted(self.names)) + (", or an IP address" if self.any_address else "")
        return (
            f"421: this partita monitor answers to {names}; the request named {header!r} "
            "(Host header). Open the address the monitor printed.\n"
        )


def _host_name(text: str, *, with_port: bool = False) -> str:
    """``Localhost.:8080`` → ``localhost``; ``[::1]:8080`` → ``::1``."""
    text = text.strip().lower()
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif with_port and text.count(":") == 1:
        text = text.split(":", 1)[0]
    return text.rstrip(".")


_UNAUTHORISED = (
    "401: this partita monitor needs its access token. Open the address it printed "
    "(http://127.0.0.1:PORT/?token=...), or pass ?token= with each request.\n"
)


def _origin_problem(headers: Headers) -> str | None:
    """A browser request from another origin (Origin, or Sec-Fetch-Site) is refused."""
    origin = headers.get("origin")
    host = headers.get("host", "")
    if origin is not None:
        if origin == "null" or urlsplit(origin).netloc.lower() != host.lower():
            return f"cross-origin request refused (Origin {origin} is not http://{host})."
        return None
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return f"cross-site request refused (Sec-Fetch-Site: {site})."
    return None


_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
]


def _secure(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            names = {name.lower() for name, _ in message.get("headers", [])}
            extra = [(n, v) for n, v in _SECURITY_HEADERS if n not in names]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return wrapped


async def _plain(
    status: int, text: str, scope: Scope, receive: Receive, send: Send, json_body: bool = False
) -> None:
    if json_body or scope["path"].startswith("/api/"):
        response: Response = JSONResponse({"error": text.strip()}, status_code=status)
    else:
        response = Response(text, status_code=status, media_type="text/plain; charset=utf-8")
    await response(scope, receive, _secure(send))


# --- endpoints --------------------------------------------------------------------------------


def _state(request: Request | WebSocket) -> MonitorState:
    state: MonitorState = request.app.state.monitor
    return state


def _error(exc: Exception) -> JSONResponse:
    status = 404 if isinstance(exc, NotFound) else 400
    return JSONResponse({"error": str(exc)}, status_code=status)


async def page(request: Request) -> Response:
    """Every page is the same document; the script draws the page the address names."""
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


async def api_info(request: Request) -> Response:
    """The work directory, the CSRF token for POSTs, versions."""
    state = _state(request)
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
    state = _state(request)
    await state.call(state.refresh, max_age=REFRESH_INTERVAL)
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
    state = _state(request)
    name, run = request.path_params["name"], request.path_params["run"]
    if not _data.valid_name(name) or not _data.valid_name(run):
        return _error(NotFound(f"no run {name}/{run}."))

    def collect() -> dict[str, Any]:
        state.refresh(max_age=REFRESH_INTERVAL)
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


def _filtered(state: MonitorState, filters: dict[str, Any]) -> list[JobInfo]:
    """Jobs matching ``filters`` (index thread only)."""
    return state.index().jobs(**filters)


async def api_jobs(request: Request) -> Response:
    """Jobs, filtered like ``partita jobs list``; ``counts`` ignores the state filter."""
    state = _state(request)
    try:
        filters = _job_filters(request)
    except BadRequest as exc:
        return _error(exc)
    wanted = set(filters["states"])

    def collect() -> list[JobInfo]:
        state.refresh(max_age=REFRESH_INTERVAL)
        return _filtered(state, {**filters, "states": ()})

    infos = await state.call(collect)
    counts: dict[str, int] = {}
    for info in infos:
        counts[info.state] = counts.get(info.state, 0) + 1
    jobs = [_data.job_summary(i) for i in infos if not wanted or i.state in wanted]
    return JSONResponse({"jobs": jobs, "counts": counts, "total": len(infos)})


async def api_job(request: Request) -> Response:
    """One job: params, tags, state and history, dependencies, paths."""
    state = _state(request)

    def collect() -> dict[str, Any]:
        state.refresh(max_age=REFRESH_INTERVAL)
        info = _data.lookup(state.index(), request.path_params["ident"])
        return _data.job_detail(state.workspace, info, state.jobs)

    try:
        return JSONResponse(await state.call(collect))
    except (NotFound, BadRequest) as exc:
        return _error(exc)


async def api_log(request: Request) -> Response:
    """``?stream=stdout|stderr&offset=N`` → ``{content, start, offset, size}``."""
    state = _state(request)
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
    state = _state(request)

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


class _FeedView:
    """What one WebSocket client asked to see."""

    def __init__(self) -> None:
        self.filters: dict[str, Any] = {}
        self.seq = 0
        self.restart = asyncio.Event()

    def set_filter(self, data: dict[str, Any]) -> list[str]:
        """Apply a filter message; returns the problems of the tags it had to ignore."""
        new: dict[str, Any] = {}
        problems = []
        for key in ("task", "experiment"):
            value = data.get(key)
            if isinstance(value, str) and value.strip():
                new[key] = value.strip()
        tags = data.get("tags")
        if isinstance(tags, list):
            parsed = {}
            for text in tags:
                if not isinstance(text, str) or not text.strip():
                    continue
                try:
                    name, value = _data.parse_tag(text)
                except BadRequest as exc:
                    problems.append(str(exc))
                    continue
                parsed[name] = value
            if parsed:
                new["tags"] = parsed
        seq = data.get("seq")
        self.seq = seq if isinstance(seq, int) else self.seq + 1
        self.filters = new
        self.restart.set()
        return problems


async def feed(websocket: WebSocket) -> None:
    """Live job list: a ``snapshot``, then ``update`` messages with what changed.

    The client may send ``{"type": "filter", "task", "experiment", "tags": ["k=v"]}``;
    the feed then carries only matching jobs (states are filtered by the page itself).
    """
    state = _state(websocket)
    await websocket.accept()
    view = _FeedView()

    async def sender() -> None:
        sent: dict[str, dict[str, Any]] = {}
        runs: list[dict[str, Any]] | None = None
        version = -1
        first = True
        while True:
            await state.wait_change(version, 30.0, view.restart)
            if view.restart.is_set():
                view.restart.clear()
                first = True
            if first:
                await state.call(state.refresh, max_age=REFRESH_INTERVAL)
            version = state.version
            seq, filters = view.seq, dict(view.filters)
            current = dict(state.jobs)
            if filters:
                infos = await state.call(_filtered, state, filters)
                current = {
                    i.identifier: current[i.identifier] for i in infos if i.identifier in current
                }
            message: dict[str, Any]
            if first:
                message = {"type": "snapshot", "jobs": list(current.values()), "runs": state.runs}
                first = False
            else:
                changed = [j for i, j in current.items() if sent.get(i) != j]
                removed = [i for i in sent if i not in current]
                message = {"type": "update", "changed": changed, "removed": removed}
                if state.runs != runs:
                    message["runs"] = state.runs
                if not changed and not removed and "runs" not in message:
                    continue
            message.update(now=time.time(), version=version, seq=seq)
            sent, runs = current, state.runs
            await websocket.send_text(json.dumps(message))

    async def receiver() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if not isinstance(text, str) or len(text) > 65536:
                continue
            try:
                data = json.loads(text)
            except ValueError:
                continue
            if not isinstance(data, dict) or data.get("type") != "filter":
                continue
            for problem in view.set_filter(data):
                await websocket.send_text(json.dumps({"type": "error", "error": problem}))

    state.clients += 1
    try:
        async with anyio.create_task_group() as group:

            async def run_receiver() -> None:
                with contextlib.suppress(WebSocketDisconnect):
                    await receiver()
                group.cancel_scope.cancel()

            group.start_soon(run_receiver)
            group.start_soon(sender)
    except* (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        state.clients -= 1


def create_app(
    workdir: str | os.PathLike[str],
    *,
    token: str | None = None,
    hosts: Iterable[str] | None = None,
) -> Starlette:
    """The monitor application for ``workdir``; every request needs ``token``.

    Without ``token`` a random one is drawn (``app.state.monitor.token``). With ``hosts``,
    only requests whose ``Host`` header names one of them are answered (others get 421;
    see :class:`HostCheck`); the servers of :mod:`partita.web` always pass the names of
    the address they listen on.
    """
    workspace = Workspace(workdir, create=False)
    state = MonitorState(workspace, token or secrets.token_urlsafe(24))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        watcher = asyncio.create_task(state.watch())
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            state.close()

    routes = [
        Route("/", page),
        Route("/experiments", page),
        Route("/experiments/{name}/{run}", page),
        Route("/jobs/{ident}", page),
        Route("/api/info", api_info),
        Route("/api/experiments", api_experiments),
        Route("/api/experiments/{name}/runs/{run}", api_run),
        Route("/api/jobs", api_jobs),
        Route("/api/jobs/{ident}", api_job),
        Route("/api/jobs/{ident}/log", api_log),
        Route("/api/jobs/{ident}/kill", api_kill, methods=["POST"]),
        WebSocketRoute("/ws", feed),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={404: not_found, 405: not_found}
    )
    app.state.monitor = state
    app.add_middleware(Guard, state=state, hosts=None if hosts is None else HostCheck(hosts))
    return app


__all__ = ["HostCheck", "MonitorState", "create_app"]
