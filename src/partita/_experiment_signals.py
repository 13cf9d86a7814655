"""How an experiment's process ends: SIGTERM/SIGINT while it runs, and errors without traceback."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from types import TracebackType
from typing import Any, TypeVar

from partita._experiment_env import flag

_E = TypeVar("_E", bound=BaseException)


class Signals:
    """Treat SIGTERM like Ctrl-C while the experiment runs (clean cancellation).

    SIGINT gets Python's own handler explicitly: a shell starts background commands
    (``python xp.py &``) with SIGINT ignored, and Ctrl-C or ``kill -INT`` must still
    cancel the experiment.
    """

    def __init__(self) -> None:
        self._previous_sigterm: Any = None
        self._previous_sigint: Any = None

    def install(self) -> None:
        """Install the handlers (only the main thread can) and the excepthook."""
        self._previous_sigterm = None
        self._previous_sigint = None
        if threading.current_thread() is not threading.main_thread():
            return

        def on_sigterm(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt("SIGTERM")

        self._previous_sigterm = signal.signal(signal.SIGTERM, on_sigterm)
        self._previous_sigint = signal.signal(signal.SIGINT, signal.default_int_handler)
        install_excepthook()

    def restore(self) -> None:
        """Give SIGTERM and SIGINT back the handlers they had before :meth:`install`."""
        if self._previous_sigterm is not None:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None
        if self._previous_sigint is not None:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGINT, self._previous_sigint)
            self._previous_sigint = None


def reported(exc: _E) -> _E:
    """Mark ``exc`` as explained on stderr already: the excepthook prints no traceback."""
    with contextlib.suppress(AttributeError, TypeError):
        exc._partita_reported = True  # type: ignore[attr-defined]
    return exc


def install_excepthook() -> None:
    """Print what the experiment reported, without a traceback through partita's internals.

    Concerns only exceptions marked by :func:`reported` (a failed experiment, a full disk,
    an interruption); everything else goes to the previous hook. ``PARTITA_DEBUG=1``
    prints the full traceback as well.
    """
    if getattr(sys.excepthook, "_partita", False):
        return
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        if not getattr(value, "_partita_reported", False) or flag("PARTITA_DEBUG"):
            previous(kind, value, tb)
            return
        if isinstance(value, KeyboardInterrupt):
            print("partita: interrupted", file=sys.stderr, flush=True)
        else:
            print(f"partita: {value}", file=sys.stderr, flush=True)
        print("partita: (PARTITA_DEBUG=1 shows the traceback)", file=sys.stderr, flush=True)

    hook._partita = True  # type: ignore[attr-defined]
    sys.excepthook = hook
