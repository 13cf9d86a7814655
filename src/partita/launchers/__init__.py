"""Launchers: how a job is executed (local processes; Slurm in ``partita.launchers.slurm``)."""

from partita.launchers.base import Exit, Launcher, LaunchRequest
from partita.launchers.local import LocalLauncher

__all__ = ["Exit", "LaunchRequest", "Launcher", "LocalLauncher"]
