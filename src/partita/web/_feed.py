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
from partita.web._monitor import filtered, monitor_of


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
    state = monitor_of(websocket)
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
                await state.call(state.refresh, max_age=_monitor.REFRESH_INTERVAL)
            version = state.version
            seq, filters = view.seq, dict(view.filters)
            current = dict(state.jobs)
            if filters:
                infos = await state.call(filtered, state, filters)
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
