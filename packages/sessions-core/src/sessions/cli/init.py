"""``sessions init``: write SESSION_* settings for a driver into a ``.env`` file."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from ..driver import Option, declared_options
from ..errors import SessionError
from ..plugins import load_plugins
from ..redact import redact
from .envfile import EnvFileError, format_line, read_env_file
from .secret import new_secret


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)


def _parse_assignments(
    driver: str, given: tuple[str, ...], declared: dict[str, Option]
) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in given:
        name, sep, value = item.partition("=")
        name = name.strip().lower()
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--option")
        option = declared.get(name)
        if option is None or option.type is object:
            valid = ", ".join(n for n, o in declared.items() if o.type is not object) or "none"
            raise click.BadParameter(
                f"driver {driver!r} has no option {name!r} settable from the environment "
                f"(valid: {valid})",
                param_hint="--option",
            )
        try:
            option.coerce(driver, value)
        except SessionError as exc:
            raise click.BadParameter(str(exc), param_hint="--option") from exc
        values[name] = value
    return values


def _settings(
    driver: str, declared: dict[str, Option], given: dict[str, str]
) -> list[tuple[str, str | None, str]]:
    """(variable, value or None for a placeholder, comment) in writing order."""
    rows: list[tuple[str, str | None, str]] = [
        ("SESSION_DRIVER", driver, "storage driver"),
        ("SESSION_SECRET", new_secret(), "signs session cookies; keep it secret"),
        ("SESSION_AGE", "2h", "idle lifetime: 30m, 2h, 7d or seconds"),
    ]
    for name, option in declared.items():
        if option.type is object:
            continue  # a ready-made object cannot come from the environment
        var = f"SESSION_{driver.upper()}_{name.upper()}"
        if name in given:
            rows.append((var, given[name], option.help))
        elif option.default is not None:
            rows.append((var, _env_text(option.default), option.help))
        else:
            rows.append(
                (var, None, ("required: " if option.required else "optional: ") + option.help)
            )
    return rows


@click.command()
@click.option("--driver", "-d", default="cookie", show_default=True, help="Driver to configure.")
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".env"),
    show_default=True,
    help="File to add the settings to (created if missing).",
)
@click.option(
    "--option",
    "-o",
    "options",
    multiple=True,
    metavar="NAME=VALUE",
    help="A driver option value, e.g. -o url=redis://127.0.0.1:6379/0 (repeatable).",
)
def init(driver: str, env_file: Path, options: tuple[str, ...]) -> None:
    """Add SESSION_* settings for DRIVER, with a fresh secret, to a .env file.

    Settings already in the file are never overwritten; only missing ones are
    added. Options without a default are written as commented placeholders;
    the required ones among them are reported as todo.
    """
    try:
        factory = load_plugins().get(driver).load()
    except SessionError as exc:
        raise click.ClickException(str(exc)) from exc
    declared = {opt.name: opt for opt in declared_options(factory)}
    given = _parse_assignments(driver, options, declared)
    try:
        existing = read_env_file(env_file)
    except EnvFileError as exc:
        raise click.ClickException(f"{exc}; fix the file before running sessions init") from exc
    if existing.get("SESSION_DRIVER", driver) != driver:
        click.echo(
            f"warning: {env_file} already selects SESSION_DRIVER={existing['SESSION_DRIVER']}; "
            f"it is kept (edit it to switch to {driver})",
            err=True,
        )
    lines: list[str] = []
    for var, value, comment in _settings(driver, declared, given):
        if var in existing:
            click.echo(f"kept     {var} (already set)")
            continue
        if value is None:
            # Only a required option is left to do; an optional one is a commented hint.
            lines.append(f"# {var}=    # {comment}")
            status = "todo    " if comment.startswith("required: ") else "optional"
            click.echo(f"{status} {var} ({comment.partition(': ')[2]})")
            continue
        lines.append(f"# {comment}")
        lines.append(format_line(var, value))
        # The terminal (and CI logs) may be less private than the 0600 file.
        shown = "<new secret>" if var == "SESSION_SECRET" else redact(value, var)
        click.echo(f"added    {var}={shown}")
    if not lines:
        click.echo(f"{env_file} already has every setting; nothing written")
        return
    _append(env_file, lines)
    click.echo(f"wrote {env_file}")


def _append(path: Path, lines: list[str]) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = "\n".join([f"# sessions: added by `sessions init` on {stamp}", *lines]) + "\n"
    prefix = ""
    if path.exists() and path.stat().st_size > 0:
        prefix = "\n" if path.read_bytes().endswith(b"\n") else "\n\n"
    # The file holds a secret: a new one is created readable by its owner only.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(prefix + block)
