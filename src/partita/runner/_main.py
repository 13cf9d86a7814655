"""``@experiment_main``: an experiment script's command line, config files, sweeps and reruns.

The decorated function is run with the resolved configuration when the script is run
(``python xp.py ...`` or ``partita run xp.py ...``). Everything given is checked against the
configuration class before anything runs; a wrong command line or config file prints one
``error: ...`` line and exits with code 2, a failed job exits with 1. Each run records how
it was configured in its run folder (``config.json``, written by the workspace's run
writer), so that ``partita run --rerun RUN`` repeats it exactly. See docs/runner.md.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from partita.config import Config
from partita.config._runtime import check_script_import
from partita.errors import ExperimentFailed, PartitaError, RunnerError
from partita.runner._files import load_files
from partita.runner._grid import ambient_tags
from partita.runner._help import help_text
from partita.runner._resolve import (
    Assignment,
    build,
    check_sweepable,
    combinations,
    from_files,
    from_overrides,
    tag_of,
    to_plain,
)

__all__ = ["ENV_RERUN", "ExperimentMain", "Plan", "dump_yaml", "experiment_main"]

ENV_RERUN = "PARTITA_RERUN"
"""Set by ``partita run --rerun``: the run folder whose configuration is repeated."""
ENV_RUN_SCRIPT = "PARTITA_RUN_SCRIPT"
"""Set by ``partita run``: the script it started, so that ``--help`` names that command."""

EXIT_FAILED = 1
EXIT_USAGE = 2
RECORD_VERSION = 1

F = TypeVar("F", bound=Callable[..., Any])
_OPTIONS = ("--config", "--multirun", "--show", "--workdir", "--help")


def _prog() -> str:
    """How the script was started, for ``usage:``: ``python xp.py`` or ``partita run xp.py``.

    ``partita run`` names the script it starts in :data:`ENV_RUN_SCRIPT`; a script that
    this one starts in turn inherits the variable but has another ``sys.argv[0]``.
    """
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    name = os.path.basename(argv0) or "xp.py"
    if argv0 and os.environ.get(ENV_RUN_SCRIPT) == argv0:
        return f"partita run {name}"
    return f"python {name}"


@dataclass
class Arguments:
    """What the command line of a script asks for."""

    overrides: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    multirun: bool = False
    show: bool = False
    help: bool = False
    workdir: str | None = None


def parse_arguments(argv: list[str]) -> Arguments:
    """Split the command line into options and ``KEY=VALUE`` overrides."""
    out = Arguments()
    i = 0
    only_overrides = False
    while i < len(argv):
        arg = argv[i]
        i += 1
        if only_overrides or not arg.startswith("-") or arg == "-":
            out.overrides.append(arg)
            continue
        name, eq, value = arg.partition("=")
        if arg == "--":
            only_overrides = True
        elif arg in ("-h", "--help"):
            out.help = True
        elif arg in ("-m", "--multirun"):
            out.multirun = True
        elif arg == "--show":
            out.show = True
        elif name in ("--config", "-c", "--workdir", "-w"):
            if not eq:
                if i >= len(argv):
                    raise RunnerError(f"{name} needs a value, e.g. {name} paper.yaml.")
                value = argv[i]
                i += 1
            if name in ("--config", "-c"):
                out.files.append(value)
            else:
                out.workdir = value
        else:
            from partita._suggest import closest

            close = closest(name, _OPTIONS)
            hint = f" Did you mean {close}?" if close else ""
            raise RunnerError(
                f"unknown option {name!r}.{hint} Options: {', '.join(_OPTIONS)}; values are "
                "set with KEY=VALUE (see --help)."
            )
    return out


@dataclass
class Plan:
    """One run to do: its configuration, how it was obtained, and its tags."""

    config: Config | None
    assignments: list[Assignment]
    tags: dict[str, Any]
    index: int
    count: int

    @property
    def resolved(self) -> dict[str, Any]:
        """The configuration as plain JSON values."""
        return to_plain(self.config) if self.config is not None else {}


def _config_parameter(fn: Callable[..., Any]) -> tuple[str | None, type[Config] | None]:
    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:
        raise RunnerError(
            f"{fn.__qualname__}: cannot read the annotations of its parameters ({exc}). "
            "Define the configuration class above the function."
        ) from None
    for name in inspect.signature(fn).parameters:
        hint = hints.get(name)
        if isinstance(hint, type) and issubclass(hint, Config):
            return name, hint
    return None, None


class ExperimentMain(Generic[F]):
    """The object ``@experiment_main`` returns when the script is imported, not run.

    ``main(argv)`` does what running the script does and returns its exit code; calling
    the object calls the function itself.
    """

    def __init__(self, fn: F, name: str, workdir: str | os.PathLike[str] | None, **options: Any):
        self.fn = fn
        self.name = name
        self.workdir = workdir
        self.options = options
        self.parameter, self.config_class = _config_parameter(fn)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    # --- resolving ------------------------------------------------------------------------

    def plans(self, args: Arguments, files: list[dict[str, str]] | None = None) -> list[Plan]:
        """The runs ``args`` asks for, each fully resolved (raises :class:`RunnerError`).

        ``files`` are the config files read (filled in, path and text).
        """
        cls = self.config_class
        if cls is None:
            if args.overrides or args.files:
                raise RunnerError(
                    f"{self.fn.__qualname__} takes no configuration (no parameter annotated "
                    "with a Config class), so it accepts no KEY=VALUE nor --config. Add one: "
                    "def main(xp, cfg: Setup)."
                )
            return [Plan(None, [], {}, 0, 1)]
        layers, read = load_files(args.files)
        if files is not None:
            files.extend(read)
        assignments = from_files(cls, layers) + from_overrides(cls, args.overrides, args.multirun)
        check_sweepable(cls, assignments, args.multirun)
        combos = combinations(assignments)
        swept = [a.key for a in assignments if a.is_sweep]
        out = []
        for index, combo in enumerate(combos):
            tags = {}
            for a in combo:
                if a.key in swept:
                    tags[a.key] = tag_of(a.values[0], a.texts[0])
            out.append(Plan(build(cls, combo), combo, tags, index, len(combos)))
        return out

    def _rerun_plan(self, folder: Path) -> tuple[Plan, dict[str, Any], list[dict[str, str]]]:
        from partita.workspace import RunPaths, read_config

        paths = RunPaths(folder)
        record, damage = read_config(paths)
        if record is None:
            why = "; ".join(damage) or "it was not started by experiment_main"
            raise RunnerError(f"run {paths.run} has no readable configuration: {why}.")
        cls = self.config_class
        files = [f for f in record.get("files", []) if isinstance(f, dict)]
        texts = {str(f.get("path")): str(f.get("text", "")) for f in files}

        def read(path: str) -> str:
            if path not in texts:
                raise RunnerError(f"run {paths.run}: its record has no copy of {path}.")
            return texts[path]

        names = [str(name) for name in record.get("config_files", [])]
        assignments: list[Assignment] = []
        if cls is not None:
            layers, _ = load_files(names, read=read, exists=texts.__contains__)
            overrides = [str(text) for text in record.get("assignments", [])]
            assignments = from_files(cls, layers) + from_overrides(cls, overrides)
        tags = record.get("tags") if isinstance(record.get("tags"), dict) else {}
        config = build(cls, assignments) if cls is not None else None
        plan = Plan(config, assignments, dict(tags or {}), 0, 1)
        return plan, record, files

    # --- running --------------------------------------------------------------------------

    def main(self, argv: list[str] | None = None) -> int:
        """Run as the script would with ``argv``; returns the exit code."""
        argv = list(sys.argv[1:] if argv is None else argv)
        prog = _prog()
        try:
            args = parse_arguments(argv)
            if args.help:
                print(help_text(prog, self.name, self.config_class))
                return 0
            rerun = os.environ.get(ENV_RERUN)
            files: list[dict[str, str]] = []
            previous: dict[str, Any] | None = None
            if rerun:
                if args.overrides or args.files or args.multirun:
                    raise RunnerError(
                        "--rerun repeats a run exactly: give no KEY=VALUE, --config nor "
                        "--multirun with it."
                    )
                plan, previous, files = self._rerun_plan(Path(rerun))
                plans = [plan]
            else:
                plans = self.plans(args, files)
        except RunnerError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return EXIT_USAGE
        if args.show:
            for plan in plans:
                if plan.count > 1:
                    which = " ".join(f"{k}={v}" for k, v in plan.tags.items())
                    print(f"# run {plan.index + 1} of {plan.count}: {which}")
                print(dump_yaml(plan.resolved), end="")
            return 0
        if previous is not None and previous.get("resolved") != plans[0].resolved:
            print(
                "partita: warning: the configuration resolves differently than when run "
                f"{Path(rerun or '').name} ran (a default or the class changed since).",
                file=sys.stderr,
            )
        code = 0
        for plan in plans:
            if plan.count > 1:
                which = " ".join(f"{k}={v}" for k, v in plan.tags.items())
                print(f"partita: run {plan.index + 1} of {plan.count}: {which}", file=sys.stderr)
            record = self._record(argv, args, plan, files, previous, rerun)
            code = max(code, self._run(plan, args, record))
        return code

    def _record(
        self,
        argv: list[str],
        args: Arguments,
        plan: Plan,
        files: list[dict[str, str]],
        previous: dict[str, Any] | None,
        rerun: str | None,
    ) -> dict[str, Any]:
        cls = self.config_class
        try:
            script = inspect.getsourcefile(self.fn) or ""
        except TypeError:
            script = getattr(sys.modules.get("__main__"), "__file__", None) or ""
        if previous is not None:
            names = previous.get("config_files", [])
            overrides = previous.get("overrides", [])
        else:
            names = [os.path.abspath(os.path.expanduser(name)) for name in args.files]
            overrides = list(args.overrides)
        return {
            "version": RECORD_VERSION,
            "script": os.path.abspath(script) if script else None,
            "cwd": os.getcwd(),
            "argv": previous.get("argv", argv) if previous else argv,
            "class": f"{cls.__module__}:{cls.__qualname__}" if cls is not None else None,
            "config_files": names,
            "files": files,
            "overrides": overrides,
            "assignments": [
                f"{a.key}={a.texts[0]}" for a in plan.assignments if a.source.startswith("override")
            ],
            "tags": plan.tags,
            "multirun": {"index": plan.index, "count": plan.count} if plan.count > 1 else None,
            "resolved": plan.resolved,
            "rerun_of": Path(rerun).name if rerun else None,
        }

    def _workdir(self, args: Arguments) -> str | os.PathLike[str]:
        if args.workdir:
            return args.workdir
        if self.workdir is not None:
            return self.workdir
        return os.environ.get("PARTITA_WORKDIR") or "workdir"

    def _run(self, plan: Plan, args: Arguments, record: dict[str, Any]) -> int:
        from partita import Experiment
        from partita.workspace import RunWriter

        try:
            xp = Experiment(self._workdir(args), self.name, **self.options)
            with xp:
                RunWriter(xp.run_paths).write_config(record)
                with ambient_tags(plan.tags):
                    self.fn(*self._arguments(xp, plan.config))
        except ExperimentFailed as exc:
            print(f"partita: {exc}", file=sys.stderr, flush=True)
            return EXIT_FAILED
        except PartitaError as exc:
            if not getattr(exc, "_partita_reported", False):
                raise
            print(f"partita: {exc}", file=sys.stderr, flush=True)
            return EXIT_FAILED
        except NameError as exc:
            later = _defined_later(self.fn, exc.name)
            if later is None:
                raise
            print(f"error: {later}", file=sys.stderr, flush=True)
            return EXIT_FAILED
        return 0

    def _arguments(self, xp: Any, config: Config | None) -> list[Any]:
        out = []
        for name in inspect.signature(self.fn).parameters:
            out.append(config if name == self.parameter else xp)
        return out


def _defined_later(fn: Callable[..., Any], name: str | None) -> str | None:
    """Why ``name`` is undefined when it is a class of the script defined below ``fn``."""
    import ast

    try:
        source_file = inspect.getsourcefile(fn)
        if name is None or source_file is None:
            return None
        tree = ast.parse(Path(source_file).read_text())
    except (OSError, SyntaxError, TypeError, ValueError):
        return None
    start = fn.__code__.co_firstlineno
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name and node.lineno > start:
            return (
                f"name {name!r} is not defined yet when the experiment runs: "
                f"{Path(source_file).name} defines class {name} at line {node.lineno}, below "
                f"the @experiment_main function (line {start}), which runs as soon as the "
                "script reaches it. Move the task and config classes above it."
            )
    return None


def experiment_main(
    name: str, *, workdir: str | os.PathLike[str] | None = None, **options: Any
) -> Callable[[F], ExperimentMain[F]]:
    """Make ``fn(xp, cfg: MyConfig)`` the entry point of an experiment script.

    Running the script (``python xp.py KEY=VALUE ...`` or ``partita run xp.py ...``) parses
    the command line, reads ``--config`` files, checks every value against ``MyConfig``,
    and calls ``fn`` inside ``partita.experiment(workdir, name, **options)`` (once per
    combination with ``--multirun``). The work directory is ``-w DIR``, else ``workdir``,
    else ``$PARTITA_WORKDIR``, else ``./workdir``. Put the task classes above the
    decorated function: a job process imports the script up to it.
    """

    def decorate(fn: F) -> ExperimentMain[F]:
        check_script_import()  # a job process importing the script for its classes stops here
        runner = ExperimentMain(fn, name, workdir, **options)
        if getattr(fn, "__module__", None) == "__main__":
            raise SystemExit(runner.main())
        return runner

    return decorate


# --- showing a configuration ------------------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z_/][\w./\-]*$")
_RESERVED = {"null", "none", "true", "false", "yes", "no", "on", "off", "~"}


def _scalar(value: Any) -> str:
    if isinstance(value, str) and _PLAIN.match(value) and value.lower() not in _RESERVED:
        return value
    return json.dumps(value, ensure_ascii=False)


def dump_yaml(value: dict[str, Any], indent: int = 0) -> str:
    """``value`` as YAML text (block mappings, flow lists), readable back with --config."""
    pad = " " * indent
    lines: list[str] = []
    for key, item in value.items():
        if isinstance(item, dict) and item:
            lines.append(f"{pad}{key}:")
            lines.append(dump_yaml(item, indent + 2).rstrip("\n"))
        elif isinstance(item, list | dict):
            lines.append(f"{pad}{key}: {json.dumps(item, ensure_ascii=False)}")
        else:
            lines.append(f"{pad}{key}: {_scalar(item)}")
    return "\n".join(lines) + "\n"
