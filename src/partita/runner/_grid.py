"""``grid()`` and the tags of values that vary.

While a combination of :func:`grid` is being used (between two iterations of the loop), and
during each run of ``--multirun``, the varying values are *ambient tags*: every task
submitted then is tagged with them (a tag the task already has, set with ``tag()``, wins).
So ``partita jobs list --tag C=10`` finds the jobs of that combination without any
``tag()`` call.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from partita.config import _config, _runtime
from partita.config._config import Task, is_frozen
from partita.errors import RunnerError, TagConflictWarning
from partita.runner._resolve import tag_of

__all__ = ["ambient_tags", "current_tags", "grid"]

_stack: list[dict[str, Any]] = []


def current_tags() -> dict[str, Any]:
    """The ambient tags now (inner grids win over outer ones)."""
    merged: dict[str, Any] = {}
    for layer in _stack:
        merged.update(layer)
    return merged


def _tagging(submit: Callable[..., Any]) -> Callable[..., Any]:
    def tagged_submit(task: Task, **options: Any) -> Any:
        if isinstance(task, Task) and not is_frozen(task):
            own = task.tags()
            for name, value in current_tags().items():
                if name not in own:
                    task.tag(name, value)
                elif type(own[name]) is not type(value) or own[name] != value:
                    _runtime.warn_caller(
                        f"{type(task).__qualname__}: the tag {name!r} is given two values, "
                        f"{own[name]!r} (a tag it has) and {value!r} (by the grid or --multirun); "
                        f"{own[name]!r} wins (a tag the task has wins over an ambient one). "
                        "Leave one of them out, or give the tag() another name.",
                        TagConflictWarning,
                    )
        return submit(task, **options)

    tagged_submit._partita_tagging = True  # type: ignore[attr-defined]
    return tagged_submit


@contextlib.contextmanager
def ambient_tags(tags: dict[str, Any]) -> Iterator[None]:
    """Tag every task submitted inside the block with ``tags``."""
    submitters = _config._submitter
    installed = bool(submitters) and not getattr(submitters[0], "_partita_tagging", False)
    previous = submitters[0] if submitters else None
    if installed and previous is not None:
        _config.set_submitter(_tagging(previous))
    _stack.append(tags)
    try:
        yield
    finally:
        _stack.remove(tags)
        if installed and submitters and getattr(submitters[0], "_partita_tagging", False):
            _config.set_submitter(previous)


def grid(**axes: Iterable[Any]) -> Iterator[Any]:
    """Every combination of the given values, each one tagging the tasks it submits.

    ``for C, seed in grid(C=[0.1, 1.0], seed=range(3)):`` yields ``(C, seed)`` tuples
    (the bare value when one keyword is given), the last keyword varying fastest. Tasks
    submitted in the loop's body are tagged ``C=...`` and ``seed=...`` (unless they already
    carry such a tag).
    """
    if not axes:
        raise RunnerError("grid(): give at least one keyword, e.g. grid(lr=[0.1, 0.01]).")
    names = list(axes)
    values = []
    for name, given in axes.items():
        if isinstance(given, str | bytes) or not isinstance(given, Iterable):
            raise RunnerError(
                f"grid(): {name} must be a list or range of values, found "
                f"{type(given).__name__} {given!r}. Use e.g. {name}=[{given!r}]."
            )
        values.append(list(given))
    for combo in itertools.product(*values):
        tags = {name: tag_of(value, repr(value)) for name, value in zip(names, combo, strict=True)}
        with ambient_tags(tags):
            yield combo[0] if len(names) == 1 else combo
