"""A Sphinx extension documenting config classes: ``.. partita:config:: pkg.Train``.

Add ``"partita.sphinx"`` to ``extensions`` in ``conf.py``. The directive renders the class's
summary and a table of its fields: name, kind (Param, Meta, Constant), type, default and
help (``field(help=...)``, the attribute docstring, or the ``Attributes:``/``Arguments:``
section of the class docstring). A field whose type is another config documented with the
directive links to it; ``:partita:config:`pkg.Train``` links to one from any text.

Needs Sphinx (``pip install sphinx``); nothing else in partita imports this module.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from typing import Any

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.builders import Builder
from sphinx.domains import Domain, ObjType
from sphinx.environment import BuildEnvironment
from sphinx.roles import XRefRole
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import make_refnode

from partita.config import Config, FieldKind, Task, fields
from partita.config import _types as t
from partita.config._fields import COUNTS_AT_DEFAULT, MISSING, Field
from partita.runner._help import class_summary, field_help
from partita.runner._resolve import to_plain

__all__ = ["ConfigDirective", "PartitaDomain", "setup"]

_KINDS = {FieldKind.PARAM: "Param", FieldKind.META: "Meta", FieldKind.CONSTANT: "Constant"}


def import_config(name: str) -> type[Config]:
    """The config class named ``module.QualName`` (raises ``ValueError`` with the reason)."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            value: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            value = getattr(value, part, None)
        if isinstance(value, type) and issubclass(value, Config):
            return value
        raise ValueError(f"{name} is not a partita Config class (found {value!r})")
    raise ValueError(f"cannot import {name}: give module.ClassName")


def _anchor(name: str) -> str:
    return "partita-config-" + name.replace(".", "-").replace("_", "-").lower()


def _config_types(ftype: t.FieldType) -> list[type]:
    if isinstance(ftype, t._ConfigType):
        return [ftype.kind]
    if isinstance(ftype, t._Union):
        return [k for o in ftype.options for k in _config_types(o)]
    if isinstance(ftype, t._List | t._Set):
        return _config_types(ftype.item)
    if isinstance(ftype, t._Dict):
        return _config_types(ftype.value)
    if isinstance(ftype, t._Tuple):
        inner = list(ftype.items or ()) + ([ftype.rest] if ftype.rest else [])
        return [k for o in inner for k in _config_types(o)]
    return []


def _default(f: Field) -> str:
    if f.generator is not None:
        return f"generated: {f.generator.relative or '(job folder)'}"
    if f.default is not MISSING:
        value = f.default
    elif f.default_factory is not None:
        try:
            value = f.default_factory()
        except Exception:
            value = MISSING
    else:
        return "required"
    if value is MISSING:
        text = "(computed)"
    elif isinstance(value, Config):
        text = f"{type(value).__qualname__}()"
    else:
        text = json.dumps(to_plain(value), ensure_ascii=False, default=str)
    return f"{text} ({COUNTS_AT_DEFAULT})" if f.count_default else text


def _link(kind: type, content: nodes.Node) -> addnodes.pending_xref:
    """A reference to the documentation of config class ``kind`` (plain text if none)."""
    ref = addnodes.pending_xref(
        "",
        refdomain="partita",
        reftype="config",
        reftarget=f"{kind.__module__}.{kind.__qualname__}",
        refexplicit=True,
        refwarn=False,
    )
    ref += content
    return ref


class ConfigDirective(SphinxDirective):
    """``.. partita:config:: module.QualName``: a config class and the table of its fields."""

    required_arguments = 1
    has_content = True

    def _type_cell(self, f: Field) -> nodes.Node:
        para = nodes.paragraph()
        text = f.type.describe()
        kinds = _config_types(f.type)
        if len(kinds) == 1 and text == kinds[0].__qualname__:
            para += _link(kinds[0], nodes.literal(text=text))  # the type itself is the link
            return para
        para += nodes.literal(text=text)
        for i, kind in enumerate(kinds):
            para += nodes.Text(" (see " if i == 0 else ", ")
            para += _link(kind, nodes.inline(text=kind.__qualname__))
        if kinds:
            para += nodes.Text(")")
        return para

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0].strip()
        try:
            cls = import_config(name)
        except ValueError as exc:
            raise self.error(f"partita:config: {exc}") from None
        full = f"{cls.__module__}.{cls.__qualname__}"
        anchor = _anchor(full)
        box = nodes.container(classes=["partita-config"], ids=[anchor])
        if name != full:
            box["ids"].append(_anchor(name))
        head = nodes.paragraph(classes=["partita-config-title"])
        head += nodes.strong(text=cls.__qualname__)
        kind = "task" if issubclass(cls, Task) else "config"
        head += nodes.Text(f" ({kind} ")
        head += nodes.literal(text=full)
        head += nodes.Text(f", type id {cls._partita_type_id})")
        box += head
        summary = class_summary(cls)
        if summary:
            box += nodes.paragraph(text=summary)
        if self.content:
            self.state.nested_parse(self.content, self.content_offset, box)
        box += self._table(cls)
        domain = self.env.get_domain("partita")
        assert isinstance(domain, PartitaDomain)
        domain.note_config(full, self.env.docname, anchor)
        if name != full:
            domain.note_config(name, self.env.docname, _anchor(name))
        return [box]

    def _table(self, cls: type[Config]) -> nodes.table:
        table = nodes.table(classes=["partita-config-fields"])
        group = nodes.tgroup(cols=5)
        table += group
        for width in (15, 10, 20, 15, 40):
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        group += head
        row = nodes.row()
        for title in ("Field", "Kind", "Type", "Default", "Description"):
            row += nodes.entry("", nodes.paragraph(text=title))
        head += row
        body = nodes.tbody()
        group += body
        for f in fields(cls):
            row = nodes.row(ids=[f"{_anchor(f'{cls.__module__}.{cls.__qualname__}')}-{f.name}"])
            name = nodes.paragraph()
            name += nodes.literal(text=f.name)
            row += nodes.entry("", name)
            row += nodes.entry("", nodes.paragraph(text=_KINDS[f.kind]))
            row += nodes.entry("", self._type_cell(f))
            row += nodes.entry("", nodes.paragraph(text=_default(f)))
            row += nodes.entry("", nodes.paragraph(text=field_help(f)))
            body += row
        return table


class PartitaDomain(Domain):
    """The ``partita`` domain: the ``config`` directive and role."""

    name = "partita"
    label = "partita"
    object_types = {"config": ObjType("config", "config")}
    directives = {"config": ConfigDirective}
    roles = {"config": XRefRole()}
    initial_data = {"configs": {}}

    @property
    def configs(self) -> dict[str, tuple[str, str]]:
        """Documented configs: full name → (document, anchor)."""
        found: dict[str, tuple[str, str]] = self.data.setdefault("configs", {})
        return found

    def note_config(self, name: str, docname: str, anchor: str) -> None:
        """Record where config ``name`` is documented."""
        self.configs[name] = (docname, anchor)

    def clear_doc(self, docname: str) -> None:
        for name, (doc, _) in list(self.configs.items()):
            if doc == docname:
                del self.configs[name]

    def merge_domaindata(self, docnames: Any, otherdata: dict[str, Any]) -> None:
        for name, (doc, anchor) in otherdata.get("configs", {}).items():
            if doc in docnames:
                self.configs[name] = (doc, anchor)

    def resolve_xref(
        self,
        env: BuildEnvironment,
        fromdocname: str,
        builder: Builder,
        typ: str,
        target: str,
        node: addnodes.pending_xref,
        contnode: nodes.Element,
    ) -> nodes.reference | None:
        entry = self.configs.get(target)
        if entry is None:
            matches = [k for k in self.configs if k.endswith("." + target)]
            entry = self.configs[matches[0]] if len(matches) == 1 else None
        if entry is None:
            return None
        return make_refnode(builder, fromdocname, entry[0], entry[1], contnode, target)

    def resolve_any_xref(
        self,
        env: BuildEnvironment,
        fromdocname: str,
        builder: Builder,
        target: str,
        node: addnodes.pending_xref,
        contnode: nodes.Element,
    ) -> list[tuple[str, nodes.reference]]:
        found = self.resolve_xref(env, fromdocname, builder, "config", target, node, contnode)
        return [("partita:config", found)] if found is not None else []

    def get_objects(self) -> Iterator[tuple[str, str, str, str, str, int]]:
        for name, (doc, anchor) in self.configs.items():
            yield name, name, "config", doc, anchor, 1


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the ``partita`` domain (Sphinx calls this for ``extensions``)."""
    app.add_domain(PartitaDomain)
    from partita import __version__

    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}
