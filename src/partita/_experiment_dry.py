"""A dry run: what each submitted task would do, from its state on disk; nothing launched."""

from __future__ import annotations

import json
from typing import Any

from partita.config._config import Task
from partita.launchers import Launcher
from partita.scheduler import Job, Submission
from partita.workspace import JobState


def dry_submit(
    task: Task, ident: str, paths: Any, tags: dict[str, Any], launcher: Launcher
) -> tuple[str, Job, str]:
    """What submitting ``task`` would do: ``(label, task.job, the line to print)``."""
    from partita.launchers import handle_gone
    from partita.workspace import read_status

    status = read_status(paths)
    state = status.state
    if state is JobState.RUNNING and handle_gone(status.record.get("launcher")):
        state = JobState.FAILED  # its process is gone: it would run again
    label = {
        JobState.DONE: "done",
        JobState.RUNNING: "running elsewhere",
        JobState.FAILED: "would rerun (failed before)",
        JobState.CANCELLED: "would rerun (cancelled before)",
        None: "would run",
    }[state]
    tag_text = tags_text(tags)
    job = _dry_job(task, ident, paths, tags, state, launcher)
    line = f"[dry run] {type(task)._partita_type_id}/{ident[:12]}: {label}" + (
        f"  {tag_text}" if tag_text else ""
    )
    return label, job, line


def tags_text(tags: dict[str, Any]) -> str:
    """``kernel="linear" lr=0.1``: tags as the command line takes them (``--tag``)."""
    return " ".join(
        f"{name}={json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)}"
        for name, value in tags.items()
    )


def dry_summary(dry: list[tuple[str, str, dict[str, Any]]]) -> str:
    """``dry run: 3 of 5 jobs would run (1 again), 2 already done; nothing launched``."""
    unique = {ident: label for label, ident, _ in dry}
    labels = list(unique.values())
    would = sum(label.startswith("would") for label in labels)
    again = sum(label.startswith("would rerun") for label in labels)
    done = labels.count("done")
    elsewhere = labels.count("running elsewhere")
    parts = [f"{would} of {len(labels)} job{'s' if len(labels) != 1 else ''} would run"]
    if again:
        parts[0] += f" ({again} again)"
    if done:
        parts.append(f"{done} already done")
    if elsewhere:
        parts.append(f"{elsewhere} running elsewhere")
    return f"dry run: {', '.join(parts)}; nothing launched"


def _dry_job(
    task: Task,
    ident: str,
    paths: Any,
    tags: dict[str, Any],
    state: JobState | None,
    launcher: Launcher,
) -> Job:
    """What ``task.job`` gives in a dry run: its state on disk, never launched.

    ``wait()`` returns at once and ``on_completed`` callbacks are not called (nothing runs).
    """
    from partita.scheduler._job import unscheduled_job

    spec = Submission(task, ident, paths, launcher, [], dict(tags))
    return unscheduled_job(spec, JobState.DONE if state is JobState.DONE else JobState.WAITING)
