"""The one reader of a job folder's state: :func:`read_status`.

Everything that asks "what state is this job in?" — the scheduler, the index, the dry run,
the command line and the monitor — reads it here, so they never disagree. The reader never
raises for a missing or damaged file: what it cannot read is reported in
:attr:`JobStatus.damage` (``"state.json: expected a JSON object, found a list"``) and the
damaged part is left out, so a single bad file never hides the rest of a work directory.

Rules (see docs/workspace.md):

* A final marker (``done``, ``failed``, ``cancelled``; ``done`` wins) decides the state. Its
  presence is what counts: a marker whose contents cannot be read still says the job ended
  that way (a done job is never run again because its marker was damaged).
* Without a marker, ``state.json`` says ``running`` or nothing. A final state recorded in
  ``state.json`` without its marker is a write interrupted between the two files (the marker
  is written last): the job is not finished, and reads as never launched.
"""

from __future__ import annotations

import errno
import json
import math
import os
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from partita.workspace._atomic import read_bytes
from partita.workspace._paths import JobPaths, done_in
from partita.workspace._state import JobState, Reason, marker_fields

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class JobStatus(NamedTuple):
    """What the files of one job folder say, validated."""

    state: JobState | None
    """The final marker's state if a marker exists, else ``running`` if ``state.json`` says
    so, else ``None`` (never launched, or its state cannot be read: see ``damage``)."""
    reason: Reason | None
    """Why it failed (``None`` unless the state is ``failed`` or ``cancelled``)."""
    record: Mapping[str, Any]
    """``state.json``, with every field of the wrong type left out; empty if absent or
    unreadable."""
    final: Mapping[str, Any] | None
    """The final marker's contents (``time``, ``attempt``, ``reason``, ``exit_code``,
    ``detail``) when a marker exists; empty if its contents are unreadable."""
    damage: tuple[str, ...]
    """What could not be read, one ``"<file>: <what is wrong>"`` each; ``()`` when intact."""

    @property
    def done(self) -> bool:
        """Whether the job finished successfully (its ``done`` marker exists)."""
        return self.state is JobState.DONE

    @property
    def damaged(self) -> bool:
        """Whether some file of the folder could not be read."""
        return bool(self.damage)


# --- field checks ----------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """Whether a JSON value is a finite number (``True`` is not a number here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or check(value)


_STATES = {state.value for state in JobState}
_REASONS = {reason.value for reason in Reason}

_Check = tuple[Callable[[Any], bool], str]

_NUMBER: _Check = (_optional(is_number), "a number")
_INT: _Check = (_optional(_is_int), "an integer")
_TEXT: _Check = (_optional(lambda v: isinstance(v, str)), "a string")
_OBJECT: _Check = (_optional(lambda v: isinstance(v, dict)), "a JSON object")
_STATE: _Check = (lambda v: v in _STATES, f"one of {', '.join(sorted(_STATES))}")
_REASON: _Check = (_optional(lambda v: v in _REASONS), "null or a known reason")

RECORD_FIELDS: Mapping[str, _Check] = MappingProxyType(
    {
        "state": _STATE,
        "reason": _REASON,
        "detail": _TEXT,
        "attempt": _INT,
        "launched": _NUMBER,
        "started": _NUMBER,
        "ended": _NUMBER,
        "exit_code": _INT,
        "launcher": _OBJECT,
        "owner": _OBJECT,
        "runner": _OBJECT,
        "tags": _OBJECT,
    }
)
"""The typed fields of ``state.json`` (others are kept as they are)."""

MARKER_FIELDS: Mapping[str, _Check] = MappingProxyType(
    {
        "time": _NUMBER,
        "attempt": _INT,
        "reason": _REASON,
        "exit_code": _INT,
        "detail": _TEXT,
    }
)
"""The typed fields of a final marker."""

_HISTORY_FIELDS: Mapping[str, _Check] = MappingProxyType(
    {"state": _STATE, "time": _NUMBER, "attempt": _INT, "reason": _REASON}
)


def _kind(value: Any) -> str:
    """How a JSON value is named in messages: ``a list``, ``the string 'x'``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {json.dumps(value)}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _validated(
    name: str, document: dict[str, Any], fields: Mapping[str, _Check], damage: list[str]
) -> dict[str, Any]:
    """``document`` without its fields of the wrong type (each reported in ``damage``)."""
    out: dict[str, Any] = {}
    for key, value in document.items():
        check = fields.get(key)
        if check is not None and not check[0](value):
            damage.append(f"{name}: expected {key!r} to be {check[1]}, found {_kind(value)}")
            continue
        out[key] = value
    return out


def _history(name: str, value: Any, damage: list[str]) -> list[dict[str, Any]] | None:
    if not isinstance(value, list):
        damage.append(f"{name}: expected 'history' to be a list, found {_kind(value)}")
        return None
    entries = []
    for position, entry in enumerate(value):
        where = f"{name}: history[{position}]"
        if not isinstance(entry, dict):
            damage.append(f"{where}: expected a JSON object, found {_kind(entry)}")
            continue
        entries.append(_validated(where, entry, _HISTORY_FIELDS, damage))
    return entries


# --- reading ---------------------------------------------------------------------------


def read_document(path: os.PathLike[str] | str, damage: list[str]) -> dict[str, Any] | None:
    """A JSON object file: its contents, or ``None`` if absent or unreadable.

    What is wrong with a file that exists is appended to ``damage`` (``"<name>: ..."``); a
    missing file (or a missing folder above it) is not damage. An empty file reads as
    ``None`` and is reported too.
    """
    name = os.path.basename(os.fspath(path))
    try:
        data = read_bytes(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except IsADirectoryError:
        damage.append(f"{name}: expected a file, found a directory")
        return None
    except OSError as exc:
        damage.append(f"{name}: cannot read it ({exc.strerror or exc})")
        return None
    if not data.strip():
        damage.append(f"{name}: the file is empty")
        return None
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, json.JSONDecodeError):
            reason = f"{exc.msg.lower()} at line {exc.lineno}, column {exc.colno}"
        else:
            reason = str(exc)
        damage.append(f"{name}: not valid JSON ({reason})")
        return None
    if not isinstance(value, dict):
        damage.append(f"{name}: expected a JSON object, found {_kind(value)}")
        return None
    return value


def _present(path: os.PathLike[str] | str, damage: list[str]) -> bool:
    """Whether a marker exists (anything at its path counts: it was written on purpose)."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return False
        damage.append(f"{os.path.basename(os.fspath(path))}: cannot read it ({exc.strerror})")
        return False
    return True


def _marker(path: os.PathLike[str] | str, damage: list[str]) -> dict[str, Any]:
    name = os.path.basename(os.fspath(path))
    local: list[str] = []
    document = read_document(path, local)
    # An empty marker is a valid marker: its presence is what counts.
    damage.extend(item for item in local if item != f"{name}: the file is empty")
    if document is None:
        return {}
    return _validated(name, marker_fields(document), MARKER_FIELDS, damage)


#: What a done job is when nothing more than "it is done" is asked (see ``read_status``).
_DONE = JobStatus(
    state=JobState.DONE,
    reason=None,
    record=MappingProxyType({}),
    final=MappingProxyType({}),
    damage=(),
)


def done_marker_present(paths: JobPaths) -> bool:
    """Whether the job's ``done`` marker exists: what ``read_status(paths, details=False)``
    reports as done (the marker counts by its presence)."""
    return done_in(paths.root)


def read_status(paths: JobPaths, *, details: bool = True) -> JobStatus:
    """What the files of ``paths`` say about the job; never raises for missing or bad files.

    With ``details=False``, a done job (its marker counts by its presence) is reported as
    done without reading its files: ``record`` and ``final`` are then empty. This is what
    a rerun of thousands of done tasks asks, once per task.
    """
    if not details and done_marker_present(paths):
        return _DONE  # otherwise not done, or damaged: the full reading below says which
    damage: list[str] = []
    final: dict[str, Any] | None = None
    state: JobState | None = None
    for marker_state, path in (
        (JobState.DONE, paths.done),
        (JobState.FAILED, paths.failed),
        (JobState.CANCELLED, paths.cancelled),
    ):
        if _present(path, damage):
            state, final = marker_state, _marker(path, damage)
            break
    document = read_document(paths.state, damage)
    record: dict[str, Any] = {}
    if document is not None:
        record = _validated("state.json", document, RECORD_FIELDS, damage)
        if "history" in record:
            history = _history("state.json", record.pop("history"), damage)
            if history is not None:
                record["history"] = history
    if state is None and record.get("state") == JobState.RUNNING.value:
        state = JobState.RUNNING
    reason: Reason | None = None
    if state in (JobState.FAILED, JobState.CANCELLED):
        text = (final or {}).get("reason")
        if text is None and record.get("state") == state.value:
            text = record.get("reason")
        reason = Reason(text) if text is not None else None
    return JobStatus(
        state=state,
        reason=reason,
        record=MappingProxyType(record),
        final=MappingProxyType(final) if final is not None else None,
        damage=tuple(damage),
    )


class Progress(NamedTuple):
    """What a running task last reported with ``partita.progress`` (``progress.json``)."""

    fraction: float | None
    """From 0.0 to 1.0; ``None`` if nothing (readable) was reported."""
    message: str | None
    damage: tuple[str, ...]
    """What could not be read, as in :attr:`JobStatus.damage`."""


_PROGRESS_FIELDS: Mapping[str, _Check] = MappingProxyType(
    {"fraction": _NUMBER, "message": _TEXT, "time": _NUMBER}
)


def read_progress(paths: JobPaths) -> Progress:
    """The progress a job reported; never raises for a missing or bad file."""
    damage: list[str] = []
    document = read_document(paths.progress, damage)
    if document is None:
        return Progress(None, None, tuple(damage))
    checked = _validated("progress.json", document, _PROGRESS_FIELDS, damage)
    fraction = checked.get("fraction")
    return Progress(
        None if fraction is None else min(max(float(fraction), 0.0), 1.0),
        checked.get("message") or None,
        tuple(damage),
    )
