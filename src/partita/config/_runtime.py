"""Process-wide facts the config layer needs: known workspaces and script imports.

Kept tiny and dependency-free: the job runner imports it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

#: Name under which an experiment script is imported by the job runner or by ``load()``.
SCRIPT_MODULE = "__partita_main__"

#: Absolute ``jobs/`` folders of the workspaces this process knows; paths inside them are
#: encoded relative to their workspace so identifiers survive moving the work directory.
_workspace_roots: list[str] = []

_importing_script = False


_PACKAGE = str(Path(__file__).resolve().parents[1]) + os.sep


def per_class(cls: type, slot: str, compute: Callable[[type], Any]) -> Any:
    """``compute(cls)``, worked out once per class and kept on the class in ``slot``.

    For what a rerun would otherwise ask of every task (a looked-up method, a declared
    attribute). The cache names the class it was made for, so a subclass, which sees its
    parent's attribute, works out its own.
    """
    cached = cls.__dict__.get(slot)
    if cached is not None and cached[0] is cls:
        return cached[1]
    value = compute(cls)
    type.__setattr__(cls, slot, (cls, value))
    return value


def warn_caller(message: str, category: type[Warning]) -> None:
    """``warnings.warn`` pointing at the first frame outside partita (the user's line)."""
    level = 2  # stacklevel=2: the caller of this function
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    warnings.warn(message, category, stacklevel=level)


class StopScriptImport(BaseException):
    """Raised by ``experiment()`` while a script is imported only for its classes."""


def register_workspace(root: Path) -> None:
    """Remember ``root`` as a work directory (idempotent)."""
    text = os.path.abspath(root)
    if text not in _workspace_roots:
        _workspace_roots.append(text)
        _workspace_roots.sort(key=len, reverse=True)


def workspace_roots() -> list[str]:
    """Known work directories, longest first."""
    return _workspace_roots


_current_workspace: list[Path] = []

#: How ``Task.publish`` publishes (installed by ``partita._publish`` when imported).
_publisher: list[Callable[[str, Any], None]] = []


def set_publisher(publisher: Callable[[str, Any], None]) -> None:
    """Install the function behind ``Task.publish`` (``partita._publish.publish``)."""
    _publisher[:] = [publisher]


def publish(name: str, value: Any) -> None:
    """Publish a live output of the running job (see ``partita.publish``)."""
    # ``import partita`` (which every import of partita.config runs first) installs it.
    _publisher[0](name, value)


def set_current_workspace(root: Path | None) -> None:
    """Set the work directory used to locate job folders of tasks (job runner, ``load``)."""
    _current_workspace.clear()
    if root is not None:
        register_workspace(root)
        _current_workspace.append(Path(os.path.abspath(root)))


def current_workspace() -> Path | None:
    """The work directory set by :func:`set_current_workspace`, if any."""
    return _current_workspace[0] if _current_workspace else None


def check_script_import() -> None:
    """Stop a script import at its ``with experiment(...)`` line."""
    if _importing_script:
        raise StopScriptImport()


def script_stem(module: types.ModuleType | None) -> str | None:
    """The file stem of a script module (``__main__`` or the runner's copy of it)."""
    if module is None:
        return None
    file = getattr(module, "__file__", None)
    if not file:
        return None
    return Path(file).stem


def import_script(file: str) -> types.ModuleType:
    """Import an experiment script for its classes, stopping at ``with experiment(...)``.

    The module is registered as :data:`SCRIPT_MODULE`; imports are cached per process.
    """
    global _importing_script
    existing = sys.modules.get(SCRIPT_MODULE)
    if existing is not None and getattr(existing, "__file__", None) == file:
        return existing
    main = sys.modules.get("__main__")
    if (
        main is not None
        and getattr(main, "__file__", None)
        and os.path.abspath(main.__file__ or "") == os.path.abspath(file)
    ):
        return main
    import importlib.util

    spec = importlib.util.spec_from_file_location(SCRIPT_MODULE, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[SCRIPT_MODULE] = module
    folder = os.path.dirname(os.path.abspath(file))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    saved_argv = sys.argv
    # The experiment passes its command line so that scripts which parse sys.argv at top
    # level (argparse, click) see the same arguments in the job process.
    argv = os.environ.get("PARTITA_SCRIPT_ARGV")
    try:
        sys.argv = json.loads(argv) if argv else [file]
    except ValueError:
        sys.argv = [file]
    _importing_script = True
    try:
        spec.loader.exec_module(module)
    except StopScriptImport:
        pass
    except BaseException:
        sys.modules.pop(SCRIPT_MODULE, None)
        raise
    finally:
        _importing_script = False
        sys.argv = saved_argv
    return module


@contextlib.contextmanager
def importing_script() -> Iterator[None]:
    """Context in which ``experiment()`` stops the import (for tests)."""
    global _importing_script
    saved = _importing_script
    _importing_script = True
    try:
        yield
    finally:
        _importing_script = saved
