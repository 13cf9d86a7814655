"""Launchers: how a job is executed (local processes; Slurm in ``partita.launchers.slurm``).

Every launcher kind is registered once (``class MyLauncher(Launcher, kind="mine")``); the
rest of partita asks the registry which launcher understands a handle
(:func:`launcher_for_handle`) and asks that class about it, never testing a kind itself.
"""

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
from partita.launchers.base import Exit, Launcher, LaunchRequest
from partita.launchers.local import LocalLauncher
from partita.launchers.resources import Resources

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
    if name == "SlurmLauncher":
        from partita.launchers.slurm import SlurmLauncher

        return SlurmLauncher
    raise AttributeError(name)
