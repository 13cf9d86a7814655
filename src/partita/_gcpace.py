"""Keep Python's cyclic garbage collector from rescanning every task of a large sweep.

An experiment keeps each task it submits (its config, its job record) until it ends, so
the objects the collector tracks grow with the sweep. CPython runs a full collection
whenever the objects that survived the last one have grown by a quarter: a sweep of
100,000 tasks paid a dozen full collections, each scanning everything submitted so far
(2.8 s of a 10 s re-check, ``benchmarks/``).

Once an experiment has submitted :data:`START` tasks, :class:`GcPacer` freezes
(:func:`gc.freeze`) what survives each full collection, right after it: the next one
still comes when the objects have grown by a quarter, but scans only the objects made
since, so each object is scanned about once in all (O(tasks)).

Frozen objects are still freed by reference counting; only reference cycles among
objects that were alive at a full collection and were dropped later wait until the
experiment ends, when :meth:`GcPacer.release` unfreezes everything (objects the
program froze itself are unfrozen too: a program that relies on :func:`gc.freeze` should
call it again after the experiment). Experiments of fewer than :data:`START` tasks are
not affected.
"""

from __future__ import annotations

import gc
from typing import Any

#: Submissions after which the survivors of each full collection are frozen.
START = 10_000


class GcPacer:
    """Counts an experiment's submissions; from :data:`START` on, freezes the survivors
    of each full collection (until :meth:`release`)."""

    def __init__(self) -> None:
        self._count = 0
        self._active = False

    def submitted(self) -> None:
        """One more task submitted."""
        self._count += 1
        if self._count == START and not self._active:
            self._active = True
            gc.callbacks.append(self._after)

    def _after(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "stop" and info.get("generation") == 2:
            gc.freeze()  # the survivors: live objects, not scanned by the next collections

    def release(self) -> None:
        """The experiment ends: its objects go back to the collector's care."""
        if self._active:
            self._active = False
            if self._after in gc.callbacks:
                gc.callbacks.remove(self._after)
            gc.unfreeze()
