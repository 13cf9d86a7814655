"""The monitor's shared state: the index (in its own thread), the latest snapshot, refreshes."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.websockets import WebSocket

from partita.web import _data
from partita.workspace import Index, JobInfo, JobPaths, Workspace

log = logging.getLogger("partita.web")

REFRESH_INTERVAL = 0.5
"""Seconds between two looks at the work directory."""
CHANGE_LOG = 512
"""Refreshes the change log remembers: a client further behind gets a whole snapshot."""

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
        self._results: dict[str, tuple[tuple[int, int] | None, dict[str, Any]]] = {}
        self.runs: list[dict[str, Any]] = []
        self.version = 0
        self.epoch = secrets.token_hex(8)
        """Names this monitor's versions: a client that reconnects to another process (or
        after a restart) with a version of another epoch gets a snapshot."""
        self._log: collections.deque[tuple[int, frozenset[str], bool]] = collections.deque(
            maxlen=CHANGE_LOG
        )
        self._loaded = False
        self.read = 0
        """Jobs the last refresh summarised (all of them at first, then the changed ones)."""
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
        """Refresh the index and the snapshot (index thread only); True if anything changed.

        Only the jobs the index reports changed are summarised again, and the running ones
        (their results file may have grown); the first refresh, or one after the index had
        to be opened again, summarises every job. Each refresh that changed something gets
        the next :attr:`version` and an entry in the change log (:meth:`changes_since`).
        """
        if max_age and time.monotonic() - self.refreshed < max_age:
            return False
        if self._index is None:
            index, ids = self.index(), None
        else:
            index, ids = _data.refreshed(self._index, self.workspace)
            self._index = index
        self.refreshed = time.monotonic()
        if ids is None or not self._loaded:
            infos = index.jobs()
            fresh = {info.identifier: self._summary(info) for info in infos}
            delta = {i for i in set(self.jobs) | set(fresh) if self.jobs.get(i) != fresh.get(i)}
            for gone in set(self._results) - set(fresh):
                del self._results[gone]
            jobs = fresh
            self._loaded = True
        else:
            running = {info.identifier: info for info in index.jobs(states=["running"])}
            wanted = set(ids) - set(running)
            infos = [*running.values(), *(index.jobs(ids=wanted) if wanted else [])]
            delta = set()
            jobs = self.jobs
            for info in infos:
                summary = self._summary(info)
                if jobs.get(info.identifier) != summary:
                    if jobs is self.jobs:
                        jobs = dict(jobs)  # copy on write: readers keep a consistent dict
                    jobs[info.identifier] = summary
                    delta.add(info.identifier)
            for gone in wanted - {info.identifier for info in infos}:
                self._results.pop(gone, None)
                if gone in jobs:
                    if jobs is self.jobs:
                        jobs = dict(jobs)
                    del jobs[gone]
                    delta.add(gone)
        self.read = len(infos)
        runs = [_data.run_summary(run) for run in index.runs()]
        if not delta and runs == self.runs:
            return False
        runs_changed = runs != self.runs
        self.jobs, self.runs = jobs, runs
        self.version += 1
        self._log.append((self.version, frozenset(delta), runs_changed))
        return True

    def changes_since(self, version: int) -> tuple[set[str], bool] | None:
        """Jobs that changed after ``version``, and whether the runs did (index thread only).

        ``None`` when the change log no longer reaches back that far (or ``version`` is not
        one of this monitor's): the caller sends a whole snapshot instead.
        """
        if version == self.version:
            return set(), False
        if version > self.version or not self._log or self._log[0][0] > version + 1:
            return None
        ids: set[str] = set()
        runs = False
        for number, changed, runs_changed in self._log:
            if number > version:
                ids |= changed
                runs = runs or runs_changed
        return ids, runs

    def _summary(self, info: JobInfo) -> dict[str, Any]:
        return _data.job_summary(info, self._values(info))

    def _values(self, info: JobInfo) -> dict[str, Any]:
        """The scalar results of a job, read again only when its results file changed.

        One ``stat`` per job (most have no results file); the folder is checked to be inside
        the work directory (:func:`_data.job_paths`) only before a file is read.
        """
        try:
            st = JobPaths(info.path).results.stat()
            key: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            key = None
        cached = self._results.get(info.identifier)
        if cached is not None and cached[0] == key:
            return cached[1]
        values: dict[str, Any] = {}
        if key is not None:
            try:
                paths = _data.job_paths(self.workspace, info)
            except _data.NotFound:
                return {}
            values = _data.result_values(_data.job_results(paths)["values"])
        self._results[info.identifier] = (key, values)
        return values

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


def monitor_of(request: Request | WebSocket) -> MonitorState:
    """The monitor state of the application serving ``request``."""
    state: MonitorState = request.app.state.monitor
    return state


def filtered(state: MonitorState, filters: dict[str, Any]) -> list[JobInfo]:
    """Jobs matching ``filters`` (index thread only)."""
    return state.index().jobs(**filters)
