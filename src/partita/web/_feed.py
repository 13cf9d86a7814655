"""The monitor's WebSocket feed: a snapshot of the jobs, then what changed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect

from partita.web import _data, _monitor
from partita.web._data import BadRequest
from partita.web._monitor import MonitorState, filtered, monitor_of

FIRST_MESSAGE_WAIT = 2.0
"""Seconds a new connection waits for the client's first message before its snapshot."""


class _FeedView:
    """What one WebSocket client asked to see, and what it was last sent."""

    def __init__(self) -> None:
        self.filters: dict[str, Any] = {}
        self.seq = 0
        self.restart = asyncio.Event()
        self.resume: tuple[str, int] | None = None
        """``(epoch, version)`` of what the client already has, to send it only what changed."""
        self.shown: set[str] | None = None
        """Jobs the client was sent under the current filter (``None``: not known)."""

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
        epoch, version = data.get("epoch"), data.get("version")
        resumable = isinstance(epoch, str) and isinstance(version, int) and not problems
        self.resume = (epoch, version) if resumable else None  # type: ignore[assignment]
        self.filters = new
        self.restart.set()
        return problems

    def resync(self) -> None:
        """The client lost track: send it a whole snapshot."""
        self.resume = None
        self.restart.set()


def compose(
    state: MonitorState, view: _FeedView, since: int | None, resume: tuple[str, int] | None
) -> tuple[str | None, int]:
    """The next message for ``view`` (index thread only) and the version it brings it to.

    ``since``: the version the client was last brought to on this connection (``None``: it
    has nothing yet, or asked to start again). A client that has nothing but says what it
    had before (``resume``, after a reconnect) gets only what changed since, when the change
    log reaches back that far and the epoch is this monitor's; otherwise a ``snapshot``.
    ``None`` when there is nothing to send.
    """
    resumed = False
    if since is None and resume is not None and resume[0] == state.epoch:
        since, resumed = resume[1], True
        view.shown = None
    changes = None if since is None else state.changes_since(since)
    filters = dict(view.filters)
    message: dict[str, Any]
    jobs = state.jobs
    if changes is None:
        if filters:
            matching = {info.identifier for info in filtered(state, filters)}
            current = [job for i, job in jobs.items() if i in matching]
        else:
            current = list(jobs.values())
        view.shown = {job["id"] for job in current}
        message = {"type": "snapshot", "jobs": current, "runs": state.runs}
    else:
        ids, runs_changed = changes
        present = sorted(i for i in ids if i in jobs)
        if filters and present:
            wanted = {info.identifier for info in filtered(state, {**filters, "ids": present})}
        else:
            wanted = set(present) if not filters else set()
        shown = view.shown
        changed = [jobs[i] for i in present if i in wanted]
        removed = sorted(i for i in ids if i not in wanted and (shown is None or i in shown))
        if shown is not None:
            shown.difference_update(removed)
            shown.update(wanted)
        if not changed and not removed and not runs_changed and not resumed:
            return None, state.version
        message = {"type": "update", "since": since, "changed": changed, "removed": removed}
        if runs_changed:
            message["runs"] = state.runs
    message.update(now=time.time(), version=state.version, epoch=state.epoch, seq=view.seq)
    return json.dumps(message), state.version


async def feed(websocket: WebSocket) -> None:
    """Live job list: a ``snapshot``, then ``update`` messages with only what changed.

    Every message carries the monitor's ``epoch`` and the ``version`` it brings the client
    to; an ``update`` also says which version it starts from (``since``), and carries the
    jobs that changed (``changed``) and those gone or no longer matching (``removed``).
    The client may send ``{"type": "filter", "seq", "task", "experiment", "tags": ["k=v"]}``
    (the feed then carries only matching jobs; states are filtered by the page itself),
    with ``"epoch"`` and ``"version"`` of what it already has when it reconnects, and
    ``{"type": "resync"}`` when it lost track (it then gets a snapshot).
    """
    state = monitor_of(websocket)
    await websocket.accept()
    view = _FeedView()

    async def sender() -> None:
        version = -1
        since: int | None = None
        resume: tuple[str, int] | None = None
        # A page sends its filter (and what it holds, after a reconnect) at once: wait for
        # it rather than send a snapshot it may not need.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(view.restart.wait(), FIRST_MESSAGE_WAIT)
        while True:
            await state.wait_change(version, 30.0, view.restart)
            if view.restart.is_set():
                view.restart.clear()
                since, resume = None, view.resume
            if since is None:
                await state.call(state.refresh, max_age=_monitor.REFRESH_INTERVAL)
            text, version = await state.call(compose, state, view, since, resume)
            since, resume = version, None
            if text is not None:
                await websocket.send_text(text)

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
            if not isinstance(data, dict):
                continue
            if data.get("type") == "resync":
                view.resync()
                continue
            if data.get("type") != "filter":
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
