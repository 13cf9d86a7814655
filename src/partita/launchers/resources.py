"""What a job needs: cpus, memory, gpus and duration, parsed from friendly values."""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from partita.errors import LauncherOptionError

_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_MEM = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(min|d|h|m|s)", re.IGNORECASE)
_DURATIONS = re.compile(r"(?:\s*\d+(?:\.\d+)?\s*(?:min|d|h|m|s)\s*)+", re.IGNORECASE)


def parse_memory(value: Any) -> int:
    """Bytes from ``"16G"``, ``"512M"``, ``"1.5GiB"`` or an int (megabytes, as Slurm does)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value * 2**20
    if isinstance(value, str):
        match = _MEM.match(value)
        if match:
            return int(
                float(match.group(1))
                * _UNITS[match.group(2).lower()]
                * (2**20 if not match.group(2) else 1)
            )
    raise LauncherOptionError(
        f"mem: expected a size such as '16G', '512M' or an int of megabytes, found {value!r}."
    )


def parse_duration(value: Any) -> float:
    """Seconds from ``"1h30m"``, ``"90s"``, ``"01:30:00"``, ``"2-00:00:00"``, a timedelta or
    a number of minutes (as Slurm's ``--time``)."""
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value) * 60
    elif isinstance(value, str) and ":" in value:
        days = 0
        text = value.strip()
        if "-" in text:
            head, text = text.split("-", 1)
            days = int(head)
        parts = [float(p) for p in text.split(":")]
        while len(parts) < 3:
            parts.insert(0, 0.0)
        hours, minutes, secs = parts[-3:]
        seconds = days * 86400 + hours * 3600 + minutes * 60 + secs
    elif isinstance(value, str) and _DURATIONS.fullmatch(value):
        seconds = _sum_units(value)
    else:
        seconds = -1
    if seconds <= 0:
        raise LauncherOptionError(
            f"time: expected a duration such as '2h', '1h30m', '90s', '01:30:00', "
            f"'1-12:00:00' or minutes as a number, found {value!r}."
        )
    return seconds


def _sum_units(text: str) -> float:
    factors = {"d": 86400, "h": 3600, "m": 60, "min": 60, "s": 1}
    return sum(float(n) * factors[u.lower()] for n, u in _DURATION.findall(text))


@dataclass(frozen=True)
class Resources:
    """What a job needs. Every field is optional (``None``: no requirement)."""

    cpus: int | None = None
    mem: int | None = None
    """Memory in bytes."""
    gpus: int | None = None
    time: float | None = None
    """Maximum duration in seconds."""

    @classmethod
    def parse(cls, values: Mapping[str, Any] | Resources | None) -> Resources:
        """Build from ``{"cpus": 4, "mem": "16G", "gpus": 1, "time": "2h"}``."""
        if values is None:
            return cls()
        if isinstance(values, Resources):
            return values
        if not isinstance(values, Mapping):
            raise LauncherOptionError(
                f"resources: expected a dict such as {{'cpus': 4, 'mem': '16G', 'time': '2h'}}, "
                f"found {type(values).__name__}."
            )
        known = {"cpus", "mem", "gpus", "time"}
        unknown = set(values) - known
        if unknown:
            raise LauncherOptionError(
                f"resources: unknown key(s) {', '.join(sorted(unknown))}; valid keys are "
                f"{', '.join(sorted(known))}."
            )
        out: dict[str, Any] = {}
        for key in ("cpus", "gpus"):
            value = values.get(key)
            if value is not None:
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise LauncherOptionError(f"resources[{key!r}]: expected an int >= 0.")
                out[key] = value
        if values.get("mem") is not None:
            out["mem"] = parse_memory(values["mem"])
        if values.get("time") is not None:
            out["time"] = parse_duration(values["time"])
        return cls(**out)

    def merged(self, other: Resources) -> Resources:
        """``other``'s values where set, else this one's."""
        return Resources(
            cpus=other.cpus if other.cpus is not None else self.cpus,
            mem=other.mem if other.mem is not None else self.mem,
            gpus=other.gpus if other.gpus is not None else self.gpus,
            time=other.time if other.time is not None else self.time,
        )

    def to_dict(self) -> dict[str, Any]:
        """The set fields, as a JSON-able dict."""
        return {k: v for k, v in self.__dict__.items() if v is not None}
