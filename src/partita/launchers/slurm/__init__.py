"""Running partita jobs on a Slurm cluster.

The pieces, each usable and testable on its own:

- ``_options``: :class:`SlurmOptions`, the validated sbatch options of a job.
- ``_script``: the batch script text and the ``sbatch`` command line.
- ``_status``: parsing ``squeue``/``sacct`` output and mapping Slurm states to partita's.
- ``_commands``: :class:`SlurmCommands`, which runs the Slurm programs.
"""
