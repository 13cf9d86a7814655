"""Watching the live outputs of a job: ``job.watch_output("checkpoint", callback)``.

One coroutine per watch, on the scheduler's loop. It reads what the job appended to its
outputs record (in the I/O pool, from where it stopped: one ``fstat`` when nothing is new)
and hands each new output of the watched name to the callback thread, in order. Between
looks it waits for the job to end, at most ``delay`` seconds: 50 ms after an output,
growing to :data:`MAX_DELAY` while the job is quiet, the way the scheduler follows a job
run by another process. When the job is final it reads once more and ends, so nothing
published before the end is missed; the experiment waits for every watch to end.

Each output is delivered once per watch: an output is named by its content (``key``), so
one published again (a retried attempt publishing the same checkpoint) is not delivered
twice. A job already done when it is watched delivers everything it published, at once:
that is how a run of an experiment replays the outputs seen by an earlier run.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from partita.errors import ExperimentError
from partita.workspace import OutputCursor

if TYPE_CHECKING:
    from partita.scheduler._bridge import LoopThread
    from partita.scheduler._callbacks import Callbacks
    from partita.scheduler._job import Job, Record

#: Longest wait (seconds) between two looks at a quiet job's outputs.
MAX_DELAY = 1.0
#: Wait after a look that found something new.
MIN_DELAY = 0.05


async def watch(
    cursor: OutputCursor,
    name: str,
    read: Callable[[OutputCursor], Awaitable[list[dict[str, Any]]]],
    is_final: Callable[[], bool],
    ended: asyncio.Future[None],
    deliver: Callable[[dict[str, Any]], None],
) -> None:
    """Deliver each new output ``name`` of the job until the job is final (then once more)."""
    seen: set[str] = set()
    delay = MIN_DELAY
    while True:
        final = is_final()
        entries = await read(cursor)
        for entry in entries:
            if entry["name"] != name or entry["key"] in seen:
                continue
            seen.add(entry["key"])
            deliver(entry)
        if final:
            return
        if not ended.done():
            await asyncio.wait([ended], timeout=delay)
        delay = MIN_DELAY if entries else min(delay * 1.5, MAX_DELAY)


def output_value(entry: dict[str, Any], workspace: Path) -> Any:
    """The value an output entry holds: its config rebuilt (frozen), or its JSON value."""
    if "config" in entry:
        from partita.config._serial import from_document

        return from_document(entry["config"], workspace=workspace, source="outputs")
    return entry.get("value")


class OutputWatches:
    """The output watches of one scheduler: started from any thread, run on its loop.

    ``open`` counts the watches not ended yet (read under ``idle``, which is notified when
    one ends): the scheduler's ``wait_idle`` waits for them. A job's ``on_completed``
    callbacks wait for its last watch (:meth:`defer`), so they come after the callbacks
    of every output it published.
    """

    def __init__(
        self,
        bridge: LoopThread,
        callbacks: Callbacks,
        idle: threading.Condition,
        final_future: Callable[[Record], asyncio.Future[None]],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        self._bridge = bridge
        self._callbacks = callbacks
        self._idle = idle
        self._final_future = final_future
        self._spawn = spawn
        self.open = 0

    def watch(self, rec: Record, name: str, callback: Callable[[dict[str, Any]], None]) -> None:
        """Call ``callback(entry)`` (callback thread) for each output ``name`` of ``rec``."""
        if not self._bridge.alive:
            raise ExperimentError(
                f"watch_output({name!r}): the experiment that ran {rec.name} has ended, so "
                "nothing watches it any more. Read what it published with job.outputs()."
            )
        with self._idle:
            self.open += 1
        with rec.lock:
            rec.watches += 1
        try:
            self._bridge.call_soon(self._start, rec, name, callback)
        except BaseException:
            self._ended(rec)
            raise

    def defer(self, rec: Record, callbacks: list[Callable[[Job], Any]]) -> bool:
        """Keep ``rec``'s ``on_completed`` callbacks until its last watch ends (if any)."""
        with rec.lock:
            if not rec.watches:
                return False
            rec.deferred.extend(callbacks)
            return True

    def _start(self, rec: Record, name: str, callback: Callable[[dict[str, Any]], None]) -> None:
        async def read(cursor: OutputCursor) -> list[dict[str, Any]]:
            return await self._bridge.io(cursor.read_new)

        def deliver(entry: dict[str, Any]) -> None:
            label = f"watch_output({name!r}) callback of {rec.name} (output {entry['seq']})"
            self._callbacks.call(label, lambda: callback(entry))

        async def run() -> None:
            try:
                cursor = OutputCursor(rec.paths)
                ended = self._final_future(rec)
                await watch(cursor, name, read, lambda: rec.state.final, ended, deliver)
            finally:
                self._ended(rec)

        self._spawn(run())

    def _ended(self, rec: Record) -> None:
        with rec.lock:
            rec.watches -= 1
            deferred = rec.deferred if rec.watches == 0 else []
            if deferred:
                rec.deferred = []
        if deferred:
            self._callbacks.run(rec, deferred)
        with self._idle:
            self.open -= 1
            self._idle.notify_all()
