"""luigi side of the benchmarks: the same workloads as ``partita_tasks``, in luigi 3.8.

Runs only in a separate virtual environment with ``luigi==3.8.*`` (see README.md); never
imported by partita. A workload runs in a fresh interpreter started by ``run.py``::

    python -c "import luigi_tasks; luigi_tasks.main()" WORKLOAD RESULT.json [ARGS as JSON]

and writes one JSON object (its timings) to ``RESULT.json``.

How the tasks are run (the fairest luigi equivalent of partita's local jobs):

* ``luigi.build(..., local_scheduler=True, workers=2)``: luigi's in-process scheduler and
  one worker with 2 slots (partita's ``max_jobs=2``). With more than one slot, luigi's
  worker runs **every task in a process of its own**: it forks the worker process
  (``multiprocessing.Process``, fork start method on Linux) for each task and collects
  the outcome through a queue. The task's ``run()`` therefore cannot change the worker's
  memory, but the child shares everything the worker had imported (no fresh interpreter).
* A task is done when its output file exists (``LocalTarget``), written by ``run()``
  atomically (luigi writes a temporary file and renames it). A second ``build`` of the same
  tasks finds every output and runs nothing: that is the re-check.
* ``no_lock=True``: no process lock file; logging at WARNING.
"""

from __future__ import annotations

import os
import time
from typing import Any

import luigi


class Noop(luigi.Task):
    """A task that does nothing but write its output file; ``index`` makes it distinct."""

    workdir = luigi.Parameter()
    index = luigi.IntParameter()

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(os.path.join(self.workdir, "noop", f"{self.index}.done"))

    def run(self) -> None:
        with self.output().open("w") as f:
            f.write("")


class Step(luigi.Task):
    """One link of a chain: requires the previous step (none for the first one)."""

    workdir = luigi.Parameter()
    index = luigi.IntParameter()

    def requires(self) -> list[Step]:
        return [Step(workdir=self.workdir, index=self.index - 1)] if self.index > 0 else []

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(os.path.join(self.workdir, "step", f"{self.index}.done"))

    def run(self) -> None:
        with self.output().open("w") as f:
            f.write("")


class Node(luigi.Task):
    """A node of the layered DAG: ``(layer, j)`` requires ``(layer-1, j)`` and
    ``(layer-1, (j+1) % width)``."""

    workdir = luigi.Parameter()
    layer = luigi.IntParameter()
    j = luigi.IntParameter()
    width = luigi.IntParameter()

    def requires(self) -> list[Node]:
        if self.layer == 0:
            return []
        return [
            Node(workdir=self.workdir, layer=self.layer - 1, j=k, width=self.width)
            for k in sorted({self.j, (self.j + 1) % self.width})
        ]

    def output(self) -> luigi.LocalTarget:
        name = f"{self.layer}-{self.j}.done"
        return luigi.LocalTarget(os.path.join(self.workdir, "node", name))

    def run(self) -> None:
        with self.output().open("w") as f:
            f.write("")


def _build(tasks: list[luigi.Task], max_jobs: int) -> None:
    ok = luigi.build(
        tasks, local_scheduler=True, workers=max_jobs, no_lock=True, log_level="WARNING"
    )
    if not ok:
        raise SystemExit("luigi: a task failed")


def noop(n: int, workdir: str, max_jobs: int) -> dict[str, float]:
    """``n`` independent no-op tasks, ``max_jobs`` at once (a second call re-checks them)."""
    t0 = time.perf_counter()
    tasks = [Noop(workdir=workdir, index=i) for i in range(n)]
    t1 = time.perf_counter()
    _build(tasks, max_jobs)
    t2 = time.perf_counter()
    return {"wall_s": t2 - t0, "submit_s": t1 - t0, "count": n}


def chain(n: int, workdir: str, max_jobs: int) -> dict[str, float]:
    """``n`` tasks, each requiring the previous one (luigi expands the chain from the last)."""
    t0 = time.perf_counter()
    last = Step(workdir=workdir, index=n - 1)
    _build([last], max_jobs)
    t1 = time.perf_counter()
    return {"wall_s": t1 - t0, "submit_s": 0.0, "count": n}


def dag(layers: int, width: int, workdir: str, max_jobs: int) -> dict[str, float]:
    """The layered DAG (see ``Node``); every node of the last layer is asked for."""
    t0 = time.perf_counter()
    tasks = [Node(workdir=workdir, layer=layers - 1, j=j, width=width) for j in range(width)]
    _build(tasks, max_jobs)
    t1 = time.perf_counter()
    return {"wall_s": t1 - t0, "submit_s": 0.0, "count": layers * width}


def _cpu() -> dict[str, float]:
    import resource

    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "cpu_self_s": me.ru_utime + me.ru_stime,
        "cpu_children_s": children.ru_utime + children.ru_stime,
        "rss_mib": me.ru_maxrss / 1024,
    }


WORKLOADS: dict[str, Any] = {"noop": noop, "chain": chain, "dag": dag}


def main() -> None:
    import json
    import sys

    name, out, *rest = sys.argv[1:]
    kwargs = json.loads(rest[0]) if rest else {}
    result = WORKLOADS[name](**kwargs)
    result.update(_cpu())
    result["python"] = sys.version.split()[0]
    result["version"] = luigi.__version__
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f)
