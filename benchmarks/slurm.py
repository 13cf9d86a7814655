"""Benchmark: 500 no-op tasks on the private Slurm cluster, arrays vs one sbatch per task.

    python benchmarks/slurm.py [--tasks 500] [--json OUT]

Starts the test cluster (scripts/slurm-cluster.sh start, as root on Debian), runs an
experiment of N independent no-op tasks twice in fresh work directories: once with
partita's default (job arrays), once with ``max_array_size=1`` (one ``sbatch`` per task,
what a launcher without arrays does), and reports wall time and Slurm commands issued.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from partita import Param, SlurmLauncher, Task, experiment

    class Noop(Task, id="bench.slurm.noop"):
        n: Param[int]
        def execute(self):
            pass

    tasks, array_size = int(sys.argv[1]), int(sys.argv[2])
    launcher = SlurmLauncher(time="10:00", mem="100M", max_array_size=array_size)
    started = time.perf_counter()
    with experiment("wd", "bench", launcher=launcher, quiet=True):
        for n in range(tasks):
            Noop(n=n).submit()
    print(json.dumps({"wall_s": time.perf_counter() - started, **launcher.statistics()}))
    """
)


def start_cluster() -> dict[str, str]:
    """Start (or reuse) the private cluster; return its environment."""
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "slurm-cluster.sh"), "start"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    env = {}
    for line in out.splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            env[name] = shlex.split(value)[0] if value else ""
    return env


def run(tasks: int, array_size: int, env: dict[str, str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="partita-slurm-bench-") as folder:
        script = Path(folder) / "xp.py"
        script.write_text(SCRIPT)
        result = subprocess.run(
            [sys.executable, str(script), str(tasks), str(array_size)],
            cwd=folder,
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=3600,
        )
        if result.returncode != 0:
            raise SystemExit(f"experiment failed:\n{result.stderr[-3000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    env = start_cluster()
    rows = {
        "arrays": run(args.tasks, 1000, env),
        "one sbatch per task": run(args.tasks, 1, env),
    }
    print(f"{args.tasks} no-op tasks on the private Slurm cluster (4 CPUs advertised, 2 cores)")
    print(f"{'mode':<22}{'wall (s)':>10}{'sbatch':>8}{'squeue':>8}{'sacct':>8}")
    for mode, row in rows.items():
        print(
            f"{mode:<22}{row['wall_s']:>10.1f}{row.get('sbatch', 0):>8}"
            f"{row.get('squeue', 0):>8}{row.get('sacct', 0):>8}"
        )
    if args.json:
        args.json.write_text(json.dumps({"tasks": args.tasks, "results": rows}, indent=1))


if __name__ == "__main__":
    main()
