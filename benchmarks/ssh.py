"""Benchmark: 100 no-op tasks over a loopback SSH connection, against the same run locally.

    python benchmarks/ssh.py [--tasks 100] [--max-jobs 4] [--json OUT]

Starts a private OpenSSH server in its own mount namespace (tests/integration/sshd.py; as
root, with openssh-server installed), runs an experiment of N independent no-op tasks
with ``LocalLauncher(max_jobs=4)`` in a fresh remote work directory through
``SSH("host1").workdir(...)``, then the same script with a local work directory. Reports
the wall time of each (the whole script, from this side) and the SSH commands the remote
run used, per task.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

SCRIPT = textwrap.dedent(
    """
    import sys
    from partita import SSH, LocalLauncher, Param, Task, experiment

    class Noop(Task, id="bench.ssh.noop"):
        n: Param[int]
        def execute(self):
            pass

    where, tasks, max_jobs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    workdir = SSH("host1").workdir(where[len("ssh:"):]) if where.startswith("ssh:") else where
    with experiment(workdir, "bench", launcher=LocalLauncher(max_jobs), quiet=True):
        for n in range(tasks):
            Noop(n=n).submit()
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--max-jobs", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from sshd import RemoteHosts, available

    why = available()
    if why:
        raise SystemExit(f"benchmarks/ssh.py: cannot run here: {why}")
    with tempfile.TemporaryDirectory(prefix="partita-bench-ssh-") as tmp:
        base = Path(tmp)
        script = base / "bench.py"
        script.write_text(SCRIPT)
        stats = base / "stats.json"
        results = {}
        with RemoteHosts(base / "hosts", count=1) as hosts:
            env = hosts.client_env(PARTITA_SSH_STATS=str(stats))
            for label, where in (
                ("ssh", f"ssh:{hosts.remote}/wd"),
                ("local", str(base / "wd")),
            ):
                started = time.perf_counter()
                done = subprocess.run(
                    [sys.executable, str(script), where, str(args.tasks), str(args.max_jobs)],
                    env=env,
                    capture_output=True,
                    text=True,
                    cwd=base,
                )
                wall = time.perf_counter() - started
                if done.returncode != 0:
                    raise SystemExit(f"{label} run failed:\n{done.stderr}")
                results[label] = {"wall_s": round(wall, 3)}
            used = json.loads(stats.read_text())
            results["ssh"].update(
                commands=used["commands"],
                connections=used["connects"],
                commands_per_task=round(used["commands"] / args.tasks, 3),
            )
    print(f"{args.tasks} no-op tasks, LocalLauncher(max_jobs={args.max_jobs})")
    print(
        f"  over SSH (loopback): {results['ssh']['wall_s']:.2f} s wall, "
        f"{results['ssh']['commands']} SSH commands "
        f"({results['ssh']['commands_per_task']} per task), "
        f"{results['ssh']['connections']} connection(s)"
    )
    print(f"  local:               {results['local']['wall_s']:.2f} s wall")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
