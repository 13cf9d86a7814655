"""The index: a SQLite cache of jobs, runs and tags, rebuilt from the files on demand.

Files are the truth. :meth:`Index.refresh` looks at every job folder and run record and
re-reads only those whose files changed (by size and modification time), so a refresh of a
large, quiet work directory costs little more than a directory walk. Delete
``index.sqlite`` at any time: it is rebuilt.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from partita.errors import JobLookupError
from partita.workspace._atomic import read_json
from partita.workspace._paths import JobPaths, Workspace
from partita.workspace._process import is_alive

SCHEMA_VERSION = "2"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS jobs(
    id TEXT PRIMARY KEY, type TEXT NOT NULL, path TEXT NOT NULL,
    state TEXT NOT NULL, reason TEXT, detail TEXT, attempt INTEGER,
    submitted REAL, started REAL, ended REAL, launcher TEXT, tags TEXT,
    progress REAL, message TEXT, signature TEXT);
CREATE INDEX IF NOT EXISTS jobs_type ON jobs(type);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE TABLE IF NOT EXISTS runs(
    experiment TEXT NOT NULL, run TEXT NOT NULL, status TEXT, started REAL, ended REAL,
    host TEXT, pid INTEGER, process TEXT, signature TEXT, PRIMARY KEY(experiment, run));
CREATE TABLE IF NOT EXISTS run_jobs(
    experiment TEXT NOT NULL, run TEXT NOT NULL, job TEXT NOT NULL, tags TEXT, depends TEXT,
    time REAL, PRIMARY KEY(experiment, run, job));
CREATE INDEX IF NOT EXISTS run_jobs_job ON run_jobs(job);
"""


@dataclass
class JobInfo:
    """What the files say about one job (see ``partita jobs show``)."""

    identifier: str
    type_id: str
    path: Path
    state: str
    """``waiting`` (never launched), ``running``, ``done``, ``failed``, ``cancelled``."""
    reason: str | None = None
    detail: str | None = None
    attempt: int | None = None
    submitted: float | None = None
    started: float | None = None
    ended: float | None = None
    launcher: dict[str, Any] | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    progress: float | None = None
    message: str | None = None
    experiments: list[str] = field(default_factory=list)
    depends: list[str] = field(default_factory=list)

    @property
    def paths(self) -> JobPaths:
        """Every file of the job folder."""
        return JobPaths(self.path)

    @property
    def short(self) -> str:
        """The first 12 characters of the identifier."""
        return self.identifier[:12]

    @property
    def name(self) -> str:
        """``<type id>/<short id>``."""
        return f"{self.type_id}/{self.short}"

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (or to now if running)."""
        if self.started is None:
            return None
        end = self.ended if self.ended and self.state != "running" else time.time()
        return max(0.0, end - self.started)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (for ``--json`` and the web monitor)."""
        return {
            "id": self.identifier,
            "short": self.short,
            "type": self.type_id,
            "path": str(self.path),
            "state": self.state,
            "reason": self.reason,
            "detail": self.detail,
            "attempt": self.attempt,
            "submitted": self.submitted,
            "started": self.started,
            "ended": self.ended,
            "duration": self.duration,
            "launcher": self.launcher,
            "tags": self.tags,
            "progress": self.progress,
            "message": self.message,
            "experiments": self.experiments,
            "depends": self.depends,
        }


@dataclass
class RunInfo:
    """One run of an experiment."""

    experiment: str
    run: str
    status: str
    started: float | None
    ended: float | None
    host: str | None
    pid: int | None
    jobs: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return dict(self.__dict__)


def _signature(paths: Iterable[Path]) -> str:
    parts = []
    for path in paths:
        try:
            st = os.stat(path)
            parts.append(f"{st.st_mtime_ns}:{st.st_size}")
        except OSError:
            parts.append("-")
    return "|".join(parts)


#: Tells whether the job of a launcher handle still runs (``None``: cannot tell from here),
#: e.g. ``partita.launchers.probe_handle``. The workspace layer knows no launcher itself.
Probe = Callable[[dict[str, Any]], "bool | None"]


def read_job(paths: JobPaths, probe: Probe | None = None) -> JobInfo:
    """Read one job folder directly (no index).

    With ``probe``, a job recorded ``running`` whose launcher says it is certainly gone
    is reported ``failed`` (``lost``); without, the files are reported as they are.
    """
    record = read_json(paths.state) or {}
    state = "waiting"
    marker: dict[str, Any] = {}
    for name, path in (
        ("done", paths.done),
        ("failed", paths.failed),
        ("cancelled", paths.cancelled),
    ):
        if path.exists():
            state, marker = name, read_json(path) or {}
            break
    else:
        if record.get("state") == "running":
            state = "running"
    reason = marker.get("reason", record.get("reason"))
    detail = marker.get("detail", record.get("detail"))
    launcher = record.get("launcher") or None
    if state == "running" and launcher and probe is not None and probe(launcher) is False:
        state, reason, detail = "failed", "lost", "its process is gone without an outcome"
    progress = read_json(paths.progress) or {}
    return JobInfo(
        identifier=paths.identifier,
        type_id=paths.type_id,
        path=paths.root,
        state=state,
        reason=reason,
        detail=detail,
        attempt=record.get("attempt"),
        submitted=record.get("launched"),
        started=record.get("started"),
        ended=marker.get("time", record.get("ended")) if state != "running" else None,
        launcher=launcher,
        tags=dict(record.get("tags") or {}),
        progress=progress.get("fraction") if state != "done" else 1.0,
        message=progress.get("message"),
    )


class Index:
    """The SQLite index of a work directory (``index.sqlite``)."""

    def __init__(
        self, workspace: Workspace, *, path: Path | None = None, probe: Probe | None = None
    ) -> None:
        self.workspace = workspace
        self.probe = probe
        """Liveness of launcher handles (see :func:`read_job`); ``None``: trust the files."""
        self.path = path or workspace.index_path
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with contextlib.suppress(sqlite3.DatabaseError):
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None or row[0] != SCHEMA_VERSION:
            self._db.executescript(
                "DELETE FROM jobs; DELETE FROM runs; DELETE FROM run_jobs;"
                f"INSERT OR REPLACE INTO meta VALUES('schema', '{SCHEMA_VERSION}');"
            )

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- refresh ---------------------------------------------------------------------------

    def refresh(self) -> None:
        """Bring the index up to date with the files (reads only what changed)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            self._refresh_runs()
            self._refresh_jobs()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _refresh_runs(self) -> None:
        db = self._db
        known = {
            (r["experiment"], r["run"]): r["signature"]
            for r in db.execute("SELECT experiment, run, signature FROM runs")
        }
        seen = set()
        for run_dir in _iter_dirs(self.workspace.experiments, "*/runs/*"):
            experiment, run = run_dir.parent.parent.name, run_dir.name
            key = (experiment, run)
            seen.add(key)
            files = [run_dir / "run.json", run_dir / "jobs.jsonl"]
            signature = _signature(files)
            if known.get(key) == signature:
                continue
            info = read_json(files[0]) or {}
            db.execute(
                "INSERT OR REPLACE INTO runs VALUES(?,?,?,?,?,?,?,?,?)",
                (
                    experiment,
                    run,
                    info.get("status"),
                    info.get("started"),
                    info.get("ended"),
                    info.get("host"),
                    info.get("pid"),
                    json.dumps(info.get("process")),
                    signature,
                ),
            )
            db.execute("DELETE FROM run_jobs WHERE experiment=? AND run=?", key)
            rows = []
            with contextlib.suppress(OSError):
                for line in files[1].read_text("utf-8").splitlines():
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue  # a line being written
                    rows.append(
                        (
                            experiment,
                            run,
                            entry["id"],
                            json.dumps(entry.get("tags", {})),
                            json.dumps(entry.get("depends", [])),
                            entry.get("time"),
                        )
                    )
            db.executemany("INSERT OR REPLACE INTO run_jobs VALUES(?,?,?,?,?,?)", rows)
        for key in set(known) - seen:
            db.execute("DELETE FROM runs WHERE experiment=? AND run=?", key)
            db.execute("DELETE FROM run_jobs WHERE experiment=? AND run=?", key)

    def _refresh_jobs(self) -> None:
        db = self._db
        known = {
            r["id"]: (r["signature"], r["state"])
            for r in db.execute("SELECT id, signature, state FROM jobs")
        }
        seen = set()
        for folder in _iter_dirs(self.workspace.jobs, "*/*"):
            paths = JobPaths(folder)
            seen.add(folder.name)
            signature = _signature(
                [paths.state, paths.done, paths.failed, paths.cancelled, paths.progress]
            )
            previous = known.get(folder.name)
            # Running jobs are always re-read: their process may have died since.
            if previous and previous[0] == signature and previous[1] != "running":
                continue
            info = read_job(paths, self.probe)
            db.execute(
                "INSERT OR REPLACE INTO jobs VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    info.identifier,
                    info.type_id,
                    f"jobs/{info.type_id}/{info.identifier}",
                    info.state,
                    info.reason,
                    info.detail,
                    info.attempt,
                    info.submitted,
                    info.started,
                    info.ended,
                    json.dumps(info.launcher),
                    json.dumps(info.tags),
                    info.progress,
                    info.message,
                    signature,
                ),
            )
        for gone in set(known) - seen:
            db.execute("DELETE FROM jobs WHERE id=?", (gone,))

    # --- queries ---------------------------------------------------------------------------

    def jobs(
        self,
        *,
        states: Iterable[str] = (),
        task: str | None = None,
        experiment: str | None = None,
        tags: dict[str, Any] | None = None,
        since: float | None = None,
    ) -> list[JobInfo]:
        """Jobs matching every given filter, most recent first.

        ``task`` matches a type id exactly or as a prefix/substring (``helloworld.`` matches
        both tasks). ``tags`` compare typed values: ``{"y": 1}`` matches the int 1, not
        ``"1"``. ``since`` is a timestamp: jobs submitted, started or ended after it.
        """
        sql = "SELECT * FROM jobs WHERE 1=1"
        args: list[Any] = []
        states = list(states)
        if states:
            sql += f" AND state IN ({','.join('?' * len(states))})"
            args += states
        if task:
            sql += " AND (type = ? OR type LIKE ?)"
            args += [task, f"%{task}%"]
        if experiment:
            sql += " AND id IN (SELECT job FROM run_jobs WHERE experiment = ?)"
            args.append(experiment)
        if since is not None:
            sql += " AND max(coalesce(submitted,0), coalesce(started,0), coalesce(ended,0)) >= ?"
            args.append(since)
        rows = self._db.execute(sql, args).fetchall()
        infos = [self._info(row) for row in rows]
        if tags:
            wanted = {k: json.dumps(v, sort_keys=True) for k, v in tags.items()}
            infos = [
                info
                for info in infos
                if all(
                    k in info.tags and json.dumps(info.tags[k], sort_keys=True) == v
                    for k, v in wanted.items()
                )
            ]
        infos.sort(key=lambda i: i.ended or i.started or i.submitted or 0, reverse=True)
        return infos

    def _info(self, row: sqlite3.Row) -> JobInfo:
        tags: dict[str, Any] = {}
        experiments: list[str] = []
        depends: list[str] = []
        for r in self._db.execute(
            "SELECT experiment, tags, depends FROM run_jobs WHERE job=? ORDER BY time",
            (row["id"],),
        ):
            tags.update(json.loads(r["tags"] or "{}"))
            if r["experiment"] not in experiments:
                experiments.append(r["experiment"])
            for dep in json.loads(r["depends"] or "[]"):
                if dep not in depends:
                    depends.append(dep)
        tags.update(json.loads(row["tags"] or "{}"))
        return JobInfo(
            identifier=row["id"],
            type_id=row["type"],
            path=self.workspace.root / row["path"],
            state=row["state"],
            reason=row["reason"],
            detail=row["detail"],
            attempt=row["attempt"],
            submitted=row["submitted"],
            started=row["started"],
            ended=row["ended"],
            launcher=json.loads(row["launcher"]) if row["launcher"] else None,
            tags=dict(sorted(tags.items())),
            progress=row["progress"],
            message=row["message"],
            experiments=experiments,
            depends=depends,
        )

    def job(self, reference: str) -> JobInfo:
        """The job named by a unique identifier prefix, ``type/prefix`` or a folder path."""
        text = reference.strip().rstrip("/")
        candidate = Path(text)
        if candidate.is_dir() and (candidate / "params.json").exists():
            row = self._db.execute(
                "SELECT * FROM jobs WHERE id=?", (candidate.resolve().name,)
            ).fetchone()
            if row is not None:
                return self._info(row)
            return read_job(JobPaths(candidate.resolve()), self.probe)
        type_part, _, prefix = text.rpartition("/")
        if not prefix or any(c not in "0123456789abcdef" for c in prefix.lower()):
            raise JobLookupError(
                f"expected a job identifier prefix (hexadecimal, e.g. 3f2a1c), "
                f"'<type>/<prefix>' or a job folder, found {reference!r}."
            )
        sql, args = "SELECT * FROM jobs WHERE id LIKE ?", [prefix.lower() + "%"]
        if type_part:
            sql += " AND type = ?"
            args.append(type_part)
        rows = self._db.execute(sql + " LIMIT 6", args).fetchall()
        if not rows:
            raise JobLookupError(
                f"no job matches {reference!r} in {self.workspace.root}. "
                "List jobs with 'partita jobs list'."
            )
        if len(rows) > 1:
            names = ", ".join(f"{r['type']}/{r['id'][:12]}" for r in rows[:5])
            raise JobLookupError(
                f"{reference!r} matches several jobs ({names}{', ...' if len(rows) > 5 else ''}). "
                "Give more characters of the identifier."
            )
        return self._info(rows[0])

    def runs(self, experiment: str | None = None) -> list[RunInfo]:
        """Runs (of one experiment, or all), most recent first."""
        sql = (
            "SELECT r.*, (SELECT count(*) FROM run_jobs j WHERE j.experiment=r.experiment "
            "AND j.run=r.run) AS n FROM runs r"
        )
        args: list[Any] = []
        if experiment:
            sql += " WHERE experiment=?"
            args.append(experiment)
        infos = []
        for row in self._db.execute(sql + " ORDER BY started DESC", args):
            status = row["status"]
            process = json.loads(row["process"] or "null")
            if status == "running" and process and is_alive(process) is False:
                status = "died"
            infos.append(
                RunInfo(
                    row["experiment"],
                    row["run"],
                    status,
                    row["started"],
                    row["ended"],
                    row["host"],
                    row["pid"],
                    row["n"],
                )
            )
        return infos

    def run_jobs(self, experiment: str, run: str) -> list[str]:
        """Identifiers of the jobs a run submitted, in submission order."""
        return [
            r[0]
            for r in self._db.execute(
                "SELECT job FROM run_jobs WHERE experiment=? AND run=? ORDER BY time",
                (experiment, run),
            )
        ]

    def referenced(self, experiments: Iterable[str]) -> set[str]:
        """Jobs submitted by the latest run of each of ``experiments``."""
        keep: set[str] = set()
        for name in experiments:
            runs = self.runs(name)
            if runs:
                keep.update(self.run_jobs(name, runs[0].run))
        return keep


def _iter_dirs(root: Path, pattern: str) -> Iterator[Path]:
    if not root.exists():
        return iter(())
    return (p for p in root.glob(pattern) if p.is_dir())
