"""Registers the ``file`` driver with sessions-core (entry point ``sessions.drivers``)."""

from __future__ import annotations

from sessions import hookimpl
from sessions.plugins import DriverRegistry


@hookimpl
def sessions_register_drivers(registry: DriverRegistry) -> None:
    """Add ``file``; the driver module is imported only when it is selected."""
    registry.add("file", "sessions_file.driver:FileDriver")
