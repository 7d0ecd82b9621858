"""File driver for sessions-core: atomic compare-and-set writes, sharded private
directories, expiry by modification time, a tag index, garbage collection.

Select it with ``SessionConfig(driver="file", drivers={"file": {"location": ...}})``.

Names are imported on first use, so loading this package's plugin (which every
application with sessions-file installed does at startup) imports no driver code
unless ``file`` is the selected driver.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .driver import DEFAULT_LOCATION, FileDriver
    from .gc import STALE_TEMP_SECONDS, collect
    from .layout import InvalidSessionIdError, Layout

__all__ = [
    "DEFAULT_LOCATION",
    "STALE_TEMP_SECONDS",
    "FileDriver",
    "InvalidSessionIdError",
    "Layout",
    "collect",
]

_WHERE = {
    "DEFAULT_LOCATION": "driver",
    "FileDriver": "driver",
    "STALE_TEMP_SECONDS": "gc",
    "collect": "gc",
    "InvalidSessionIdError": "layout",
    "Layout": "layout",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'sessions_file' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
