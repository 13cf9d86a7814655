"""The environment of job processes."""

from __future__ import annotations

import json
import os
import sys


def environment_for_jobs() -> dict[str, str]:
    """Environment so that the job process imports what the experiment imports."""
    entries = [p for p in (sys.path[0] if sys.path else "",) if p]
    current = os.environ.get("PYTHONPATH")
    if current:
        entries.append(current)
    env = {"PARTITA_SCRIPT_ARGV": json.dumps(sys.argv)}
    if entries:
        env["PYTHONPATH"] = os.pathsep.join(entries)
    return env
