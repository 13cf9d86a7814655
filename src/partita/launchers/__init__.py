"""Launchers: how a job is executed (local processes; Slurm in ``partita.launchers.slurm``).

Every launcher kind is registered once (``class MyLauncher(Launcher, kind="mine")``); the
rest of partita asks the registry which launcher understands a handle
(:func:`launcher_for_handle`) and asks that class about it, never testing a kind itself.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from partita.launchers._registry import (
    describe_handle,
    handle_gone,
    handle_host,
    handle_kind,
    launcher_for_handle,
    launcher_for_kind,
    probe_handle,
    register_launcher,
    registered_kinds,
    settle_jobs,
)

if TYPE_CHECKING:
    from partita.launchers.base import Exit, Launcher, LaunchRequest
    from partita.launchers.local import LocalLauncher
    from partita.launchers.resources import Resources
    from partita.launchers.slurm import SlurmLauncher

# Imported when first used: a reader of the index (``partita status``) needs the registry
# only, not the local launcher and asyncio.
_LAZY = {
    "Exit": "partita.launchers.base",
    "Launcher": "partita.launchers.base",
    "LaunchRequest": "partita.launchers.base",
    "LocalLauncher": "partita.launchers.local",
    "Resources": "partita.launchers.resources",
    "SlurmLauncher": "partita.launchers.slurm",
}

__all__ = [
    "Exit",
    "LaunchRequest",
    "Launcher",
    "LocalLauncher",
    "Resources",
    "SlurmLauncher",
    "describe_handle",
    "handle_gone",
    "handle_host",
    "handle_kind",
    "launcher_for_handle",
    "launcher_for_kind",
    "probe_handle",
    "register_launcher",
    "registered_kinds",
    "settle_jobs",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'partita.launchers' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
