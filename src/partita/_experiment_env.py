"""What a run records about its process: the run record, ``environment.json``, env flags."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from partita.workspace import identity


def flag(name: str) -> bool:
    """Whether the environment variable ``name`` is set to ``1``, ``true`` or ``yes``."""
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def run_record(
    name: str, run_id: str, status: str, started: float, dry_run: bool, **extra: Any
) -> dict[str, Any]:
    """The run's ``run.json``: which experiment, where and by which process, and its status."""
    return {
        "experiment": name,
        "run": run_id,
        "status": status,
        "started": started,
        "host": os.uname().nodename,  # platform.node(), without importing platform
        "pid": os.getpid(),
        "process": identity(),
        "argv": sys.argv,
        "cwd": os.getcwd(),
        "dry_run": dry_run,
        **extra,
    }


def environment_info() -> dict[str, Any]:
    """The run's ``environment.json``: Python, platform, packages and the script's git state."""
    info: dict[str, Any] = {
        "python": sys.version,
        "executable": sys.executable,
        "platform": _platform(),
    }
    info["packages"] = _packages()
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    # The git calls (the script's repository, its diff, each editable package's) run at
    # once, each in a thread of its own: the record costs the slowest, not their sum. Each
    # repository is asked once: a project's script and its editable package share one.
    from concurrent.futures import Future, ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="partita-git") as pool:
        folder = Path(script).resolve().parent if script else None
        git = pool.submit(_script_git, folder) if folder is not None else None
        asked: dict[Path, Future[dict[str, Any] | None]] = {}
        if folder is not None and git is not None:
            asked[_repository(folder)] = git

        def status_of(_: Any, package: Path) -> Future[dict[str, Any] | None]:
            root = _repository(package)
            if root not in asked:
                asked[root] = pool.submit(_git_info, package)
            return asked[root]

        editable = _editable_packages(status_of)
        # Where and how the script was started, its uncommitted changes, editable packages.
        info["host"] = os.uname().nodename  # platform.node()
        info["argv"] = list(sys.argv)
        info["cwd"] = os.getcwd()
        if git is not None:
            info["git"] = git.result()
            info["script"] = str(Path(str(script)).resolve())
        info["editable"] = {
            name: {**entry, "git": _status_part(entry["git"].result()) if entry["git"] else None}
            for name, entry in editable.items()
        }
    return info


def _platform() -> str:
    """``platform.platform()`` (``Linux-6.1.0-x86_64-with-glibc2.36``) without its cost on
    glibc systems (it reads the interpreter's binary and runs ``uname -p``)."""
    uname = os.uname()
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError, AttributeError):
        libc = ""
    name, _, version = libc.partition(" ")
    if uname.sysname == "Linux" and name == "glibc" and version:
        return f"{uname.sysname}-{uname.release}-{uname.machine}-with-glibc{version}"
    import platform  # elsewhere: the standard answer

    return platform.platform()


def _repository(folder: Path) -> Path:
    """The top of the git work tree that holds ``folder`` (where its ``.git`` is), else
    ``folder`` itself: the key by which each repository is asked once."""
    for candidate in (folder, *folder.parents):
        if os.path.lexists(candidate / ".git"):
            return candidate
    return folder


def _status_part(git: dict[str, Any] | None) -> dict[str, Any] | None:
    """What :func:`_git_info` says (commit, dirtiness), without the diff of the script's."""
    if git is None:
        return None
    return {key: git[key] for key in ("commit", "dirty", "error") if key in git}


def _script_git(folder: Path) -> dict[str, Any] | None:
    """The git state of the script's folder, with its diff when the tree is dirty."""
    git = _git_info(folder)
    if git and git.get("dirty"):
        git.update(_git_diff(folder))
    return git


#: How git is run: read-only. Without ``--no-optional-locks``, ``git status`` takes the
#: repository's ``index.lock`` to save the index it refreshed; done in the background
#: while the researcher works, that could make their own ``git commit`` fail.
GIT = ("git", "--no-optional-locks")

#: The largest uncommitted diff kept in ``environment.json`` (the rest is cut, and said so).
MAX_DIFF_BYTES = 256 * 1024


def _git_diff(folder: Path, timeout: float = 5.0) -> dict[str, Any]:
    """The repository's uncommitted changes to tracked files (``git diff HEAD``) and the
    names of untracked files, bounded in time and size."""
    out: dict[str, Any] = {}
    for key, command in (
        ("diff", [*GIT, "diff", "HEAD", "--no-color", "--no-ext-diff"]),
        ("untracked", [*GIT, "ls-files", "--others", "--exclude-standard"]),
    ):
        try:
            done = subprocess.run(
                command, cwd=folder, capture_output=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode != 0:
            continue
        text = done.stdout.decode("utf-8", "replace")
        if key == "untracked":
            out[key] = text.splitlines()[:200]
        else:
            out["diff_truncated"] = len(done.stdout) > MAX_DIFF_BYTES
            out[key] = text[:MAX_DIFF_BYTES]
    return out


def _editable_packages(submit: Callable[..., Any]) -> dict[str, Any]:
    """Packages installed in editable mode (``pip install -e``), with their folder's git state.

    Read from each distribution's ``direct_url.json`` (PEP 610); only editable ones are
    asked for their git state (one bounded ``git status`` each, started with ``submit``:
    each entry's ``"git"`` is then a future, or ``None``).
    """
    import json

    found: dict[str, Any] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if not name.endswith(".dist-info"):
                continue
            package, _, version = name[: -len(".dist-info")].partition("-")
            if package in found:
                continue
            try:
                with open(os.path.join(entry, name, "direct_url.json"), "rb") as file:
                    direct = json.loads(file.read())
            except (OSError, ValueError):
                continue
            if not isinstance(direct, dict) or not (direct.get("dir_info") or {}).get("editable"):
                continue
            url = str(direct.get("url", ""))
            folder = url[len("file://") :] if url.startswith("file://") else url
            found[package] = {
                "version": version,
                "path": folder,
                "git": submit(_git_info, Path(folder))
                if folder and os.path.isdir(folder)
                else None,
            }
    return dict(sorted(found.items()))


def _packages() -> dict[str, str]:
    """Installed distributions, ``{name: version}``, from the names of their metadata folders.

    ``name-version.dist-info`` (and ``.egg-info``) folders on ``sys.path``: listing them takes
    about a millisecond, where reading every distribution's metadata takes tens to hundreds.
    Names are as the installer normalised them (``typing_extensions``); the first found on
    ``sys.path`` wins, as for imports.
    """
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info")):
                package, dash, version = name.rsplit(".", 1)[0].partition("-")
                if dash and package:
                    found.setdefault(package, version)
    return dict(sorted(found.items()))


def _git_info(folder: Path, timeout: float = 3.0) -> dict[str, Any] | None:
    """Commit and dirtiness of the repository holding ``folder`` (one git call, bounded)."""
    try:
        status = subprocess.run(
            [*GIT, "status", "--porcelain=v2", "--branch"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"commit": None, "dirty": None, "error": f"git status took over {timeout:g} s"}
    except (OSError, subprocess.SubprocessError):
        return None
    if status.returncode != 0:
        return None
    commit = None
    dirty = False
    for line in status.stdout.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split()[2]
            commit = None if oid == "(initial)" else oid
        elif line and not line.startswith("#"):
            dirty = True
    return {"commit": commit, "dirty": dirty}
