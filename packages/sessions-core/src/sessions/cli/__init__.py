"""The ``sessions`` command line.

Built-in commands are imported only when run, and installed plugins are loaded
only when a command is not built in (or ``--help`` lists them all), so
``sessions secret`` never imports a driver package.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

try:
    import click
except ModuleNotFoundError as exc:  # ``python -m sessions.cli`` without the extra
    raise ModuleNotFoundError(
        f'{exc}: the sessions command line needs the cli extra: pip install "sessions-core[cli]"',
        name=exc.name,
    ) from exc

__all__ = ["SessionsGroup", "cli", "main", "make_cli"]

#: Built-in commands: name -> "module:attr", imported on use.
BUILTIN_COMMANDS = {
    "check": "sessions.cli.check:check",
    "drivers": "sessions.cli.drivers:drivers",
    "gc": "sessions.cli.gc:gc",
    "hooks": "sessions.cli.hooks:hooks",
    "init": "sessions.cli.init:init",
    "list": "sessions.cli.users:list_sessions",
    "new-driver": "sessions.cli.newdriver:new_driver",
    "revoke": "sessions.cli.users:revoke",
    "secret": "sessions.cli.secret:secret",
}


class SessionsGroup(click.Group):
    """A click group whose built-in commands load lazily and whose other
    commands come from plugins (``sessions_register_commands``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plugins_loaded = False

    def _load_plugin_commands(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        from ..plugins import load_plugins

        load_plugins().register_commands(self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Built-in and plugin command names, sorted."""
        self._load_plugin_commands()
        return sorted(set(BUILTIN_COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command ``cmd_name``: built in, or added by a plugin."""
        target = BUILTIN_COMMANDS.get(cmd_name)
        if target is not None:
            module, _, attr = target.partition(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        found = super().get_command(ctx, cmd_name)
        if found is None:
            self._load_plugin_commands()
            found = super().get_command(ctx, cmd_name)
        if found is None:
            _explain_missing(cmd_name)
        return found


def _explain_missing(cmd_name: str) -> None:
    """Say which plugins failed, since one of them may have provided the command."""
    from ..plugins import load_plugins

    plugins = load_plugins()
    failed = [*plugins.failures.values(), *plugins.command_failures]
    for failure in failed:
        click.echo(f"note: plugin {failure.describe()}", err=True)


def make_cli() -> SessionsGroup:
    """A new ``sessions`` command group (plugin commands are added to it on first need)."""

    @click.group(cls=SessionsGroup, context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(package_name="sessions-core", prog_name="sessions")
    def sessions() -> None:
        """Web sessions for Python: drivers, configuration and maintenance.

        Configuration comes from SESSION_* environment variables, and from a .env
        file where a command takes --env-file (the environment wins).
        """

    assert isinstance(sessions, SessionsGroup)
    return sessions


cli = make_cli()


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="sessions")
