"""A live terminal view of a running experiment: overall bar, counts, running jobs.

:class:`LiveView` listens to the scheduler's events (``scheduler.add_listener(view.event)``)
and, when its console is a terminal, redraws about four times a second::

    ━━━━━━━━━━━━━━━━╺━━━━━━━━━━━━━  5/9 done   running 2 · done 5 · failed 1 · waiting 1
      demo.train/3f2a1c0d9e8b  ━━━━━━━━╺━━━━━  42% epoch 3   1m12s  lr=0.01
      demo.train/7b01aa42c3d1  ━━━━━━━━━━━━━━   -            12.0s  lr=0.1

When the console is not a terminal (a log file, a pipe, CI) it draws nothing, and the
experiment's plain line-per-event output is all there is.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from partita.workspace import JobState, read_json

if TYPE_CHECKING:
    from partita.scheduler import JobEvent

__all__ = ["LiveView"]

_STYLES = {
    JobState.RUNNING: "cyan",
    JobState.DONE: "green",
    JobState.FAILED: "bold red",
    JobState.CANCELLED: "magenta",
    JobState.WAITING: "yellow",
    JobState.READY: "yellow",
}
_ORDER = (
    JobState.RUNNING,
    JobState.DONE,
    JobState.FAILED,
    JobState.CANCELLED,
    JobState.READY,
    JobState.WAITING,
)
_LABELS = {JobState.READY: "queued"}


@dataclass
class _Entry:
    job: Any
    state: JobState
    since: float


def _elapsed(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


class LiveView:
    """Live progress of an experiment's jobs on a terminal.

    Thread-safe: :meth:`event` may be called from any thread (the scheduler calls it from
    its own). Usage::

        view = LiveView()
        scheduler.add_listener(view.event)
        view.start()
        try:
            ...  # submit and wait
        finally:
            view.stop()

    While the view is active, other text for the same terminal should go through
    :meth:`log` (it is printed above the live display instead of tearing it).

    Args:
        console: where to draw (default: a console on stderr).
        refresh_per_second: how often the display is redrawn.
    """

    def __init__(self, console: Console | None = None, *, refresh_per_second: float = 4.0) -> None:
        self.console = console if console is not None else Console(stderr=True)
        self.refresh_per_second = refresh_per_second
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._live: Live | None = None

    @property
    def enabled(self) -> bool:
        """Whether anything is drawn: only on a terminal."""
        return self.console.is_terminal

    @property
    def active(self) -> bool:
        """Whether the live display is on the screen now."""
        return self._live is not None

    # --- events -----------------------------------------------------------------------------

    def event(self, event: JobEvent) -> None:
        """Record a job's change of state (a scheduler listener)."""
        job = event.job
        with self._lock:
            entry = self._entries.get(job.identifier)
            if entry is None:
                self._entries[job.identifier] = _Entry(job, event.state, event.time)
            elif entry.state is not event.state:
                entry.job, entry.state, entry.since = job, event.state, event.time

    def counts(self) -> dict[JobState, int]:
        """How many jobs are in each state (only states with jobs)."""
        with self._lock:
            states = [entry.state for entry in self._entries.values()]
        return {state: states.count(state) for state in _ORDER if state in states}

    # --- display ----------------------------------------------------------------------------

    def start(self) -> None:
        """Show the live display (does nothing if the console is not a terminal)."""
        if self._live is not None or not self.enabled:
            return
        # Route prints of this process to the display only when they would reach the
        # same terminal anyway (stdout redirected to a file must stay in the file).
        on_stderr = self.console.file is sys.stderr
        live = Live(
            get_renderable=self.render,
            console=self.console,
            refresh_per_second=self.refresh_per_second,
            transient=False,
            redirect_stderr=on_stderr,
            redirect_stdout=on_stderr and _isatty(sys.stdout),
        )
        live.start()
        self._live = live

    def stop(self) -> None:
        """Draw the final state and leave the display (idempotent)."""
        live, self._live = self._live, None
        if live is not None:
            live.stop()

    def log(self, text: str) -> None:
        """Print a line above the live display (or plainly when it is not active)."""
        if self._live is not None:
            self._live.console.print(Text(text))
        else:
            self.console.print(Text(text))

    def __enter__(self) -> LiveView:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def render(self) -> RenderableType:
        """What the display shows now."""
        with self._lock:
            entries = list(self._entries.values())
        total = len(entries)
        if not total:
            return Text("partita: waiting for jobs…", style="dim")
        counts = {state: 0 for state in _ORDER}
        for entry in entries:
            counts[entry.state] = counts.get(entry.state, 0) + 1
        done = counts[JobState.DONE]
        finished = done + counts[JobState.FAILED] + counts[JobState.CANCELLED]

        head = Table.grid(padding=(0, 1))
        head.add_column(width=30)
        head.add_column(no_wrap=True)
        head.add_column()
        summary = Text()
        for state in _ORDER:
            if counts[state]:
                if summary:
                    summary.append(" · ")
                summary.append(
                    f"{_LABELS.get(state, state.value)} {counts[state]}", style=_STYLES[state]
                )
        head.add_row(
            ProgressBar(total=total, completed=finished, width=30),
            Text(f"{done}/{total} done"),
            summary,
        )

        running = sorted((e for e in entries if e.state is JobState.RUNNING), key=lambda e: e.since)
        room = max(3, self.console.height - 4)
        shown, hidden = running[:room], len(running) - room
        now = time.time()
        rows = Table.grid(padding=(0, 1))
        rows.add_column(no_wrap=True)
        rows.add_column(width=16)
        rows.add_column(no_wrap=True, justify="right")
        rows.add_column(overflow="ellipsis", no_wrap=True, max_width=40)
        rows.add_column(no_wrap=True, justify="right")
        rows.add_column(overflow="ellipsis", no_wrap=True)
        for entry in shown:
            job = entry.job
            fraction, message = _progress(job)
            started = getattr(job, "started", None) or entry.since
            tags = getattr(job, "tags", None) or {}
            rows.add_row(
                Text(f"  {job.name}"),
                ProgressBar(total=1.0, completed=fraction or 0.0, width=16, pulse=fraction is None),
                Text("  -" if fraction is None else f"{fraction * 100:3.0f}%"),
                Text(message or "", style="dim"),
                Text(_elapsed(max(0.0, now - started))),
                Text(" ".join(f"{k}={json.dumps(v)}" for k, v in tags.items()), style="dim"),
            )
        parts: list[RenderableType] = [head]
        if shown:
            parts.append(rows)
        if hidden > 0:
            parts.append(Text(f"  … and {hidden} more running", style="dim"))
        return Group(*parts)


def _progress(job: Any) -> tuple[float | None, str | None]:
    """What the job last reported with ``partita.progress()`` (from its progress.json)."""
    try:
        record = read_json(job.paths.progress)
    except OSError:
        return None, None
    if not isinstance(record, dict):
        return None, None
    fraction = record.get("fraction")
    message = record.get("message")
    if not isinstance(fraction, int | float) or isinstance(fraction, bool):
        fraction = None
    return (
        None if fraction is None else min(max(float(fraction), 0.0), 1.0),
        message if isinstance(message, str) else None,
    )


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
