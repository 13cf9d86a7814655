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
    __slots__ = ("count_default", "default", "default_factory", "help", "override", "renamed_from")

    def __init__(
        self,
        default: Any = MISSING,
        default_factory: Callable[[], Any] | None = None,
        help: str | None = None,
        count_default: bool = False,
        override: bool = False,
        renamed_from: tuple[str, ...] = (),
    ) -> None:
        self.default = default
        self.default_factory = default_factory
        self.help = help
        self.count_default = count_default
        self.override = override
        self.renamed_from = renamed_from

    def __repr__(self) -> str:
        return f"field(default={self.default!r}, default_factory={self.default_factory!r})"


def field(
    *,
    default: Any = MISSING,
    default_factory: Callable[[], Any] | None = None,
    help: str | None = None,
    count_default: bool = False,
    override: bool = False,
    renamed_from: str | tuple[str, ...] | list[str] = (),
) -> Any:
    """Declare a field's default, help text and former names.

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
        count_default: the value counts in the identifier even when it equals the
            default (a ``Param`` only). Changing the default then changes the identifier
            of every config that relies on it; adding such a field to a class changes
            every identifier of the class.
        override: this field redeclares an inherited field with a type that does not
            narrow the inherited one (refused otherwise, at class definition).
        renamed_from: the field's former name, or its former names oldest first. The
            identity keeps using the oldest name, so every existing identifier stays valid
            and old job folders are reused; ``params.json`` written under a former name
            still loads, and ``partita migrate`` rewrites it (docs/identity.md).
    """
    if default is not MISSING and default_factory is not None:
        raise ConfigDefinitionError(
            "field(): expected either default= or default_factory=, found both. Keep one."
        )
    if count_default and default is MISSING and default_factory is None:
        raise ConfigDefinitionError(
            "field(count_default=True): expected a default= or default_factory= (a required "
            "field always counts). Give the default, or drop count_default."
        )
    names = (renamed_from,) if isinstance(renamed_from, str) else tuple(renamed_from)
    for name in names:
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
            raise ConfigDefinitionError(
                f"field(renamed_from=...): expected former field names (identifiers not "
                f"starting with '_'), found {name!r}. Write e.g. "
                "field(renamed_from='learning_rate')."
            )
    if len(set(names)) != len(names):
        raise ConfigDefinitionError(
            f"field(renamed_from={names!r}): a former name is listed twice. List each once, "
            "oldest first."
        )
    return _FieldSpec(
        default=default,
        default_factory=default_factory,
        help=help,
        count_default=bool(count_default),
        override=bool(override),
        renamed_from=names,
    )


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


class Ignored:
    """A sub-config marked with :func:`ignore`: held, but not part of the holder's identity."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"ignore({self.value!r})"


def ignore(value: T) -> T:
    """Hold the sub-config ``value`` in a field without it counting in the identity.

    ``Train(data=data, validation=ignore(valset))``: this ``Train`` has the identifier (and
    the job folder) it would have with ``validation`` at its default, whatever ``valset`` is.
    The mark belongs to this instance and field (other instances are not affected), is
    recorded in ``params.json`` and survives a reload. The sub-config is still a dependency
    of the task, and its tags still count.
    """
    from partita.config._kinds import ConfigNode

    if not isinstance(value, ConfigNode):
        from partita.errors import ConfigTypeError

        raise ConfigTypeError(
            f"ignore(): expected a config instance, found {type(value).__name__} "
            f"{value!r}. For plain values that must not count, declare the field Meta[...]."
        )
    return Ignored(value)  # type: ignore[return-value]


#: How descriptions of a field (``--help``, the Sphinx extension, ``repr``) say that it was
#: declared ``field(count_default=True)``.
COUNTS_AT_DEFAULT = "the default counts toward the identity"


class Field:
    """A resolved field of a config class (see :func:`partita.fields`).

    ``count_default`` is true for ``field(..., count_default=True)``: the value counts in the
    identifier even when it equals the default.
    """

    __slots__ = (
        "_default_bytes",
        "_help",
        "annotation",
        "count_default",
        "default",
        "default_factory",
        "generator",
        "kind",
        "name",
        "owner",
        "renamed_from",
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
        count_default: bool = False,
        renamed_from: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.count_default = count_default
        #: Former names of the field, oldest first (``field(renamed_from=...)``).
        self.renamed_from = renamed_from
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
    def identity_name(self) -> str:
        """The name the identity encodes: the oldest former name, else the name."""
        return self.renamed_from[0] if self.renamed_from else self.name

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
        counts = f"; {COUNTS_AT_DEFAULT}" if self.count_default else ""
        return f"Field({self.name!r}, {self.kind.value}, {self.type.describe()}{counts})"
