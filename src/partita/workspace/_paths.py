"""The work directory layout: one object derives every path (see docs/workspace.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from partita import _layout
from partita.errors import WorkspaceError
from partita.workspace._atomic import atomic_write

LAYOUT_VERSION = 1
MARKER = ".partita"
#: The marker of a done job, in its job folder.
DONE = "done"


def done_in(folder: str | os.PathLike[str]) -> bool:
    """Whether the job folder ``folder`` holds its ``done`` marker (one ``lstat``).

    The marker counts by its presence. No :class:`JobPaths` and no path object is made: a
    rerun asks this of every submitted task, thousands of times.
    """
    name = os.fspath(folder)
    try:
        os.lstat(f"{name}/{DONE}" if name[-1:] != "/" else name + DONE)
    except OSError:
        return False
    return True


class JobPaths:
    """Every file of one job folder ``WORKDIR/jobs/<type id>/<identifier>/``."""

    __slots__ = ("_files", "root")

    def __init__(self, root: Path) -> None:
        self.root = root
        self._files: dict[str, Path] = {}

    def _file(self, name: str) -> Path:
        # Each path is joined once: the scheduler asks for them many times per job.
        path = self._files.get(name)
        if path is None:
            path = self._files[name] = self.root / name
        return path

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobPaths) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    def __repr__(self) -> str:
        return f"JobPaths({str(self.root)!r})"

    @property
    def workdir(self) -> Path:
        """The work directory holding this job folder (``WORKDIR`` above)."""
        return self.root.parent.parent.parent

    @property
    def params(self) -> Path:
        """The full config, reloadable with ``partita.load``."""
        return self._file(_layout.PARAMS)

    @property
    def stdout(self) -> Path:
        """Standard output of the job."""
        return self._file(_layout.STDOUT)

    @property
    def stderr(self) -> Path:
        """Standard error of the job (tracebacks land here)."""
        return self._file(_layout.STDERR)

    @property
    def state(self) -> Path:
        """The current state record (JSON)."""
        return self._file("state.json")

    @property
    def done(self) -> Path:
        """Marker: the job finished successfully."""
        return self._file(DONE)

    @property
    def failed(self) -> Path:
        """Marker: the job failed (JSON with the reason)."""
        return self._file("failed")

    @property
    def cancelled(self) -> Path:
        """Marker: the job was cancelled."""
        return self._file("cancelled")

    @property
    def lock(self) -> Path:
        """Lock held while the job is launched and while it executes."""
        return self._file("lock")

    @property
    def progress(self) -> Path:
        """Progress reported by the task (JSON), see ``partita.progress``."""
        return self._file("progress.json")

    @property
    def results(self) -> Path:
        """Results reported by the task (JSON), see ``partita.report``."""
        return self.root / "results.json"

    @property
    def outputs(self) -> Path:
        """Outputs published while the job runs (one JSON object a line), ``partita.publish``."""
        return self.root / "outputs.jsonl"

    @property
    def artifacts(self) -> Path:
        """Folder for the task's larger outputs, see ``partita.artifacts``."""
        return self.root / "artifacts"

    @property
    def environment(self) -> Path:
        """Where and how the job ran (JSON): host, GPUs, times, memory, code fingerprint.

        In folders made before this went into ``state.json`` (``"environment"``), and in
        ``.attempts/<n>/`` for an earlier attempt set aside."""
        return self.root / "environment.json"

    @property
    def shared_refs(self) -> Path:
        """The shared folders the job's task uses (JSON list, relative to the work directory)."""
        return self._file("shared.json")

    @property
    def cancel_request(self) -> Path:
        """Present when a cancellation was asked for (the runner then records ``cancelled``)."""
        return self._file("cancel-requested")

    @property
    def migration(self) -> Path:
        """How the job was found or moved by a migration (JSON), see ``partita migrate``."""
        return self._file("migration.json")

    @property
    def attempts(self) -> Path:
        """Folder where earlier attempts' files are set aside, one ``<n>/`` per attempt."""
        return self._file(".attempts")

    def attempt_dir(self, attempt: int) -> Path:
        """What attempt ``attempt`` left behind, once a later attempt set it aside."""
        return self.attempts / str(attempt)

    def kept_between_attempts(self) -> frozenset[str]:
        """Names of the files a new attempt keeps in place (everything else is set aside)."""
        return frozenset(
            p.name
            for p in (
                self.params,
                self.state,
                self.lock,
                self.cancel_request,
                self.attempts,
                self.migration,
                self.shared_refs,
            )
        )

    @property
    def identifier(self) -> str:
        """The job's identifier (its folder name)."""
        return self.root.name

    @property
    def type_id(self) -> str:
        """The type id of its task (the parent folder's name)."""
        return self.root.parent.name


class Workspace:
    """A work directory: ``jobs/``, ``experiments/``, ``tokens/`` and the index.

    Creating a ``Workspace`` creates the directory (and its marker file) if needed, and
    refuses a directory written by an incompatible layout version.
    """

    def __init__(self, root: str | os.PathLike[str], *, create: bool = True) -> None:
        self.root = Path(os.path.abspath(root))
        marker = self.root / MARKER
        if not self.root.exists():
            if not create:
                raise WorkspaceError(
                    f"expected a partita work directory at {self.root}, found nothing. "
                    "Check the path, or run an experiment there first."
                )
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise WorkspaceError(
                    f"cannot create the work directory {self.root}: {exc.strerror}. "
                    "Choose a writable location."
                ) from None
        elif not self.root.is_dir():
            raise WorkspaceError(
                f"expected a directory for the work directory, found a file at {self.root}. "
                "Choose another path."
            )
        info = _read_marker(marker)
        if info is not None:
            version = info.get("layout")
            if version != LAYOUT_VERSION:
                raise WorkspaceError(
                    f"{self.root} uses work directory layout {version!r}; this partita reads "
                    f"layout {LAYOUT_VERSION}. Use a matching partita version or another "
                    "directory."
                )
        elif create:
            try:
                entries = [p.name for p in self.root.iterdir() if not p.name.startswith(".")]
            except OSError as exc:
                raise WorkspaceError(f"cannot read {self.root}: {exc.strerror}.") from None
            known = (_layout.JOBS, _layout.SHARED, "experiments", "tokens")
            unexpected = [e for e in entries if e not in known]
            if unexpected:
                raise WorkspaceError(
                    f"{self.root} is not empty and is not a partita work directory (it holds "
                    f"{', '.join(sorted(unexpected)[:5])}). Use an empty or new directory."
                )
            try:
                # Atomically: a process killed here leaves no marker, or a whole one.
                atomic_write(marker, (json.dumps({"layout": LAYOUT_VERSION}) + "\n").encode())
            except OSError as exc:
                raise WorkspaceError(
                    f"cannot write to the work directory {self.root}: {exc.strerror}."
                ) from None
        elif not (self.root / _layout.JOBS).exists():
            raise WorkspaceError(
                f"{self.root} is not a partita work directory (no {MARKER} file, no jobs/). "
                "Check the path."
            )
        self.jobs = self.root / _layout.JOBS
        #: Folders shared by the jobs of a task group: ``shared/<type id>/<group>/<id>/``.
        self.shared = self.root / _layout.SHARED
        self.experiments = self.root / "experiments"
        self.tokens = self.root / "tokens"
        self.index_path = self.root / "index.sqlite"
        #: The retention policy's defaults and the pins of ``partita gc`` (JSON object).
        self.retention = self.root / "retention.json"

    @staticmethod
    def looks_like(path: Path) -> bool:
        """Whether ``path`` looks like a work directory: its marker file, or a ``jobs/``."""
        return (path / MARKER).is_file() or (path / _layout.JOBS).is_dir()

    def job(self, type_id: str, identifier: str) -> JobPaths:
        """The paths of the job ``type_id``/``identifier``.

        Raises ``WorkspaceError`` if the names would lead outside ``jobs/`` (a path
        separator, ``..``, a hidden name, or a symbolic link pointing elsewhere): names can
        come from an index or a request, which are not trusted.
        """
        for what, name in (("type id", type_id), ("identifier", identifier)):
            if (
                not name
                or name.startswith(".")
                or "/" in name
                or "\\" in name
                or "\0" in name
                or (os.altsep is not None and os.altsep in name)
            ):
                raise WorkspaceError(
                    f"expected a job {what} that names a folder inside {self.jobs}, found "
                    f"{name!r}. Check the job reference."
                )
        root = self.jobs / type_id / identifier
        if root.is_symlink() or root.parent.is_symlink():
            jobs = self.jobs.resolve()
            if root.resolve().parent.parent != jobs:
                raise WorkspaceError(
                    f"the job folder {root} leads outside {self.jobs} (a symbolic link). "
                    "Remove the link."
                )
        return JobPaths(root)

    def experiment_dir(self, name: str) -> Path:
        """Folder of the experiment ``name`` (its runs are below it)."""
        return self.experiments / name

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"


def _read_marker(marker: Path) -> dict[str, object] | None:
    """The work directory's marker file, or ``None`` when there is none (yet).

    An empty marker is one whose creation was interrupted (partita before it wrote markers
    atomically): it counts as absent and is written again. Anything else that is not a
    JSON object is damage, which the user must look at.
    """
    try:
        text = marker.read_text("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkspaceError(
            f"cannot read the work directory marker {marker}: {exc}. Check its permissions."
        ) from None
    if not text.strip():
        return None
    try:
        info = json.loads(text)
    except ValueError:
        info = None
    if not isinstance(info, dict):
        raise WorkspaceError(
            f"the work directory marker {marker} is damaged: expected a JSON object such as "
            f'{{"layout": {LAYOUT_VERSION}}}, found {text[:60]!r}. If this is a partita work '
            f"directory of layout {LAYOUT_VERSION}, write that line into it."
        )
    return info
