"""Work directories written through the job-folder protocol, as an experiment writes them.

``begin`` starts an attempt (the job is running), ``finish`` records its outcome, and
``make_job`` does both for a new folder: the unit tests of the index and the integration
tests of the monitor build their work directories of many jobs with them.
"""

from __future__ import annotations

from typing import Any

from partita.workspace import (
    JobPaths,
    JobState,
    Workspace,
    begin_attempt,
    hold,
    read_state,
    record_final,
)


def ident(i: int) -> str:
    """A job identifier (64 hex digits) made of a number."""
    return f"{i:064x}"


def begin(paths: JobPaths, tags: dict[str, Any] | None = None) -> int:
    """Start a new attempt of the job (under its lock); its number."""
    with hold(paths.lock):
        return begin_attempt(
            paths,
            read_state(paths),
            owner={"experiment": "tests"},
            placeholder={"kind": "local"},
            tags=dict(tags or {}),
            keep_previous=False,
        )


def finish(paths: JobPaths, state: JobState, attempt: int) -> None:
    """Record the final ``state`` of ``attempt`` (exit code 0)."""
    recorded = record_final(paths, state, attempt=attempt, exit_code=0)
    assert recorded is not None and recorded.written


def make_job(workspace: Workspace, type_id: str, i: int, state: JobState) -> JobPaths:
    """A new job folder ``ident(i)`` of ``type_id``, begun and finished in ``state``."""
    paths = workspace.job(type_id, ident(i))
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.params.write_text("{}\n")
    finish(paths, state, begin(paths))
    return paths
