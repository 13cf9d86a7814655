"""experimaestro side of the benchmarks: the same tasks and workloads as ``partita_tasks``.

Runs only in a separate virtual environment with ``experimaestro==2.7.0`` (see README.md);
never imported by partita. Job processes import this module to find the task classes
(``benchmarks/`` is put on ``PYTHONPATH`` by ``run.py``).

A workload runs in a fresh interpreter started by ``run.py``::

    python -c "import xpm_tasks; xpm_tasks.main()" WORKLOAD RESULT.json [ARGS as JSON]

and writes one JSON object (its timings) to ``RESULT.json``.

Fairness settings, all through experimaestro's public API:

* ``no_environmental_impact=True``: without it, every experiment start sleeps 3 s when
  CodeCarbon is not installed (``Experiment._show_carbon_warning``).
* ``dirty_git=DirtyGitAction.IGNORE``: no git inspection of the caller's folder.
* experimaestro's local launcher has no limit on concurrent jobs; ``max_jobs`` is imitated
  with a 2-slot ``CounterToken`` (one slot per task), kept in the temporary work area
  (``XPM_WORKDIR``) rather than in the user's home.
"""

from __future__ import annotations

from typing import Any, Optional

from experimaestro import Config, Param, Task


class Point(Config):
    """The identifier workload: a config of three plain fields."""

    a: Param[int]
    b: Param[str]
    c: Param[float]


class Noop(Task):
    """A task that does nothing; ``index`` makes each one distinct."""

    index: Param[int]

    def execute(self) -> None:
        pass


class Step(Task):
    """One link of a chain: depends on the previous step (``None`` for the first one)."""

    index: Param[int]
    previous: Param[Optional[Step]]  # noqa: UP045 (kept as experimaestro documents it)

    def execute(self) -> None:
        pass


class Node(Task):
    """A node of the layered DAG: ``(layer, j)`` takes ``(layer-1, j)`` and
    ``(layer-1, (j+1) % width)`` as parameters (``None`` in the first layer)."""

    layer: Param[int]
    j: Param[int]
    a: Param[Optional[Node]]  # noqa: UP045
    b: Param[Optional[Node]]  # noqa: UP045

    def execute(self) -> None:
        pass


# --- workloads (run in the driver process) ---------------------------------------------------


def _quiet_logging() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("xpm").setLevel(logging.WARNING)
    logging.getLogger("experimaestro").setLevel(logging.WARNING)


def _experiment(workdir: str, name: str):  # type: ignore[no-untyped-def]
    from experimaestro import experiment
    from experimaestro.experiments.configuration import DirtyGitAction

    return experiment(workdir, name, no_environmental_impact=True, dirty_git=DirtyGitAction.IGNORE)


def _token(max_jobs: int | None):  # type: ignore[no-untyped-def]
    if not max_jobs:
        return None
    from experimaestro.connectors.local import LocalConnector

    return LocalConnector.instance().createtoken(f"bench{max_jobs}", max_jobs)


def identifiers(n: int) -> dict[str, float]:
    """Build ``n`` configs, then compute the identifier of each (timed separately)."""
    import time

    t0 = time.perf_counter()
    configs = [Point.C(a=i, b=f"word-{i}", c=i * 0.25) for i in range(n)]
    t1 = time.perf_counter()
    ids = [cfg.__identifier__().all.hex() for cfg in configs]
    t2 = time.perf_counter()
    assert len(set(ids)) == n
    return {"construct_s": t1 - t0, "identifiers_s": t2 - t1, "count": n}


def noop(n: int, workdir: str, max_jobs: int | None) -> dict[str, float]:
    """Submit ``n`` independent no-op tasks; time from entering the experiment to leaving it."""
    import time

    _quiet_logging()
    token = _token(max_jobs)
    t0 = time.perf_counter()
    with _experiment(workdir, "bench-noop"):
        t1 = time.perf_counter()
        for i in range(n):
            task = Noop.C(index=i)
            if token is not None:
                token(1, task)
            task.submit()
        t2 = time.perf_counter()
    t3 = time.perf_counter()
    return {
        "wall_s": t3 - t0,
        "enter_s": t1 - t0,
        "submit_s": t2 - t1,
        "exit_s": t3 - t2,
        "count": n,
    }


def chain(n: int, workdir: str, max_jobs: int | None) -> dict[str, float]:
    """Submit ``n`` tasks, each one a parameter of the next; time the whole experiment."""
    import time

    _quiet_logging()
    token = _token(max_jobs)
    t0 = time.perf_counter()
    with _experiment(workdir, "bench-chain"):
        previous = None
        for i in range(n):
            task = Step.C(index=i, previous=previous)
            if token is not None:
                token(1, task)
            previous = task.submit()
        t1 = time.perf_counter()
    t2 = time.perf_counter()
    return {"wall_s": t2 - t0, "submit_s": t1 - t0, "exit_s": t2 - t1, "count": n}


def dag(layers: int, width: int, workdir: str, max_jobs: int | None) -> dict[str, float]:
    """The layered DAG of ``Node`` (``layers`` × ``width`` tasks); time the whole experiment."""
    import time

    _quiet_logging()
    token = _token(max_jobs)
    t0 = time.perf_counter()
    with _experiment(workdir, "bench-dag"):
        previous: list[Any] = []
        for layer in range(layers):
            current = []
            for j in range(width):
                a = previous[j] if previous else None
                b = previous[(j + 1) % width] if previous else None
                task = Node.C(layer=layer, j=j, a=a, b=b)
                if token is not None:
                    token(1, task)
                current.append(task.submit())
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
        "rss_mib": me.ru_maxrss / 1024,
    }


WORKLOADS: dict[str, Any] = {"identifiers": identifiers, "noop": noop, "chain": chain, "dag": dag}


def main() -> None:
    import json
    import sys
    from importlib.metadata import version

    name, out, *rest = sys.argv[1:]
    kwargs = json.loads(rest[0]) if rest else {}
    result = WORKLOADS[name](**kwargs)
    result.update(_cpu())
    result["python"] = sys.version.split()[0]
    result["version"] = version("experimaestro")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f)
