"""``partita docs ...``: documentation of a code base's configs (for CI)."""

from __future__ import annotations

import os
import sys

import click
from rich.text import Text

from partita.cli._app import CliError, PartitaGroup, echo_json, get_console, json_option


@click.group(cls=PartitaGroup)
def docs() -> None:
    """Check the documentation of configs (see docs/runner.md).

    \b
    Examples:
      partita docs check mypackage
    """


@docs.command("check")
@click.argument("package")
@json_option
def check(package: str, as_json: bool) -> None:
    """List config classes and fields of PACKAGE without documentation.

    A field is documented by field(help=...), a string just below it, or an
    entry of an Attributes:/Arguments: section of its class docstring. Exits 1
    when something is undocumented (for CI), 0 otherwise.

    \b
    Examples:
      partita docs check mypackage
      partita docs check mypackage.models --json
    """
    from partita.runner._docscheck import check_package

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # a package of the current project, not installed
    report = check_package(package)
    if as_json:
        echo_json({"classes": report.classes, "fields": report.fields, "missing": report.missing})
    else:
        console = get_console()
        for line in report.missing:
            console.print(Text(line))
        console.print(
            Text(
                f"{len(report.classes)} config classes, {report.fields} fields: "
                + (f"{len(report.missing)} undocumented" if report.missing else "all documented")
            )
        )
    if report.missing:
        raise click.exceptions.Exit(1)
    if not report.classes:
        raise CliError(f"no config class found in {package!r}: is it the right package?")
