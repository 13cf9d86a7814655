"""Make a work directory of N done no-op jobs, fast, for the scale benchmarks.

Usage::

    python benchmarks/make_workdir.py PATH [--jobs 100000]

Each job is ``partita_tasks.Noop(index=i)`` for ``i < N``, written with the workspace API
exactly as an experiment would leave it: its folder, ``params.json`` (the experiment's
bytes), ``state.json`` through :func:`partita.workspace.begin_attempt` and the ``done``
marker through the same writer the job runner uses. No job process runs and nothing is
synced to disk (``PARTITA_FSYNC=0``): about 100,000 jobs a minute here, where a real
sweep takes an hour. Running ``partita_tasks.sweep`` on the result then finds every task
done, which is the ``big`` workload of ``run.py``; that run also leaves the run record
(100,000 submissions) that ``partita status`` reads.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ["PARTITA_FSYNC"] = "0"  # before partita is imported: nothing here needs fsync

sys.path.insert(0, str(Path(__file__).resolve().parent))


def make(path: Path, jobs: int) -> float:
    """Write ``jobs`` done jobs into the work directory ``path``; returns the seconds taken."""
    from partita_tasks import Noop

    from partita.config import dumps, freeze, identifier
    from partita.workspace import JobState, Workspace, begin_attempt
    from partita.workspace._atomic import atomic_write
    from partita.workspace._state import write_final

    workspace = Workspace(path)
    started = time.perf_counter()
    for i in range(jobs):
        task = Noop(index=i)
        freeze(task)
        paths = workspace.job(Noop._partita_type_id, identifier(task))
        paths.root.mkdir(parents=True, exist_ok=True)
        atomic_write(paths.params, dumps(task), fsync=False)
        record: dict[str, object] = {}
        attempt = begin_attempt(
            paths,
            record,
            owner={"generator": "benchmarks/make_workdir.py"},
            placeholder={"kind": "local"},
            tags={},
            keep_previous=False,
        )
        write_final(paths, JobState.DONE, attempt=attempt, exit_code=0)
        if (i + 1) % 10000 == 0:
            print(f"{i + 1} jobs, {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--jobs", type=int, default=100_000)
    args = parser.parse_args()
    seconds = make(args.path, args.jobs)
    print(f"{args.jobs} done jobs written to {args.path} in {seconds:.1f} s")


if __name__ == "__main__":
    main()
