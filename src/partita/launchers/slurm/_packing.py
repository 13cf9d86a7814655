"""Packed arrays: several tasks per array element, each followed on its own.

With ``SlurmLauncher(pack=N)`` each element of an array is a *pack worker*
(``python -m partita._pack``) that runs up to ``N`` tasks in turn, each in a child process of
its own. The worker appends what it does to the element's report file (one JSON object per
line: ``{"slot": k, "event": "start"}`` before task ``k`` starts, ``{"slot": k, "event":
"end", "code": ..., "reason": ...}`` once its outcome is recorded). This module is the
launcher's side of that: the manifest the workers read, the sbatch options of an element,
and reading the report files.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from partita.launchers.slurm._options import SlurmOptions

__all__ = [
    "AUTO_ELEMENT_SECONDS",
    "AUTO_LONGEST_TASK",
    "AUTO_MAX_PACK",
    "AUTO_MIN_TASKS",
    "PACK_FORMAT",
    "PACK_OVERHEAD_MIB",
    "ReportReader",
    "auto_pack_size",
    "element_options",
    "lost_reason",
    "manifest_document",
    "read_report",
]

#: The ``format`` of a pack manifest.
PACK_FORMAT = "partita.pack/1"
#: Memory (MiB) an element asks for on top of one task's: the worker's own interpreter.
PACK_OVERHEAD_MIB = 256
#: Seconds an element asks for on top of the time limits of its tasks (start-up, imports).
PACK_MARGIN_SECONDS = 60


#: ``pack="auto"``: fewest ready tasks of one group worth packing.
AUTO_MIN_TASKS = 8
#: ``pack="auto"``: longest time limit (seconds) of a task that is packed.
AUTO_LONGEST_TASK = 600.0
#: ``pack="auto"``: sum of the time limits (seconds) one element is given at most.
AUTO_ELEMENT_SECONDS = 3600.0
#: ``pack="auto"``: most tasks in one element.
AUTO_MAX_PACK = 50


def auto_pack_size(count: int, longest: float | None) -> int | None:
    """Tasks per element chosen by ``pack="auto"`` for ``count`` ready tasks of one group.

    ``longest`` is the longest time limit of those tasks (seconds; ``None`` if one has
    none). They are packed only when there are at least :data:`AUTO_MIN_TASKS` of them
    and each is declared short (at most :data:`AUTO_LONGEST_TASK`); an element then gets
    as many as fit in :data:`AUTO_ELEMENT_SECONDS` of their limits, at most
    :data:`AUTO_MAX_PACK`, at least 2. ``None``: one task per element.
    """
    if count < AUTO_MIN_TASKS or longest is None or not 0 < longest <= AUTO_LONGEST_TASK:
        return None
    return max(2, min(AUTO_MAX_PACK, int(AUTO_ELEMENT_SECONDS // longest)))


def element_options(options: SlurmOptions, packs: list[list[dict[str, Any]]]) -> SlurmOptions:
    """The sbatch options of one element of a packed array (every element gets the same).

    Tasks run one at a time, so an element needs one task's CPUs and memory (plus the
    worker's :data:`PACK_OVERHEAD_MIB`) and the sum of its tasks' time limits (plus
    :data:`PACK_MARGIN_SECONDS`), for its largest share. Without a time limit for every
    task, the element keeps the options' own (the partition's default if none).
    """
    changes: dict[str, Any] = {}
    limits = [[float(entry.get("time") or 0) for entry in pack] for pack in packs]
    if all(limit > 0 for pack in limits for limit in pack):
        longest = max(sum(pack) for pack in limits)
        minutes = math.ceil((longest + PACK_MARGIN_SECONDS) / 60)
        changes["time"] = timedelta(minutes=minutes)
    if options.mem:
        changes["mem"] = options.mem + PACK_OVERHEAD_MIB
    return options.merged(**changes) if changes else options


def lost_reason(state: str) -> str:
    """Why a task is lost whose worker ended (Slurm ``state``) before its outcome."""
    return {"NODE_FAIL": "node_fail", "PREEMPTED": "preempted"}.get(state, "lost")


@dataclass
class _Report:
    offset: int = 0
    partial: bytes = b""
    starts: dict[int, dict[str, Any]] = field(default_factory=dict)
    ends: dict[int, dict[str, Any]] = field(default_factory=dict)


class ReportReader:
    """Reads the report files of pack workers incrementally (only what was appended)."""

    def __init__(self) -> None:
        self._reports: dict[str, _Report] = {}

    def read(self, path: str) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
        """``(starts, ends)`` of the report at ``path``, by slot (empty while it is missing)."""
        report = self._reports.setdefault(path, _Report())
        try:
            with open(path, "rb") as file:
                file.seek(report.offset)
                chunk = file.read()
        except OSError:
            return report.starts, report.ends
        report.offset += len(chunk)
        data = report.partial + chunk
        *lines, report.partial = data.split(b"\n")
        for line in lines:
            try:
                record = json.loads(line)
                slot = int(record["slot"])
            except (ValueError, KeyError, TypeError):
                continue  # a damaged line names no task: the element's end settles it
            if record.get("event") == "start":
                report.starts[slot] = record
            elif record.get("event") == "end":
                report.ends[slot] = record
        return report.starts, report.ends

    def keep(self, paths: set[str]) -> None:
        """Drop what is cached of every report but ``paths``."""
        for path in list(self._reports):
            if path not in paths:
                del self._reports[path]


def read_report(path: str) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
    """``(starts, ends)`` of one report file, read whole (for one-off questions)."""
    return ReportReader().read(path)


def manifest_document(reports: Path, packs: list[list[dict[str, Any]]]) -> str:
    """The text of a pack manifest: where reports go, and each element's entries."""
    return json.dumps({"format": PACK_FORMAT, "reports": os.fspath(reports), "packs": packs}) + "\n"
