"""``ResumableTask``: a task that keeps its folder across attempts and can checkpoint."""

from __future__ import annotations

import os
import time

from partita.config import Task


def _slurm_deadline(job_id: str) -> str | None:
    """When Slurm will stop this job (epoch seconds), asked once to ``squeue``."""
    import subprocess

    try:
        out = subprocess.run(
            ["squeue", "-h", "-j", job_id, "-o", "%L"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    seconds = _parse_left(out)
    return None if seconds is None else str(time.time() + seconds)


def _parse_left(text: str) -> float | None:
    """Seconds from squeue's time left: ``D-HH:MM:SS``, ``HH:MM:SS``, ``MM:SS``."""
    if not text or text in ("UNLIMITED", "NOT_SET", "INVALID"):
        return None
    days = 0
    if "-" in text:
        head, text = text.split("-", 1)
        days = int(head)
    try:
        parts = [int(p) for p in text.split(":")]
    except ValueError:
        return None
    while len(parts) < 3:
        parts.insert(0, 0)
    hours, minutes, seconds = parts[-3:]
    return float(days * 86400 + hours * 3600 + minutes * 60 + seconds)


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
        if not deadline and os.environ.get("SLURM_JOB_ID"):
            deadline = _slurm_deadline(os.environ["SLURM_JOB_ID"])
            if deadline:
                os.environ["PARTITA_DEADLINE"] = deadline
        if not deadline:
            return None
        return max(0.0, float(deadline) - time.time())

    @property
    def attempt(self) -> int:
        """Which attempt this is (1 for the first run)."""
        return int(os.environ.get("PARTITA_ATTEMPT", "1"))
