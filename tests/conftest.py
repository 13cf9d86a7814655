"""Shared test options: integration tiers that CI must not skip."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# The helpers shared by the unit and the integration tests (jobfolders.py) live here.
HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

REQUIRE = os.environ.get("PARTITA_REQUIRE_INTEGRATION") == "1"
#: The markers of tests that CI must run: a skip of one of them is a failure there.
REQUIRED_TIERS = ("slurm", "browser", "ssh", "mount", "energy")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In CI (PARTITA_REQUIRE_INTEGRATION=1), a skipped test of a required tier fails."""
    outcome = yield
    report = outcome.get_result()
    if REQUIRE and report.skipped and any(item.get_closest_marker(name) for name in REQUIRED_TIERS):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where it must run: {report.longrepr}"
