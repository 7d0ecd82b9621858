"""File driver for sessions-core: atomic writes, sharded private directories,
expiry by modification time, garbage collection.

Select it with ``SessionConfig(driver="file", drivers={"file": {"location": ...}})``.
"""

from __future__ import annotations

from .driver import DEFAULT_LOCATION, FileDriver
from .gc import GRACE_SECONDS, STALE_TEMP_SECONDS, collect
from .layout import InvalidSessionIdError, Layout

__all__ = [
    "DEFAULT_LOCATION",
    "GRACE_SECONDS",
    "STALE_TEMP_SECONDS",
    "FileDriver",
    "InvalidSessionIdError",
    "Layout",
    "collect",
]
