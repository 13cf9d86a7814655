"""Live outputs published from inside a task: ``partita.publish("checkpoint", ckpt)``.

Runs in the job's process (job side: config and workspace only). Each call appends one
entry to the job's outputs record and flushes it to disk before returning (see
:mod:`partita.workspace._outputs`); the experiment that runs the job reacts to it while
the job still runs (``job.watch_output``). See docs/configs.md, "Live outputs".
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from typing import TYPE_CHECKING, Any

from partita.config import _runtime
from partita.errors import ReportError

if TYPE_CHECKING:
    from partita.workspace import JobPaths

__all__ = ["publish"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_target: list[JobPaths] = []
_count = [0]
_lock = threading.Lock()


def _set_target(paths: JobPaths | None) -> None:
    """Direct published outputs to the job folder ``paths`` (the job runner), or nowhere."""
    _target.clear()
    _count[0] = 0
    if paths is not None:
        _target.append(paths)
        if paths.outputs.exists():  # a ResumableTask's earlier attempt: number on from there
            from partita.workspace._outputs import read_outputs

            _count[0] = max((int(e.get("seq") or 0) for e in read_outputs(paths)), default=0)


def _encode(name: str, value: Any) -> dict[str, Any]:
    """The stored form of ``value``: ``{"config": document}`` or ``{"value": json}``."""
    from partita.config._config import Config

    if isinstance(value, Config):
        from partita.config._serial import to_document

        try:
            return {"config": to_document(value)}
        except Exception as exc:
            raise ReportError(
                f"publish({name!r}, ...): the {type(value).__qualname__} cannot be saved: "
                f"{exc}. Publish a config whose values partita can store (see docs/configs.md)."
            ) from None
    from partita._report import _storable

    try:
        stored = _storable(name, value)
    except ReportError as exc:
        raise ReportError(
            f"publish({name!r}, ...): expected a Config (e.g. Checkpoint(path=..., epoch=3)) "
            f"or a small JSON value; {exc}"
        ) from None
    return {"value": stored}


def publish(name: str, value: Any) -> None:
    """Publish an output of the running job now: ``partita.publish("checkpoint", ckpt)``.

    ``value`` is a :class:`partita.Config` (a checkpoint: its path, its epoch) or a small
    JSON value. It is appended to the job's outputs and on disk when this returns; the
    experiment running the job calls the callbacks of ``job.watch_output(name, ...)`` with
    it while the job goes on, and again when the experiment is run again (so each output
    is handled by every run: submit tasks there, whose identities make them run once).
    Publishing the same value under the same name twice is one output.

    Bad values raise :class:`partita.errors.ReportError` here, inside the job. Outside a
    job (calling ``execute()`` by hand) values are checked, then dropped.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ReportError(
            f"publish(name, ...): expected a name of letters, digits, '_', '.' or '-' "
            f"(e.g. 'checkpoint'), found {name!r}."
        )
    import hashlib

    stored = _encode(name, value)
    canonical = json.dumps(
        [name, stored], sort_keys=True, ensure_ascii=False, allow_nan=False
    ).encode("utf-8", "backslashreplace")
    key = hashlib.sha256(canonical).hexdigest()[:32]
    with _lock:
        if not _target:
            return
        _count[0] += 1
        entry = {
            "name": name,
            "key": key,
            "seq": _count[0],
            "attempt": int(os.environ.get("PARTITA_ATTEMPT", "0") or 0),
            "time": time.time(),
            **stored,
        }
        from partita.workspace._outputs import append_output

        try:
            append_output(_target[0], entry)
        except OSError as exc:
            raise ReportError(
                f"cannot write the outputs of this job to {_target[0].outputs}: "
                f"{exc.strerror or exc}. Free disk space or check the folder's permissions."
            ) from None


_runtime.set_publisher(publish)
