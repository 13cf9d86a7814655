"""``Stopping``: what a task sees when its job is asked to stop (cancel, kill, time limit).

The job runner (:mod:`partita.run`) raises :class:`Stopping` inside ``execute()`` on the
first SIGTERM, SIGINT or SIGUSR1 the job receives. A task may catch it to save a
checkpoint; whatever it does then, the job is not recorded as done (see docs/workspace.md,
"Stopping: a task can checkpoint"). The job runner imports this module: it imports
nothing of partita.
"""

from __future__ import annotations

import os
import signal
import time

__all__ = ["Stopping", "remaining_time"]


class Stopping(BaseException):
    """The job was asked to stop: raised inside ``execute()`` on SIGTERM (or SIGINT, SIGUSR1).

    It derives from ``BaseException`` (like ``KeyboardInterrupt``) so that an
    ``except Exception`` in a task does not swallow it. Catch it to checkpoint::

        try:
            train(...)
        except partita.Stopping as stop:
            save_checkpoint()   # stop.remaining: seconds left, or None
            raise

    Only the first signal raises it; later ones are ignored, so a checkpoint being written
    is not interrupted (the launcher still ends the process by force after its grace
    period). A task that catches it and returns normally is still not done: the job is
    recorded as cancelled (on request) or failed, and its next attempt runs again.
    """

    signum: int
    """The signal that stopped the job (``signal.SIGTERM``, ...)."""
    remaining: float | None
    """Seconds left before the job is stopped by force, or ``None`` when unknown."""

    def __init__(self, signum: int, remaining: float | None) -> None:
        super().__init__(signum, remaining)
        self.signum = signum
        self.remaining = remaining

    @property
    def signal_name(self) -> str:
        """The signal's name, e.g. ``"SIGTERM"``."""
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"

    def __str__(self) -> str:
        left = "unknown" if self.remaining is None else f"{self.remaining:.1f} s"
        return f"the job was asked to stop ({self.signal_name}); time left: {left}"


#: Environment variables holding an epoch time at which the job is stopped by force, best
#: first: the local launcher's kill time after a time limit, the time limit itself (local
#: launcher, or computed by the runner from PARTITA_TIME_LIMIT), Slurm's end time.
_DEADLINES = ("PARTITA_KILL_AT", "PARTITA_DEADLINE", "SLURM_JOB_END_TIME")


def remaining_time(now: float | None = None) -> float | None:
    """Seconds left before this job is stopped by force, from the environment (or ``None``)."""
    for name in _DEADLINES:
        text = os.environ.get(name)
        if not text:
            continue
        try:
            deadline = float(text)
        except ValueError:
            continue
        return max(0.0, deadline - (time.time() if now is None else now))
    return None
