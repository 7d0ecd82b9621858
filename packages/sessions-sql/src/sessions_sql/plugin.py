"""Registers the ``sql`` driver and the ``sessions sql`` commands with core."""

from __future__ import annotations

from typing import Any

from sessions import hookimpl
from sessions.plugins import DriverRegistry


@hookimpl
def sessions_register_drivers(registry: DriverRegistry) -> None:
    """Add the ``sql`` driver (imported only when selected)."""
    registry.add("sql", "sessions_sql.driver:SQLDriver")


@hookimpl
def sessions_register_commands(cli: Any) -> None:
    """Add ``sessions sql ddl`` to the command line."""
    from .cli import sql

    cli.add_command(sql)
