"""Pre-tasks: light configs whose ``execute()`` runs in a task's job process before it.

``task.add_pretasks(SetSeed(seed=1))`` records configs in the task's state (not in a
field): the identity encodes them after the fields, in order (docs/identity.md), and
``params.json`` lists them under ``"pretasks"`` of the task's entry. The job runner calls
:func:`run_pretasks` before ``task.execute()``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from partita.config._kinds import ConfigNode
from partita.errors import FrozenConfigError, PretaskError

_STATE = "__partita__"  # where a config keeps its bookkeeping (config/_config.py)


def _is_task(value: Any) -> bool:
    return callable(getattr(type(value), "submit", None))


__all__ = ["add_pretasks", "check_pretask", "run_pretasks"]


def check_pretask(owner: Any, value: Any, position: int) -> ConfigNode:
    """``value`` if it can be a pre-task of ``owner``, else a :class:`PretaskError`."""
    where = f"{type(owner).__qualname__}.add_pretasks(): pre-task {position + 1}"
    if isinstance(value, ConfigNode) and _is_task(value):
        raise PretaskError(
            f"{where} is the task {type(value).__qualname__}; expected a light config (a "
            "Config subclass with an execute() method), which runs in this task's job "
            "process. To run a task first, submit it and pass what submit() returns as a "
            "parameter."
        )
    if isinstance(value, type) and issubclass(value, ConfigNode):
        raise PretaskError(
            f"{where} is the class {value.__qualname__}; expected an instance: "
            f"{value.__qualname__}(...)."
        )
    if not isinstance(value, ConfigNode):
        raise PretaskError(
            f"{where}: expected a light config (a Config subclass with an execute() method), "
            f"found {type(value).__qualname__} {value!r}. Wrap the step in a Config class "
            "with execute(self)."
        )
    if not callable(getattr(type(value), "execute", None)):
        raise PretaskError(
            f"{where}: {type(value).__qualname__} is a Config without an execute() method, "
            f"so it has nothing to run. Define 'def execute(self) -> None' in "
            f"{type(value).__qualname__}."
        )
    return value


def add_pretasks(task: Any, pretasks: Iterable[Any]) -> None:
    """Append ``pretasks`` (checked) to those of ``task``."""
    st = task.__dict__[_STATE]
    if st.frozen:
        raise FrozenConfigError(
            f"{type(task).__qualname__}: pre-tasks must be added before submitting; this task "
            "is already submitted (or loaded). Build a new task instead."
        )
    checked = tuple(
        check_pretask(task, value, len(st.pretasks) + i) for i, value in enumerate(pretasks)
    )
    st.pretasks = st.pretasks + checked
    st.digest = None


def run_pretasks(task: Any) -> None:
    """Call ``execute()`` of each pre-task of ``task``, in order (in the job process).

    A pre-task that raises stops here: its exception reaches the runner (the job fails,
    with the traceback in ``stderr``), and the task itself does not run.
    """
    for number, pretask in enumerate(task.__dict__[_STATE].pretasks, 1):
        try:
            pretask.execute()  # type: ignore[attr-defined]
        except BaseException as exc:
            print(
                f"partita: pre-task {number} ({type(pretask).__qualname__}) of "
                f"{type(task).__qualname__} raised {type(exc).__name__}; the task does not run.",
                file=sys.stderr,
            )
            raise
