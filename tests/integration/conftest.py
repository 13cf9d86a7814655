"""Helpers to run experiment scripts in real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

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
        self, *args: str, timeout: float = 120, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(self.path), *args],
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


@pytest.fixture
def script(tmp_path: Path) -> Callable[..., Script]:
    """Factory: ``script(body, name="xp")`` writes an experiment script into tmp_path."""

    def make(body: str, name: str = "xp") -> Script:
        return Script(tmp_path, name, body)

    return make


@pytest.fixture(scope="session")
def slurm_env() -> Iterator[dict[str, str]]:
    """A private Slurm cluster (started once per session; stopped if this session started it).

    Sets ``SLURM_CONF`` in this process's environment so that launchers and the
    scripts run by the tests find the cluster.
    """
    from slurm_cluster import cluster_running, slurm_available, start_cluster, stop_cluster

    ok, why = slurm_available()
    if not ok:
        pytest.skip(why)
    was_running = cluster_running()
    started = time.monotonic()
    env = start_cluster()
    print(f"\nslurm cluster ready in {time.monotonic() - started:.1f} s", file=sys.stderr)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if not was_running and os.environ.get("PARTITA_SLURM_KEEP") != "1":
        stop_cluster()


def job_dirs(workdir: Path, type_id: str) -> list[Path]:
    """Job folders of one task type."""
    folder = workdir / "jobs" / type_id
    return sorted(folder.iterdir()) if folder.exists() else []
