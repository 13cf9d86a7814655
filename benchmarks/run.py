"""Benchmark harness: partita against experimaestro on the same workloads.

Usage::

    python benchmarks/run.py [--quick | --full] [--only NAME[,NAME...]] [--repeat N]
                             [--xpm-repeat N] [--tools partita,xpm] [--json OUT]

Every measurement runs in a fresh interpreter of the right virtual environment (so imports,
caches and scheduler threads never leak from one run to the next), in a temporary work
directory under /tmp that is deleted afterwards. The figures are medians over the repeats.
The table is printed, and everything (each run's raw timings included) is written to
``benchmarks/results/latest.json`` (and to ``--json OUT`` if given). Bytecode is cached in
a private ``PYTHONPYCACHEPREFIX`` whatever the caller's ``PYTHONDONTWRITEBYTECODE`` says
(``--no-bytecode-cache`` keeps the caller's settings); see README.md.

Benchmarks (``--only`` takes these names):

* ``identifiers``: 10,000 configs of 3 fields (int, str, float); time to compute all their
  identifiers (configs built first; construction time reported separately).
* ``noop200``, ``noop1000``: wall time of 200 / 1,000 independent no-op tasks, 2 at once,
  in a fresh work directory, from entering the experiment to leaving it.
* ``chain50``: 50 tasks, each a parameter of the next.
* ``rerun1000``: the second run of ``noop1000`` on the same work directory (all done).
* ``import``: ``python -c "import X"`` minus ``python -c "pass"`` (plus ``-X importtime``).

experimaestro (``experimaestro==2.7.0``) is looked up in ``--xpm-python`` (default
``$XPM_PYTHON`` or ``/tmp/xpm-venv/bin/python``). Its 1,000-task workloads take minutes, so
by default (``--quick``) they run with 200 tasks and the figure is scaled ×5, labelled as
such; ``--full`` runs them with 1,000 tasks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results" / "latest.json"

BENCHMARKS = ["identifiers", "noop200", "noop1000", "chain50", "rerun1000", "import"]
TOOLS = ["partita", "xpm"]
LABEL = {"partita": "partita", "xpm": "experimaestro"}
MODULE = {"partita": "partita_tasks", "xpm": "xpm_tasks"}
PACKAGE = {"partita": "partita", "xpm": "experimaestro"}
JOB_TYPE = {  # folder of the no-op / chain jobs under WORKDIR/jobs, and their "done" marker
    "partita": {"noop": "bench.noop", "chain": "bench.step", "marker": "done"},
    "xpm": {"noop": "xpm_tasks.noop", "chain": "xpm_tasks.step", "marker": "noop.done"},
}

#: Targets for partita (seconds).
TARGETS = {
    "identifiers": 0.1,
    "noop1000": 30.0,
    "chain50": 3.0,
    "rerun1000": 0.5,
    "import": 0.150,
}
DESCRIPTION = {
    "identifiers": "10,000 identifiers (3-field configs)",
    "noop200": "200 no-op tasks, 2 at once",
    "noop1000": "1,000 no-op tasks, 2 at once",
    "chain50": "chain of 50 dependent tasks",
    "rerun1000": "re-run of 1,000 done tasks",
    "import": "import time",
}
IDENTIFIER_COUNT = 10_000
MAX_JOBS = 2
CHAIN_LENGTH = 50
IMPORT_RUNS = 15


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
        if self.pycache is not None:
            # Bytecode is cached (as for any user), in a private tree: nothing is written
            # next to the sources, and PYTHONDONTWRITEBYTECODE in the caller's environment
            # does not make every job process recompile the modules it imports.
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(self.pycache)
        if self.name == "xpm" and self.scratch is not None:
            env["XPM_WORKDIR"] = str(self.scratch / "xpm-home")
        return env


def probe(tool: Tool) -> None:
    """Fill in version information, or ``problem`` if the tool cannot be run."""
    if tool.python is None or not Path(tool.python).exists():
        tool.problem = (
            f"no interpreter at {tool.python}; create it with 'python3 -m venv /tmp/xpm-venv && "
            "/tmp/xpm-venv/bin/pip install experimaestro==2.7.0'"
            if tool.name == "xpm"
            else f"no interpreter at {tool.python}"
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
    run_workload(tool, "identifiers", 600.0, n=100)
    for kind in ("noop", "chain"):
        workdir = fresh_workdir(tool)
        try:
            run_workload(tool, kind, 600.0, n=2, workdir=str(workdir), max_jobs=MAX_JOBS)
            run_workload(tool, kind, 600.0, n=2, workdir=str(workdir), max_jobs=MAX_JOBS)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def machine_busy() -> float:
    """CPU seconds spent by the whole machine since boot (all cores, from /proc/stat)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run_workload(tool: Tool, workload: str, timeout: float, **kwargs: Any) -> dict[str, Any]:
    """Run one workload in a fresh interpreter; return its timings (plus ``process_s``)."""
    assert tool.python is not None and tool.scratch is not None
    out = tool.scratch / f"result-{time.monotonic_ns()}.json"
    log = tool.scratch / "last-workload.log"
    code = f"import {MODULE[tool.name]} as m; m.main()"
    cmd = [tool.python, "-c", code, workload, str(out), json.dumps(kwargs)]
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
    busy = machine_busy() - busy0
    if proc.returncode != 0 or not out.exists():
        tail = log.read_text("utf-8", "replace").strip().splitlines()[-6:]
        raise BenchError(f"{workload}: exit code {proc.returncode}: " + " | ".join(tail))
    result: dict[str, Any] = json.loads(out.read_text("utf-8"))
    out.unlink()
    result["process_s"] = elapsed
    own = result.get("cpu_self_s", 0.0) + result.get("cpu_children_s", 0.0)
    # CPU used meanwhile by everything else on the machine: other users' work competes
    # with the workload for the 2 cores and shows here.
    result["foreign_cpu_s"] = max(0.0, busy - own)
    return result


def count_done(tool: Tool, workdir: Path, kind: str) -> int:
    folder = workdir / "jobs" / JOB_TYPE[tool.name][kind]
    marker = JOB_TYPE[tool.name]["marker"]
    if kind == "chain" and tool.name == "xpm":
        marker = "step.done"
    if not folder.is_dir():
        return 0
    return sum(1 for job in folder.iterdir() if (job / marker).exists())


def fresh_workdir(tool: Tool) -> Path:
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
    note: str = ""
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "value_s": self.value,
            "measured_s": self.measured,
            "size": self.size,
            "scale": self.scale,
            "note": self.note,
            "error": self.error,
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

    # The no-op runs are shared: noop1000 and rerun1000 use the same work directories, and
    # with --quick experimaestro's noop1000 is its noop200.
    def noop_runs(self, tool: Tool, n: int, rerun: bool) -> list[tuple[dict, dict | None]]:
        key = (tool.name, n)
        cached = self.noop_cache.get(key)
        if cached is not None and (not rerun or all(r is not None for _, r in cached)):
            return cached
        runs: list[tuple[dict, dict | None]] = []
        for i in range(self.repeats(tool)):
            workdir = fresh_workdir(tool)
            try:
                first = run_workload(
                    tool,
                    "noop",
                    self.timeout(tool),
                    n=n,
                    workdir=str(workdir),
                    max_jobs=self.max_jobs(tool),
                )
                first["done"] = count_done(tool, workdir, "noop")
                if first["done"] != n:
                    raise BenchError(f"noop: only {first['done']} of {n} tasks done")
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
                    f"{LABEL[tool.name]} noop n={n} #{i + 1}: {first['wall_s']:.2f} s"
                    + (f", rerun {second['wall_s']:.3f} s" if second else "")
                )
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
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
        submit = statistics.median(r["submit_s"] for r in runs)
        walls = [r["wall_s"] for r in runs]
        note = f"runs {min(walls):.2f}–{max(walls):.2f} s; submit {submit:.2f} s"
        cpu = statistics.median((r["cpu_self_s"] + r["cpu_children_s"]) / n for r in runs)
        driver = statistics.median(r["cpu_self_s"] / n for r in runs)
        note += f"; CPU per task {cpu * 1000:.1f} ms ({driver * 1000:.1f} ms in the driver)"
        foreign = statistics.median(r["foreign_cpu_s"] / r["process_s"] for r in runs)
        note += f"; other processes used {foreign:.2f} cores meanwhile"
        if scale != 1:
            note = f"SCALED ×{scale:g} from {n} {what} (measured {med:.2f} s); " + note
        return Outcome(runs=runs, value=med * scale, measured=med, size=n, scale=scale, note=note)

    def bench_noop200(self, tool: Tool) -> Outcome:
        return self._noop(tool, 200, 200)

    def bench_noop1000(self, tool: Tool) -> Outcome:
        return self._noop(tool, self.big(tool), 1000)

    def bench_rerun1000(self, tool: Tool) -> Outcome:
        n = self.big(tool)
        runs = [second for _, second in self.noop_runs(tool, n, True) if second is not None]
        return self._scaled(runs, n, 1000, "done tasks")

    def bench_chain50(self, tool: Tool) -> Outcome:
        runs = []
        for i in range(self.repeats(tool)):
            workdir = fresh_workdir(tool)
            try:
                r = run_workload(
                    tool,
                    "chain",
                    self.timeout(tool),
                    n=CHAIN_LENGTH,
                    workdir=str(workdir),
                    max_jobs=self.max_jobs(tool),
                )
                r["done"] = count_done(tool, workdir, "chain")
                if r["done"] != CHAIN_LENGTH:
                    raise BenchError(f"chain: only {r['done']} of {CHAIN_LENGTH} tasks done")
                runs.append(r)
                self.progress(f"{LABEL[tool.name]} chain #{i + 1}: {r['wall_s']:.2f} s")
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        return self._scaled(runs, CHAIN_LENGTH, CHAIN_LENGTH, "tasks")

    def bench_import(self, tool: Tool) -> Outcome:
        assert tool.python is not None
        env = tool.env()
        env.pop("PYTHONPATH", None)
        package = PACKAGE[tool.name]
        count = max(IMPORT_RUNS, self.repeats(tool))

        def wall(code: str) -> float:
            t0 = time.perf_counter()
            subprocess.run([tool.python, "-c", code], check=True, env=env, cwd="/tmp")  # type: ignore[list-item]
            return time.perf_counter() - t0

        def importtime() -> float:
            proc = subprocess.run(
                [tool.python, "-X", "importtime", "-c", f"import {package}"],  # type: ignore[list-item]
                capture_output=True,
                text=True,
                env=env,
                cwd="/tmp",
                check=True,
            )
            for line in proc.stderr.splitlines():
                parts = [p.strip() for p in line.split("|")]
                if len(parts) == 3 and parts[2] == package:
                    return int(parts[1]) / 1e6
            raise BenchError(f"import: no '{package}' line in -X importtime output")

        wall("pass")  # warm the file cache
        wall(f"import {package}")
        bare, full, cumulative = [], [], []
        for _ in range(count):
            bare.append(wall("pass"))
            full.append(wall(f"import {package}"))
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
                f"import sys; n = len(sys.modules); import {package}; "  # type: ignore[list-item]
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


def print_table(results: dict[str, dict[str, Outcome]], tools: dict[str, Tool]) -> None:
    header = ["benchmark", "target", *[LABEL[t] for t in tools], "partita vs target"]
    rows = []
    notes = []
    for bench, by_tool in results.items():
        target = TARGETS.get(bench)
        row = [DESCRIPTION[bench], f"< {fmt(target)}" if target else "-"]
        for name in tools:
            o = by_tool.get(name)
            if o is None:
                row.append("(skipped)")
            elif o.error:
                row.append("not measured")
                notes.append(f"{LABEL[name]} {bench}: {o.error}")
            else:
                row.append(fmt(o.value) + ("*" if o.scale != 1 else ""))
                if o.note:
                    notes.append(f"{LABEL[name]} {bench}: {o.note}")
        p = by_tool.get("partita")
        if target and p is not None and p.value is not None:
            row.append("ok" if p.value < target else "MISSED")
        else:
            row.append("-")
        rows.append(row)
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
            print(f"{LABEL[tool.name]}: not measured: {tool.problem}")
    if notes:
        print("\nnotes:")
        for n in notes:
            print(f"  {n}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="partita vs experimaestro benchmarks (see benchmarks/README.md)."
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
        help=f"run only these benchmarks (repeatable or comma-separated): {', '.join(BENCHMARKS)}",
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
        "--tools", default="partita,xpm", help="comma-separated: partita, xpm (default both)"
    )
    parser.add_argument(
        "--partita-python",
        default=None,
        help="default: this interpreter, or the repository's .venv",
    )
    parser.add_argument(
        "--xpm-python",
        default=os.environ.get("XPM_PYTHON", "/tmp/xpm-venv/bin/python"),
        help="interpreter with experimaestro==2.7.0 "
        "(default $XPM_PYTHON or /tmp/xpm-venv/bin/python)",
    )
    parser.add_argument(
        "--xpm-uncapped",
        action="store_true",
        help="run experimaestro's tasks without the 2-slot token (its default: no limit)",
    )
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="keep the caller's bytecode settings (e.g. PYTHONDONTWRITEBYTECODE=1: sources "
        "outside site-packages, such as an editable partita, are recompiled by every process)",
    )
    parser.add_argument("--json", default=None, metavar="OUT", help="also write the results here")
    args = parser.parse_args(argv)
    if args.repeat < 1 or (args.xpm_repeat is not None and args.xpm_repeat < 1):
        parser.error("--repeat and --xpm-repeat must be at least 1")

    selected = [b for item in args.only for b in item.split(",") if b] or list(BENCHMARKS)
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
    tools = {
        name: Tool(name, partita_python if name == "partita" else args.xpm_python)
        for name in TOOLS
        if name in wanted
    }
    load_at_start = list(os.getloadavg())
    commit_at_start = partita_commit()
    scratch_root = Path(tempfile.mkdtemp(prefix="partita-bench-", dir="/tmp"))
    results: dict[str, dict[str, Outcome]] = {b: {} for b in selected}
    try:
        for tool in tools.values():
            tool.scratch = scratch_root / tool.name
            tool.scratch.mkdir()
            if not args.no_bytecode_cache:
                tool.pycache = scratch_root / "pycache"
            probe(tool)
            if tool.problem is None:
                print(f"warming up {LABEL[tool.name]} ...", file=sys.stderr, flush=True)
                try:
                    warm_up(tool)
                except BenchError as exc:
                    tool.problem = f"warm-up failed: {exc}"
        suite = Suite(args, tools, selected)
        for bench in selected:
            for tool in tools.values():
                if tool.problem:
                    results[bench][tool.name] = Outcome(error=tool.problem)
                    continue
                print(f"{bench} / {LABEL[tool.name]} ...", file=sys.stderr, flush=True)
                results[bench][tool.name] = suite.measure(bench, tool)
    finally:
        shutil.rmtree(scratch_root, ignore_errors=True)

    print()
    print_table(results, tools)
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
        },
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
