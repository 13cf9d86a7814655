"""What an experiment prints on stderr: the progress reporter, its lines and its summaries."""

from __future__ import annotations

import os
import threading
from typing import Any, TextIO

from partita.errors import FailedJob
from partita.scheduler import Job, JobEvent
from partita.workspace import JobState


class Reporter:
    """Progress on stderr: a live view on a terminal, else one line per job event."""

    def __init__(self, stream: TextIO, quiet: bool) -> None:
        self.stream = stream
        self.quiet = quiet
        self.lock = threading.Lock()
        self.view: Any = None

    def start_view(self) -> None:
        """Show the live view (progress bars) when stderr is an interactive terminal."""
        if self.quiet or not _isatty(self.stream) or os.environ.get("PARTITA_NO_LIVE"):
            return
        from rich.console import Console

        from partita._live import LiveView

        self.view = LiveView(Console(file=self.stream))
        self.view.start()

    def stop_view(self) -> None:
        """Close the live view, if one is shown."""
        view, self.view = self.view, None
        if view is not None:
            view.stop()

    def _print(self, text: str) -> None:
        with self.lock:
            if self.view is not None and self.view.active:
                self.view.log(f"partita: {text}")
            else:
                print(f"partita: {text}", file=self.stream, flush=True)

    def say(self, text: str) -> None:
        """Print ``text`` unless quiet."""
        if not self.quiet:
            self._print(text)

    def warn(self, text: str) -> None:
        """Print ``text`` even when quiet (failures, warnings)."""
        self._print(text)

    def event(self, event: JobEvent) -> None:
        """Show a job's change of state (the scheduler's listener)."""
        if self.view is not None:
            self.view.event(event)
            if event.state not in (JobState.FAILED,) and not (
                event.state is JobState.READY and event.previous is JobState.RUNNING
            ):
                return  # the live view shows it
        elif self.quiet and event.state not in (JobState.FAILED, JobState.READY):
            return  # nothing to say: only failures and retries are told when quiet
        job = event.job
        if event.state is JobState.RUNNING and event.previous is not JobState.RUNNING:
            where = " (run by another process; waiting)" if job.elsewhere else ""
            self.say(f"{job.name} running{where}")
        elif event.state is JobState.READY and event.previous is JobState.RUNNING:
            self.warn(f"{job.name} failed ({job.reason}); retrying")
        elif event.state is JobState.DONE and not job.reused:
            took = f" in {job.ended - job.started:.1f} s" if job.started and job.ended else ""
            self.say(f"{job.name} done{took}")
        elif event.state is JobState.FAILED:
            detail = f": {job.detail}" if job.detail else ""
            where = (
                ""
                if job.reason in ("dependency", "no_space")
                else f"\n    stderr: {job.paths.stderr}"
            )
            self.warn(f"{job.name} FAILED ({job.reason}){detail}{where}")
        elif event.state is JobState.CANCELLED:
            self.say(f"{job.name} cancelled")


def summary_text(name: str, jobs: list[Job], took: float) -> str:
    """The closing line of a run: how many jobs ended in which state, and how long it took."""
    counts: dict[str, int] = {}
    reused = ran = elsewhere = 0
    for job in jobs:  # one pass: a re-check has thousands
        state = job.state.value
        counts[state] = counts.get(state, 0) + 1
        attempts, was_reused = job.attempts, job.reused
        reused += was_reused
        ran += attempts > 0
        elsewhere += bool(job.elsewhere and not attempts and not was_reused)
    if not jobs:
        return f"{name}: no job was submitted ({took:.1f} s)"
    count = f"{len(jobs)} job{'' if len(jobs) == 1 else 's'}"
    if len(jobs) == 1 and reused == 1:
        return f"nothing to run: the 1 job was already done ({took:.1f} s)"
    if jobs and reused == len(jobs):
        return f"nothing to run: all {count} were already done ({took:.1f} s)"
    parts = [f"{n} {state}" for state, n in sorted(counts.items())]
    others = f", {elsewhere} run by another process" if elsewhere else ""
    return (
        f"{name}: {count}: {', '.join(parts)} "
        f"({ran} ran, {reused} already done{others}) in {took:.1f} s"
    )


def out_of_space(job: Job) -> bool:
    """Whether ``job`` failed because the disk is full (partita's files or the task's own)."""
    return job.reason == "no_space" or (
        job.reason == "error" and "[Errno 28]" in (job.detail or "")
    )


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def failed_entry(job: Job, jobs: list[Job]) -> FailedJob:
    """How ``ExperimentFailed`` names a failed job (its log, unless a dependency failed)."""
    stderr = job.paths.stderr if job.reason != "dependency" else None
    return FailedJob(job.type_id, job.identifier, job.reason or job.state.value, stderr, job.detail)
