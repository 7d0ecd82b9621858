"""``sessions drivers``: list installed drivers and plugins that failed."""

from __future__ import annotations

import json
from typing import Any

import click

from ..plugins import FIRST_PARTY, load_plugins
from .inventory import inventory


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def drivers(as_json: bool) -> None:
    """List installed session drivers, their options, and plugins that failed to load."""
    report = inventory(load_plugins())
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    _render(report)


def _render(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    table = Table(title="Session drivers")
    # Names are what a reader copies into config: never broken across lines.
    table.add_column("Driver", no_wrap=True, min_width=_longest(report["drivers"], "name"))
    for column in ("Distribution", "Version", "Flavours", "Capabilities"):
        table.add_column(column, overflow="fold")
    for info in report["drivers"]:
        table.add_row(
            f"[bold]{escape(info['name'])}[/bold]",
            escape(info["distribution"]),
            escape(info["version"]),
            info["flavours"] or "[red]cannot load[/red]",
            ", ".join(info["capabilities"]) or "-",
        )
    console.print(table)
    for info in report["drivers"]:
        if info["error"]:
            console.print(
                f"[red]driver {escape(info['name'])} cannot load:[/red] {escape(info['error'])}"
            )
        elif info["options"]:
            options = Table(
                title=f"{escape(info['name'])} options (SESSION_{info['name'].upper()}_*)"
            )
            longest = _longest(info["options"], "name")
            options.add_column("Option", no_wrap=True, min_width=longest)
            for column in ("Type", "Default", "Help"):
                options.add_column(column, overflow="fold")
            for opt in info["options"]:
                default = "required" if opt["required"] else repr(opt["default"])
                options.add_row(
                    escape(opt["name"]), escape(opt["type"]), escape(default), escape(opt["help"])
                )
            console.print(options)
    for failure in report["failed"]:
        console.print(
            f"[red]failed plugin[/red] [bold]{escape(failure['name'])}[/bold] from "
            f"{escape(failure['distribution'])} {escape(failure['version'])} "
            f"({failure['stage']}): {escape(failure['error'])}"
        )
    for conflict in report["conflicts"]:
        console.print(
            f"[red]conflict[/red] [bold]{escape(conflict['name'])}[/bold] is claimed by "
            f"{escape('; '.join(conflict['claimants']))}"
        )
    for item in report["disabled"]:
        console.print(f"[yellow]disabled[/yellow] {escape(item['name'])}: {escape(item['reason'])}")
    missing = report["not_installed"]
    if missing:
        hints = ", ".join(f"{name} (pip install {FIRST_PARTY[name]})" for name in missing)
        console.print(f"[dim]not installed: {escape(hints)}[/dim]")


def _longest(rows: list[dict[str, Any]], key: str) -> int:
    return max((len(row[key]) for row in rows), default=0)
