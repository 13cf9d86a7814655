"""The live terminal view of an experiment, fed with a fake event stream."""

from __future__ import annotations

import json
import threading
import time
from io import StringIO
from pathlib import Path
from typing import Any

from rich.console import Console

from partita._live import LiveView
from partita.scheduler import JobEvent
from partita.workspace import JobPaths, JobState


class FakeJob:
    """What the view reads of a scheduler Job: name, identifier, paths, start, tags."""

    def __init__(self, folder: Path, type_id: str, identifier: str, **tags: Any) -> None:
        self.identifier = identifier
        self.type_id = type_id
        self.paths = JobPaths(folder / "jobs" / type_id / identifier)
        self.paths.root.mkdir(parents=True)
        self.started: float | None = None
        self.tags = tags

    @property
    def name(self) -> str:
        return f"{self.type_id}/{self.identifier[:12]}"

    def report(self, fraction: float, message: str) -> None:
        """Write progress.json as partita.progress() does."""
        record = {"fraction": fraction, "message": message, "time": time.time()}
        self.paths.progress.write_text(json.dumps(record))


def move(view: LiveView, job: FakeJob, *states: JobState) -> None:
    """Send the events of ``job`` going through ``states``."""
    previous = None
    for state in states:
        if state is JobState.RUNNING:
            job.started = time.time() - 75
        view.event(JobEvent(job, state, previous, time.time()))  # type: ignore[arg-type]
        previous = state


def terminal() -> tuple[Console, StringIO]:
    """A console that believes it is a terminal, writing into a string."""
    buffer = StringIO()
    return Console(force_terminal=True, file=buffer, width=120, height=30), buffer


def wait_for(buffer: StringIO, text: str, timeout: float = 10.0) -> bool:
    """Whether ``text`` appears in what was drawn within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while text not in buffer.getvalue():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def plain_text(view: LiveView) -> str:
    """What the view renders now, as plain text."""
    console = Console(record=True, width=120, file=StringIO())
    console.print(view.render())
    return console.export_text()


def make_jobs(tmp_path: Path) -> tuple[FakeJob, FakeJob, FakeJob, FakeJob]:
    """A running job with progress, a running one without, a done and a failed one."""
    train = FakeJob(tmp_path, "demo.train", "3f2a1c0d9e8b" + "0" * 52, lr=0.01)
    train.report(0.42, "epoch 3")
    other = FakeJob(tmp_path, "demo.train", "7b01aa42c3d1" + "0" * 52, lr=0.1)
    done = FakeJob(tmp_path, "demo.prepare", "aa" * 32)
    failed = FakeJob(tmp_path, "demo.eval", "bb" * 32)
    return train, other, done, failed


def feed(view: LiveView, jobs: tuple[FakeJob, FakeJob, FakeJob, FakeJob]) -> None:
    """The events of make_jobs' story."""
    train, other, done, failed = jobs
    move(view, done, JobState.WAITING, JobState.READY, JobState.RUNNING, JobState.DONE)
    move(view, train, JobState.WAITING, JobState.READY, JobState.RUNNING)
    move(view, other, JobState.WAITING, JobState.RUNNING)
    move(view, failed, JobState.WAITING, JobState.RUNNING, JobState.FAILED)


def test_render_shows_counts_and_running_jobs(tmp_path: Path) -> None:
    """Overall done/total, counts by state, one line per running job with its progress."""
    view = LiveView(Console(file=StringIO()))
    assert "waiting for jobs" in plain_text(view)
    feed(view, make_jobs(tmp_path))
    text = plain_text(view)
    assert "1/4 done" in text
    assert "running 2 · done 1 · failed 1" in text
    (train,) = [line for line in text.splitlines() if "demo.train/3f2a1c0d9e8b" in line]
    assert "42%" in train
    assert "epoch 3" in train
    assert "1m15s" in train
    assert "lr=0.01" in train
    (other,) = [line for line in text.splitlines() if "demo.train/7b01aa42c3d1" in line]
    assert " -" in other  # no progress reported yet
    assert "demo.prepare" not in text  # done jobs are counted, not listed
    assert {JobState.RUNNING: 2, JobState.DONE: 1, JobState.FAILED: 1} == view.counts()


def test_live_display_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal the display is drawn and redrawn while events and progress arrive."""
    console, buffer = terminal()
    view = LiveView(console)
    jobs = make_jobs(tmp_path)
    view.start()
    try:
        assert view.active
        feed(view, jobs)
        assert wait_for(buffer, "epoch 3")
        jobs[0].report(0.9, "epoch 9")
        assert wait_for(buffer, "epoch 9")  # progress.json is read again at each refresh
        view.log("a line above the display")
        move(view, jobs[0], JobState.DONE)
        move(view, jobs[1], JobState.DONE)
    finally:
        view.stop()
    assert not view.active
    output = buffer.getvalue()
    assert "a line above the display" in output
    assert "\x1b[" in output  # cursor movements: it redraws in place
    assert "3/4 done" in output  # the final frame stays
    view.stop()  # idempotent


def test_nothing_drawn_when_not_a_terminal(tmp_path: Path) -> None:
    """Without a terminal the view stays silent (the experiment's lines are the output)."""
    buffer = StringIO()
    view = LiveView(Console(file=buffer))
    assert not view.enabled
    with view:
        feed(view, make_jobs(tmp_path))
        assert not view.active
        time.sleep(0.3)
    assert "" == buffer.getvalue()


def test_events_from_many_threads(tmp_path: Path) -> None:
    """event() is safe to call from several threads while the display refreshes."""
    console, _ = terminal()
    view = LiveView(console, refresh_per_second=50)
    jobs = [FakeJob(tmp_path, "demo.many", f"{i:064x}") for i in range(200)]

    def run(part: list[FakeJob]) -> None:
        for job in part:
            move(view, job, JobState.WAITING, JobState.RUNNING, JobState.DONE)

    view.start()
    try:
        threads = [threading.Thread(target=run, args=(jobs[i::4],)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        view.stop()
    assert {JobState.DONE: 200} == view.counts()
    assert "200/200 done" in plain_text(view)
