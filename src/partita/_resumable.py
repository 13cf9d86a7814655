"""``ResumableTask``: a task that keeps its folder across attempts and can checkpoint."""

from __future__ import annotations

import os
import time

from partita.config import Task


class ResumableTask(Task):
    """A task that may be stopped (time limit, preemption, lost node) and continued.

    The contract:

    - Its job folder is kept as it is between attempts: ``execute()`` should look for its
      own checkpoint (e.g. ``self.jobdir / "checkpoint.pt"``) and continue from it.
      (A plain ``Task`` instead finds a clean folder: files of a failed attempt are moved
      to ``.attempts/<n>/``.)
    - Its logs are appended to, not replaced.
    - It is retried by default on ``timeout``, ``preempted``, ``lost`` and ``node_fail``
      (3 times; change with ``submit(retries=Retry(...))``).
    - :meth:`remaining_time` tells how long the current attempt may still run, so it can
      save a checkpoint before being stopped.
    """

    def remaining_time(self) -> float | None:
        """Seconds left before the launcher stops this attempt (``None``: no limit known)."""
        deadline = os.environ.get("PARTITA_DEADLINE")
        if not deadline:
            end = os.environ.get("SLURM_JOB_END_TIME")
            if not end:
                return None
            deadline = end
        return max(0.0, float(deadline) - time.time())

    @property
    def attempt(self) -> int:
        """Which attempt this is (1 for the first run)."""
        return int(os.environ.get("PARTITA_ATTEMPT", "1"))
