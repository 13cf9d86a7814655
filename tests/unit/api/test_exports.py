"""The public names: each resolves, is documented, and __all__ lists them sorted."""

from __future__ import annotations

import importlib
import inspect

import pytest

PACKAGES = [
    "partita",
    "partita.analysis",
    "partita.config",
    "partita.errors",
    "partita.launchers",
    "partita.launchers.slurm",
    "partita.scheduler",
    "partita.testing",
    "partita.workspace",
]


@pytest.mark.parametrize("package", PACKAGES)
def test_public_names_resolve_and_are_documented(package: str) -> None:
    """Every name in __all__ exists (lazy ones included) and classes/functions have docs."""
    module = importlib.import_module(package)
    assert module.__doc__, f"{package} has no module docstring"
    undocumented = []
    for name in module.__all__:
        value = getattr(module, name)
        if (inspect.isclass(value) or inspect.isfunction(value)) and not inspect.getdoc(value):
            undocumented.append(name)
    assert [] == undocumented


def _isort_key(name: str) -> tuple[int, str]:
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions and the rest.
    if name.isupper() and len(name) > 1:
        return (0, name)
    return (1, name) if name[:1].isupper() else (2, name)


@pytest.mark.parametrize("package", PACKAGES)
def test_all_is_sorted(package: str) -> None:
    """__all__ is kept sorted (as ruff sorts it), without duplicates."""
    names = list(importlib.import_module(package).__all__)
    assert sorted(names, key=_isort_key) == names
    assert len(set(names)) == len(names)


def test_every_error_is_a_partita_error() -> None:
    """Every exception class in partita.errors derives from PartitaError (warnings aside)."""
    from partita import errors

    for name in errors.__all__:
        value = getattr(errors, name)
        if (
            inspect.isclass(value)
            and issubclass(value, Exception)
            and not issubclass(value, Warning)
        ):
            assert issubclass(value, errors.PartitaError), name
