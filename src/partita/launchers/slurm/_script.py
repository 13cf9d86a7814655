"""The batch script and the sbatch command line of a submission; pure functions.

Every option goes on sbatch's command line as one argv element (no shell is involved),
never into ``#SBATCH`` lines, and the script body quotes every path and value with
:func:`shlex.quote`. Paths with spaces, quotes, ``$``, backticks or newlines are
therefore safe. The first line after the fixed comments is a command, so sbatch stops
looking for ``#SBATCH`` lines before any user-provided text.

The one exception: the Python executable's *file name* must not contain whitespace,
because Slurm's ``proctrack/linuxproc`` then loses track of the process (see
:func:`batch_script`).

Slurm expands ``%`` patterns (``%j``, ``%A``, ``%a``...) in ``--output``/``--error``;
:func:`output_pattern` escapes a literal directory for them.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path

from partita.errors import LauncherError, LauncherOptionError
from partita.launchers.slurm._options import SlurmOptions

__all__ = ["batch_script", "output_pattern", "sbatch_argv"]

_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ARRAY_RE = re.compile(
    r"[0-9]+(?:-[0-9]+(?::[0-9]+)?)?(?:,[0-9]+(?:-[0-9]+(?::[0-9]+)?)?)*(?:%[0-9]+)?"
)
_JOB_ID_RE = re.compile(r"[0-9]+(?:_[0-9]+)?")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def batch_script(
    *,
    python: str | Path,
    workdir: str | Path,
    env: Mapping[str, str] | None = None,
    jobdir: str | Path | None = None,
    attempt: int = 1,
    manifest: str | Path | None = None,
    runner: str = "partita.run",
) -> str:
    """The text of a batch script that runs partita's job runner.

    Give either ``jobdir`` (one job, run as attempt ``attempt``) or ``manifest`` (one
    element of an array: the task picks its entry with ``$SLURM_ARRAY_TASK_ID``, so
    submit it with ``sbatch_argv(..., array="0-N")``). The script changes to
    ``workdir``, exports ``env`` and replaces itself with
    ``PYTHON -m partita.run ...``, so that signals from Slurm reach the runner.
    ``runner`` names the module run with ``manifest`` (``partita._pack`` for a packed
    array, whose elements each run several jobs).
    """
    if (jobdir is None) == (manifest is None):
        raise LauncherError("batch_script() needs exactly one of jobdir= (one job) or manifest=")
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise LauncherError(f"batch_script(): attempt must be a whole number >= 1, not {attempt!r}")
    if not str(python):
        raise LauncherError("batch_script(): python must name the Python executable")
    if re.search(r"\s", Path(python).name):
        # Slurm's proctrack/linuxproc reads /proc/PID/stat with a parser that breaks on
        # a space in the process name (the executable's file name): it then never finds
        # the job's processes, so scancel and time limits cannot stop them and the node
        # ends up drained with "Kill task failed". Seen on Slurm 22.05.
        raise LauncherError(
            f"the Python executable's file name {Path(python).name!r} contains whitespace: "
            "Slurm (proctrack/linuxproc) could not find, hence not cancel, such a process. "
            "Use a link to it with a plain name (its directory may contain spaces)."
        )
    if runner not in ("partita.run", "partita._pack"):
        raise LauncherError(f"batch_script(): unknown runner module {runner!r}")
    if runner != "partita.run" and manifest is None:
        raise LauncherError("batch_script(): the pack runner needs manifest=")
    command_head = [str(python), "-m", runner]
    lines = ["#!/bin/sh"]
    if jobdir is not None:
        lines.append("# partita: one job. The sbatch options are on sbatch's command line.")
        command = shlex.join([*command_head, str(jobdir), "--attempt", str(attempt)])
    else:
        lines.append("# partita: one element of a job array, picked by SLURM_ARRAY_TASK_ID.")
        lines.append("# The sbatch options are on sbatch's command line.")
        lines.append(
            ': "${SLURM_ARRAY_TASK_ID:?this script must be submitted as an array (sbatch --array)}"'
        )
        command = shlex.join([*command_head, "--manifest", str(manifest)]) + (
            ' --index "$SLURM_ARRAY_TASK_ID"'
        )
    lines.append(f"cd -- {shlex.quote(str(workdir))} || exit 125")
    for name, value in sorted((env or {}).items()):
        if not isinstance(name, str) or not _ENV_NAME_RE.fullmatch(name):
            raise LauncherError(
                f"batch_script(): {name!r} is not a valid environment variable name "
                "(letters, digits and _, not starting with a digit)"
            )
        lines.append(f"export {name}={shlex.quote(str(value))}")
    lines.append(f"exec {command}")
    return "\n".join(lines) + "\n"


def output_pattern(directory: str | Path, name: str) -> str:
    """``directory/name`` for ``--output``/``--error``: ``%`` in ``directory`` is kept literal.

    ``name`` may use Slurm's patterns (``"slurm-%j.out"``, ``"%A_%a.err"``).
    Raises :class:`LauncherError` for a backslash in the path: Slurm then drops every
    backslash and expands no pattern, so the file would land elsewhere.
    """
    text = str(directory).rstrip("/") or "/"
    if "\\" in text or "\\" in name:
        raise LauncherError(
            f"Slurm cannot write output under {text!r}: it removes backslashes from "
            "--output/--error paths. Use a work directory without a backslash."
        )
    return text.replace("%", "%%") + ("" if text.endswith("/") else "/") + name


def sbatch_argv(
    options: SlurmOptions,
    *,
    job_name: str,
    output: str,
    error: str,
    array: str | None = None,
    dependency: Iterable[str | int] | None = None,
    parsable: bool = True,
    kill_on_invalid_dep: bool = True,
) -> list[str]:
    """The sbatch command line (the script goes on its standard input).

    ``output``/``error`` are Slurm filename patterns (see :func:`output_pattern`).
    ``array`` is sbatch's spec such as ``"0-199%50"``; ``dependency`` a list of job ids
    that must all succeed first (``--dependency=afterok:1:2``). With
    ``kill_on_invalid_dep`` Slurm cancels the job once a dependency has failed, instead
    of leaving it pending forever with reason ``DependencyNeverSatisfied``.
    """
    if not job_name or _CONTROL_RE.search(job_name):
        raise LauncherOptionError(
            f"invalid Slurm job name {job_name!r}: expected a non-empty name "
            "without control characters"
        )
    for what, pattern in (("output", output), ("error", error)):
        if not pattern or "\\" in pattern:
            raise LauncherOptionError(
                f"invalid Slurm {what} path {pattern!r}: expected a non-empty path without "
                "backslashes (Slurm removes them)"
            )
    argv = ["sbatch"]
    if parsable:
        argv.append("--parsable")
    argv += [f"--job-name={job_name}", f"--output={output}", f"--error={error}"]
    if array is not None:
        if not _ARRAY_RE.fullmatch(array):
            raise LauncherOptionError(
                f"invalid Slurm array {array!r}: expected indices such as '0-199', "
                "'0-199%50' (at most 50 at once) or '1,3,5-7'"
            )
        argv.append(f"--array={array}")
    ids = [str(job_id) for job_id in dependency or ()]
    if ids:
        bad = [job_id for job_id in ids if not _JOB_ID_RE.fullmatch(job_id)]
        if bad:
            raise LauncherOptionError(
                f"invalid Slurm job id(s) in dependency: {', '.join(map(repr, bad))}; "
                "expected ids such as '1234' or '1234_5'"
            )
        argv.append("--dependency=afterok:" + ":".join(ids))
        if kill_on_invalid_dep:
            argv.append("--kill-on-invalid-dep=yes")
    argv += options.to_sbatch_args()
    return argv
