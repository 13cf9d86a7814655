"""Wording of messages users read after a run."""

from __future__ import annotations

from pathlib import Path

from partita.errors import ExperimentFailed, FailedJob


def test_cancelled_jobs_are_not_told_to_fix_a_cause() -> None:
    cancelled = FailedJob("demo.train", "ab" * 32, "cancelled", Path("/w/stderr"))
    message = str(ExperimentFailed("sweep", [cancelled], 1))
    assert "experiment 'sweep': 1 of 1 job did not complete:" in message
    assert "Fix the cause" not in message
    assert "Run the script again" in message


def test_failed_jobs_are_told_to_fix_the_cause() -> None:
    failed = FailedJob("demo.train", "ab" * 32, "error", Path("/w/stderr"))
    cancelled = FailedJob("demo.eval", "cd" * 32, "cancelled", None)
    message = str(ExperimentFailed("sweep", [failed, cancelled], 3))
    assert "2 of 3 jobs did not complete" in message
    assert "Fix the cause and run the script again" in message
