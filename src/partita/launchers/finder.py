"""Choosing a launcher per task from the user's rules file.

The rules are a Python file, ``$PARTITA_LAUNCHERS`` or
``~/.config/partita/launchers.py`` (``$XDG_CONFIG_HOME`` is honoured), that defines::

    from partita import LocalLauncher, SlurmLauncher

    gpu = SlurmLauncher(partition="gpu", gres="gpu:1", time="24:00:00")
    cpu = SlurmLauncher(partition="cpu", time="4:00:00")

    def find_launcher(needs, task):
        '''needs: partita.launchers.Resources (cpus, mem, gpus, time); task: the Task.'''
        if needs.gpus:
            return gpu, "the task needs a GPU"
        if needs.time and needs.time > 3600:
            return cpu, "more than an hour: not on the login node"
        return None  # run it here (local launcher)

``find_launcher`` returns a launcher, a ``(launcher, why)`` pair, or ``None`` for the
experiment's local launcher. Launchers defined at module level are shared by every task,
so Slurm arrays can group them. ``partita launchers explain`` shows the choice.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from partita.errors import LauncherError
from partita.launchers.base import Launcher
from partita.launchers.resources import Resources


def rules_file() -> Path | None:
    """The rules file in use, if there is one."""
    explicit = os.environ.get("PARTITA_LAUNCHERS")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.exists():
            raise LauncherError(
                f"PARTITA_LAUNCHERS names {path}, which does not exist. Fix the variable or "
                "create the file (see `partita launchers explain --help`)."
            )
        return path
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    path = base / "partita" / "launchers.py"
    return path if path.exists() else None


@dataclass
class Choice:
    """A launcher and why it was chosen."""

    launcher: Launcher | None
    """``None``: the experiment's local launcher."""
    why: str


class LauncherFinder:
    """Loads a rules file once and asks its ``find_launcher`` for each task."""

    def __init__(self, path: Path) -> None:
        self.path = path
        spec = importlib.util.spec_from_file_location("partita_launcher_rules", path)
        if spec is None or spec.loader is None:
            raise LauncherError(f"cannot load the launcher rules {path}.")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise LauncherError(
                f"the launcher rules {path} raised {type(exc).__name__}: {exc}. Fix the file."
            ) from exc
        rule = getattr(module, "find_launcher", None)
        if not callable(rule):
            raise LauncherError(
                f"the launcher rules {path} must define find_launcher(needs, task); it does "
                "not. See the docstring of partita.launchers.finder for an example."
            )
        self._rule = rule

    def choose(self, needs: Resources, task: Any) -> Choice:
        """Ask the rules which launcher runs ``task`` with ``needs``."""
        try:
            answer = self._rule(needs, task)
        except Exception as exc:
            raise LauncherError(
                f"find_launcher in {self.path} raised {type(exc).__name__}: {exc} for "
                f"{type(task).__qualname__} with {needs.to_dict()}."
            ) from exc
        why = ""
        if isinstance(answer, tuple) and len(answer) == 2:
            answer, why = answer
        if answer is None:
            return Choice(None, why or "no rule matched: the experiment's local launcher")
        if not isinstance(answer, Launcher):
            raise LauncherError(
                f"find_launcher in {self.path} returned {answer!r}; expected a Launcher, "
                "a (launcher, why) pair, or None."
            )
        return Choice(answer, why or f"chosen by {self.path}")


_finders: dict[Path, LauncherFinder] = {}


def default_finder() -> LauncherFinder | None:
    """The finder of the rules file in use (loaded once per process), or ``None``."""
    path = rules_file()
    if path is None:
        return None
    finder = _finders.get(path)
    if finder is None:
        finder = _finders[path] = LauncherFinder(path)
    return finder
