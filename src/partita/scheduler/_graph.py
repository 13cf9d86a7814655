"""Questions about the dependency graph of submitted jobs."""

from __future__ import annotations

from partita.scheduler._job import Record
from partita.workspace import JobState


def can_queue_after(rec: Record, dep: Record) -> bool:
    """Whether ``rec`` can be queued on its launcher before ``dep`` ends (``depends_on``).

    Once ``dep`` has a handle, its launcher also says whether that job can be waited for
    by the cluster (:meth:`Launcher.queues_after`).
    """
    if not (rec.launcher.queues_dependencies and dep.launcher is rec.launcher):
        return False
    return dep.handle is None or rec.launcher.queues_after(dep.handle)


def settled(rec: Record) -> bool:
    """Whether nothing more can be launched for ``rec`` now (used when detaching)."""
    state = rec.state
    if state.final or state is JobState.RUNNING:
        return True
    if state is JobState.READY:
        return False
    pending = [d for d in rec.dependencies if not d.state.final]
    if not pending:
        return False  # about to become ready
    for dep in pending:
        if can_queue_after(rec, dep) and dep.state is JobState.RUNNING and not dep.elsewhere:
            return False  # about to be queued after it
    return all(settled(dep) for dep in pending)
