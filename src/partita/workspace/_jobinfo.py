"""What partita knows about one job or run, read from its files (no index needed)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from partita.workspace._paths import JobPaths
from partita.workspace._status import read_progress, read_status


@dataclass
class JobInfo:
    """What the files say about one job (see ``partita jobs show``)."""

    identifier: str
    type_id: str
    path: Path
    state: str
    """``waiting`` (never launched), ``running``, ``done``, ``failed``, ``cancelled``, or
    ``damaged`` (no final marker, and ``state.json`` cannot be read: see ``damage``)."""
    reason: str | None = None
    detail: str | None = None
    attempt: int | None = None
    submitted: float | None = None
    started: float | None = None
    ended: float | None = None
    launcher: dict[str, Any] | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    progress: float | None = None
    message: str | None = None
    experiments: list[str] = field(default_factory=list)
    depends: list[str] = field(default_factory=list)
    damage: list[str] = field(default_factory=list)
    """What cannot be read in its folder (``"state.json: ..."``); empty when intact."""
    transient: bool = False
    """A run submitted it with ``transient=True``: ``partita gc`` removes it once every job
    that depends on it is done."""

    @property
    def paths(self) -> JobPaths:
        """Every file of the job folder."""
        return JobPaths(self.path)

    @property
    def short(self) -> str:
        """The first 12 characters of the identifier."""
        return self.identifier[:12]

    @property
    def name(self) -> str:
        """``<type id>/<short id>``."""
        return f"{self.type_id}/{self.short}"

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (or to now if running)."""
        if self.started is None:
            return None
        end = self.ended if self.ended and self.state != "running" else time.time()
        return max(0.0, end - self.started)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (for ``--json`` and the web monitor)."""
        return {
            "id": self.identifier,
            "short": self.short,
            "type": self.type_id,
            "path": str(self.path),
            "state": self.state,
            "reason": self.reason,
            "detail": self.detail,
            "attempt": self.attempt,
            "submitted": self.submitted,
            "started": self.started,
            "ended": self.ended,
            "duration": self.duration,
            "launcher": self.launcher,
            "tags": self.tags,
            "progress": self.progress,
            "message": self.message,
            "experiments": self.experiments,
            "depends": self.depends,
            "damage": self.damage,
            "transient": self.transient,
        }


@dataclass
class RunInfo:
    """One run of an experiment."""

    experiment: str
    run: str
    status: str
    started: float | None
    ended: float | None
    host: str | None
    pid: int | None
    jobs: int = 0
    dry_run: bool = False
    """A dry run: it launched nothing, and protects no job from ``partita jobs clean``."""
    damage: list[str] = field(default_factory=list)
    """Parts of its record that could not be read (the rest was)."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return dict(self.__dict__)


#: Tells whether the job of a launcher handle still runs (``None``: cannot tell from here),
#: e.g. ``partita.launchers.probe_handle``. The workspace layer knows no launcher itself.
Probe = Callable[[dict[str, Any]], "bool | None"]


def read_job(paths: JobPaths, probe: Probe | None = None) -> JobInfo:
    """Read one job folder directly (no index); never raises for missing or damaged files.

    With ``probe``, a job recorded ``running`` whose launcher says it is certainly gone
    is reported ``failed`` (``lost``); without, the files are reported as they are.
    """
    status = read_status(paths)
    record, marker = status.record, status.final or {}
    damage = list(status.damage)
    if status.state is not None:
        state = status.state.value
    elif any(item.startswith("state.json:") for item in damage):
        state = "damaged"  # no marker, and what state.json says cannot be read
    else:
        state = "waiting"
    reason = status.reason.value if status.reason is not None else None
    detail = marker.get("detail", record.get("detail")) if state != "done" else None
    launcher = record.get("launcher") or None
    if state == "running" and launcher and probe is not None and probe(dict(launcher)) is False:
        state, reason, detail = "failed", "lost", "its process is gone without an outcome"
    progress = read_progress(paths)
    damage += progress.damage
    return JobInfo(
        identifier=paths.identifier,
        type_id=paths.type_id,
        path=paths.root,
        state=state,
        reason=reason,
        detail=detail,
        attempt=record.get("attempt"),
        submitted=record.get("launched"),
        started=record.get("started"),
        ended=marker.get("time", record.get("ended")) if state != "running" else None,
        launcher=dict(launcher) if launcher else None,
        tags=dict(record.get("tags") or {}),
        progress=progress.fraction if state != "done" else 1.0,
        message=progress.message,
        damage=damage,
    )
