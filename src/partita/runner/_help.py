"""Help texts of config fields, and the ``--help`` of an experiment script.

A field's help is :attr:`partita.config.Field.help` (read in the config layer, one rule
for ``--help``, ``partita docs check``, the Sphinx extension and ``partita.fields()``):
``field(help=...)``, its attribute docstring (the string just below it), or its entry in
an ``Attributes:`` / ``Arguments:`` / ``Args:`` / ``Parameters:`` section of the class
docstring, Google style (``name (type): text``) or NumPy style (``name : type`` and the
text indented below, under a ``-----`` underline).
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from typing import Any

from partita.config import Config, FieldKind, fields
from partita.config._describe import section_docs
from partita.config._fields import COUNTS_AT_DEFAULT, MISSING, Field
from partita.runner._resolve import config_class, to_plain

__all__ = ["FieldDoc", "class_summary", "describe_fields", "field_help", "section_docs"]


def field_help(f: Field) -> str:
    """The help text of ``f`` (empty when it has none): :attr:`Field.help`, one rule."""
    return f.help


def class_summary(klass: type) -> str:
    """The first paragraph of the class docstring (without its sections)."""
    doc = klass.__dict__.get("__doc__")
    if not isinstance(doc, str):
        return ""
    return inspect.cleandoc(doc).split("\n\n")[0].strip()


@dataclass
class FieldDoc:
    """One line of ``--help``: a field by its dotted path."""

    path: str
    kind: FieldKind
    type: str
    default: Any
    help: str
    required: bool
    count_default: bool = False
    """Declared ``field(count_default=True)``: the default counts toward the identity."""


def describe_fields(
    cls: type[Config], prefix: str = "", depth: int = 0, instance: Config | None = None
) -> list[FieldDoc]:
    """Every settable field of ``cls``, nested configs expanded by dotted path.

    ``instance`` is the default value of the field that holds ``cls`` (its values are the
    defaults of the nested fields, ``model=Model(layers=4)`` gives ``model.layers`` 4).
    """
    out: list[FieldDoc] = []
    for f in fields(cls):
        default: Any = MISSING
        given = instance is not None and f.name in instance.__dict__
        if given:
            default = instance.__dict__[f.name]
        elif f.default is not MISSING:
            default = f.default
        elif f.default_factory is not None:
            try:
                default = f.default_factory()
            except Exception:
                default = MISSING
        sub = config_class(f)
        shown = "(generated)" if f.generator is not None else default
        if sub is not None and depth < 4:
            out.append(
                FieldDoc(prefix + f.name, f.kind, f.type.describe(), MISSING, field_help(f), False)
            )
            held = default if isinstance(default, Config) else None
            out.extend(describe_fields(sub, f"{prefix}{f.name}.", depth + 1, held))
            continue
        out.append(
            FieldDoc(
                prefix + f.name,
                f.kind,
                f.type.describe(),
                shown if shown is MISSING or shown == "(generated)" else to_plain(shown),
                field_help(f),
                f.required and not given,
                f.count_default,
            )
        )
    return out


def help_text(prog: str, name: str, cls: type[Config] | None) -> str:
    """The ``--help`` of a script run by ``experiment_main``."""
    lines = [
        f"usage: {prog} [KEY=VALUE ...] [--config FILE] [--multirun] [--show] [-w DIR]"
        if cls is not None
        else f"usage: {prog} [-w DIR]",
        "",
        f"Runs the experiment {name!r}.",
    ]
    if cls is not None:
        summary = class_summary(cls)
        if summary:
            lines += ["", summary]
        lines += ["", f"parameters ({cls.__qualname__}):"]
        docs = describe_fields(cls)
        width = min(30, max((len(d.path) for d in docs), default=0))
        for d in docs:
            if d.required:
                default = "required"
            elif d.default is MISSING:
                default = ""
            else:
                default = "default " + json.dumps(d.default, ensure_ascii=False, default=str)
                if d.count_default:
                    default += f" ({COUNTS_AT_DEFAULT})"
            kind = "" if d.kind is FieldKind.PARAM else f"{d.kind.value}, "
            fixed = " (cannot be set)" if d.kind is FieldKind.CONSTANT else ""
            lines.append(f"  {d.path:<{width}}  {kind}{d.type}; {default}{fixed}".rstrip("; "))
            if d.help:
                lines.append(f"  {'':<{width}}    {d.help}")
    if cls is None:
        lines += [
            "",
            "The function takes no configuration (no parameter annotated with a Config",
            "class): it has no KEY=VALUE, --config nor --multirun.",
            "",
            "options:",
            "  -w, --workdir D  the work directory (default: $PARTITA_WORKDIR or ./workdir)",
            "  -h, --help       this help",
            "",
            "Exit codes: 0 done, 1 a job failed, 2 wrong command line.",
        ]
        return "\n".join(lines)
    lines += [
        "",
        "options:",
        "  KEY=VALUE        set a field: lr=0.1, model.layers=4, C=[1,10], name=null,",
        "                   \"name='a,b'\" (a text with a comma, quoted twice: the",
        "                   shell removes one level); a sweep (with --multirun):",
        "                   kernel=linear,rbf or 'seed=range(0,5)'",
        "  --config FILE    read values from a YAML file first (repeatable); it may",
        "                   include others (include: or defaults:)",
        "  -m, --multirun   one run per combination of the sweeps, each tagged with them",
        "  --show           print the resolved configuration, launch nothing",
        "  -w, --workdir D  the work directory (default: $PARTITA_WORKDIR or ./workdir)",
        "  -h, --help       this help",
        "",
        "Exit codes: 0 done, 1 a job failed, 2 wrong command line or config file.",
    ]
    return "\n".join(lines)
