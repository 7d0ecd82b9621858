"""Registers the ``memcached`` driver with sessions-core."""

from __future__ import annotations

from sessions import hookimpl
from sessions.plugins import DriverRegistry


@hookimpl
def sessions_register_drivers(registry: DriverRegistry) -> None:
    """Add ``memcached``; the driver module is imported only when it is selected."""
    registry.add("memcached", "sessions_memcached.driver:MemcachedDriver")
