"""Who keeps a token's units: the experiment that took them, or the job they were taken for."""

from __future__ import annotations

import subprocess
import sys

from partita.scheduler._tokens import _holder_alive
from partita.workspace import identity


def _dead_process() -> dict[str, object]:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    record = identity(child.pid)
    child.wait()
    return record


def test_a_live_job_keeps_the_units_of_a_dead_experiment() -> None:
    """The launcher of the job's handle tells whether the job still holds its units."""
    owner = _dead_process()
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as child:
        try:
            job = {"kind": "local", **identity(child.pid)}
            assert _holder_alive({"owner": owner, "job": job})
        finally:
            child.kill()
    assert not _holder_alive({"owner": owner, "job": {"kind": "local", **_dead_process()}})
    assert not _holder_alive({"owner": owner, "job": {"kind": "local"}})  # never started
    assert not _holder_alive({"owner": owner})
    assert _holder_alive({"owner": identity()})


def test_a_job_of_a_launcher_that_cannot_tell_does_not_keep_them() -> None:
    """A cluster job (or an unknown kind) does not hold units once its experiment is gone."""
    owner = _dead_process()
    assert not _holder_alive({"owner": owner, "job": {"kind": "slurm", "job_id": "3_0"}})
    assert not _holder_alive({"owner": owner, "job": {"kind": "nobody-knows", "x": 1}})
