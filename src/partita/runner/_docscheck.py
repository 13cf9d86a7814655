"""``partita docs check PACKAGE``: configs and fields without documentation."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from types import ModuleType

from partita.config import Config, fields
from partita.errors import RunnerError
from partita.runner._help import field_help

__all__ = ["Report", "check_package", "config_classes"]


@dataclass
class Report:
    """What ``check_package`` found."""

    classes: list[str] = field(default_factory=list)
    """Every config class checked, as ``module.QualName``."""
    fields: int = 0
    """How many fields were checked."""
    missing: list[str] = field(default_factory=list)
    """``module.Class`` (no docstring) or ``module.Class.field`` (no help), one each."""


def _modules(name: str) -> list[ModuleType]:
    try:
        root = importlib.import_module(name)
    except Exception as exc:
        raise RunnerError(f"cannot import {name!r}: {type(exc).__name__}: {exc}.") from None
    found = [root]
    path = getattr(root, "__path__", None)
    if path is not None:
        for info in pkgutil.walk_packages(path, prefix=f"{name}."):
            try:
                found.append(importlib.import_module(info.name))
            except Exception as exc:
                raise RunnerError(
                    f"cannot import {info.name!r}: {type(exc).__name__}: {exc}."
                ) from None
    return found


def config_classes(name: str) -> list[type[Config]]:
    """The config classes defined in module or package ``name`` (and its submodules)."""
    out: list[type[Config]] = []
    for module in _modules(name):
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Config)
                and value.__module__ == module.__name__
                and value not in out
            ):
                out.append(value)
    return out


def check_package(name: str) -> Report:
    """Check every config class of ``name``: a docstring, and help for each own field."""
    report = Report()
    for cls in config_classes(name):
        label = f"{cls.__module__}.{cls.__qualname__}"
        report.classes.append(label)
        if not (cls.__dict__.get("__doc__") or "").strip():
            report.missing.append(f"{label}: no docstring")
        for f in fields(cls):
            if f.owner is not cls:
                continue
            report.fields += 1
            if not field_help(f):
                report.missing.append(f"{label}.{f.name}: no documentation")
    return report
