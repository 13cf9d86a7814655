"""Fixtures of the integration tests (helpers are in ``xputil``)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from xputil import Script


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
