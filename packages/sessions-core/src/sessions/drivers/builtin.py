"""Registers core's own drivers through the same hook third-party drivers use."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..plugins import DriverRegistry


@hookimpl
def sessions_register_drivers(registry: DriverRegistry) -> None:
    """Add ``memory`` and ``cookie``."""
    registry.add("memory", "sessions.drivers.memory:MemoryDriver")
    registry.add("cookie", "sessions.drivers.cookie:CookieDriver")
