"""Reading a config class: field markers in annotations and the class's type id."""

from __future__ import annotations

import sys
import typing
import warnings
from typing import Any, ClassVar

from partita.config import _runtime
from partita.config._fields import _Marker
from partita.errors import PartitaWarning


def marker_of(annotation: Any) -> tuple[_Marker | None, Any]:
    if typing.get_origin(annotation) is typing.Annotated:
        inner, *meta = typing.get_args(annotation)
        for item in meta:
            if isinstance(item, _Marker):
                return item, inner
    return None, annotation


def is_classvar(annotation: Any) -> bool:
    if annotation is ClassVar or typing.get_origin(annotation) is ClassVar:
        return True
    return isinstance(annotation, str) and annotation.startswith(("ClassVar", "typing.ClassVar"))


def type_id_of(cls: type) -> str:
    """The type id of a config class: explicit ``id=`` or ``module.qualname``."""
    explicit = cls.__dict__.get("_partita_explicit_id")
    if explicit:
        return str(explicit)
    module = cls.__module__
    if module in ("__main__", _runtime.SCRIPT_MODULE):
        stem = _runtime.script_stem(sys.modules.get(module)) or "main"
        if module == "__main__" and not cls.__dict__.get("_partita_warned"):
            type.__setattr__(cls, "_partita_warned", True)
            warnings.warn(
                f"{cls.__qualname__} is defined in the script {stem}.py and has no explicit "
                f"id, so its identity uses the script's name ('{stem}.{cls.__qualname__}'): "
                "renaming the script or moving the class changes every identifier. Give it one: "
                f'class {cls.__name__}(..., id="{stem}.{cls.__name__.lower()}").',
                PartitaWarning,
                stacklevel=5,
            )
        module = stem
    return f"{module}.{cls.__qualname__}"
