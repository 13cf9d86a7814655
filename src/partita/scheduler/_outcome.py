"""Typed outcomes of the scheduler's steps (told apart with ``match``, not sentinels)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from partita.workspace import JobState


@dataclass(frozen=True)
class Finished:
    """The attempt (or the wait for another process's attempt) ended in a final state."""

    state: JobState
    reason: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Requeue:
    """A dependency's attempt failed after this job was queued behind it: wait again."""


@dataclass(frozen=True)
class Busy:
    """Another process holds the job lock (launching or running it)."""


@dataclass(frozen=True)
class Launched:
    """A new attempt was started; its launcher handle."""

    attempt: int
    handle: dict[str, Any]


@dataclass(frozen=True)
class Vanished:
    """The run followed in another process is gone without an outcome: look again."""


#: What one attempt of a job leads to.
Outcome = Finished | Requeue
#: What trying to launch under the job lock leads to.
LaunchResult = Launched | Finished | Busy
#: What following another process's run leads to.
FollowResult = Finished | Vanished
