"""The live web monitor of a work directory (optional extra: ``pip install 'partita[web]'``).

``serve(workdir)`` runs it in the foreground and prints its address; ``start_in_thread``
runs it next to an experiment (``experiment(..., monitor=True)``); ``create_app`` gives
the Starlette application itself. Every request needs the token of the printed address;
see docs/monitor.md.
"""

from __future__ import annotations

try:
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        f"the partita web monitor needs starlette and uvicorn ({exc.name} is missing): "
        "pip install 'partita[web]'"
    ) from exc

from partita.web._app import create_app
from partita.web._server import Monitor, serve, start_in_thread

__all__ = ["Monitor", "create_app", "serve", "start_in_thread"]
