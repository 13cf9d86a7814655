"""``on_completed`` and ``watch_output`` callbacks: one at a time in a thread, errors kept."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from partita.scheduler._job import Job, Record


class Callbacks:
    """Runs the callbacks of finished jobs off the loop thread, counting those pending.

    ``idle`` is the scheduler's condition: ``pending`` changes under it, and it is notified
    when a callback ends, so that waiting for the experiment to settle includes them.
    """

    def __init__(self, idle: threading.Condition) -> None:
        self._idle = idle
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="partita-cb")
        #: Callbacks submitted and not yet ended (read under ``idle``).
        self.pending = 0
        #: What the callbacks that raised said, in order.
        self.errors: list[str] = []

    def run(self, rec: Record, callbacks: list[Callable[[Job], Any]]) -> None:
        """Call each of ``callbacks`` with the job of ``rec``, in order, in the thread."""
        with self._idle:
            self.pending += len(callbacks)

        def call(callback: Callable[[Job], Any]) -> None:
            try:
                callback(rec.job)
            except BaseException:
                self.errors.append(
                    f"on_completed callback {getattr(callback, '__qualname__', callback)!r} "
                    f"of {rec.name} raised:\n{traceback.format_exc()}"
                )
            finally:
                with self._idle:
                    self.pending -= 1
                    self._idle.notify_all()

        for callback in callbacks:
            self._executor.submit(call, callback)

    def call(self, what: str, function: Callable[[], Any]) -> None:
        """Call ``function()`` in the thread, after those queued; ``what`` names it in errors."""
        with self._idle:
            self.pending += 1

        def call() -> None:
            try:
                function()
            except BaseException:
                self.errors.append(f"{what} raised:\n{traceback.format_exc()}")
            finally:
                with self._idle:
                    self.pending -= 1
                    self._idle.notify_all()

        self._executor.submit(call)

    def shutdown(self) -> None:
        """Wait for the callbacks submitted, then stop the thread."""
        self._executor.shutdown(wait=True)
