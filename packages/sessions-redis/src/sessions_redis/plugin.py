"""Registers the ``redis`` driver with sessions-core (entry point ``sessions.drivers``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sessions import hookimpl

if TYPE_CHECKING:
    from sessions.plugins import DriverRegistry


@hookimpl
def sessions_register_drivers(registry: DriverRegistry) -> None:
    """Add ``redis``; the driver module (and redis-py) is imported only when selected."""
    registry.add("redis", "sessions_redis.driver:RedisDriver")
