"""partita side of the benchmarks: task definitions and the workloads that use them.

Job processes import this module to find the task classes (``benchmarks/`` is put on
``PYTHONPATH`` by ``run.py``), so it must stay cheap to import: ``partita`` only, and the
workload code imports what else it needs inside the functions.

A workload runs in a fresh interpreter started by ``run.py``::

    python -c "import partita_tasks; partita_tasks.main()" WORKLOAD RESULT.json [ARGS as JSON]

and writes one JSON object (its timings) to ``RESULT.json``.
"""

from __future__ import annotations

from typing import Any

import partita
from partita import Config, Param, Task


class Point(Config, id="bench.point"):
    """The identifier workload: a config of three plain fields."""

    a: Param[int]
    b: Param[str]
    c: Param[float]


class Noop(Task, id="bench.noop"):
    """A task that does nothing; ``index`` makes each one distinct."""

    index: Param[int]

    def execute(self) -> None:
        pass


class Step(Task, id="bench.step"):
    """One link of a chain: depends on the previous step (``None`` for the first one)."""

    index: Param[int]
    previous: Param[Step | None] = None

    def execute(self) -> None:
        pass


class Node(Task, id="bench.node"):
    """A node of the layered DAG: ``(layer, j)`` takes ``(layer-1, j)`` and
    ``(layer-1, (j+1) % width)`` as parameters (``None`` in the first layer)."""

    layer: Param[int]
    j: Param[int]
    a: Param[Node | None] = None
    b: Param[Node | None] = None

    def execute(self) -> None:
        pass


# --- workloads (run in the driver process) ---------------------------------------------------


def identifiers(n: int) -> dict[str, float]:
    """Build ``n`` configs, then compute the identifier of each (timed separately)."""
    import time

    t0 = time.perf_counter()
    configs = [Point(a=i, b=f"word-{i}", c=i * 0.25) for i in range(n)]
    t1 = time.perf_counter()
    ids = [partita.identifier(cfg) for cfg in configs]
    t2 = time.perf_counter()
    assert len(set(ids)) == n
    return {"construct_s": t1 - t0, "identifiers_s": t2 - t1, "count": n}


def noop(n: int, workdir: str, max_jobs: int) -> dict[str, float]:
    """Submit ``n`` independent no-op tasks; time from entering the experiment to leaving it."""
    import time

    t0 = time.perf_counter()
    with partita.experiment(workdir, "bench-noop", max_jobs=max_jobs, quiet=True):
        t1 = time.perf_counter()
        for i in range(n):
            Noop(index=i).submit()
        t2 = time.perf_counter()
    t3 = time.perf_counter()
    return {
        "wall_s": t3 - t0,
        "enter_s": t1 - t0,
        "submit_s": t2 - t1,
        "exit_s": t3 - t2,
        "count": n,
    }


def chain(n: int, workdir: str, max_jobs: int) -> dict[str, float]:
    """Submit ``n`` tasks, each one a parameter of the next; time the whole experiment."""
    import time

    t0 = time.perf_counter()
    with partita.experiment(workdir, "bench-chain", max_jobs=max_jobs, quiet=True):
        previous = None
        for i in range(n):
            previous = Step(index=i, previous=previous).submit()
        t1 = time.perf_counter()
    t2 = time.perf_counter()
    return {"wall_s": t2 - t0, "submit_s": t1 - t0, "exit_s": t2 - t1, "count": n}


def sweep(n: int, workdir: str, fake: bool = False, max_jobs: int = 2) -> dict[str, float]:
    """Submit ``n`` independent no-op tasks (``fake``: played in-process by FakeLauncher).

    With ``fake``, the job folders, state files and ``done`` markers are real (written by
    the FakeLauncher through the job-folder protocol); only no job process is started.
    This makes a work directory of 100,000 done jobs in minutes; run it again on the same
    work directory and every task is identified and found done (the ``big`` workload).
    """
    import time

    launcher = None
    if fake:
        from partita.testing import FakeLauncher

        launcher = FakeLauncher(capacity=max_jobs)
    t0 = time.perf_counter()
    with partita.experiment(
        workdir, "bench-sweep", max_jobs=max_jobs, quiet=True, launcher=launcher
    ):
        t1 = time.perf_counter()
        for i in range(n):
            Noop(index=i).submit()
        t2 = time.perf_counter()
    t3 = time.perf_counter()
    return {
        "wall_s": t3 - t0,
        "enter_s": t1 - t0,
        "submit_s": t2 - t1,
        "exit_s": t3 - t2,
        "count": n,
    }


def dag(layers: int, width: int, workdir: str, max_jobs: int) -> dict[str, float]:
    """The layered DAG of ``Node`` (``layers`` × ``width`` tasks); time the whole experiment."""
    import time

    t0 = time.perf_counter()
    with partita.experiment(workdir, "bench-dag", max_jobs=max_jobs, quiet=True):
        previous: list[Any] = []
        for layer in range(layers):
            current = []
            for j in range(width):
                if previous:
                    a, b = previous[j], previous[(j + 1) % width]
                    current.append(Node(layer=layer, j=j, a=a, b=b).submit())
                else:
                    current.append(Node(layer=layer, j=j).submit())
            previous = current
        t1 = time.perf_counter()
    t2 = time.perf_counter()
    return {"wall_s": t2 - t0, "submit_s": t1 - t0, "exit_s": t2 - t1, "count": layers * width}


def _cpu() -> dict[str, float]:
    """CPU seconds of this process and of its waited-for children (the job processes)."""
    import resource

    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "cpu_self_s": me.ru_utime + me.ru_stime,
        "cpu_children_s": children.ru_utime + children.ru_stime,
        "rss_mib": me.ru_maxrss / 1024,  # peak RSS of this (the orchestrating) process
    }


WORKLOADS: dict[str, Any] = {
    "identifiers": identifiers,
    "noop": noop,
    "chain": chain,
    "sweep": sweep,
    "dag": dag,
}


def main() -> None:
    import json
    import sys
    import time

    name, out, *rest = sys.argv[1:]
    kwargs = json.loads(rest[0]) if rest else {}
    # The other tools' modules import their whole engine before any clock starts
    # (``import luigi`` loads its worker and scheduler, ``import parsl`` its dataflow
    # kernel); ``import partita`` defers the experiment machinery to the first
    # ``experiment()``. Load it here too, so that every tool's figures leave out importing
    # the tool (measured on its own by the ``import`` workload); the time it took is kept.
    t0 = time.perf_counter()
    partita.Experiment  # noqa: B018 (the attribute access imports the experiment layer)
    machinery_s = time.perf_counter() - t0
    result = WORKLOADS[name](**kwargs)
    result["machinery_import_s"] = machinery_s
    result.update(_cpu())
    result["python"] = sys.version.split()[0]
    result["version"] = partita.__version__
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f)
