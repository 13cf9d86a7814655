"""Benchmark: 500 no-op tasks on the private Slurm cluster, packed vs one task per element.

    python benchmarks/slurm_pack.py [--tasks 500] [--pack 50 125 auto] [--json OUT]

Starts the test cluster (scripts/slurm-cluster.sh start, as root on Debian; its
``PARTITA_SLURM_*`` variables choose the state folder and ports), then runs an experiment
of N independent no-op tasks in fresh work directories: once with one task per array
element (partita's default), and once per ``--pack`` value with
``SlurmLauncher(pack=N)`` (N tasks per element, each in its own forked process; ``auto``:
``pack="auto"``, which packs 6 of these 10-minute tasks per element). Reports wall time
(from entering the experiment to its end), the elements the tasks ran in (read from their
records) and Slurm commands.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from slurm import start_cluster

SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from partita import Param, SlurmLauncher, Task, experiment

    class Noop(Task, id="bench.slurm.pack.noop"):
        n: Param[int]
        def execute(self):
            pass

    tasks = int(sys.argv[1])
    pack = sys.argv[2] if sys.argv[2] == "auto" else (int(sys.argv[2]) or None)
    launcher = SlurmLauncher(time="10:00", mem="100M", pack=pack)
    started = time.perf_counter()
    with experiment("wd", "bench", launcher=launcher, quiet=True):
        for n in range(tasks):
            Noop(n=n).submit()
    wall = time.perf_counter() - started
    print(json.dumps({"wall_s": wall, **launcher.statistics()}))
    """
)


def run(tasks: int, pack: str, env: dict[str, str]) -> dict[str, float]:
    """One experiment of ``tasks`` no-op tasks (``pack="0"``: one task per element)."""
    with tempfile.TemporaryDirectory(prefix="partita-slurm-pack-bench-") as folder:
        script = Path(folder) / "xp.py"
        script.write_text(SCRIPT)
        result = subprocess.run(
            [sys.executable, str(script), str(tasks), str(pack)],
            cwd=folder,
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=3600,
        )
        if result.returncode != 0:
            raise SystemExit(f"experiment failed:\n{result.stderr[-3000:]}")
        row: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
        jobs = Path(folder) / "wd" / "jobs"
        row["done"] = len(list(jobs.glob("*/*/done")))
        states = [json.loads(p.read_text()) for p in jobs.glob("*/*/state.json")]
        row["elements"] = len({s["launcher"]["job_id"] for s in states if s.get("launcher")})
        return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--pack", nargs="+", default=["50", "125", "auto"])
    parser.add_argument("--no-baseline", action="store_true", help="skip one-task-per-element")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    env = start_cluster()
    rows: dict[str, dict[str, float]] = {}
    if not args.no_baseline:
        rows["one task per element"] = run(args.tasks, "0", env)
    for pack in args.pack:
        rows[f"pack={pack}"] = run(args.tasks, pack, env)
    print(f"{args.tasks} no-op tasks on the private Slurm cluster (4 CPUs advertised, 2 cores)")
    print(f"{'mode':<22}{'wall (s)':>10}{'elements':>10}{'done':>6}{'sbatch':>8}{'squeue':>8}")
    for mode, row in rows.items():
        print(
            f"{mode:<22}{row['wall_s']:>10.1f}{row['elements']:>10.0f}{row['done']:>6.0f}"
            f"{row.get('sbatch', 0):>8.0f}{row.get('squeue', 0):>8.0f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"tasks": args.tasks, "results": rows}, indent=1))


if __name__ == "__main__":
    main()
