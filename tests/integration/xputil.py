"""Helpers of the integration tests: experiment scripts run in real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Headless Chromium for the monitor's browser tests, and the flags that keep it off the
#: network (this machine's closed network refuses its background connections).
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

PRELUDE = """\
import os, sys, time, json
from pathlib import Path
import partita
from partita import Task, Config, Param, Meta, Constant, field, PathGenerator, experiment, tag
"""


class Script:
    """An experiment script written to a folder, run with this interpreter."""

    def __init__(self, folder: Path, name: str, body: str) -> None:
        self.folder = folder
        self.path = folder / f"{name}.py"
        self.path.write_text(PRELUDE + textwrap.dedent(body))

    def run(
        self,
        *args: str,
        timeout: float = 120,
        env: dict[str, str] | None = None,
        python: str = sys.executable,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, str(self.path), *args],
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(self.path), *args],
            cwd=self.folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )


def job_dirs(workdir: Path, type_id: str) -> list[Path]:
    """Job folders of one task type."""
    folder = workdir / "jobs" / type_id
    return sorted(folder.iterdir()) if folder.exists() else []


def peak_concurrency(spans: list[list[float]]) -> int:
    """Most ``[start, end]`` intervals open at the same time."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak
