"""parsl side of the benchmarks: the same workloads as ``partita_tasks``, in parsl 2026.x.

Runs only in a separate virtual environment with ``parsl`` (see README.md); never imported
by partita. A workload runs in a fresh interpreter started by ``run.py``::

    python -c "import parsl_tasks; parsl_tasks.main()" WORKLOAD RESULT.json [ARGS as JSON]

and writes one JSON object (its timings) to ``RESULT.json``.

How the tasks are run (``executor`` argument):

* ``threads``: parsl's ``ThreadPoolExecutor(max_threads=2)``. Every task is a function
  call on one of 2 threads of the orchestrating process: **no isolation at all** (a task
  that crashes, leaks memory or changes a global affects every other task).
* ``htex``: parsl's ``HighThroughputExecutor`` with one local block of 2 worker processes
  (``LocalProvider``, ``max_workers_per_node=2``). The workers are long-lived processes
  that run task after task: a task is isolated from the orchestrator, not from the tasks
  that ran before it in the same worker.

A task is done when parsl's memoizer recorded it: apps are ``cache=True`` and the
``BasicMemoizer`` checkpoints each task as it ends (``checkpoint_mode="task_exit"``) into
the run directory inside the work directory. A second run loads every checkpoint of that
directory (``get_all_checkpoints``) and runs nothing: that is the re-check.
"""

from __future__ import annotations

import os
import time
from typing import Any

import parsl
from parsl import python_app


@python_app(cache=True)
def noop(index: int) -> int:
    """Does nothing; ``index`` makes each call distinct."""
    return index


@python_app(cache=True)
def step(index: int, *previous: int) -> int:
    """A link of a chain or a node of the DAG: waits for ``previous`` (futures)."""
    return index


def _load(workdir: str, executor: str, max_jobs: int) -> Any:
    from parsl.config import Config
    from parsl.dataflow.memoization import BasicMemoizer
    from parsl.utils import get_all_checkpoints

    run_dir = os.path.join(workdir, "runinfo")
    if executor == "threads":
        from parsl.executors import ThreadPoolExecutor

        executors = [ThreadPoolExecutor(max_threads=max_jobs)]
    else:
        from parsl.executors import HighThroughputExecutor
        from parsl.providers import LocalProvider

        executors = [
            HighThroughputExecutor(
                label="htex",
                max_workers_per_node=max_jobs,
                address="127.0.0.1",
                provider=LocalProvider(init_blocks=1, min_blocks=1, max_blocks=1),
            )
        ]
    config = Config(
        executors=executors,
        run_dir=run_dir,
        memoizer=BasicMemoizer(
            checkpoint_mode="task_exit",
            checkpoint_files=get_all_checkpoints(run_dir) if os.path.isdir(run_dir) else None,
        ),
        initialize_logging=False,
        usage_tracking=0,
        strategy="none",
    )
    return parsl.load(config)


def _run(workdir: str, executor: str, max_jobs: int, submit: Any) -> dict[str, float]:
    t0 = time.perf_counter()
    dfk = _load(workdir, executor, max_jobs)
    t1 = time.perf_counter()
    try:
        futures = submit()
        t2 = time.perf_counter()
        for future in futures:
            future.result()
    finally:
        dfk.cleanup()
        parsl.clear()
    t3 = time.perf_counter()
    return {"wall_s": t3 - t0, "enter_s": t1 - t0, "submit_s": t2 - t1, "count": len(futures)}


def noop_workload(n: int, workdir: str, max_jobs: int, executor: str = "threads") -> dict:
    """``n`` independent no-op tasks (a second call on the same workdir re-checks them)."""
    return _run(workdir, executor, max_jobs, lambda: [noop(i) for i in range(n)])


def chain_workload(n: int, workdir: str, max_jobs: int, executor: str = "threads") -> dict:
    """``n`` tasks, each waiting for the previous one."""

    def submit() -> list[Any]:
        futures = [step(0)]
        for i in range(1, n):
            futures.append(step(i, futures[-1]))
        return futures

    return _run(workdir, executor, max_jobs, submit)


def dag_workload(
    layers: int, width: int, workdir: str, max_jobs: int, executor: str = "threads"
) -> dict:
    """``(layer, j)`` waits for ``(layer-1, j)`` and ``(layer-1, (j+1) % width)``."""

    def submit() -> list[Any]:
        futures: list[Any] = []
        previous: list[Any] = []
        for layer in range(layers):
            current = []
            for j in range(width):
                deps = [previous[k] for k in sorted({j, (j + 1) % width})] if previous else []
                current.append(step(layer * width + j, *deps))
            futures += current
            previous = current
        return futures

    return _run(workdir, executor, max_jobs, submit)


def _cpu() -> dict[str, float]:
    import resource

    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "cpu_self_s": me.ru_utime + me.ru_stime,
        "cpu_children_s": children.ru_utime + children.ru_stime,
        "rss_mib": me.ru_maxrss / 1024,
    }


WORKLOADS: dict[str, Any] = {"noop": noop_workload, "chain": chain_workload, "dag": dag_workload}


def main() -> None:
    import json
    import sys

    name, out, *rest = sys.argv[1:]
    kwargs = json.loads(rest[0]) if rest else {}
    result = WORKLOADS[name](**kwargs)
    result.update(_cpu())
    result["python"] = sys.version.split()[0]
    result["version"] = parsl.__version__
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f)
