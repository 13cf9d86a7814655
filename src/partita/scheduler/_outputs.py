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
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from partita.workspace import OutputCursor

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
