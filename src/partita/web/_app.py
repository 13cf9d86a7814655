"""The monitor's Starlette application: its routes, guard and lifespan put together.

The parts live beside it: ``_monitor`` (shared state and refreshes), ``_guard`` (token,
CSRF, Host), ``_api`` (pages and JSON API) and ``_feed`` (the WebSocket feed).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Iterable

from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from partita.web._api import (
    STATIC,
    api_experiments,
    api_info,
    api_job,
    api_jobs,
    api_kill,
    api_log,
    api_results,
    api_run,
    not_found,
    page,
    vendor_plotly,
)
from partita.web._feed import feed
from partita.web._guard import CSRF_HEADER, Guard, HostCheck
from partita.web._monitor import REFRESH_INTERVAL, MonitorState
from partita.workspace import Workspace

GZIP_LEVEL = 6
"""Compression level of HTTP answers (gzip)."""


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
        Route("/compare", page),
        Route("/api/info", api_info),
        Route("/api/experiments", api_experiments),
        Route("/api/experiments/{name}/runs/{run}", api_run),
        Route("/api/jobs", api_jobs),
        Route("/api/jobs/{ident}", api_job),
        Route("/api/jobs/{ident}/log", api_log),
        Route("/api/jobs/{ident}/results", api_results),
        Route("/api/jobs/{ident}/kill", api_kill, methods=["POST"]),
        WebSocketRoute("/ws", feed),
        Route("/static/vendor/plotly.min.js", vendor_plotly),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={404: not_found, 405: not_found}
    )
    app.state.monitor = state
    # JSON answers (the job list of a large work directory is megabytes) and the charting
    # library travel gzipped to clients that accept it; level 6: 9 costs twice the time for
    # a few percent. (The WebSocket feed is compressed by the server: permessage-deflate.)
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=GZIP_LEVEL)
    app.add_middleware(Guard, state=state, hosts=None if hosts is None else HostCheck(hosts))
    return app


__all__ = ["CSRF_HEADER", "REFRESH_INTERVAL", "HostCheck", "MonitorState", "create_app"]
