"""The loop/thread bridge: one asyncio loop in a background thread, and its helpers.

Every coroutine started through :meth:`LoopThread.spawn` is tracked and its failure
reported; blocking work (file locks, file writes) runs in :meth:`LoopThread.io`, a small
thread pool, so that one contended lock never stalls the other jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import traceback
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """An event loop running in a daemon thread, with tracked tasks and an I/O pool."""

    def __init__(self, name: str = "partita-scheduler", io_workers: int = 4) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._io = ThreadPoolExecutor(max_workers=io_workers, thread_name_prefix=f"{name}-io")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> None:
        """Start the loop thread."""
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the loop thread runs."""
        return self._thread.is_alive()

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` in the loop thread (from any thread); nothing once closed."""
        try:
            self.loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            if not self.loop.is_closed():
                raise

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coroutine`` in the loop and block the calling thread for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def spawn(
        self,
        coroutine: Coroutine[Any, Any, Any],
        on_error: Callable[[BaseException, str], None],
    ) -> asyncio.Task[Any]:
        """Start a tracked task (in the loop thread); ``on_error(exc, traceback)`` if it fails."""
        task = self.loop.create_task(coroutine)
        self._tasks.add(task)

        def finished(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if t.cancelled():
                return
            exc = t.exception()
            if exc is not None:
                on_error(exc, "".join(traceback.format_exception(exc)))

        task.add_done_callback(finished)
        return task

    async def io(self, function: Callable[..., T], *args: Any) -> T:
        """Run the blocking ``function(*args)`` in the I/O pool and await its result."""
        return await self.loop.run_in_executor(self._io, function, *args)

    def close(self, before: Callable[[], Coroutine[Any, Any, None]] | None = None) -> None:
        """Run ``before()`` in the loop, cancel the tasks left, stop the loop thread."""
        if not self._thread.is_alive():
            self._io.shutdown(wait=False)
            if self._thread.ident is None:  # never started: nothing runs in the loop
                self.loop.close()
            return

        async def shutdown() -> None:
            if before is not None:
                with contextlib.suppress(Exception):
                    await before()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.run(shutdown(), timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self._io.shutdown(wait=True)
        if not self._thread.is_alive():
            # Closed here rather than by the garbage collector at interpreter exit, where
            # its self-pipe may already be gone ("Invalid file descriptor: -1").
            self.loop.close()
