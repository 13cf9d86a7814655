"""The record of the services a run started (``RunPaths.services``): what ``status`` lists.

A JSON list, rewritten atomically whenever a service starts or stops::

    [{"name": "tensorboard", "url": "http://127.0.0.1:6006/", "state": "running",
      "pid": 4242, "host": "node1", "start": 123456, "command": ["tensorboard", ...],
      "owner": {"pid": 4200, ...}, "started": 1700000000.0, "stopped": null, "log": "..."}]

A service recorded ``running`` whose process is gone (the experiment was killed and the
service went with it) is reported ``gone`` by :func:`read_services`. ``owner`` names the
experiment's process (a service without a process of its own lives as long as it).
"""

from __future__ import annotations

from typing import Any

from partita.workspace._atomic import read_json, write_json
from partita.workspace._process import is_alive
from partita.workspace._runs import RunPaths

__all__ = ["read_services", "write_services"]


def write_services(paths: RunPaths, services: list[dict[str, Any]]) -> None:
    """Record the run's services (atomically). Raises ``OSError`` if it cannot."""
    write_json(paths.services, services, fsync=False)


def read_services(paths: RunPaths, *, live: bool = True) -> list[dict[str, Any]]:
    """The services recorded for the run (none if it started none, or the file is damaged).

    With ``live``, a service recorded ``running`` whose process is certainly gone is
    reported with ``"state": "gone"``; one on another host keeps what its record says.
    """
    try:
        data = read_json(paths.services)
    except (OSError, ValueError):
        return []
    if not isinstance(data, list):
        return []
    found = []
    for entry in data:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        entry = dict(entry)
        if live and entry.get("state") == "running":
            # Its process, or for a service without one the experiment's, is gone.
            process = entry if entry.get("pid") is not None else entry.get("owner")
            if is_alive(process if isinstance(process, dict) else None) is False:
                entry["state"] = "gone"
        found.append(entry)
    return found
