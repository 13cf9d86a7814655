"""Run folders ``experiments/<name>/runs/<run id>/``: their paths, how they are written, read.

A run folder holds ``run.json`` (who ran, when, with which outcome), ``jobs.jsonl`` (one line
per submission, appended as the experiment submits), ``environment.json`` (python,
packages, git) and, for runs started by ``experiment_main``, ``config.json`` (the resolved
configuration, the overrides as typed and the config files' contents). This module is the
only code that names those files.

Writing: :class:`RunWriter` appends each submission with one ``write(2)`` on a file opened
with ``O_APPEND``: the line is in the operating system's hands (visible to every reader,
kept if the experiment is killed) before the call returns, hence before its job can be
launched, without an ``fsync`` per submission; the file is flushed to disk when the run ends.

Reading: :func:`read_run` and :func:`read_submissions` never raise on a damaged file; what
cannot be read is listed in ``damage`` and the rest is returned.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from partita.errors import WorkspaceError
from partita.workspace import _atomic
from partita.workspace._atomic import read_json, write_json
from partita.workspace._status import is_number, read_document

if TYPE_CHECKING:
    from partita.workspace._paths import Workspace

__all__ = [
    "RunPaths",
    "RunRecord",
    "RunWriter",
    "Submission",
    "Submissions",
    "SubmissionsMark",
    "iter_runs",
    "no_space",
    "read_config",
    "read_environment",
    "read_run",
    "read_submissions",
]


class RunPaths:
    """Every file of one run folder ``WORKDIR/experiments/<name>/runs/<run id>/``."""

    __slots__ = ("root",)

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def of(cls, workspace: Workspace, experiment: str, run: str) -> RunPaths:
        """The paths of run ``run`` of ``experiment`` in ``workspace``."""
        return cls(workspace.experiment_dir(experiment) / "runs" / run)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunPaths) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    def __repr__(self) -> str:
        return f"RunPaths({str(self.root)!r})"

    @property
    def record(self) -> Path:
        """The run record (JSON object): status, times, host, process, final job states."""
        return self.root / "run.json"

    @property
    def submissions(self) -> Path:
        """One JSON object per line: each task the run submitted."""
        return self.root / "jobs.jsonl"

    @property
    def environment(self) -> Path:
        """Python, packages and git state of the experiment's process (JSON object)."""
        return self.root / "environment.json"

    @property
    def config(self) -> Path:
        """How the run was configured (``experiment_main``): files, overrides, resolved values."""
        return self.root / "config.json"

    @property
    def services(self) -> Path:
        """The services the run started (JSON list): name, address, process, state."""
        return self.root / "services.json"

    def service_log(self, name: str) -> Path:
        """Where the output of the run's service ``name`` goes."""
        return self.root / "services" / f"{name}.log"

    @property
    def latest(self) -> Path:
        """The experiment's pointer to its latest (non-dry) run."""
        return self.root.parent.parent / "latest.json"

    @property
    def run(self) -> str:
        """The run id (the folder's name)."""
        return self.root.name

    @property
    def experiment(self) -> str:
        """The experiment's name."""
        return self.root.parent.parent.name


def iter_runs(workspace: Workspace, experiment: str | None = None) -> Iterator[RunPaths]:
    """The run folders of ``experiment`` (or of every experiment)."""
    base = workspace.experiments
    pattern = f"{experiment}/runs/*" if experiment else "*/runs/*"
    if not base.is_dir():
        return
    for folder in base.glob(pattern):
        if folder.is_dir():
            yield RunPaths(folder)


def no_space(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a "no space left on device" error."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _write_error(paths: RunPaths, what: str, exc: OSError) -> WorkspaceError:
    workdir = paths.root.parent.parent.parent.parent
    if no_space(exc):
        return WorkspaceError(
            f"no space left on device: cannot write {what} in the work directory {workdir}. "
            "Free some space (or move the work directory) and run the script again: jobs "
            "that are done are reused."
        )
    return WorkspaceError(
        f"cannot write {what} in the work directory {workdir}: "
        f"{exc.strerror or exc}. Check that it is writable."
    )


#: How many submissions of jobs found done may wait in memory before they are written.
DEFERRED_LINES = 512


_PLAIN_KEYS = frozenset(("depends", "id", "tags", "time", "type"))
#: A type id → its JSON text (a few classes per experiment, thousands of lines each).
_type_texts: dict[str, str] = {}


def _submission_line(entry: dict[str, Any]) -> bytes:
    """``json.dumps(entry, sort_keys=True, ensure_ascii=False)`` and a newline, in UTF-8.

    The common line (no tags, identifiers as dependencies) is written without the encoder:
    a rerun of 100,000 done tasks writes 100,000 of them. The bytes are the same.
    """
    ident, type_id, depends, when = (
        entry.get("id"),
        entry.get("type"),
        entry.get("depends"),
        entry.get("time"),
    )
    if (
        entry.keys() == _PLAIN_KEYS
        and not entry["tags"]
        and type(entry["tags"]) is dict
        and type(ident) is str
        and ident.isascii()
        and ident.isalnum()
        and type(type_id) is str
        and type(when) is float
        and math.isfinite(when)
        and type(depends) is list
        and all(type(d) is str and d.isascii() and d.isalnum() for d in depends)
    ):
        text = _type_texts.get(type_id)
        if text is None:
            text = json.dumps(type_id, ensure_ascii=False)
            if len(_type_texts) < 4096:
                _type_texts[type_id] = text
        listed = '", "'.join(depends)
        listed = f'["{listed}"]' if depends else "[]"
        line = (
            f'{{"depends": {listed}, "id": "{ident}", "tags": {{}}, "time": {when!r}, '
            f'"type": {text}}}\n'
        )
        return line.encode("utf-8")
    return (json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


class RunWriter:
    """Writes one run folder: create it, append submissions, update and finish the record."""

    def __init__(self, paths: RunPaths) -> None:
        self.paths = paths
        self._fd: int | None = None
        self._deferred: list[bytes] = []

    def create(self, record: dict[str, Any], *, latest: bool = True) -> None:
        """Create the folder, ``jobs.jsonl`` and ``run.json``; with ``latest``, point to it.

        Raises :class:`WorkspaceError` if the work directory cannot be written.
        """
        try:
            self.paths.root.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(
                self.paths.submissions, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
            )
            write_json(self.paths.record, record, fsync=False)
            if latest:
                write_json(self.paths.latest, {"run": self.paths.run}, fsync=False)
        except OSError as exc:
            raise _write_error(self.paths, "the run record", exc) from None

    def append(self, entry: dict[str, Any], *, defer: bool = False) -> None:
        """Append one submission; it is visible to every reader when this returns (unless
        deferred).

        With ``defer`` (a job found done, that will not be launched), the line may wait in
        memory, with at most :data:`DEFERRED_LINES` others, until the next submission that
        is not deferred, :meth:`flush` or :meth:`finish`: each then writes all the waiting
        lines, in order, with one ``write(2)``.
        """
        if self._fd is None:
            raise WorkspaceError(f"the run {self.paths.root} is not open for writing.")
        self._deferred.append(_submission_line(entry))
        if not defer or len(self._deferred) >= DEFERRED_LINES:
            self.flush()

    def flush(self) -> None:
        """Write the deferred submissions (see :meth:`append`)."""
        try:
            self._write_deferred()
        except OSError as exc:
            raise _write_error(self.paths, "the record of a submission", exc) from None

    def _write_deferred(self) -> None:
        if not self._deferred or self._fd is None:
            return
        data = b"".join(self._deferred)
        self._deferred.clear()
        written = os.write(self._fd, data)
        while written < len(data):  # only on exotic file systems
            written += os.write(self._fd, data[written:])

    def write_record(self, record: dict[str, Any], *, fsync: bool = False) -> None:
        """Replace ``run.json`` with ``record`` (atomically)."""
        try:
            write_json(self.paths.record, record, fsync=fsync)
        except OSError as exc:
            raise _write_error(self.paths, "the run record", exc) from None

    def write_environment(self, info: dict[str, Any]) -> None:
        """Write ``environment.json``."""
        try:
            write_json(self.paths.environment, info, fsync=False)
        except OSError as exc:
            raise _write_error(self.paths, "the run's environment", exc) from None

    def write_config(self, info: dict[str, Any]) -> None:
        """Write ``config.json`` (atomically, flushed to disk: a rerun depends on it)."""
        try:
            write_json(self.paths.config, info, fsync=True)
        except OSError as exc:
            raise _write_error(self.paths, "the run's configuration", exc) from None

    def finish(self, record: dict[str, Any]) -> None:
        """Flush the submissions to disk, close them and write the final ``run.json``.

        Always closes the file; raises :class:`WorkspaceError` if something could not be
        written.
        """
        error: OSError | None = None
        try:
            self._write_deferred()
        except OSError as exc:
            error = exc
        self._deferred.clear()
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                if _atomic._FSYNC:
                    os.fsync(fd)
            except OSError as exc:
                error = exc
            finally:
                os.close(fd)
        try:
            write_json(self.paths.record, record, fsync=True)
        except OSError as exc:
            error = error or exc
        if error is not None:
            raise _write_error(self.paths, "the run record", error)


@dataclass
class RunRecord:
    """What ``run.json`` says (``data`` is empty when it is missing or damaged)."""

    paths: RunPaths
    data: dict[str, Any] = field(default_factory=dict)
    damage: list[str] = field(default_factory=list)
    """What could not be read, one sentence each."""

    def _get(self, key: str, kind: type | tuple[type, ...]) -> Any:
        value = self.data.get(key)
        return value if isinstance(value, kind) and not isinstance(value, bool) else None

    @property
    def exists(self) -> bool:
        """Whether ``run.json`` was found."""
        return bool(self.data) or bool(self.damage)

    @property
    def status(self) -> str | None:
        """``running``, ``done``, ``failed``, ``cancelled``, ``detached`` (or ``None``)."""
        return self._get("status", str)  # type: ignore[no-any-return]

    @property
    def started(self) -> float | None:
        """When the run started (seconds since the epoch)."""
        return self._get("started", (int, float))  # type: ignore[no-any-return]

    @property
    def ended(self) -> float | None:
        """When the run ended, if it has."""
        return self._get("ended", (int, float))  # type: ignore[no-any-return]

    @property
    def host(self) -> str | None:
        """The machine that ran the experiment."""
        return self._get("host", str)  # type: ignore[no-any-return]

    @property
    def pid(self) -> int | None:
        """The experiment's process id."""
        return self._get("pid", int)  # type: ignore[no-any-return]

    @property
    def process(self) -> dict[str, Any] | None:
        """The experiment process's identity (to tell whether it is still alive)."""
        return self._get("process", dict)  # type: ignore[no-any-return]

    @property
    def dry_run(self) -> bool:
        """Whether it was a dry run (it launched nothing and protects no job)."""
        return self.data.get("dry_run") is True

    @property
    def job_states(self) -> dict[str, str]:
        """The final state of each job, as recorded when the run ended."""
        jobs = self.data.get("jobs")
        if not isinstance(jobs, dict):
            return {}
        return {str(k): v for k, v in jobs.items() if isinstance(v, str)}


_RUN_FIELDS: dict[str, tuple[Any, str]] = {
    "status": (lambda v: isinstance(v, str), "a string"),
    "started": (is_number, "a number"),
    "ended": (is_number, "a number"),
    "host": (lambda v: isinstance(v, str), "a string"),
    "pid": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "process": (lambda v: isinstance(v, dict), "a JSON object"),
    "jobs": (lambda v: isinstance(v, dict), "a JSON object"),
}


def read_run(paths: RunPaths) -> RunRecord:
    """Read ``run.json``; never raises (damage is reported in ``RunRecord.damage``).

    A field of the wrong type is dropped and reported; the others are kept.
    """
    damage: list[str] = []
    value = read_document(paths.record, damage) or {}
    for key, (check, expected) in _RUN_FIELDS.items():
        if value.get(key) is not None and not check(value[key]):
            damage.append(f"{paths.record.name}: expected {key!r} to be {expected}")
            del value[key]
    return RunRecord(paths, value, damage)


@dataclass(frozen=True)
class Submission:
    """One line of ``jobs.jsonl``: a task the run submitted."""

    id: str
    type: str | None
    tags: dict[str, Any]
    depends: list[str]
    time: float | None
    transient: bool = False
    """Submitted with ``transient=True``: removable once its dependents are done."""

    def to_json(self) -> dict[str, Any]:
        """The line's JSON object."""
        document: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "tags": self.tags,
            "depends": self.depends,
            "time": self.time,
        }
        if self.transient:
            document["transient"] = True
        return document


TAIL_CHECK = 64
"""Bytes before a :class:`SubmissionsMark` whose hash tells the same file from a rewritten one."""


@dataclass(frozen=True)
class SubmissionsMark:
    """Where a read of ``jobs.jsonl`` stopped: the next read continues from here.

    ``offset`` is the byte after the last complete line read, ``lines`` how many lines
    that was; ``device``, ``inode`` and ``tail`` (a hash of the :data:`TAIL_CHECK` bytes
    before ``offset``) tell whether the file is still the one read, only longer.
    """

    offset: int
    lines: int
    device: int
    inode: int
    tail: str

    def to_json(self) -> str:
        """The mark as a JSON string (for the index)."""
        return json.dumps([self.offset, self.lines, self.device, self.inode, self.tail])

    @classmethod
    def from_json(cls, text: str | None) -> SubmissionsMark | None:
        """A mark from :meth:`to_json`; ``None`` for anything else."""
        try:
            offset, lines, device, inode, tail = json.loads(text or "null")
        except (TypeError, ValueError):
            return None
        if not all(isinstance(v, int) for v in (offset, lines, device, inode)):
            return None
        return cls(offset, lines, device, inode, str(tail))


@dataclass
class Submissions:
    """Every readable line of ``jobs.jsonl``, in order, and what could not be read.

    From :func:`read_submissions` with ``since``: with ``appended``, only the lines after
    that mark (the file only grew); otherwise every line (it was new, replaced or shorter).
    """

    entries: list[Submission] = field(default_factory=list)
    damage: list[str] = field(default_factory=list)
    mark: SubmissionsMark | None = None
    """Where this read stopped (``None``: there is no file, or it could not be read)."""
    appended: bool = False
    """Whether ``entries`` and ``damage`` are only what follows the mark read from."""

    def identifiers(self) -> list[str]:
        """Job identifiers in submission order, each once."""
        return list(dict.fromkeys(entry.id for entry in self.entries))


def _submission(value: Any) -> Submission | None:
    if not isinstance(value, dict):
        return None
    ident = value.get("id")
    if not isinstance(ident, str) or not ident:
        return None
    tags = value.get("tags")
    depends = value.get("depends")
    when = value.get("time")
    kind = value.get("type")
    return Submission(
        ident,
        kind if isinstance(kind, str) else None,
        tags if isinstance(tags, dict) else {},
        [d for d in depends if isinstance(d, str)] if isinstance(depends, list) else [],
        float(when) if isinstance(when, int | float) and not isinstance(when, bool) else None,
        value.get("transient") is True,
    )


def _tail_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def _read_from(fd: int, offset: int) -> bytes:
    """The bytes of an open file from ``offset`` to its end."""
    chunks = []
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def read_submissions(paths: RunPaths, since: SubmissionsMark | None = None) -> Submissions:
    """Read ``jobs.jsonl``; never raises (bad lines are listed in ``Submissions.damage``).

    A last line without its newline is one being written: it is skipped, not damage (and
    not passed: the mark stops before it). With ``since`` (the mark of an earlier read),
    only what was appended after it is read when the file is the same one, only longer;
    a file replaced, rewritten or shorter is read again from its start.
    """
    out = Submissions()
    name = paths.submissions.name
    try:
        fd = os.open(paths.submissions, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return out
    except OSError as exc:
        out.damage.append(f"{name}: cannot read it ({exc.strerror or exc})")
        return out
    try:
        st = os.fstat(fd)
        base, start, lines, buffer = 0, 0, 0, b""
        if (
            since is not None
            and (since.device, since.inode) == (st.st_dev, st.st_ino)
            and since.offset <= st.st_size
        ):
            base = max(0, since.offset - TAIL_CHECK)
            buffer = _read_from(fd, base)
            if _tail_hash(buffer[: since.offset - base]) == since.tail:
                start, lines = since.offset, since.lines
                out.appended = True
        if not out.appended:
            base, buffer = 0, _read_from(fd, 0)
    except OSError as exc:
        out.damage.append(f"{name}: cannot read it ({exc.strerror or exc})")
        return out
    finally:
        os.close(fd)
    # The part after the last newline is being written (or empty): left for the next read.
    end = buffer.rfind(b"\n") + 1 + base
    if end < start:
        end = start
    complete = buffer[start - base : end - base].split(b"\n")[:-1]
    for number, raw in enumerate(complete, start=lines + 1):
        if not raw.strip():
            continue
        try:
            entry = _submission(json.loads(raw))
        except ValueError:
            entry = None
        if entry is None:
            out.damage.append(f"{name}: line {number}: expected a JSON object with an 'id'")
            continue
        out.entries.append(entry)
    tail = buffer[max(0, end - TAIL_CHECK) - base : end - base]
    out.mark = SubmissionsMark(end, lines + len(complete), st.st_dev, st.st_ino, _tail_hash(tail))
    return out


def read_environment(paths: RunPaths) -> dict[str, Any]:
    """``environment.json`` as a dict (empty when missing or damaged)."""
    value = read_json(paths.environment)
    return value if isinstance(value, dict) else {}


_LIST = (lambda v: isinstance(v, list), "a list")
_OBJECT = (lambda v: isinstance(v, dict), "a JSON object")
_TEXT = (lambda v: isinstance(v, str), "a string")
_CONFIG_FIELDS: dict[str, tuple[Any, str]] = {
    "script": _TEXT,
    "cwd": _TEXT,
    "class": _TEXT,
    "rerun_of": _TEXT,
    "argv": _LIST,
    "config_files": _LIST,
    "files": _LIST,
    "overrides": _LIST,
    "assignments": _LIST,
    "tags": _OBJECT,
    "resolved": _OBJECT,
    "multirun": _OBJECT,
}


def read_config(paths: RunPaths) -> tuple[dict[str, Any] | None, list[str]]:
    """``config.json`` and what is wrong with it; ``(None, [])`` when the run has none.

    Never raises: a field of the wrong type is dropped and reported, the others are kept.
    """
    damage: list[str] = []
    value = read_document(paths.config, damage)
    if value is None:
        return None, damage
    for key, (check, expected) in _CONFIG_FIELDS.items():
        if value.get(key) is not None and not check(value[key]):
            damage.append(f"{paths.config.name}: expected {key!r} to be {expected}")
            del value[key]
    return value, damage
