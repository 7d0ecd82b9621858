"""sessions-redis: the Redis driver for sessions-core.

Select it with ``driver="redis"`` (or ``SESSION_DRIVER=redis``); options go in
``drivers={"redis": {"url": ..., "key_prefix": ...}}``. The driver class is
:class:`sessions_redis.driver.RedisDriver`, imported lazily so that installing
this package costs nothing until the driver is selected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .driver import RedisDriver

__all__ = ["RedisDriver"]


def __getattr__(name: str) -> Any:
    if name == "RedisDriver":
        from .driver import RedisDriver

        return RedisDriver
    raise AttributeError(f"module 'sessions_redis' has no attribute {name!r}")
