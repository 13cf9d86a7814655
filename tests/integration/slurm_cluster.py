"""Start and stop the private Slurm cluster of scripts/slurm-cluster.sh from pytest.

Used by the fixtures of the ``slurm`` tests::

    ok, why = slurm_available()
    env = start_cluster()        # {"SLURM_CONF": ..., "PARTITA_SLURM_DIR": ...}
    ...
    stop_cluster()
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "slurm-cluster.sh"
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "slurmdbd", "mariadbd")


class SlurmClusterError(RuntimeError):
    """The test cluster could not be started or stopped; the message has the log's tail."""


def slurm_available() -> tuple[bool, str]:
    """Whether a cluster can be started here, and why (or why not)."""
    if not sys.platform.startswith("linux"):
        return False, f"the test cluster needs Linux, not {sys.platform}"
    if not SCRIPT.is_file():
        return False, f"{SCRIPT} is missing"
    if shutil.which("bash") is None:
        return False, "bash is missing"
    if os.geteuid() != 0:
        return False, "the test cluster runs its daemons as root; these tests run as another user"
    missing = [name for name in PROGRAMS if _which(name) is None]
    if not missing:
        return True, "Slurm, munge and MariaDB are installed"
    if os.environ.get("PARTITA_SLURM_NO_INSTALL") == "1":
        return False, f"missing {', '.join(missing)} and PARTITA_SLURM_NO_INSTALL=1"
    if shutil.which("apt-get") is None:
        return False, f"missing {', '.join(missing)} and no apt-get to install them"
    return True, f"missing {', '.join(missing)}: slurm-cluster.sh installs them with apt-get"


def cluster_running() -> bool:
    """True if every daemon of the cluster runs (``slurm-cluster.sh status``)."""
    done = subprocess.run(
        ["bash", str(SCRIPT), "status"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return done.returncode == 0


def start_cluster(timeout: float = 600) -> dict[str, str]:
    """Start the cluster (or find it running) and return the variables to set."""
    done, log = _run("start", timeout)
    if done.returncode != 0:
        raise SlurmClusterError(
            f"{SCRIPT.name} start failed (exit code {done.returncode}); "
            f"last lines of its log:\n{_tail(log)}"
        )
    env: dict[str, str] = {}
    for line in done.stdout.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, value = words[1].split("=", 1)
            env[name] = value
    if "SLURM_CONF" not in env:
        raise SlurmClusterError(
            f"{SCRIPT.name} start printed no SLURM_CONF: stdout {done.stdout!r}; "
            f"last lines of its log:\n{_tail(log)}"
        )
    return env


def stop_cluster(timeout: float = 120) -> None:
    """Cancel the cluster's jobs and stop its daemons."""
    done, log = _run("stop", timeout)
    if done.returncode != 0:
        raise SlurmClusterError(
            f"{SCRIPT.name} stop failed (exit code {done.returncode}); "
            f"last lines of its log:\n{_tail(log)}"
        )


def _run(command: str, timeout: float) -> tuple[subprocess.CompletedProcess[str], str]:
    # The log goes to a file, not a pipe: nothing can then keep us waiting for its end.
    with tempfile.TemporaryFile("w+") as log:
        try:
            done = subprocess.run(
                ["bash", str(SCRIPT), command],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            log.seek(0)
            raise SlurmClusterError(
                f"{SCRIPT.name} {command} took more than {timeout:g} s; "
                f"last lines of its log:\n{_tail(log.read())}"
            )
        log.seek(0)
        return done, log.read()


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


def _which(name: str) -> str | None:
    # Daemons live in /usr/sbin, which is not always on a test runner's PATH.
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return shutil.which(name, path=path)
