"""The sbatch options of a job, validated and normalised once, when they are given.

``SlurmOptions.from_kwargs(time="2:00:00", mem="16G", cpus_per_task=4)`` checks every
name and value and stores them in one canonical form: ``time`` is a
:class:`~datetime.timedelta`, ``mem`` a number of MiB, counts are ``int``. Two options
that ask for the same thing are therefore equal, and ``to_sbatch_args()`` always
writes them the same way (``--time=02:00:00 --mem=16G --cpus-per-task=4``).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from partita._suggest import closest
from partita.errors import LauncherOptionError

__all__ = ["SlurmOptions"]

_MIB_PER_UNIT = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}

# Names people reach for that are not ours, and the option they mean.
_HINTS = {
    "cpus": "cpus_per_task",
    "cpu": "cpus_per_task",
    "ncpus": "cpus_per_task",
    "memory": "mem",
    "mem_gb": "mem",
    "walltime": "time",
    "time_limit": "time",
    "timeout": "time",
    "gpu": "gpus",
    "queue": "partition",
    "exclusive": "extra",
}

# Options that partita sets itself on the sbatch command line.
_RESERVED = {
    "--output": "partita writes the job's output into its job folder",
    "-o": "partita writes the job's output into its job folder",
    "--error": "partita writes the job's errors into its job folder",
    "-e": "partita writes the job's errors into its job folder",
    "--job-name": "partita names the job after the task",
    "-J": "partita names the job after the task",
    "--array": "partita makes arrays itself",
    "-a": "partita makes arrays itself",
    "--dependency": "partita submits dependencies itself",
    "-d": "partita submits dependencies itself",
    "--parsable": "partita reads sbatch's answer itself",
    "--wrap": "partita writes the batch script",
    "--chdir": "partita sets the working directory in the batch script",
    "-D": "partita sets the working directory in the batch script",
}

# Short sbatch flags of the typed fields (long ones are derived from the field names).
_SHORT_FLAGS = {
    "-p": "partition",
    "-t": "time",
    "-c": "cpus_per_task",
    "-G": "gpus",
    "-N": "nodes",
    "-n": "ntasks",
    "-A": "account",
    "-q": "qos",
    "-C": "constraint",
    "-x": "exclude",
    "-w": "nodelist",
}

_TEXT_RE = re.compile(r"[^\s\x00-\x1f\x7f]+")
_GPUS_RE = re.compile(r"[A-Za-z0-9_.\-]+:[0-9]+")
_NODES_RE = re.compile(r"[0-9]+-[0-9]+")
_SIGNAL_RE = re.compile(r"(?:[BR]{1,2}:)?(?:SIG)?[A-Z0-9]+(?:@[0-9]+)?", re.IGNORECASE)
_MEM_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)(?:I?B)?", re.IGNORECASE)
_TIME_RE = re.compile(r"(?:([0-9]+)-)?([0-9]+)(?::([0-9]+))?(?::([0-9]+))?")


@dataclass(frozen=True)
class SlurmOptions:
    """The sbatch options of a job; build it with :meth:`from_kwargs`.

    Fields left at ``None`` are not passed to sbatch, so the cluster's defaults apply.
    ``extra`` holds raw options in the ``--name=value`` form for anything without a
    field (``"--exclusive"``, ``"--mail-type=END"``).
    """

    partition: str | None = None
    time: timedelta | None = None
    mem: int | None = None
    """Memory per node in MiB (``--mem``)."""
    cpus_per_task: int | None = None
    gpus: int | str | None = None
    """A count, or ``"type:count"``."""
    gpus_per_node: int | str | None = None
    gres: str | None = None
    nodes: int | str | None = None
    """A count, or ``"min-max"``."""
    ntasks: int | None = None
    ntasks_per_node: int | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    exclude: str | None = None
    nodelist: str | None = None
    signal: str | None = None
    """For example ``"B:USR1@120"``: send SIGUSR1 to the batch shell 120 s before the limit."""
    requeue: bool | None = None
    extra: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            normal = _NORMALISERS[f.name](f.name, value) if value is not None else None
            if f.name == "extra" and normal is None:
                normal = ()
            object.__setattr__(self, f.name, normal)
        _check_extra_conflicts(self.extra)

    # ------------------------------------------------------------------ building

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every valid option name, in the order sbatch receives them."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> SlurmOptions:
        """Validate and normalise options given by name; ``None`` leaves an option unset.

        ``time`` takes Slurm's forms (``"MM"``, ``"MM:SS"``, ``"HH:MM:SS"``, ``"D-HH"``,
        ``"D-HH:MM"``, ``"D-HH:MM:SS"``), a number of minutes or a ``timedelta``;
        ``mem`` takes ``"16G"``, ``"512M"``, ``"1.5T"`` or a number of MiB.
        Raises :class:`LauncherOptionError` for an unknown name or an invalid value.
        """
        return cls(**_checked_names(kwargs))

    def merged(self, **kwargs: Any) -> SlurmOptions:
        """A copy with the given options replaced (``None`` unsets one; ``extra`` is replaced)."""
        return SlurmOptions.from_kwargs(**{**self.as_kwargs(), **_checked_names(kwargs)})

    def as_kwargs(self) -> dict[str, Any]:
        """The options that are set, by name; ``from_kwargs(**o.as_kwargs()) == o``."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) not in (None, ())
        }

    # ------------------------------------------------------------------ scaling

    def scale_time(self, factor: float, *, default: timedelta | None = None) -> SlurmOptions:
        """A copy whose time limit is ``factor`` times longer, rounded up to whole minutes.

        Used to ask for more time after a job hit its limit. Without a time limit the
        partition's default applies, which is unknown here: then ``default`` is scaled
        if given, and otherwise the options are returned unchanged.
        """
        _check_factor(factor)
        base = self.time if self.time is not None else default
        if base is None:
            return self
        minutes = math.ceil(base.total_seconds() * factor / 60)
        return dataclasses.replace(self, time=timedelta(minutes=max(minutes, 1)))

    def scale_mem(self, factor: float, *, default: int | str | None = None) -> SlurmOptions:
        """A copy with ``factor`` times more memory, rounded up to whole MiB.

        Used to ask for more memory after a job ran out of it. Without ``mem`` the
        cluster's default applies, which is unknown here: then ``default`` (MiB or
        ``"8G"``) is scaled if given, and otherwise the options are returned unchanged.
        """
        _check_factor(factor)
        base = self.mem
        if base is None and default is not None:
            base = _mem("default", default)
        if base is None:
            return self
        return dataclasses.replace(self, mem=max(math.ceil(base * factor), 1))

    # ------------------------------------------------------------------ output

    def to_sbatch_args(self) -> list[str]:
        """The options as sbatch arguments, e.g. ``["--time=02:00:00", "--mem=16G"]``."""
        args: list[str] = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None or f.name == "extra":
                continue
            flag = "--" + f.name.replace("_", "-")
            if f.name == "requeue":
                args.append("--requeue" if value else "--no-requeue")
            elif f.name == "time":
                args.append(f"{flag}={format_time(value)}")
            elif f.name == "mem":
                args.append(f"{flag}={format_mem(value)}")
            else:
                args.append(f"{flag}={value}")
        args.extend(self.extra)
        return args


# ---------------------------------------------------------------------- formatting


def format_time(limit: timedelta) -> str:
    """``timedelta`` as a Slurm time limit: ``HH:MM:SS``, or ``D-HH:MM:SS`` from a day on."""
    total = math.ceil(limit.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    return f"{days}-{clock}" if days else clock


def format_mem(mib: int) -> str:
    """MiB in the largest whole Slurm unit: ``16G``, ``1536M``, ``2T``."""
    for unit in ("T", "G"):
        size = int(_MIB_PER_UNIT[unit])
        if mib % size == 0:
            return f"{mib // size}{unit}"
    return f"{mib}M"


# ---------------------------------------------------------------------- validation


def _checked_names(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    valid = SlurmOptions.names()
    checked: dict[str, Any] = {}
    for raw_name, value in kwargs.items():
        name = raw_name.replace("-", "_")
        if name not in valid:
            raise LauncherOptionError(_unknown_message(raw_name, valid))
        checked[name] = value
    return checked


def _unknown_message(name: str, valid: tuple[str, ...]) -> str:
    guess = _HINTS.get(name.replace("-", "_").lower())
    if guess is None:
        guess = closest(name.replace("-", "_"), valid)
    hint = f" (did you mean {guess!r}?)" if guess else ""
    return (
        f"unknown Slurm option {name!r}{hint}. Valid options: {', '.join(sorted(valid))}. "
        "Anything else goes into extra, as raw sbatch options: extra=['--exclusive']."
    )


def _invalid(name: str, value: object, expected: str) -> LauncherOptionError:
    return LauncherOptionError(f"invalid Slurm option {name}={value!r}: expected {expected}")


def _check_factor(factor: float) -> None:
    if isinstance(factor, bool) or not isinstance(factor, int | float) or not factor > 0:
        raise LauncherOptionError(f"scaling factor must be a positive number, not {factor!r}")


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not _TEXT_RE.fullmatch(value):
        raise _invalid(name, value, "a non-empty string without spaces or control characters")
    return value


def _count(name: str, value: object) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _invalid(name, value, "a whole number of at least 1")
    return value


def _gpus(name: str, value: object) -> int | str:
    if isinstance(value, str) and _GPUS_RE.fullmatch(value):
        return value
    try:
        return _count(name, value)
    except LauncherOptionError:
        raise _invalid(name, value, 'a count of at least 1, or "type:count" such as "a100:2"')


def _nodes(name: str, value: object) -> int | str:
    if isinstance(value, str) and _NODES_RE.fullmatch(value):
        low, high = (int(part) for part in value.split("-"))
        if 1 <= low <= high:
            return value if low != high else low
    try:
        return _count(name, value)
    except LauncherOptionError:
        raise _invalid(name, value, 'a count of at least 1, or a range "min-max" such as "2-4"')


def _signal(name: str, value: object) -> str:
    if not isinstance(value, str) or not _SIGNAL_RE.fullmatch(value):
        raise _invalid(name, value, 'sbatch\'s "[B:]SIGNAL[@seconds]", such as "B:USR1@120"')
    return value


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise _invalid(name, value, "True (--requeue) or False (--no-requeue)")
    return value


def _time(name: str, value: object) -> timedelta:
    expected = (
        'a positive limit: minutes as an int, a timedelta, or "MM", "MM:SS", "HH:MM:SS", '
        '"D-HH", "D-HH:MM", "D-HH:MM:SS" (leave it unset for the partition\'s limit)'
    )
    limit: timedelta | None = None
    if isinstance(value, timedelta):
        limit = timedelta(seconds=math.ceil(value.total_seconds()))
    elif isinstance(value, int) and not isinstance(value, bool):
        limit = timedelta(minutes=value)
    elif isinstance(value, str):
        limit = _parse_time(value.strip())
    if limit is None or limit <= timedelta(0):
        raise _invalid(name, value, expected)
    return limit


def _parse_time(text: str) -> timedelta | None:
    """Slurm's time forms; a ``D-`` prefix makes the first field hours, as in sbatch."""
    match = _TIME_RE.fullmatch(text)
    if match is None:
        return None
    days, first, second, third = match.groups()
    numbers = [int(part) for part in (first, second, third) if part is not None]
    if days is not None:
        hours, minutes, seconds = ([*numbers, 0, 0])[:3]
        return timedelta(days=int(days), hours=hours, minutes=minutes, seconds=seconds)
    if len(numbers) == 3:
        return timedelta(hours=numbers[0], minutes=numbers[1], seconds=numbers[2])
    if len(numbers) == 2:
        return timedelta(minutes=numbers[0], seconds=numbers[1])
    return timedelta(minutes=numbers[0])


def _mem(name: str, value: object) -> int:
    expected = 'a positive size: MiB as an int, or "512M", "16G", "1.5T"'
    mib: float | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        mib = value
    elif isinstance(value, str):
        match = _MEM_RE.fullmatch(value.strip())
        if match is not None:
            mib = float(match.group(1)) * _MIB_PER_UNIT[match.group(2).upper() or "M"]
    if mib is None or mib <= 0:
        raise _invalid(name, value, expected)
    return math.ceil(mib)


def _extra(name: str, value: object) -> tuple[str, ...]:
    items: Iterable[object] = (value,) if isinstance(value, str) else value  # type: ignore[assignment]
    try:
        items = tuple(items)
    except TypeError:
        raise _invalid(name, value, "a sequence of raw sbatch options such as '--exclusive'")
    for item in items:
        if (
            not isinstance(item, str)
            or not item.startswith("-")
            or re.search(r"[\x00-\x1f\x7f]", item)
        ):
            raise _invalid(
                name,
                item,
                "raw sbatch options, each one string starting with '-' in the "
                "'--name=value' form (no control characters), such as '--mail-type=END'",
            )
    return items  # type: ignore[return-value]


def _check_extra_conflicts(extra: tuple[str, ...]) -> None:
    typed = {"--" + name.replace("_", "-"): name for name in SlurmOptions.names()}
    typed.update(_SHORT_FLAGS)
    typed.pop("--extra")
    for item in extra:
        flag = item.split("=", 1)[0] if item.startswith("--") else item[:2]
        if flag in _RESERVED:
            raise LauncherOptionError(f"extra option {item!r} cannot be used: {_RESERVED[flag]}")
        if flag in typed or (flag == "--no-requeue"):
            field_name = typed.get(flag, "requeue")
            raise LauncherOptionError(
                f"extra option {item!r} duplicates the typed option {field_name!r}: "
                f"pass {field_name}=... instead"
            )


_NORMALISERS: dict[str, Callable[[str, object], object]] = {
    "partition": _text,
    "time": _time,
    "mem": _mem,
    "cpus_per_task": _count,
    "gpus": _gpus,
    "gpus_per_node": _gpus,
    "gres": _text,
    "nodes": _nodes,
    "ntasks": _count,
    "ntasks_per_node": _count,
    "account": _text,
    "qos": _text,
    "constraint": _text,
    "exclude": _text,
    "nodelist": _text,
    "signal": _signal,
    "requeue": _flag,
    "extra": _extra,
}
