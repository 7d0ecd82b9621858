"""Memcached driver for sessions-core, over pymemcache.

Select it with ``SessionConfig(driver="memcached", drivers={"memcached":
{"servers": ["127.0.0.1:11211"]}})``; the driver class is
:class:`sessions_memcached.driver.MemcachedDriver`.
"""

from __future__ import annotations

from .errors import SessionTooLargeError

__all__ = ["SessionTooLargeError"]
