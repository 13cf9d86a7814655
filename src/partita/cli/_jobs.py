"""``partita jobs ...``: list, show, log, path, kill and clean jobs."""

from __future__ import annotations

import click

from partita.cli._app import PartitaGroup
from partita.cli._jobs_clean import clean, kill
from partita.cli._jobs_log import log
from partita.cli._jobs_view import list_jobs, path_command, show

__all__ = ["jobs"]


@click.group(cls=PartitaGroup)
def jobs() -> None:
    """List, inspect, follow, kill and clean jobs.

    JOB is a unique prefix of a job identifier (3f2a), TYPE/PREFIX
    (demo.train/3f2a) or the path of a job folder.

    \b
    Examples:
      partita jobs list --state failed
      partita jobs show 3f2a
      partita jobs log 3f2a --follow
      partita jobs kill --task demo.train --yes
      partita jobs clean --state failed
    """


for _command in (list_jobs, show, log, path_command, kill, clean):
    jobs.add_command(_command)
