"""The index: a SQLite cache of jobs, runs and tags, rebuilt from the files on demand.

Files are the truth. :meth:`Index.refresh` re-reads only the job folders the change journal
(``jobs/.changes``) names since the last refresh, the folders added or removed (seen from the
modification time of each type folder) and the jobs recorded running, so a refresh of a
large, quiet work directory costs O(changes), not O(jobs). Without a journal it can trust,
it looks at every folder once (by size and modification time of its files). Delete
``index.sqlite`` at any time: it is rebuilt.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from partita.errors import JobLookupError
from partita.workspace._jobinfo import JobInfo as JobInfo  # re-exported
from partita.workspace._jobinfo import Probe as Probe  # re-exported
from partita.workspace._jobinfo import RunInfo as RunInfo  # re-exported
from partita.workspace._jobinfo import read_job as read_job  # re-exported
from partita.workspace._journal import JOURNAL, journal_mark, read_changes, reset_journal
from partita.workspace._locks import FileLock
from partita.workspace._paths import JobPaths, Workspace
from partita.workspace._process import is_alive
from partita.workspace._runs import (
    RunPaths,
    Submission,
    SubmissionsMark,
    iter_runs,
    read_run,
    read_submissions,
)
from partita.workspace._status import is_number

SCHEMA_VERSION = "7"

_TABLES = ("jobs", "runs", "run_jobs", "types")

JOURNAL_LIMIT = 64 << 20
"""Bytes of journal after which an index starts a fresh one (and every index scans once)."""
VOLATILE = ("running", "waiting")
RACY_NS = 2_000_000_000
"""A type folder modified less than this before a look is looked at again next time."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS jobs(
    id TEXT PRIMARY KEY, type TEXT NOT NULL, path TEXT NOT NULL,
    state TEXT NOT NULL, reason TEXT, detail TEXT, attempt INTEGER,
    submitted REAL, started REAL, ended REAL, launcher TEXT, tags TEXT,
    progress REAL, message TEXT, damage TEXT, signature TEXT);
CREATE INDEX IF NOT EXISTS jobs_type ON jobs(type);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE TABLE IF NOT EXISTS runs(
    experiment TEXT NOT NULL, run TEXT NOT NULL, status TEXT, started REAL, ended REAL,
    host TEXT, pid INTEGER, process TEXT, signature TEXT, dry_run INTEGER, damage TEXT,
    jobs_signature TEXT, jobs_mark TEXT, jobs_damage TEXT, PRIMARY KEY(experiment, run));
CREATE TABLE IF NOT EXISTS run_jobs(
    experiment TEXT NOT NULL, run TEXT NOT NULL, job TEXT NOT NULL, tags TEXT, depends TEXT,
    time REAL, transient INTEGER, PRIMARY KEY(experiment, run, job));
CREATE INDEX IF NOT EXISTS run_jobs_job ON run_jobs(job);
CREATE TABLE IF NOT EXISTS types(type TEXT PRIMARY KEY, mtime INTEGER);
"""


def _signature(paths: Iterable[Path]) -> str:
    parts = []
    for path in paths:
        try:
            st = os.stat(path)
            parts.append(f"{st.st_mtime_ns}:{st.st_size}")
        except OSError:
            parts.append("-")
    return "|".join(parts)


@dataclass(frozen=True)
class _JobFilter:
    """The filters of :meth:`Index.jobs` and :meth:`Index.iter_jobs`, built in one place.

    ``sql`` (a ``WHERE`` clause, with ``args``) selects the rows; the tags are compared as
    typed values once a row is read (:meth:`keeps`).
    """

    sql: str
    args: list[Any]
    tags: dict[str, Any]

    @classmethod
    def of(
        cls,
        *,
        states: Iterable[str] = (),
        task: str | None = None,
        experiment: str | None = None,
        tags: dict[str, Any] | None = None,
        since: float | None = None,
        damaged: bool = False,
    ) -> _JobFilter:
        sql, args = Index._where(states=states, task=task, experiment=experiment, since=since)
        if damaged:
            sql += " AND damage IS NOT NULL AND damage != '[]'"
        return cls(sql, args, dict(tags or {}))

    def keeps(self, info: JobInfo) -> bool:
        """Whether the job read from a selected row has every tag asked for."""
        return all(k in info.tags and _same_tag(info.tags[k], v) for k, v in self.tags.items())


class Index:
    """The SQLite index of a work directory (``index.sqlite``)."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        path: Path | None = None,
        memory: bool = False,
        probe: Probe | None = None,
    ) -> None:
        self.workspace = workspace
        self.probe = probe
        """Liveness of launcher handles (see :func:`read_job`); ``None``: trust the files."""
        self.path = path or workspace.index_path
        self.memory = memory
        """Whether the index lives in memory only (nothing is written to disk)."""
        self.warning: str | None = None
        """Why this index is not the work directory's ``index.sqlite``, when users should
        know (set by :func:`open_index`)."""
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            if memory or not is_corrupt(exc):
                raise
            self._discard_corrupt()
            self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        target = ":memory:" if self.memory else self.path
        db = sqlite3.connect(target, timeout=30, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            if not self.memory:
                with contextlib.suppress(sqlite3.OperationalError):
                    db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            if _schema_version(db) != SCHEMA_VERSION:
                # Another version's index (or a new file): start again, in one transaction
                # so that two processes doing this at once do it once.
                db.execute("BEGIN IMMEDIATE")
                try:
                    if _schema_version(db) != SCHEMA_VERSION:
                        for table in (*_TABLES, "meta"):
                            db.execute(f"DROP TABLE IF EXISTS {table}")
                        for statement in _SCHEMA.split(";"):
                            if statement.strip():
                                db.execute(statement)
                        db.execute("INSERT INTO meta VALUES('schema', ?)", (SCHEMA_VERSION,))
                    db.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                    raise
        except BaseException:
            db.close()
            raise
        return db

    def _discard_corrupt(self) -> None:
        """Delete a corrupt ``index.sqlite`` (it is a cache), once even if many try at once."""
        with FileLock(self.path.with_name(f".{self.path.name}.lock")):
            try:
                self._open().close()
                return  # another process replaced it meanwhile
            except sqlite3.DatabaseError as exc:
                if not is_corrupt(exc):
                    raise
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{self.path}{suffix}")

    def rebuild(self) -> None:
        """Delete the index file and start again empty (after finding it corrupt)."""
        self._db.close()
        if not self.memory:
            self._discard_corrupt()
        self._db = self._open()

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- refresh ---------------------------------------------------------------------------

    def refresh(self, *, full: bool = False) -> set[str]:
        """Bring the index up to date with the files; returns the jobs that changed.

        A job changed when its row did (its folder says something new, or it went) or when
        what runs recorded of it did (its tags, experiments or dependencies): exactly the
        jobs whose :class:`JobInfo` may now differ.

        Reads the change journal from where the last refresh stopped and re-reads only the
        job folders it names, the folders added or removed since (by the modification time
        of each type folder), and the jobs recorded running. With ``full``, or when the
        journal is missing, replaced or damaged, every folder is looked at instead.
        """
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            touched = self._refresh_runs()
            changed = self._refresh_jobs(full) | touched
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):  # a full disk may have ended it already
                db.execute("ROLLBACK")
            raise
        return changed

    def _refresh_runs(self) -> set[str]:
        """Bring the runs up to date; returns the jobs whose submission entries changed.

        ``run.json`` is read again when it changed; of ``jobs.jsonl``, only the lines
        appended since the last refresh (see :func:`read_submissions`), so that watching a
        large sweep costs O(new submissions) per refresh, not O(run size).
        """
        db = self._db
        touched: set[str] = set()
        known = {
            (r["experiment"], r["run"]): r
            for r in db.execute(
                "SELECT experiment, run, signature, jobs_signature, jobs_mark, jobs_damage "
                "FROM runs"
            )
        }
        seen = set()
        for paths in iter_runs(self.workspace):
            experiment, run = paths.experiment, paths.run
            key = (experiment, run)
            seen.add(key)
            record_signature = _signature([paths.record])
            jobs_signature = _signature([paths.submissions])
            old = known.get(key)
            if old is None:
                db.execute(
                    "INSERT INTO runs(experiment, run, damage, jobs_damage) VALUES(?,?,'[]','[]')",
                    key,
                )
            if old is None or old["signature"] != record_signature:
                info = read_run(paths)
                db.execute(
                    "UPDATE runs SET status=?, started=?, ended=?, host=?, pid=?, process=?, "
                    "signature=?, dry_run=?, damage=? WHERE experiment=? AND run=?",
                    (
                        info.status,
                        info.started,
                        info.ended,
                        info.host,
                        info.pid,
                        json.dumps(info.process),
                        record_signature,
                        int(info.dry_run),
                        json.dumps(info.damage),
                        *key,
                    ),
                )
            if old is not None and old["jobs_signature"] == jobs_signature:
                continue
            since = SubmissionsMark.from_json(old["jobs_mark"]) if old is not None else None
            submissions = read_submissions(paths, since)
            if submissions.appended and old is not None:
                damage = json.loads(old["jobs_damage"] or "[]") + submissions.damage
                touched.update(self._append_run_jobs(key, submissions.entries))
            else:
                damage = submissions.damage
                touched.update(self._replace_run_jobs(key, submissions.entries))
            db.execute(
                "UPDATE runs SET jobs_signature=?, jobs_mark=?, jobs_damage=? "
                "WHERE experiment=? AND run=?",
                (
                    jobs_signature,
                    submissions.mark.to_json() if submissions.mark else None,
                    json.dumps(damage),
                    *key,
                ),
            )
        for key in set(known) - seen:
            db.execute("DELETE FROM runs WHERE experiment=? AND run=?", key)
            touched.update(
                r[0]
                for r in db.execute("SELECT job FROM run_jobs WHERE experiment=? AND run=?", key)
            )
            db.execute("DELETE FROM run_jobs WHERE experiment=? AND run=?", key)
        return touched

    @staticmethod
    def _run_job_row(key: tuple[str, str], entry: Submission) -> tuple[Any, ...]:
        return (
            *key,
            entry.id,
            json.dumps(entry.tags),
            json.dumps(entry.depends),
            entry.time,
            int(entry.transient),
        )

    def _replace_run_jobs(self, key: tuple[str, str], entries: list[Submission]) -> set[str]:
        """Replace what a run recorded of its jobs; returns the jobs whose entry changed."""
        db = self._db
        before = {
            (r[0], r[1], r[2], r[3])
            for r in db.execute(
                "SELECT job, tags, depends, transient FROM run_jobs WHERE experiment=? AND run=?",
                key,
            )
        }
        db.execute("DELETE FROM run_jobs WHERE experiment=? AND run=?", key)
        rows = [self._run_job_row(key, entry) for entry in entries]
        db.executemany("INSERT OR REPLACE INTO run_jobs VALUES(?,?,?,?,?,?,?)", rows)
        after = {(row[2], row[3], row[4], row[6]) for row in rows}
        return {entry[0] for entry in before ^ after}

    def _append_run_jobs(self, key: tuple[str, str], entries: list[Submission]) -> set[str]:
        """Add a run's newly appended entries (a later line of a job replaces an earlier
        one, as in :meth:`_replace_run_jobs`); returns the jobs whose entry changed."""
        db = self._db
        touched: set[str] = set()
        for entry in entries:
            row = self._run_job_row(key, entry)
            old = db.execute(
                "SELECT tags, depends, transient FROM run_jobs "
                "WHERE experiment=? AND run=? AND job=?",
                (*key, entry.id),
            ).fetchone()
            if old is None or tuple(old) != (row[3], row[4], row[6]):
                touched.add(entry.id)
            db.execute("INSERT OR REPLACE INTO run_jobs VALUES(?,?,?,?,?,?,?)", row)
        return touched

    def _refresh_jobs(self, full: bool) -> set[str]:
        """Bring the jobs up to date; returns the identifiers whose row changed or went."""
        journal = self.workspace.jobs / JOURNAL
        mark = journal_mark(journal)
        if mark is None and not self.memory and self.workspace.jobs.is_dir():
            # Start a journal, so that the next refresh is incremental (writers append to it).
            with contextlib.suppress(OSError):
                os.close(os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666))
            mark = journal_mark(journal)
        stored = self._meta("journal")
        offset = int(self._meta("offset") or 0)
        changed: set[str] | None = None
        if not full and mark is not None and stored == mark[0] and offset <= mark[1]:
            changes = read_changes(journal, offset, end=mark[1])
            if not changes.damaged:
                changed = self._incremental(changes.names)
                offset = changes.offset
        if changed is None:
            # No journal we can trust: look at every folder. The journal's size is taken
            # before the scan, so what is appended meanwhile is read again next time.
            changed = self._full_scan()
            offset = mark[1] if mark is not None else 0
        if mark is not None and offset > JOURNAL_LIMIT and not self.memory:
            # Start a fresh journal: every index (this one too) then scans once.
            with contextlib.suppress(OSError):
                reset_journal(journal)
        self._set_meta("journal", mark[0] if mark is not None else None)
        self._set_meta("offset", str(offset))
        return changed

    def _full_scan(self) -> set[str]:
        db = self._db
        known = {
            r["id"]: (r["signature"], r["state"])
            for r in db.execute("SELECT id, signature, state FROM jobs")
        }
        seen = set()
        changed: set[str] = set()
        db.execute("DELETE FROM types")
        for type_id, mtime in _type_dirs(self.workspace.jobs):
            self._set_type_mark(type_id, mtime)
            for identifier in _job_dirs(self.workspace.jobs / type_id):
                seen.add(identifier)
                paths = JobPaths(self.workspace.jobs / type_id / identifier)
                signature = _signature(
                    [paths.state, paths.done, paths.failed, paths.cancelled, paths.progress]
                )
                previous = known.get(identifier)
                # Running jobs are always re-read: their process may have died since.
                if previous and previous[0] == signature and previous[1] != "running":
                    continue
                if self._store(paths, signature):
                    changed.add(identifier)
        for gone in set(known) - seen:
            db.execute("DELETE FROM jobs WHERE id=?", (gone,))
            changed.add(gone)
        return changed

    def _incremental(self, names: set[tuple[str, str]]) -> set[str]:
        """Re-read the folders the journal names, new or removed folders, and running jobs."""
        db = self._db
        jobs = self.workspace.jobs
        changed: set[str] = set()
        wanted = set(names)
        marks = {r["type"]: r["mtime"] for r in db.execute("SELECT type, mtime FROM types")}
        present = dict(_type_dirs(jobs))
        for type_id in set(marks) - set(present):
            gone = [r[0] for r in db.execute("SELECT id FROM jobs WHERE type=?", (type_id,))]
            db.execute("DELETE FROM jobs WHERE type=?", (type_id,))
            db.execute("DELETE FROM types WHERE type=?", (type_id,))
            changed.update(gone)
        for type_id, mtime in present.items():
            if type_id in marks and marks[type_id] == mtime and mtime is not None:
                continue
            # Folders were added or removed here since the last look (or it is new).
            on_disk = set(_job_dirs(jobs / type_id))
            known = {r[0] for r in db.execute("SELECT id FROM jobs WHERE type=?", (type_id,))}
            for gone in known - on_disk:
                db.execute("DELETE FROM jobs WHERE id=?", (gone,))
                changed.add(gone)
            wanted.update((type_id, identifier) for identifier in on_disk - known)
            self._set_type_mark(type_id, mtime)
        for r in db.execute("SELECT type, id, state FROM jobs WHERE state IN (?, ?)", VOLATILE):
            # A running job's process may have died; a waiting job may have been launched by
            # a writer whose journal line is lost (killed between its write and its append).
            # Both are few, and a waiting job costs one stat until its state.json appears.
            if r["state"] == "running" or os.path.lexists(
                JobPaths(jobs / r["type"] / r["id"]).state
            ):
                wanted.add((r["type"], r["id"]))
        for type_id, identifier in wanted:
            folder = jobs / type_id / identifier
            if not folder.is_dir():
                # Only the row of this folder: ``partita migrate`` may have moved the same
                # identifier under another type id.
                removed = db.execute(
                    "DELETE FROM jobs WHERE id=? AND type=?", (identifier, type_id)
                ).rowcount
                if removed:
                    changed.add(identifier)
                continue
            paths = JobPaths(folder)
            signature = _signature(
                [paths.state, paths.done, paths.failed, paths.cancelled, paths.progress]
            )
            if self._store(paths, signature):
                changed.add(identifier)
        return changed

    def _store(self, paths: JobPaths, signature: str) -> bool:
        """Read one job folder into its row; whether the row changed."""
        info = read_job(paths, self.probe)
        row = (
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
            json.dumps(info.damage),
            signature,
        )
        old = self._db.execute("SELECT * FROM jobs WHERE id=?", (info.identifier,)).fetchone()
        if old is not None and tuple(old)[:-1] == row[:-1]:
            if old["signature"] != signature:
                self._db.execute("UPDATE jobs SET signature=? WHERE id=?", (signature, row[0]))
            return False
        self._db.execute("INSERT OR REPLACE INTO jobs VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", row)
        return True

    def _set_type_mark(self, type_id: str, mtime: int | None) -> None:
        # A folder changed within the file system's timestamp granularity of now may change
        # again with the same mtime: keep no mark, so that it is listed again next time.
        if mtime is not None and time.time_ns() - mtime < RACY_NS:
            mtime = None
        self._db.execute("INSERT OR REPLACE INTO types VALUES(?, ?)", (type_id, mtime))

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def _set_meta(self, key: str, value: str | None) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES(?, ?)", (key, value))

    # --- queries ---------------------------------------------------------------------------

    def jobs(
        self,
        *,
        states: Iterable[str] = (),
        task: str | None = None,
        experiment: str | None = None,
        tags: dict[str, Any] | None = None,
        since: float | None = None,
        ids: Iterable[str] | None = None,
        damaged: bool = False,
    ) -> list[JobInfo]:
        """Jobs matching every given filter, most recent first.

        ``task`` matches a type id exactly or as a prefix/substring (``helloworld.`` matches
        both tasks). ``tags`` compare typed values: ``{"y": 1}`` matches the int 1, not
        ``"1"``. ``since`` is a timestamp: jobs submitted, started or ended after it.
        ``ids``: only these identifiers. ``damaged``: only jobs with unreadable files.
        """
        where = _JobFilter.of(
            states=states, task=task, experiment=experiment, tags=tags, since=since, damaged=damaged
        )
        if ids is not None:
            wanted = list(dict.fromkeys(ids))
            rows = []
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows += self._db.execute(
                    f"SELECT * FROM jobs {where.sql} AND id IN ({','.join('?' * len(chunk))})",
                    [*where.args, *chunk],
                ).fetchall()
        else:
            rows = self._db.execute(f"SELECT * FROM jobs {where.sql}", where.args).fetchall()
        infos = self._infos(rows)
        if where.tags:
            infos = [info for info in infos if where.keeps(info)]
        infos.sort(key=lambda i: i.ended or i.started or i.submitted or 0, reverse=True)
        return infos

    def iter_jobs(
        self,
        *,
        states: Iterable[str] = (),
        task: str | None = None,
        experiment: str | None = None,
        tags: dict[str, Any] | None = None,
        since: float | None = None,
        damaged: bool = False,
        batch: int = 500,
    ) -> Iterator[JobInfo]:
        """The jobs of :meth:`jobs` (same filters, same order), read ``batch`` rows at a time.

        The first jobs come before the others are read: ``partita jobs list --json | head``
        on a work directory of 100,000 jobs answers at once, and memory stays flat. Do not
        refresh the index while iterating.
        """
        where = _JobFilter.of(
            states=states, task=task, experiment=experiment, tags=tags, since=since, damaged=damaged
        )
        cursor = self._db.execute(
            f"SELECT * FROM jobs {where.sql} ORDER BY coalesce(ended, started, submitted, 0) DESC",
            where.args,
        )
        while rows := cursor.fetchmany(batch):
            runs: dict[str, list[sqlite3.Row]] = {}
            for r in self._db.execute(
                "SELECT job, experiment, tags, depends, transient FROM run_jobs "
                f"WHERE job IN ({','.join('?' * len(rows))}) ORDER BY time",
                [row["id"] for row in rows],
            ):
                runs.setdefault(r["job"], []).append(r)
            for row in rows:
                info = self._info(row, runs.get(row["id"], []))
                if where.keeps(info):
                    yield info

    def counts(self, *, experiment: str | None = None) -> dict[str, int]:
        """How many jobs are in each state (of one experiment, or all), without reading them."""
        sql, args = self._where(experiment=experiment)
        return {
            row[0]: row[1]
            for row in self._db.execute(
                f"SELECT state, count(*) FROM jobs {sql} GROUP BY state", args
            )
        }

    def run_counts(self, experiment: str, run: str) -> tuple[dict[str, int], list[str]]:
        """Jobs of one run by state (``missing``: its folder is gone), and those waiting."""
        counts: dict[str, int] = {}
        waiting: list[str] = []
        for row in self._db.execute(
            "SELECT r.job, j.state FROM run_jobs r LEFT JOIN jobs j ON j.id = r.job "
            "WHERE r.experiment=? AND r.run=?",
            (experiment, run),
        ):
            state = row[1] or "missing"
            counts[state] = counts.get(state, 0) + 1
            if state == "waiting":
                waiting.append(row[0])
        return counts, waiting

    @staticmethod
    def _where(
        *,
        states: Iterable[str] = (),
        task: str | None = None,
        experiment: str | None = None,
        since: float | None = None,
    ) -> tuple[str, list[Any]]:
        sql = "WHERE 1=1"
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
        return sql, args

    def _infos(self, rows: list[sqlite3.Row]) -> list[JobInfo]:
        """``JobInfo`` of many rows, with what their runs recorded, in few queries."""
        runs: dict[str, list[sqlite3.Row]] = {}
        if len(rows) > 200:
            wanted = {row["id"] for row in rows}
            for r in self._db.execute(
                "SELECT job, experiment, tags, depends, transient FROM run_jobs ORDER BY time"
            ):
                if r["job"] in wanted:
                    runs.setdefault(r["job"], []).append(r)
        else:
            for row in rows:
                runs[row["id"]] = self._db.execute(
                    "SELECT job, experiment, tags, depends, transient FROM run_jobs WHERE job=? "
                    "ORDER BY time",
                    (row["id"],),
                ).fetchall()
        return [self._info(row, runs.get(row["id"], [])) for row in rows]

    def _info(self, row: sqlite3.Row, runs: list[sqlite3.Row] | None = None) -> JobInfo:
        tags: dict[str, Any] = {}
        experiments: list[str] = []
        depends: list[str] = []
        transient = True  # unless a run submitted it as an ordinary job
        if runs is None:
            runs = self._db.execute(
                "SELECT job, experiment, tags, depends, transient FROM run_jobs WHERE job=? "
                "ORDER BY time",
                (row["id"],),
            ).fetchall()
        for r in runs:
            tags.update(json.loads(r["tags"] or "{}"))
            if r["experiment"] not in experiments:
                experiments.append(r["experiment"])
            for dep in json.loads(r["depends"] or "[]"):
                if dep not in depends:
                    depends.append(dep)
            transient = transient and bool(r["transient"])
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
            damage=json.loads(row["damage"] or "[]"),
            transient=transient and bool(runs),
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
                    bool(row["dry_run"]),
                    json.loads(row["damage"] or "[]") + json.loads(row["jobs_damage"] or "[]"),
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

    def recorded_states(self, experiment: str, run: str) -> dict[str, str]:
        """The final state a run recorded for each job it submitted (``run.json``'s ``jobs``)."""
        return read_run(RunPaths.of(self.workspace, experiment, run)).job_states

    def referenced(self, experiments: Iterable[str]) -> set[str]:
        """Jobs submitted by the latest run (dry runs aside) of each of ``experiments``."""
        keep: set[str] = set()
        for name in experiments:
            runs = [run for run in self.runs(name) if not run.dry_run]
            if runs:
                keep.update(self.run_jobs(name, runs[0].run))
        return keep


def _type_dirs(jobs: Path) -> Iterator[tuple[str, int]]:
    """``(type id, mtime in ns)`` of each folder of ``jobs/``."""
    try:
        entries = list(os.scandir(jobs))
    except OSError:
        return
    for entry in entries:
        try:
            if not entry.name.startswith(".") and entry.is_dir():
                yield entry.name, entry.stat().st_mtime_ns
        except OSError:
            continue


def _job_dirs(folder: Path) -> list[str]:
    """Names of the job folders of one type folder."""
    try:
        with os.scandir(folder) as entries:
            return [e.name for e in entries if not e.name.startswith(".") and e.is_dir()]
    except OSError:
        return []


def _schema_version(db: sqlite3.Connection) -> str | None:
    try:
        row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    return None if row is None else str(row[0])


def sqlite_code(exc: sqlite3.Error) -> int:
    return int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


def is_corrupt(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` says the database file is damaged (not a database, malformed)."""
    return sqlite_code(exc) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def _same_tag(recorded: Any, wanted: Any) -> bool:
    """Whether a recorded tag value matches a filter: numbers by value, others by type too."""
    if is_number(recorded) and is_number(wanted):
        return bool(recorded == wanted)
    return json.dumps(recorded, sort_keys=True) == json.dumps(wanted, sort_keys=True)
