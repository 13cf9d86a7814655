"""Field declarations: ``Param``, ``Meta``, ``Constant``, ``field()``, path generators, tags."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar

from partita.config._identity import encode_value
from partita.config._kinds import FieldKind as FieldKind
from partita.errors import ConfigDefinitionError, PendingPathError

if TYPE_CHECKING:
    from partita.config._types import FieldType

T = TypeVar("T")


class _Marker:
    __slots__ = ("kind",)

    def __init__(self, kind: FieldKind) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"<partita {self.kind.value}>"


PARAM_MARKER = _Marker(FieldKind.PARAM)
META_MARKER = _Marker(FieldKind.META)
CONSTANT_MARKER = _Marker(FieldKind.CONSTANT)

Param = Annotated[T, PARAM_MARKER]
"""``word: Param[str]`` — a parameter: part of the task's identity."""

Meta = Annotated[T, META_MARKER]
"""``device: Meta[str]`` — stored with the task but not part of its identity."""

Constant = Annotated[T, CONSTANT_MARKER]
"""``version: Constant[int] = 2`` — fixed by the class and part of the identity."""


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class PathGenerator:
    """A default that becomes a path inside the job's folder when the task is submitted.

    ``model: Meta[Path] = field(default_factory=PathGenerator("model.pt"))`` gives
    ``<job folder>/model.pt``. In a config nested in a task, the path is placed under the
    field's path, e.g. ``<job folder>/optimizer/state.pt``; the job runner creates that
    folder before ``execute()``. Generated paths never enter the identifier (they are
    derived from it).
    """

    __slots__ = ("relative",)

    def __init__(self, relative: str = "") -> None:
        path = PurePosixPath(relative)
        if path.is_absolute() or ".." in path.parts:
            raise ConfigDefinitionError(
                f"PathGenerator({relative!r}): expected a relative path inside the job folder, "
                "found an absolute path or '..'. Use e.g. PathGenerator('model.pt')."
            )
        self.relative = relative

    def __call__(self) -> Any:
        raise PendingPathError(
            f"PathGenerator({self.relative!r}) has no value until the task is submitted."
        )

    def __repr__(self) -> str:
        return f"PathGenerator({self.relative!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PathGenerator) and other.relative == self.relative

    def __hash__(self) -> int:
        return hash(("PathGenerator", self.relative))


class _FieldSpec:
    __slots__ = ("default", "default_factory", "help")

    def __init__(
        self,
        default: Any = MISSING,
        default_factory: Callable[[], Any] | None = None,
        help: str | None = None,
    ) -> None:
        self.default = default
        self.default_factory = default_factory
        self.help = help

    def __repr__(self) -> str:
        return f"field(default={self.default!r}, default_factory={self.default_factory!r})"


def field(
    *,
    default: Any = MISSING,
    default_factory: Callable[[], Any] | None = None,
    help: str | None = None,
) -> Any:
    """Declare a field's default and help text.

    Args:
        default: the value used when none is given. A field whose value equals its
            default is left out of the identifier, so adding a field with a default
            keeps every existing identifier.
        default_factory: a callable returning the default (for mutable values), or a
            :class:`PathGenerator`.
        help: a description shown by ``partita.fields()``, an experiment script's
            ``--help`` and the Sphinx extension. The attribute docstring (a string just
            below the field), else the field's entry in an ``Attributes:``/``Arguments:``
            section of the class docstring, is used otherwise.
    """
    if default is not MISSING and default_factory is not None:
        raise ConfigDefinitionError(
            "field(): expected either default= or default_factory=, found both. Keep one."
        )
    return _FieldSpec(default=default, default_factory=default_factory, help=help)


class Tagged(Generic[T]):
    """A value marked as a tag: ``Train(lr=tag(0.1))`` tags the config with ``lr=0.1``."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"tag({self.value!r})"


def tag(value: T) -> T:
    """Use ``value`` for a field and record it as a tag named after the field."""
    return Tagged(value)  # type: ignore[return-value]


class Field:
    """A resolved field of a config class (see :func:`partita.fields`)."""

    __slots__ = (
        "_default_bytes",
        "_help",
        "annotation",
        "default",
        "default_factory",
        "generator",
        "kind",
        "name",
        "owner",
        "type",
    )

    def __init__(
        self,
        name: str,
        kind: FieldKind,
        annotation: Any,
        ftype: FieldType,
        default: Any,
        default_factory: Callable[[], Any] | None,
        help: str | None,
        owner: type,
    ) -> None:
        self.name = name
        self.kind = kind
        self.annotation = annotation
        self.type = ftype
        self.default = default
        self.generator = default_factory if isinstance(default_factory, PathGenerator) else None
        self.default_factory = None if self.generator is not None else default_factory
        self._help = help
        self.owner = owner
        self._default_bytes: bytes | _Missing | None = MISSING

    @property
    def required(self) -> bool:
        """Whether a value must be given at construction."""
        return self.default is MISSING and self.default_factory is None and self.generator is None

    @property
    def help(self) -> str:
        """The field's help text: ``field(help=...)``, its attribute docstring, or its entry
        in an ``Attributes:``/``Arguments:`` section of the class docstring (empty if none)."""
        if self._help is None:
            # Imported here: it loads inspect, which a job process never needs.
            from partita.config._describe import field_help_text

            self._help = field_help_text(self.owner, self.name)
        return self._help

    def make_default(self) -> Any:
        """A fresh default value (raises if the field is required)."""
        if self.default is not MISSING:
            return self.default
        if self.default_factory is not None:
            return self.default_factory()
        return MISSING

    def default_bytes(self) -> bytes | None:
        """The identity encoding of the default (``None`` if there is no default)."""
        if self._default_bytes is MISSING:
            value = self.make_default()
            self._default_bytes = None if value is MISSING else encode_value(value)
        return self._default_bytes  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"Field({self.name!r}, {self.kind.value}, {self.type.describe()})"
