"""How values look on the terminal: states, durations, tags, progress bars, sizes."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rich.text import Text

from partita.launchers import describe_handle

STATE_ORDER = ("damaged", "running", "failed", "cancelled", "waiting", "ready", "done")
"""States in the order summaries list them: what needs attention first."""

STATE_STYLES = {
    "done": "green",
    "failed": "bold red",
    "running": "cyan",
    "waiting": "yellow",
    "ready": "yellow",
    "cancelled": "magenta",
    "died": "bold red",
    "detached": "cyan",
    "created": "yellow",
    "missing": "dim",
    "damaged": "bold red",
}


def state_text(state: str, reason: str | None = None) -> Text:
    """``failed (error)`` in the state's colour."""
    label = f"{state} ({reason})" if reason and state != "done" else state
    return Text(label, style=STATE_STYLES.get(state, ""))


def duration(seconds: float | None) -> str:
    """``0.4s``, ``3m05s``, ``2h07m``, ``3d04h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def when(timestamp: float | None) -> str:
    """Local date and time (``2024-05-01 14:03:12``); ``-`` when unknown."""
    if timestamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def ago(timestamp: float | None, now: float | None = None) -> str:
    """``5m ago`` (``-`` when unknown)."""
    if timestamp is None:
        return "-"
    delta = (time.time() if now is None else now) - timestamp
    if delta < 0:
        return "just now"
    for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= seconds:
            return f"{int(delta // seconds)}{unit} ago"
    return f"{int(delta)}s ago"


def tag_value(value: Any) -> str:
    """A tag value as typed on the command line (``1``, ``"1"``, ``true``, ``0.1``)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def tags_text(tags: Mapping[str, Any]) -> str:
    """``lr=0.1 name="base"``."""
    return " ".join(f"{name}={tag_value(value)}" for name, value in tags.items())


def bar(fraction: float, width: int = 12) -> Text:
    """A bar that reads without colours too: ``█████░░░░░░░``."""
    fraction = min(max(fraction, 0.0), 1.0)
    filled = round(fraction * width)
    text = Text("█" * filled, style="green")
    text.append("░" * (width - filled), style="dim")
    return text


def progress_text(state: str, fraction: float | None, message: str | None, width: int = 12) -> Text:
    """Bar, percentage and message of a job's reported progress (empty if none)."""
    if fraction is None or state == "done":
        return Text("")
    text = bar(fraction, width)
    text.append(f" {fraction * 100:3.0f}%")
    if message:
        text.append(f" {message}")
    return text


def plural(count: int, noun: str) -> str:
    """``1 job``, ``3 jobs``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def counts_text(counts: Mapping[str, int], separator: str = ", ") -> Text:
    """``3 done, 1 failed`` with coloured states (most urgent first)."""
    text = Text()
    for state in ordered_states(counts):
        if text:
            text.append(separator)
        text.append(f"{counts[state]} ")
        text.append(state, style=STATE_STYLES.get(state, ""))
    return text


def ordered_states(states: Iterable[str]) -> list[str]:
    """``states`` sorted as in :data:`STATE_ORDER` (unknown ones last)."""
    rank = {state: i for i, state in enumerate(STATE_ORDER)}
    return sorted(set(states), key=lambda s: (rank.get(s, len(rank)), s))


def size(nbytes: int) -> str:
    """``812 B``, ``12.3 kB``, ``4.0 MB``..."""
    value = float(nbytes)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _scaled(value: float, units: tuple[str, ...]) -> str:
    """``value`` (in the last unit of ``units``, each 1000 times the previous) readably."""
    if value == 0:
        return "0"
    scale = 1.0
    for unit in reversed(units):  # the largest unit in which it is at least 1
        if abs(value) * scale >= 1 or unit == units[0]:
            return f"{value * scale:.3g} {unit}"
        scale *= 1000
    raise AssertionError("unreachable")


def energy_text(energy: object) -> str | None:
    """``12.3 Wh (cpu 4.1 Wh, gpu 0 Wh, ram 8.2 Wh), 5.1 g CO2eq`` from a job's environment."""
    if not isinstance(energy, dict):
        return None
    if energy.get("error"):
        return f"not measured ({energy['error']})"
    total = energy.get("energy_kwh")
    if not isinstance(total, int | float):
        return None
    wh = ("µWh", "mWh", "Wh", "kWh")
    text = _scaled(float(total), wh)
    parts = [
        f"{name} {_scaled(float(energy[key]), wh)}"
        for name, key in (
            ("cpu", "cpu_energy_kwh"),
            ("gpu", "gpu_energy_kwh"),
            ("ram", "ram_energy_kwh"),
        )
        if isinstance(energy.get(key), int | float)
    ]
    if parts:
        text += f" ({', '.join(parts)})"
    co2 = energy.get("emissions_kg")
    if isinstance(co2, int | float):
        text += f", {_scaled(float(co2), ('µg', 'mg', 'g', 'kg'))} CO2eq"
    return text


def folder_size(path: Path) -> int:
    """Bytes used by the files below ``path`` (symbolic links are not followed)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def shared_name(workspace: Any, folder: Path) -> str:
    """A shared folder of ``workspace`` as ``<type id>/<group>/<short id>``."""
    relative = folder.relative_to(workspace.shared)
    return f"{relative.parent.as_posix()}/{relative.name[:12]}"


def launcher_text(handle: Mapping[str, Any] | None) -> str:
    """``local, pid 1234 on node1`` or ``slurm, job 42_0``: asked to the handle's launcher."""
    return describe_handle(handle)


def damage_lines(name: str, damage: Iterable[str]) -> list[Text]:
    """``  demo.train/3f2a: state.json: expected ...`` for each thing that cannot be read."""
    return [Text(f"  {name}: {item}", style="red") for item in damage]
