"""Launchers: how a job is executed (local processes; Slurm in ``partita.launchers.slurm``)."""

from partita.launchers.base import Exit, Launcher, LaunchRequest
from partita.launchers.local import LocalLauncher
from partita.launchers.resources import Resources

__all__ = ["Exit", "LaunchRequest", "Launcher", "LocalLauncher", "Resources", "SlurmLauncher"]


def __getattr__(name: str) -> object:
    if name == "SlurmLauncher":
        from partita.launchers.slurm import SlurmLauncher

        return SlurmLauncher
    raise AttributeError(name)
