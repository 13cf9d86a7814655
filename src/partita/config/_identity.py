"""Identifiers: SHA-256 over a canonical, typed byte encoding (see docs/identity.md).

Every value is written as a one-byte kind tag followed by its payload, so ``True``, ``1``,
``1.0`` and ``"1"`` never collide. A config contributes the digest of its own encoding
(a Merkle tree): header with its type id, the producing task's digest for task outputs,
then its identity fields sorted by name. ``Meta`` fields, generated paths and fields equal
to their default are left out; ``Constant`` fields are always in.
"""

from __future__ import annotations

import struct
import sys
from typing import Any

from partita.config import _runtime
from partita.config._kinds import ConfigNode, FieldKind, Kind, kind_of
from partita.errors import CycleError, EncodingError

_pack_len = struct.Struct(">I").pack
_pack_float = struct.Struct(">d").pack
_NAN = b"\x7f\xf8\x00\x00\x00\x00\x00\x00"

try:  # the built-in module: loading hashlib (and OpenSSL) costs each job a few ms
    from _sha256 import sha256 as _sha256  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - other Pythons
    from hashlib import sha256 as _sha256


def length_prefixed(data: bytes) -> bytes:
    """``data`` preceded by its length as 4 big-endian bytes."""
    return _pack_len(len(data)) + data


def _enc_none(value: Any, buf: bytearray, active: set[int]) -> None:
    buf += b"N"


def _enc_bool(value: Any, buf: bytearray, active: set[int]) -> None:
    buf += b"T" if value else b"F"


def _enc_int(value: Any, buf: bytearray, active: set[int]) -> None:
    try:
        data = str(int(value)).encode()
    except ValueError:  # more digits than sys.get_int_max_str_digits()
        raise EncodingError(
            f"an int of about {int(value).bit_length() * 30103 // 100000} digits is too "
            "large to encode. Store such numbers in a file or as a str."
        ) from None
    buf += b"i"
    buf += _pack_len(len(data))
    buf += data


def _enc_float(value: Any, buf: bytearray, active: set[int]) -> None:
    buf += b"f"
    if value != value:
        buf += _NAN
    else:
        buf += _pack_float(value + 0.0)  # -0.0 + 0.0 == 0.0


def _enc_str(value: Any, buf: bytearray, active: set[int]) -> None:
    data = value.encode("utf-8", "surrogatepass")
    buf += b"s"
    buf += _pack_len(len(data))
    buf += data


def _enc_path(value: Any, buf: bytearray, active: set[int]) -> None:
    text = value.as_posix()
    for root in _runtime.workspace_roots():
        jobs = root + "/jobs/"
        if text.startswith(jobs):
            data = text[len(root) + 1 :].encode("utf-8", "surrogatepass")
            buf += b"w"
            buf += _pack_len(len(data))
            buf += data
            return
    data = text.encode("utf-8", "surrogatepass")
    buf += b"p"
    buf += _pack_len(len(data))
    buf += data


def _enc_list(value: Any, buf: bytearray, active: set[int]) -> None:
    buf += b"l"
    buf += _pack_len(len(value))
    for item in value:
        _enc(item, buf, active)


def _enc_tuple(value: Any, buf: bytearray, active: set[int]) -> None:
    buf += b"t"
    buf += _pack_len(len(value))
    for item in value:
        _enc(item, buf, active)


def _enc_dict(value: Any, buf: bytearray, active: set[int]) -> None:
    buf += b"d"
    buf += _pack_len(len(value))
    for key in sorted(value):
        if type(key) is not str:
            raise EncodingError(
                f"dict key {key!r}: expected str keys, found {type(key).__name__}. "
                "Convert keys to str."
            )
        _enc_str(key, buf, active)
        _enc(value[key], buf, active)


def _enc_set(value: Any, buf: bytearray, active: set[int]) -> None:
    items = []
    for item in value:
        sub = bytearray()
        _enc(item, sub, active)
        items.append(bytes(sub))
    items.sort()
    buf += b"S"
    buf += _pack_len(len(items))
    for item in items:
        buf += item


_enum_names: dict[type, bytes] = {}


def enum_type_name(kind: type) -> str:
    """``module.QualName`` of an enum class (scripts use their file stem as module)."""
    module = kind.__module__
    if module in ("__main__", _runtime.SCRIPT_MODULE):
        module = _runtime.script_stem(sys.modules.get(module)) or "main"
    return f"{module}.{kind.__qualname__}"


def _enc_enum(value: Any, buf: bytearray, active: set[int]) -> None:
    kind = type(value)
    prefix = _enum_names.get(kind)
    if prefix is None:
        # A renamed enum (renamed_enum) encodes its oldest names.
        former = kind.__dict__.get("_partita_enum_former")
        prefix = length_prefixed((former[0] if former else enum_type_name(kind)).encode())
        _enum_names[kind] = prefix
    buf += b"e"
    buf += prefix
    oldest = kind.__dict__.get("_partita_enum_oldest")
    name = oldest.get(value.name, value.name) if oldest else value.name
    buf += length_prefixed(name.encode())


def _enc_config(value: Any, buf: bytearray, active: set[int]) -> None:
    buf += b"c"
    buf += _digest(value, active)


_BY_KIND: dict[Kind, Any] = {
    Kind.NONE: _enc_none,
    Kind.BOOL: _enc_bool,
    Kind.INT: _enc_int,
    Kind.FLOAT: _enc_float,
    Kind.STR: _enc_str,
    Kind.PATH: _enc_path,
    Kind.ENUM: _enc_enum,
    Kind.LIST: _enc_list,
    Kind.TUPLE: _enc_tuple,
    Kind.DICT: _enc_dict,
    Kind.SET: _enc_set,
    Kind.CONFIG: _enc_config,
}

#: Encoder per exact type (filled from :func:`kind_of` on first use): the fast path.
_ENCODERS: dict[type, Any] = {}


def _enc(value: Any, buf: bytearray, active: set[int]) -> None:
    encoder = _ENCODERS.get(type(value))
    if encoder is None:
        encoder = _BY_KIND[kind_of(value)]
        _ENCODERS[type(value)] = encoder
    encoder(value, buf, active)


HEADER = b"partita.config/1\x00"


class Plan:
    """How a config class is encoded: its header and, in name order, the encoded fields.

    Computed once per class by :func:`plan`. ``fields`` holds ``(name, prefix, field,
    check_default)``: ``Meta`` fields and generated paths are left out, and a ``Param``
    whose encoding equals its default's is dropped (``check_default``).
    """

    __slots__ = ("fields", "header")

    def __init__(self, header: bytes, fields: tuple[tuple[str, bytes, Any, bool], ...]) -> None:
        self.header = header
        self.fields = fields


def plan(type_id: str, fields: dict[str, Any]) -> Plan:
    """The identity plan of a class with these resolved fields.

    ``type_id`` is the id the identity encodes: the class's oldest former type id when it
    declares ``renamed_from=``, else its type id.
    """
    encoded = []
    # A renamed field is encoded under its oldest name (``field(renamed_from=...)``), and
    # sorted by it, so that renaming keeps every identifier (docs/identity.md).
    by_identity = sorted(fields, key=lambda n: getattr(fields[n], "identity_name", n))
    for name in by_identity:
        f = fields[name]
        if f.kind is FieldKind.META or f.generator is not None:
            continue
        check_default = f.kind is FieldKind.PARAM and not f.required and not f.count_default
        encoded_name = getattr(f, "identity_name", name)
        encoded.append((name, length_prefixed(encoded_name.encode()), f, check_default))
    return Plan(HEADER + length_prefixed(type_id.encode()), tuple(encoded))


def _digest(cfg: ConfigNode, active: set[int]) -> bytes:
    d = cfg.__dict__
    st = d["__partita__"]
    if st.digest is not None:
        return st.digest  # type: ignore[no-any-return]
    key = id(cfg)
    if key in active:
        raise CycleError(
            f"{type(cfg).__qualname__} contains itself (through its fields), so it has no "
            "identifier. Break the loop: a config cannot be its own parameter."
        )
    active.add(key)
    cls = type(cfg)
    identity_plan: Plan = cls._partita_plan  # type: ignore[attr-defined]
    buf = bytearray(identity_plan.header)
    producer = st.producer
    if producer is None:
        buf += b"-"
    else:
        buf += b"o"
        buf += _digest(producer, active)
    instance = st.instance
    if instance is not None:
        # '#' cannot start a field (a 4-byte length prefix starts with 0 for every name).
        buf += b"#"
        buf += length_prefixed(instance.encode("utf-8", "surrogatepass"))
    ignored = st.ignored
    try:
        for name, prefix, f, check_default in identity_plan.fields:
            if ignored and name in ignored:
                continue
            start = len(buf)
            buf += prefix
            vstart = len(buf)
            try:
                value = d[name]
            except KeyError:
                raise EncodingError(
                    f"{cls.__qualname__}.{name} has no value; give it one before submitting."
                ) from None
            _enc(value, buf, active)
            if check_default:
                default = f.default_bytes()
                if (
                    default is not None
                    and len(buf) - vstart == len(default)
                    and (buf[vstart:] == default)
                ):
                    del buf[start:]
        pretasks = st.pretasks
        if pretasks:  # a task's pre-tasks, in order (absent: the encoding is unchanged)
            name = "<pre-tasks>"
            buf += b"P"
            buf += _pack_len(len(pretasks))
            for pretask in pretasks:
                buf += b"c"
                buf += _digest(pretask, active)
    except EncodingError as exc:
        message = str(exc)
        if not message.startswith(cls.__qualname__):
            message = f"{cls.__qualname__}.{name}: {message}"
        raise EncodingError(message) from None
    finally:
        active.discard(key)
    result: bytes = _sha256(buf).digest()
    if st.frozen:
        st.digest = result
    return result


def digest(cfg: ConfigNode) -> bytes:
    """The 32-byte SHA-256 digest of ``cfg``'s identity."""
    return _digest(cfg, set())


def identifier(cfg: ConfigNode) -> str:
    """The identifier of ``cfg``: 64 hexadecimal characters, stable across processes.

    Raises:
        CycleError: configs refer to each other in a loop.
        EncodingError: a value cannot be encoded.
    """
    return _digest(cfg, set()).hex()


def encode_value(value: Any) -> bytes:
    """The canonical encoding of one value (used to compare with defaults)."""
    buf = bytearray()
    _enc(value, buf, set())
    return bytes(buf)


def check_encodable(value: Any, path: str, active: set[int] | None = None) -> Any:
    """Validate a value of an ``Any`` field: return a normalised copy or raise.

    Raises:
        EncodingError: the value (or an item) has no kind, a dict key is not a str, or a
            container contains itself.
    """
    kind = kind_of(value, path)
    if kind in _SCALARS:
        return value
    if active is None:
        active = set()
    key = id(value)
    if key in active:
        raise EncodingError(
            f"{path}: this {type(value).__name__} contains itself, so it cannot be encoded. "
            "Break the loop (copy the inner value)."
        )
    active.add(key)
    try:
        if kind is Kind.LIST:
            return [check_encodable(v, f"{path}[{i}]", active) for i, v in enumerate(value)]
        if kind is Kind.TUPLE:
            return tuple(check_encodable(v, f"{path}[{i}]", active) for i, v in enumerate(value))
        if kind is Kind.SET:
            return frozenset(check_encodable(v, f"{path}{{}}", active) for v in value)
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                raise EncodingError(
                    f"{path}: dict keys must be str, found {type(k).__name__} {k!r}. "
                    "Convert keys to str."
                )
            out[k] = check_encodable(v, f"{path}[{k!r}]", active)
        return out
    finally:
        active.discard(key)


_SCALARS = frozenset(
    {Kind.NONE, Kind.BOOL, Kind.INT, Kind.FLOAT, Kind.STR, Kind.PATH, Kind.ENUM, Kind.CONFIG}
)
