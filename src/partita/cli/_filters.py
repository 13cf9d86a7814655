"""Job filters shared by ``jobs list``, ``jobs kill`` and ``jobs clean``."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import click

from partita.cli._app import UsageFailure
from partita.workspace import Index, JobInfo

F = TypeVar("F", bound=Callable[..., Any])

STATES = ("done", "failed", "running", "waiting", "cancelled")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SPAN = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_tag(text: str) -> tuple[str, Any]:
    """``name=value`` → ``(name, value)``, the value parsed as JSON when it is JSON.

    ``y=1`` is the int 1, ``y=1.0`` the float, ``y=true`` the bool, ``y="1"`` and ``y=abc``
    strings.
    """
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise UsageFailure(
            f"--tag: expected NAME=VALUE (e.g. --tag y=1, --tag 'name=\"bert\"'), found {text!r}."
        )
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return name, value


def parse_since(text: str, now: float | None = None) -> float:
    """A timestamp from ``30m``, ``2h``, ``1d``, ``1h30m`` (ago) or an ISO date/time."""
    compact = text.strip().replace(" ", "").lower()
    spans = _SPAN.findall(compact)
    if spans and "".join(number + unit for number, unit in spans) == compact:
        seconds = sum(float(number) * _UNITS[unit] for number, unit in spans)
        return (time.time() if now is None else now) - seconds
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise UsageFailure(
            f"--since: expected a duration such as 30m, 2h, 1d or 1h30m, or a date such as "
            f"2024-05-01 or 2024-05-01T14:30, found {text!r}."
        ) from None


@dataclass
class Filters:
    """The filter options of one command line."""

    states: tuple[str, ...] = ()
    task: str | None = None
    experiment: str | None = None
    tags: tuple[str, ...] = ()
    since: str | None = None

    @property
    def given(self) -> bool:
        """Whether any filter was given."""
        return bool(self.states or self.task or self.experiment or self.tags or self.since)

    def iterate(self, index: Index) -> Iterator[JobInfo]:
        """The jobs of :meth:`select`, read from the index a few hundred at a time."""
        tags = dict(parse_tag(text) for text in self.tags)
        since = parse_since(self.since) if self.since else None
        return index.iter_jobs(
            states=self.states,
            task=self.task,
            experiment=self.experiment,
            tags=tags or None,
            since=since,
        )

    def select(self, index: Index, states: Sequence[str] | None = None) -> list[JobInfo]:
        """The jobs matching every filter, most recent first (``states`` overrides ``--state``)."""
        tags = dict(parse_tag(text) for text in self.tags)
        since = parse_since(self.since) if self.since else None
        return index.jobs(
            states=self.states if states is None else states,
            task=self.task,
            experiment=self.experiment,
            tags=tags or None,
            since=since,
        )


def filter_options(function: F) -> F:
    """Add ``--state``, ``--task``, ``--experiment``, ``--tag``, ``--since`` as ``filters``."""
    options = [
        click.option(
            "--since",
            metavar="WHEN",
            help="Jobs active since then: 30m, 2h, 1d, 1h30m ago, or a date (2024-05-01).",
        ),
        click.option(
            "--tag",
            "tags",
            multiple=True,
            metavar="NAME=VALUE",
            help="Jobs with this tag (repeatable). VALUE is JSON when it can be: y=1 is the int "
            "1, y=1.0 a float, y=true a bool; y='\"1\"' or y=abc a string.",
        ),
        click.option(
            "--experiment", "-e", metavar="NAME", help="Jobs submitted by this experiment."
        ),
        click.option(
            "--task",
            "-t",
            metavar="TYPE",
            help="Jobs of this task type id (exact, or any part of it: 'train').",
        ),
        click.option(
            "--state",
            "-s",
            "states",
            multiple=True,
            type=click.Choice(STATES, case_sensitive=False),
            help="Jobs in this state (repeatable).",
        ),
    ]

    def wrapper(**kwargs: Any) -> Any:
        filters = Filters(
            states=tuple(s.lower() for s in kwargs.pop("states")),
            task=kwargs.pop("task"),
            experiment=kwargs.pop("experiment"),
            tags=kwargs.pop("tags"),
            since=kwargs.pop("since"),
        )
        # Check the syntax now, before anything is read or done.
        for text in filters.tags:
            parse_tag(text)
        if filters.since:
            parse_since(filters.since)
        return function(filters=filters, **kwargs)

    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    wrapper.__dict__.update(function.__dict__)
    decorated: Any = wrapper
    for option in options:
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]
