"""Progress reporting from inside a task: ``partita.progress(0.42, "epoch 3")``."""

from __future__ import annotations

import time
from pathlib import Path

_target: list[Path] = []
_last = [0.0]
_last_message: list[str | None] = [None]
_MIN_INTERVAL = 0.2


def _set_target(path: Path | None) -> None:
    _target.clear()
    if path is not None:
        _target.append(path)


def progress(fraction: float, message: str = "") -> None:
    """Report how far the current job is (``0.0``–``1.0``) with an optional message.

    Shown by ``partita jobs list``, the live terminal view and the web monitor. Calls are
    cheap: at most five writes a second reach the disk (the first, last and every change of
    message always do). Outside a job it does nothing.
    """
    if not _target:
        return
    fraction = min(max(float(fraction), 0.0), 1.0)
    now = time.monotonic()
    if 0.0 < fraction < 1.0 and now - _last[0] < _MIN_INTERVAL and message == _last_message[0]:
        return
    _last[0] = now
    _last_message[0] = message
    from partita.workspace._atomic import write_json

    try:
        write_json(
            _target[0], {"fraction": fraction, "message": message, "time": time.time()}, fsync=False
        )
    except OSError:
        pass
