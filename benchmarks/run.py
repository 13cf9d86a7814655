"""Benchmark harness: partita, luigi, parsl and experimaestro on the same workloads.

Usage::

    python benchmarks/run.py [--only NAME[,NAME...]] [--repeat N] [--tools T[,T...]]
                             [--quick | --full] [--json OUT]

Every measurement runs in a fresh interpreter of the tool's own virtual environment (so
imports, caches and scheduler threads never leak from one run to the next), in a work
directory of its own under /tmp (``--scratch``); all of them are deleted when the
invocation ends. All tools run in the same invocation, workload after workload, so that
their ratios are measured side by side on a shared machine. The figures are medians over
the repeats. The table is printed, and everything (each run's raw timings included) is
written to ``benchmarks/results/latest.json`` (and to ``--json OUT`` if given). Bytecode
is cached in a private ``PYTHONPYCACHEPREFIX`` whatever the caller's
``PYTHONDONTWRITEBYTECODE`` says (``--no-bytecode-cache`` keeps the caller's settings);
see README.md.

Benchmarks (``--only`` takes these names; the default set is marked *):

* ``one`` *: one no-op task, end to end (entering the experiment to leaving it).
* ``noop200``, ``noop1000`` *: 200 / 1,000 independent no-op tasks, 2 at once.
* ``chain50`` *: 50 tasks, each a parameter of (luigi: a requirement of) the next.
* ``dag`` *: 10 layers of 20 tasks; task (l, j) depends on (l-1, j) and (l-1, (j+1) % 20).
* ``rerun1000`` *: the second run of ``noop1000`` on the same work directory (all done).
* ``identifiers`` *, ``import`` *: identifier speed (partita, experimaestro) and import time.
* ``big``: partita only: 100,000 tasks, all done, built, identified and re-checked by an
  experiment (also at 10,000 and 30,000 tasks, to show it is linear).
* ``cli100k``: partita only: ``partita status``, ``partita jobs list --state running`` and
  ``partita jobs list --json | head`` on a work directory of 100,000 jobs, index cold then
  warm, and ``status`` after one job changed.
* ``slurm``: runs ``benchmarks/slurm.py`` (the private Slurm cluster) and reports its JSON.
* ``slurmpack``: runs ``benchmarks/slurm_pack.py`` (500 no-op tasks, one per array element
  against packed elements) and reports its JSON.

Tools (``--tools``): ``partita``, ``luigi`` (luigi 3.8, ``/tmp/luigi-venv``), ``parsl``
(threads, ``/tmp/parsl-venv``), ``parsl-htex`` (parsl's process pool), ``xpm``
(experimaestro 2.7.0, ``/tmp/xpm-venv``). experimaestro's 1,000-task workloads take
minutes, so by default (``--quick``) they run with 200 tasks and the figure is scaled ×5,
labelled as such; ``--full`` runs them with 1,000 tasks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results" / "latest.json"

BENCHMARKS = [
    "one",
    "identifiers",
    "noop200",
    "noop1000",
    "chain50",
    "dag",
    "rerun1000",
    "import",
    "big",
    "cli100k",
    "slurm",
    "slurmpack",
]
DEFAULT = ["one", "noop1000", "chain50", "dag", "rerun1000", "identifiers", "import"]
TOOLS = ["partita", "luigi", "parsl", "parsl-htex", "xpm"]
DEFAULT_TOOLS = ["partita", "luigi", "parsl", "parsl-htex", "xpm"]
LABEL = {
    "partita": "partita",
    "luigi": "luigi",
    "parsl": "parsl (threads)",
    "parsl-htex": "parsl (htex)",
    "xpm": "experimaestro",
}
MODULE = {
    "partita": "partita_tasks",
    "luigi": "luigi_tasks",
    "parsl": "parsl_tasks",
    "parsl-htex": "parsl_tasks",
    "xpm": "xpm_tasks",
}
PACKAGE = {
    "partita": "partita",
    "luigi": "luigi",
    "parsl": "parsl",
    "parsl-htex": "parsl",
    "xpm": "experimaestro",
}
#: What the ``import`` workload runs, where it is more than ``import PACKAGE``.
IMPORT_STATEMENT = {"partita": "import partita; partita.Experiment"}
VENV = {
    "luigi": ("/tmp/luigi-venv", "luigi==3.8.*"),
    "parsl": ("/tmp/parsl-venv", "parsl"),
    "parsl-htex": ("/tmp/parsl-venv", "parsl"),
    "xpm": ("/tmp/xpm-venv", "experimaestro==2.7.0"),
}
#: Extra keyword arguments of every task workload of a tool.
EXTRA: dict[str, dict[str, Any]] = {
    "parsl": {"executor": "threads"},
    "parsl-htex": {"executor": "htex"},
}
#: Which benchmarks a tool can run (the others show "n/a").
SUPPORTS = {
    "partita": set(BENCHMARKS),
    "luigi": {"one", "noop200", "noop1000", "chain50", "dag", "rerun1000", "import"},
    "parsl": {"one", "noop200", "noop1000", "chain50", "dag", "rerun1000", "import"},
    "parsl-htex": {"one", "noop200", "noop1000", "chain50", "dag", "rerun1000"},
    "xpm": {"one", "identifiers", "noop200", "noop1000", "chain50", "dag", "rerun1000", "import"},
}
JOB_TYPE = {  # how to count the done tasks of a work directory: (folder, marker) per kind
    "partita": {
        "noop": ("jobs/bench.noop", "*/done"),
        "chain": ("jobs/bench.step", "*/done"),
        "dag": ("jobs/bench.node", "*/done"),
    },
    "luigi": {"noop": ("noop", "*.done"), "chain": ("step", "*.done"), "dag": ("node", "*.done")},
    "xpm": {
        "noop": ("jobs/xpm_tasks.noop", "*/noop.done"),
        "chain": ("jobs/xpm_tasks.step", "*/step.done"),
        "dag": ("jobs/xpm_tasks.node", "*/node.done"),
    },
}

#: The issue's targets: absolute seconds for partita, and ratios to luigi.
TARGETS = {
    "identifiers": 0.1,
    "one": 0.030,
    "noop1000": 3.0,
    "chain50": 0.25,
    "dag": 0.7,
    "rerun1000": 0.1,
    "import": 0.150,
    "big": 10.0,
    "cli100k": 1.0,
}
RATIO_TARGETS = {"one": 1.0, "noop1000": 0.5, "chain50": 1.0, "dag": 0.7, "rerun1000": 0.7}
DESCRIPTION = {
    "one": "1 task end-to-end",
    "identifiers": "10,000 identifiers (3-field configs)",
    "noop200": "200 no-op tasks, 2 at once",
    "noop1000": "1,000 no-op tasks, 2 at once",
    "chain50": "chain of 50 dependent tasks",
    "dag": "DAG 10×20 (2 parents each)",
    "rerun1000": "re-check 1,000 done tasks",
    "import": "import time",
    "big": "100,000 tasks all done, re-checked",
    "cli100k": "CLI on a 100,000-job work directory (warm index)",
    "slurm": "Slurm: benchmarks/slurm.py",
    "slurmpack": "Slurm packing: benchmarks/slurm_pack.py",
}
IDENTIFIER_COUNT = 10_000
MAX_JOBS = 2
CHAIN_LENGTH = 50
DAG_LAYERS, DAG_WIDTH = 10, 20
IMPORT_RUNS = 15
BIG = 100_000
RSS_TARGET_MIB = 40.0
CPU_TARGET_S = 0.001  # orchestrator CPU per no-op job
BIG_RSS_TARGET_MIB = 500.0


class BenchError(Exception):
    """A workload failed; the message says why (shown in the table and the JSON)."""


# --- running workloads ---------------------------------------------------------------------


@dataclass
class Tool:
    name: str
    python: str | None
    problem: str | None = None  # why it cannot be measured
    version: str | None = None
    python_version: str | None = None
    scratch: Path | None = None  # per-tool temporary area (XPM_WORKDIR for tokens)
    pycache: Path | None = None  # PYTHONPYCACHEPREFIX; None: leave bytecode caching as it is

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PARTITA_", "XPM_"))}
        env["PYTHONPATH"] = str(HERE)
        if self.name == "partita":
            # The repository's sources, whatever partita the interpreter has installed.
            env["PYTHONPATH"] += os.pathsep + str(REPO / "src")
        if self.pycache is not None:
            # Bytecode is cached (as for any user), in a private tree: nothing is written
            # next to the sources, and PYTHONDONTWRITEBYTECODE in the caller's environment
            # does not make every job process recompile the modules it imports.
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(self.pycache)
        if self.name == "xpm" and self.scratch is not None:
            env["XPM_WORKDIR"] = str(self.scratch / "xpm-home")
        if self.python is not None and self.name != "partita":
            # parsl's process pool starts its helpers (interchange.py, ...) from PATH.
            env["PATH"] = str(Path(self.python).parent) + os.pathsep + env.get("PATH", "")
        return env

    @property
    def label(self) -> str:
        return LABEL[self.name]


def probe(tool: Tool) -> None:
    """Fill in version information, or ``problem`` if the tool cannot be run."""
    if tool.python is None or not Path(tool.python).exists():
        venv, requirement = VENV.get(tool.name, ("", ""))
        tool.problem = f"no interpreter at {tool.python}" + (
            f"; create it with 'python3 -m venv {venv} && {venv}/bin/pip install \"{requirement}\"'"
            if venv
            else ""
        )
        return
    code = (
        "import sys, importlib.metadata as m; "
        f"print(sys.version.split()[0], m.version({PACKAGE[tool.name]!r}))"
    )
    proc = subprocess.run(
        [tool.python, "-c", code], capture_output=True, text=True, env=tool.env(), cwd="/tmp"
    )
    if proc.returncode != 0:
        tool.problem = (
            f"{PACKAGE[tool.name]} not installed in {tool.python}: "
            + (proc.stderr.strip().splitlines() or ["?"])[-1]
        )
        return
    tool.python_version, tool.version = proc.stdout.split()


def warm_up(tool: Tool) -> None:
    """Run each workload once, small and unmeasured: fills the bytecode and file caches."""
    if "identifiers" in SUPPORTS[tool.name]:
        run_workload(tool, "identifiers", 600.0, n=100)
    for kind, size in (("noop", {"n": 2}), ("chain", {"n": 2}), ("dag", {"layers": 2, "width": 2})):
        workdir = fresh_workdir(tool)
        for _ in range(2):
            run_workload(tool, kind, 600.0, **size, workdir=str(workdir), max_jobs=MAX_JOBS)


def machine_busy() -> float:
    """CPU seconds spent by the whole machine since boot (all cores, from /proc/stat)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def become_subreaper() -> bool:
    """Adopt orphaned descendants (PR_SET_CHILD_SUBREAPER), so that their CPU is counted.

    A tool whose helpers outlive their parent (parsl's worker pool is started through a
    shell and detached) would otherwise have their CPU time lost: once they are this
    process's children, :func:`reap` waits for them and ``RUSAGE_CHILDREN`` includes them.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(36, 1, 0, 0, 0) == 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def reap(deadline: float = 5.0) -> None:
    """Wait for adopted descendants that are still exiting (see :func:`become_subreaper`)."""
    end = time.monotonic() + deadline
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() > end:
                return
            time.sleep(0.05)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_workload(tool: Tool, workload: str, timeout: float, **kwargs: Any) -> dict[str, Any]:
    """Run one workload in a fresh interpreter; return its timings (plus ``process_s``).

    ``cpu_total_s`` is all the CPU of the workload process and of every process it started
    (job processes, forked workers, helpers), measured from this side.
    """
    assert tool.python is not None and tool.scratch is not None
    if workload in ("noop", "chain", "dag"):
        kwargs.update(EXTRA.get(tool.name, {}))
    out = tool.scratch / f"result-{time.monotonic_ns()}.json"
    log = tool.scratch / "last-workload.log"
    code = f"import {MODULE[tool.name]} as m; m.main()"
    cmd = [tool.python, "-c", code, workload, str(out), json.dumps(kwargs)]
    reap(0)
    cpu0 = children_cpu()
    busy0 = machine_busy()
    t0 = time.perf_counter()
    with open(log, "w", encoding="utf-8") as logf:
        try:
            proc = subprocess.run(
                cmd,
                stdout=logf,
                stderr=subprocess.STDOUT,
                env=tool.env(),
                cwd=tool.scratch,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise BenchError(f"{workload}: no result after {timeout:.0f} s (timed out)") from None
    elapsed = time.perf_counter() - t0
    reap()
    busy = machine_busy() - busy0
    cpu = children_cpu() - cpu0
    if proc.returncode != 0 or not out.exists():
        tail = log.read_text("utf-8", "replace").strip().splitlines()[-6:]
        raise BenchError(f"{workload}: exit code {proc.returncode}: " + " | ".join(tail))
    result: dict[str, Any] = json.loads(out.read_text("utf-8"))
    out.unlink()
    result["process_s"] = elapsed
    result["cpu_total_s"] = max(
        cpu, result.get("cpu_self_s", 0.0) + result.get("cpu_children_s", 0.0)
    )
    # CPU used meanwhile by everything else on the machine: other users' work competes
    # with the workload for the 2 cores and shows here.
    result["foreign_cpu_s"] = max(0.0, busy - result["cpu_total_s"])
    return result


def count_done(tool: Tool, workdir: Path, kind: str) -> int | None:
    """Tasks with their "done" record in ``workdir`` (``None``: the tool keeps no files)."""
    where = JOB_TYPE.get(tool.name, {}).get(kind)
    if where is None:
        return None
    folder, pattern = where
    return sum(1 for _ in (workdir / folder).glob(pattern))


def fresh_workdir(tool: Tool) -> Path:
    """A new work directory in the tool's scratch area, left there until the invocation ends
    (the whole area is deleted then). Deleting it after its run would charge the next run,
    often another tool's: on ext4 without a journal, inodes freed in the last minutes are
    skipped by every later creation in their block group, which scans past each of them
    (README.md, "The file system")."""
    assert tool.scratch is not None
    return Path(tempfile.mkdtemp(prefix="wd-", dir=tool.scratch))


# --- the benchmarks --------------------------------------------------------------------------


@dataclass
class Outcome:
    """One benchmark for one tool: the runs, the headline figure and how to read it."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    value: float | None = None  # headline seconds (median, scaled if ``scale`` != 1)
    measured: float | None = None  # unscaled median
    size: int | None = None  # tasks actually run
    scale: float = 1.0
    cpu_per_task: float | None = None  # seconds of CPU per task, all processes
    orchestrator_cpu_per_task: float | None = None  # of the workload (orchestrating) process
    rss_mib: float | None = None  # peak RSS of the orchestrating process (median)
    note: str = ""
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "value_s": self.value,
            "measured_s": self.measured,
            "size": self.size,
            "scale": self.scale,
            "cpu_per_task_s": self.cpu_per_task,
            "orchestrator_cpu_per_task_s": self.orchestrator_cpu_per_task,
            "orchestrator_rss_mib": self.rss_mib,
            "note": self.note,
            "error": self.error,
            "extra": self.extra,
            "runs": self.runs,
        }


class Suite:
    def __init__(
        self, args: argparse.Namespace, tools: dict[str, Tool], selected: list[str]
    ) -> None:
        self.args = args
        self.tools = tools
        self.selected = selected
        self.noop_cache: dict[tuple[str, int], list[tuple[dict, dict | None]]] = {}
        self.big_workdir: Path | None = None

    def repeats(self, tool: Tool) -> int:
        if tool.name == "xpm" and self.args.xpm_repeat is not None:
            return int(self.args.xpm_repeat)
        return int(self.args.repeat)

    def big(self, tool: Tool) -> int:
        """The number of tasks of the '1,000 tasks' workloads for this tool."""
        if tool.name == "xpm" and not self.args.full:
            return int(self.args.xpm_quick_size)
        return 1000

    def max_jobs(self, tool: Tool) -> int | None:
        return None if tool.name == "xpm" and self.args.xpm_uncapped else MAX_JOBS

    def timeout(self, tool: Tool) -> float:
        return 600.0 if tool.name == "partita" else 3600.0

    def checked(self, tool: Tool, workdir: Path, kind: str, n: int, result: dict) -> dict:
        done = count_done(tool, workdir, kind)
        result["done"] = done
        if done is not None and done != n:
            raise BenchError(f"{kind}: only {done} of {n} tasks done")
        return result

    # The no-op runs are shared: noop1000 and rerun1000 use the same work directories, and
    # with --quick experimaestro's noop1000 is its noop200.
    def noop_runs(self, tool: Tool, n: int, rerun: bool) -> list[tuple[dict, dict | None]]:
        key = (tool.name, n)
        cached = self.noop_cache.get(key)
        if cached is not None and (not rerun or all(r is not None for _, r in cached)):
            return cached
        runs: list[tuple[dict, dict | None]] = []
        repeats = max(self.repeats(tool), 5) if n == 1 else self.repeats(tool)
        for i in range(repeats):
            workdir = fresh_workdir(tool)
            first = run_workload(
                tool,
                "noop",
                self.timeout(tool),
                n=n,
                workdir=str(workdir),
                max_jobs=self.max_jobs(tool),
            )
            self.checked(tool, workdir, "noop", n, first)
            second = None
            if rerun:
                second = run_workload(
                    tool,
                    "noop",
                    self.timeout(tool),
                    n=n,
                    workdir=str(workdir),
                    max_jobs=self.max_jobs(tool),
                )
            runs.append((first, second))
            self.progress(
                f"{tool.label} noop n={n} #{i + 1}: {first['wall_s']:.3f} s"
                + (f", rerun {second['wall_s']:.3f} s" if second else "")
            )
        self.noop_cache[key] = runs
        return runs

    def progress(self, text: str) -> None:
        print(f"  .. {text}", file=sys.stderr, flush=True)

    def measure(self, bench: str, tool: Tool) -> Outcome:
        try:
            outcome: Outcome = getattr(self, "bench_" + bench)(tool)
            return outcome
        except BenchError as exc:
            return Outcome(error=str(exc))

    def bench_identifiers(self, tool: Tool) -> Outcome:
        runs = []
        for _ in range(self.repeats(tool)):
            runs.append(run_workload(tool, "identifiers", 600.0, n=IDENTIFIER_COUNT))
        med = statistics.median(r["identifiers_s"] for r in runs)
        construct = statistics.median(r["construct_s"] for r in runs)
        return Outcome(
            runs=runs,
            value=med,
            measured=med,
            size=IDENTIFIER_COUNT,
            note=f"{IDENTIFIER_COUNT / med:,.0f} ids/s; construction {construct:.3f} s",
        )

    def _noop(self, tool: Tool, n: int, nominal: int) -> Outcome:
        rerun = "rerun1000" in self.selected and n == self.big(tool)
        runs = self.noop_runs(tool, n, rerun)
        return self._scaled([first for first, _ in runs], n, nominal, "tasks")

    def _scaled(self, runs: list[dict], n: int, nominal: int, what: str) -> Outcome:
        med = statistics.median(r["wall_s"] for r in runs)
        scale = nominal / n
        submit = statistics.median(r.get("submit_s", 0.0) for r in runs)
        walls = [r["wall_s"] for r in runs]
        note = f"runs {fmt(min(walls))}–{fmt(max(walls))}; submit {fmt(submit)}"
        cpu = statistics.median(r["cpu_total_s"] / n for r in runs)
        driver = statistics.median(r["cpu_self_s"] / n for r in runs)
        rss = statistics.median(r.get("rss_mib", 0.0) for r in runs) or None
        note += f"; CPU per task {cpu * 1000:.1f} ms ({driver * 1000:.1f} ms in the orchestrator)"
        if rss:
            note += f"; orchestrator peak RSS {rss:.0f} MiB"
        foreign = statistics.median(r["foreign_cpu_s"] / r["process_s"] for r in runs)
        note += f"; other processes used {foreign:.2f} cores meanwhile"
        if scale != 1:
            note = f"SCALED ×{scale:g} from {n} {what} (measured {fmt(med)}); " + note
        return Outcome(
            runs=runs,
            value=med * scale,
            measured=med,
            size=n,
            scale=scale,
            cpu_per_task=cpu,
            orchestrator_cpu_per_task=driver,
            rss_mib=rss,
            note=note,
        )

    def bench_one(self, tool: Tool) -> Outcome:
        return self._noop(tool, 1, 1)

    def bench_noop200(self, tool: Tool) -> Outcome:
        return self._noop(tool, 200, 200)

    def bench_noop1000(self, tool: Tool) -> Outcome:
        return self._noop(tool, self.big(tool), 1000)

    def bench_rerun1000(self, tool: Tool) -> Outcome:
        n = self.big(tool)
        runs = [second for _, second in self.noop_runs(tool, n, True) if second is not None]
        return self._scaled(runs, n, 1000, "done tasks")

    def _graph(self, tool: Tool, kind: str, count: int, **size: int) -> Outcome:
        runs = []
        for i in range(self.repeats(tool)):
            workdir = fresh_workdir(tool)
            r = run_workload(
                tool,
                kind,
                self.timeout(tool),
                **size,
                workdir=str(workdir),
                max_jobs=self.max_jobs(tool),
            )
            runs.append(self.checked(tool, workdir, kind, count, r))
            self.progress(f"{tool.label} {kind} #{i + 1}: {r['wall_s']:.3f} s")
        return self._scaled(runs, count, count, "tasks")

    def bench_chain50(self, tool: Tool) -> Outcome:
        return self._graph(tool, "chain", CHAIN_LENGTH, n=CHAIN_LENGTH)

    def bench_dag(self, tool: Tool) -> Outcome:
        return self._graph(tool, "dag", DAG_LAYERS * DAG_WIDTH, layers=DAG_LAYERS, width=DAG_WIDTH)

    # --- the 100,000-job work directory (partita only) ------------------------------------

    def big_dir(self, tool: Tool) -> Path:
        """A work directory of ``--big-size`` done jobs (made once, or ``--big-workdir``)."""
        if self.big_workdir is not None:
            return self.big_workdir
        if self.args.big_workdir:
            path = Path(self.args.big_workdir)
            if not (path / "jobs").is_dir():
                self.progress(f"making {path} ({self.args.big_size} jobs) ...")
                make_big(tool, path, self.args.big_size)
        else:
            assert tool.scratch is not None
            path = tool.scratch / "big"
            self.progress(f"making {path} ({self.args.big_size} jobs) ...")
            make_big(tool, path, self.args.big_size)
        self.big_workdir = path
        return path

    def bench_big(self, tool: Tool) -> Outcome:
        workdir = self.big_dir(tool)
        total = int(self.args.big_size)
        sizes = sorted({max(1, total // 10), max(1, (total * 3) // 10), total})
        runs: list[dict[str, Any]] = []
        by_size: dict[int, list[dict[str, Any]]] = {}
        for n in sizes:
            for i in range(self.repeats(tool) if n == total else 1):
                r = run_workload(
                    tool, "sweep", self.timeout(tool), n=n, workdir=str(workdir), max_jobs=MAX_JOBS
                )
                r["size"] = n
                runs.append(r)
                by_size.setdefault(n, []).append(r)
                self.progress(
                    f"{tool.label} re-check of {n} done tasks #{i + 1}: {r['wall_s']:.2f} s, "
                    f"RSS {r['rss_mib']:.0f} MiB"
                )
        full = by_size[total]
        med = statistics.median(r["wall_s"] for r in full)
        rss = statistics.median(r["rss_mib"] for r in full)
        per = {n: statistics.median(r["wall_s"] for r in rs) / n * 1e6 for n, rs in by_size.items()}
        note = "; ".join(
            f"{n:,} tasks: {fmt(statistics.median(r['wall_s'] for r in by_size[n]))} "
            f"({per[n]:.0f} µs/task, RSS {statistics.median(r['rss_mib'] for r in by_size[n]):.0f}"
            " MiB)"
            for n in sizes
        )
        submit = statistics.median(r["submit_s"] for r in full)
        note += f"; submit() loop {fmt(submit)} of the {total:,}-task run"
        return Outcome(
            runs=runs,
            value=med,
            measured=med,
            size=total,
            rss_mib=rss,
            cpu_per_task=statistics.median(r["cpu_total_s"] for r in full) / total,
            note=note,
            extra={"per_task_us": per},
        )

    def bench_cli100k(self, tool: Tool) -> Outcome:
        assert tool.python is not None
        workdir = self.big_dir(tool)
        commands = {
            "status": ["status", str(workdir)],
            "jobs list --state running": ["jobs", "list", str(workdir), "--state", "running"],
            "jobs list --json | head": ["jobs", "list", str(workdir), "--json"],
        }

        def timed(args: list[str]) -> float:
            t0 = time.perf_counter()
            if args[-1] == "--json":  # as `| head` does: read the first lines, then close
                with subprocess.Popen(
                    [tool.python, "-m", "partita.cli", *args],  # type: ignore[list-item]
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    env=tool.env(),
                    cwd="/tmp",
                ) as head:
                    assert head.stdout is not None
                    first = head.stdout.read(4096)
                    head.stdout.close()
                    head.wait()
                if not first.startswith(b"["):
                    raise BenchError(f"partita {' '.join(args)}: printed {first[:100]!r}")
                return time.perf_counter() - t0
            proc = subprocess.run(
                [tool.python, "-m", "partita.cli", *args],  # type: ignore[list-item]
                capture_output=True,
                text=True,
                env=tool.env(),
                cwd="/tmp",
            )
            if proc.returncode != 0:
                raise BenchError(f"partita {' '.join(args)}: {proc.stderr.strip()[-300:]}")
            return time.perf_counter() - t0

        index = workdir / "index.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{index}{suffix}").unlink(missing_ok=True)
        cold = timed(commands["status"])
        self.progress(
            f"partita status, cold index (built from {self.args.big_size} folders): {cold:.2f} s"
        )
        runs = []
        for name, args in commands.items():
            timed(args)
            walls = [timed(args) for _ in range(max(3, self.repeats(tool)))]
            runs.append({"command": name, "walls_s": walls})
            self.progress(f"partita {name}, warm: {statistics.median(walls):.3f} s")
        # One job changes (as a job's writer would record it): the next refresh reads it alone.
        changed = touch_one(tool, workdir)
        after = timed(commands["status"])
        bare = statistics.median(timed_python(tool, "pass") for _ in range(3))
        imports = statistics.median(timed_python(tool, "import partita.cli") for _ in range(3))
        value = max(statistics.median(r["walls_s"]) for r in runs)
        note = "; ".join(f"{r['command']}: {fmt(statistics.median(r['walls_s']))}" for r in runs)
        note += (
            f"; status after one job changed ({changed}): {fmt(after)}; cold index (a full scan"
            f" of {self.args.big_size:,} folders): {fmt(cold)}; of each command, the interpreter"
            f" takes {fmt(bare)} and importing the CLI {fmt(imports - bare)}"
        )
        return Outcome(
            runs=runs,
            value=value,
            measured=value,
            size=int(self.args.big_size),
            note=note,
            extra={"cold_s": cold, "after_change_s": after, "python_s": bare, "import_s": imports},
        )

    def bench_slurm(self, tool: Tool) -> Outcome:
        return self._slurm_script(tool, self.args.slurm_script or "slurm.py")

    def bench_slurmpack(self, tool: Tool) -> Outcome:
        return self._slurm_script(tool, "slurm_pack.py")

    def _slurm_script(self, tool: Tool, name: str) -> Outcome:
        """Run a Slurm benchmark script (it starts the private cluster) and keep its JSON."""
        assert tool.python is not None and tool.scratch is not None
        out = tool.scratch / f"{Path(name).stem}.json"
        script = HERE / name
        # The caller's environment (its PARTITA_SLURM_* variables choose the cluster's
        # folder and ports), with this checkout's sources first.
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO / "src"), str(HERE), os.environ.get("PYTHONPATH")) if p
        )
        proc = subprocess.run(
            [tool.python, str(script), "--json", str(out)],  # type: ignore[list-item]
            capture_output=True,
            text=True,
            cwd=REPO,
            env=env,
        )
        if proc.returncode != 0 or not out.exists():
            raise BenchError(f"{script.name}: exit code {proc.returncode}: {proc.stderr[-300:]}")
        data = json.loads(out.read_text("utf-8"))
        return Outcome(runs=[data], note=f"{script.name}: {json.dumps(data)[:400]}")

    def bench_import(self, tool: Tool) -> Outcome:
        assert tool.python is not None
        env = tool.env()
        env.pop("PYTHONPATH", None)
        package = PACKAGE[tool.name]
        count = max(IMPORT_RUNS, self.repeats(tool))

        # What a script that runs experiments pays: partita's experiment layer is imported
        # on first use, where ``import luigi`` / ``import parsl`` load their engines at once.
        statement = IMPORT_STATEMENT.get(tool.name, f"import {package}")

        def wall(code: str) -> float:
            t0 = time.perf_counter()
            subprocess.run([tool.python, "-c", code], check=True, env=env, cwd="/tmp")  # type: ignore[list-item]
            return time.perf_counter() - t0

        def importtime() -> float:
            proc = subprocess.run(
                [tool.python, "-X", "importtime", "-c", statement],  # type: ignore[list-item]
                capture_output=True,
                text=True,
                env=env,
                cwd="/tmp",
                check=True,
            )
            # The tool's own top-level imports (``partita``, then ``partita._experiment``
            # on first use): their cumulative times, which include everything below them.
            total = 0
            for line in proc.stderr.splitlines():
                parts = line.split("|")
                if len(parts) != 3:
                    continue
                name = parts[2].removeprefix(" ")
                if not name.startswith(" ") and name.split(".")[0] == package:
                    total += int(parts[1])
            if not total:
                raise BenchError(f"import: no '{package}' line in -X importtime output")
            return total / 1e6

        wall("pass")  # warm the file cache
        wall(statement)
        bare, full, cumulative = [], [], []
        for _ in range(count):
            bare.append(wall("pass"))
            full.append(wall(statement))
            cumulative.append(importtime())
        runs = [
            {"pass_s": b, "import_s": f, "importtime_s": c}
            for b, f, c in zip(bare, full, cumulative, strict=True)
        ]
        value = statistics.median(full) - statistics.median(bare)
        modules = subprocess.run(
            [
                tool.python,
                "-c",
                f"import sys; n = len(sys.modules); {statement}; "  # type: ignore[list-item]
                "print(len(sys.modules) - n)",
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd="/tmp",
            check=True,
        ).stdout.strip()
        return Outcome(
            runs=runs,
            value=value,
            measured=value,
            note=(
                f"-X importtime cumulative {statistics.median(cumulative) * 1000:.0f} ms; "
                f"bare interpreter {statistics.median(bare) * 1000:.0f} ms; "
                f"{modules} modules loaded"
            ),
        )


def timed_python(tool: Tool, code: str) -> float:
    assert tool.python is not None
    t0 = time.perf_counter()
    subprocess.run([tool.python, "-c", code], check=True, env=tool.env(), cwd="/tmp")
    return time.perf_counter() - t0


def make_big(tool: Tool, path: Path, jobs: int) -> None:
    """Write ``jobs`` done jobs (make_workdir.py), then run the sweep once (its run record)."""
    assert tool.python is not None
    proc = subprocess.run(
        [tool.python, str(HERE / "make_workdir.py"), str(path), "--jobs", str(jobs)],
        capture_output=True,
        text=True,
        env=tool.env(),
    )
    if proc.returncode != 0:
        raise BenchError(f"make_workdir.py: {proc.stderr.strip()[-300:]}")
    run_workload(tool, "sweep", 3600.0, n=jobs, workdir=str(path), max_jobs=MAX_JOBS)


def touch_one(tool: Tool, workdir: Path) -> str:
    """Rewrite one job's ``state.json`` as a job's writer does (the journal notes it)."""
    code = (
        "import sys; from pathlib import Path; "
        "from partita.workspace import JobPaths, read_state; "
        "from partita.workspace._state import write_state; "
        "folder = next(p for p in Path(sys.argv[1], 'jobs', 'bench.noop').iterdir()); "
        "paths = JobPaths(folder); write_state(paths, read_state(paths)); print(folder.name[:12])"
    )
    assert tool.python is not None
    return subprocess.run(
        [tool.python, "-c", code, str(workdir)],
        capture_output=True,
        text=True,
        check=True,
        env=tool.env(),
    ).stdout.strip()


# --- reporting -------------------------------------------------------------------------------


def fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


def partita_commit() -> str:
    """The repository's commit, with '+dirty src' when src/ has uncommitted changes."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "src"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    return commit + ("+dirty src" if dirty else "")


def machine_info(tools: dict[str, Tool]) -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "partita_commit": partita_commit(),
        "load_average": list(os.getloadavg()),
        "tools": {
            t.name: {
                "python": t.python,
                "python_version": t.python_version,
                "version": t.version,
                "problem": t.problem,
            }
            for t in tools.values()
        },
    }


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def print_table(results: dict[str, dict[str, Outcome]], tools: dict[str, Tool]) -> list[str]:
    """Print the table (and return it as Markdown lines for README.md)."""
    names = list(tools)
    header = ["workload", *[tools[t].label for t in names]]
    with_luigi = "partita" in tools and "luigi" in tools
    if with_luigi:
        header.append("partita ÷ luigi")
    header += ["target (partita)", "met"]
    rows: list[list[str]] = []
    notes: list[str] = []

    def met(verdict: Sequence[bool | None]) -> str:
        """One "yes"/"NO" per target, in the order of the target column ("?": unknown)."""
        if not verdict:
            return "-"
        return ", ".join("?" if v is None else ("yes" if v else "NO") for v in verdict)

    def target_text(bench: str, value: float | None, luigi: float | None) -> list[str]:
        parts = []
        verdict: list[bool | None] = []
        if bench in RATIO_TARGETS:
            goal = RATIO_TARGETS[bench]
            parts.append(f"≤ {goal:g}× luigi")
            r = ratio(value, luigi)
            verdict.append(None if r is None else r <= goal)
        if bench in TARGETS:
            parts.append(f"< {fmt(TARGETS[bench])}")
            verdict.append(None if value is None else value < TARGETS[bench])
        if not parts:
            return ["-", "-"]
        return [", ".join(parts), met(verdict)]

    for bench, by_tool in results.items():
        row = [DESCRIPTION[bench]]
        for name in names:
            o = by_tool.get(name)
            if o is None:
                row.append("n/a")
            elif o.error:
                row.append("not measured")
                notes.append(f"{tools[name].label} {bench}: {o.error}")
            elif o.value is None:
                row.append("see notes")
                if o.note:
                    notes.append(f"{tools[name].label} {bench}: {o.note}")
            else:
                row.append(fmt(o.value) + ("*" if o.scale != 1 else ""))
                if o.note:
                    notes.append(f"{tools[name].label} {bench}: {o.note}")
        p, lu = by_tool.get("partita"), by_tool.get("luigi")
        pv = p.value if p is not None else None
        lv = lu.value if lu is not None else None
        if with_luigi:
            r = ratio(pv, lv)
            row.append(f"{r:.2f}×" if r is not None else "-")
        row += target_text(bench, pv, lv)
        rows.append(row)
    # Derived rows: CPU per task and orchestrator RSS, from the 1,000-task runs.
    source = results.get("noop1000") or results.get("noop200")
    if source:
        for label, attr, unit in (
            ("CPU per no-op task (all processes)", "cpu_per_task", "ms"),
            ("orchestrator CPU per no-op task", "orchestrator_cpu_per_task", "ms"),
            ("orchestrator peak RSS, 1,000 tasks", "rss_mib", "MiB"),
        ):
            row = [label]
            values: dict[str, float | None] = {}
            for name in names:
                o = source.get(name)
                v = getattr(o, attr) if o is not None and not o.error else None
                values[name] = v
                if v is None:
                    row.append("-")
                else:
                    row.append(f"{v * 1000:.1f} ms" if unit == "ms" else f"{v:.0f} MiB")
            if with_luigi:
                r = ratio(values.get("partita"), values.get("luigi"))
                row.append(f"{r:.2f}×" if r is not None else "-")
            v = values.get("partita")
            goal = {"rss_mib": RSS_TARGET_MIB, "orchestrator_cpu_per_task": CPU_TARGET_S}.get(attr)
            if goal is None:
                row += ["-", "-"]
            else:
                row.append(f"< {goal:.0f} MiB" if unit == "MiB" else f"< {goal * 1000:g} ms")
                row.append(met([None if v is None else v < goal]))
            rows.append(row)
    big = results.get("big", {}).get("partita")
    if big is not None and big.rss_mib is not None:
        rows.append(
            ["experiment peak RSS, 100,000 tasks re-checked"]
            + [f"{big.rss_mib:.0f} MiB" if t == "partita" else "n/a" for t in names]
            + (["-"] if with_luigi else [])
            + [f"< {BIG_RSS_TARGET_MIB:.0f} MiB", met([big.rss_mib < BIG_RSS_TARGET_MIB])]
        )
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    if any(o.scale != 1 for by in results.values() for o in by.values()):
        print("* scaled linearly from a smaller run (see notes)")
    for tool in tools.values():
        if tool.problem:
            print(f"{tool.label}: not measured: {tool.problem}")
    if notes:
        print("\nnotes:")
        for n in notes:
            print(f"  {n}")
    markdown = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    markdown += ["| " + " | ".join(r) + " |" for r in rows]
    return markdown


def print_saved(path: Path) -> int:
    """Print the table of a run saved by ``--json`` (or ``results/latest.json``)."""
    document = json.loads(path.read_text("utf-8"))
    saved = document["machine"]["tools"]
    order = [t for t in TOOLS if t in saved]  # the JSON's keys are sorted
    tools = {name: Tool(name, saved[name].get("python")) for name in order}
    for name, tool in tools.items():
        tool.problem = saved[name].get("problem")
    keys = {f.name for f in Outcome.__dataclass_fields__.values()}  # type: ignore[attr-defined]
    results: dict[str, dict[str, Outcome]] = {}
    for bench in [b for b in BENCHMARKS if b in document["results"]]:
        by_tool = document["results"][bench]
        results[bench] = {}
        for name in [t for t in order if t in by_tool]:
            data = by_tool[name]
            fields = {
                "value": data.get("value_s"),
                "measured": data.get("measured_s"),
                "cpu_per_task": data.get("cpu_per_task_s"),
                "orchestrator_cpu_per_task": data.get("orchestrator_cpu_per_task_s"),
                "rss_mib": data.get("orchestrator_rss_mib"),
                **{k: v for k, v in data.items() if k in keys},
            }
            results[bench][name] = Outcome(**fields)
    machine = document["machine"]
    print(
        f"run of {machine.get('date')}, partita {machine.get('partita_commit_at_start')} (start)"
        f" / {machine.get('partita_commit')} (end), "
        f"load average at start {machine.get('load_average_at_start')}\n"
    )
    print_table(results, tools)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="partita vs luigi, parsl and experimaestro (see benchmarks/README.md)."
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick",
        action="store_true",
        help="experimaestro's 1,000-task workloads run with 200 tasks, scaled ×5 (the default)",
    )
    size.add_argument(
        "--full", action="store_true", help="experimaestro's 1,000-task workloads at full size"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only these benchmarks (repeatable or comma-separated): {', '.join(BENCHMARKS)}"
        f" (default: {', '.join(DEFAULT)})",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (default 3)")
    parser.add_argument(
        "--xpm-repeat",
        type=int,
        default=None,
        help="runs per experimaestro figure (default: --repeat)",
    )
    parser.add_argument(
        "--xpm-quick-size", type=int, default=200, help="tasks of the reduced runs (default 200)"
    )
    parser.add_argument(
        "--tools",
        default=",".join(DEFAULT_TOOLS),
        help=f"comma-separated, from {', '.join(TOOLS)} (default: all)",
    )
    parser.add_argument(
        "--partita-python",
        default=None,
        help="default: the repository's .venv, else this interpreter (the repository's src/ "
        "is put first on PYTHONPATH either way)",
    )
    for name in ("luigi", "parsl", "xpm"):
        venv = VENV[name][0]
        variable = f"{name.upper()}_PYTHON"
        parser.add_argument(
            f"--{name}-python",
            default=os.environ.get(variable, f"{venv}/bin/python"),
            help=f"interpreter with {VENV[name][1]} (default ${variable} or {venv}/bin/python)",
        )
    parser.add_argument(
        "--xpm-uncapped",
        action="store_true",
        help="run experimaestro's tasks without the 2-slot token (its default: no limit)",
    )
    parser.add_argument(
        "--big-size", type=int, default=BIG, help=f"jobs of the big workloads (default {BIG:,})"
    )
    parser.add_argument(
        "--big-workdir",
        default=None,
        metavar="PATH",
        help="the work directory of the big workloads: made there if it does not exist, and "
        "kept (default: made in the temporary area, about 7 minutes for 100,000 jobs)",
    )
    parser.add_argument(
        "--slurm-script", default=None, help="script of the 'slurm' benchmark (default slurm.py)"
    )
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="keep the caller's bytecode settings (e.g. PYTHONDONTWRITEBYTECODE=1: sources "
        "outside site-packages, such as an editable partita, are recompiled by every process)",
    )
    parser.add_argument(
        "--scratch",
        default="/tmp",
        metavar="DIR",
        help="where the work directories are made (default /tmp; e.g. a tmpfs to leave the "
        "file system out of the figures)",
    )
    parser.add_argument("--json", default=None, metavar="OUT", help="also write the results here")
    parser.add_argument(
        "--table-from",
        default=None,
        metavar="JSON",
        help="measure nothing: print the table of a saved run (results/latest.json or a --json "
        "file)",
    )
    args = parser.parse_args(argv)
    if args.table_from:
        return print_saved(Path(args.table_from))
    if args.repeat < 1 or (args.xpm_repeat is not None and args.xpm_repeat < 1):
        parser.error("--repeat and --xpm-repeat must be at least 1")

    selected = [b for item in args.only for b in item.split(",") if b] or list(DEFAULT)
    unknown = [b for b in selected if b not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {BENCHMARKS}")
    selected = [b for b in BENCHMARKS if b in selected]
    wanted = [t for t in args.tools.split(",") if t]
    if any(t not in TOOLS for t in wanted):
        parser.error(f"--tools: choose from {TOOLS}")

    partita_python = args.partita_python
    if partita_python is None:
        venv = REPO / ".venv" / "bin" / "python"
        partita_python = str(venv) if venv.exists() else sys.executable
    pythons = {
        "partita": partita_python,
        "luigi": args.luigi_python,
        "parsl": args.parsl_python,
        "parsl-htex": args.parsl_python,
        "xpm": args.xpm_python,
    }
    tools = {name: Tool(name, pythons[name]) for name in TOOLS if name in wanted}
    become_subreaper()
    load_at_start = list(os.getloadavg())
    commit_at_start = partita_commit()
    scratch_root = Path(tempfile.mkdtemp(prefix="partita-bench-", dir=args.scratch))
    results: dict[str, dict[str, Outcome]] = {b: {} for b in selected}
    try:
        for tool in tools.values():
            tool.scratch = scratch_root / tool.name
            tool.scratch.mkdir()
            if not args.no_bytecode_cache:
                tool.pycache = scratch_root / "pycache"
            probe(tool)
            if tool.problem is None and any(b in SUPPORTS[tool.name] for b in selected):
                print(f"warming up {tool.label} ...", file=sys.stderr, flush=True)
                try:
                    warm_up(tool)
                except BenchError as exc:
                    tool.problem = f"warm-up failed: {exc}"
        suite = Suite(args, tools, selected)
        for bench in selected:
            for tool in tools.values():
                if bench not in SUPPORTS[tool.name]:
                    continue
                if tool.problem:
                    results[bench][tool.name] = Outcome(error=tool.problem)
                    continue
                print(f"{bench} / {tool.label} ...", file=sys.stderr, flush=True)
                results[bench][tool.name] = suite.measure(bench, tool)
    finally:
        shutil.rmtree(scratch_root, ignore_errors=True)

    print()
    markdown = print_table(results, tools)
    document = {
        "machine": {
            **machine_info(tools),
            "load_average_at_start": load_at_start,
            "partita_commit_at_start": commit_at_start,
        },
        "settings": {
            "repeat": args.repeat,
            "xpm_repeat": args.xpm_repeat if args.xpm_repeat is not None else args.repeat,
            "xpm_sizes": "full" if args.full else f"quick ({args.xpm_quick_size} tasks, scaled)",
            "max_jobs": MAX_JOBS,
            "xpm_concurrency": "unlimited" if args.xpm_uncapped else f"CounterToken({MAX_JOBS})",
            "bytecode_cache": (
                "caller's settings" if args.no_bytecode_cache else "private PYTHONPYCACHEPREFIX"
            ),
            "targets_s": TARGETS,
            "ratio_targets": RATIO_TARGETS,
            "big_size": args.big_size,
        },
        "table_markdown": markdown,
        "results": {
            b: {t: o.to_json() for t, o in by_tool.items()} for b, by_tool in results.items()
        },
    }
    text = json.dumps(document, indent=1, sort_keys=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text + "\n", "utf-8")
    if args.json:
        Path(args.json).write_text(text + "\n", "utf-8")
    print(f"\nresults written to {RESULTS}" + (f" and {args.json}" if args.json else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
