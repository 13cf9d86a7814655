"""Running partita jobs on a Slurm cluster.

The pieces, each usable and testable on its own:

- ``_options``: :class:`SlurmOptions`, the validated sbatch options of a job.
- ``_script``: the batch script text and the ``sbatch`` command line.
- ``_status``: parsing ``squeue``/``sacct`` output and mapping Slurm states to partita's.
- ``_commands``: :class:`SlurmCommands`, which runs the Slurm programs.
- ``_launcher``: :class:`SlurmLauncher`, the launcher built on them (kind ``slurm``).
- ``_reconcile``: settling jobs left on Slurm by a detached run (``SlurmLauncher.settle``).
"""

from partita.launchers.slurm._commands import SlurmCommands
from partita.launchers.slurm._launcher import SlurmLauncher
from partita.launchers.slurm._options import SlurmOptions

__all__ = ["SlurmCommands", "SlurmLauncher", "SlurmOptions"]
