"""Work-arounds for known bugs in the database drivers this package uses."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["repair_aiomysql"]


def repair_aiomysql() -> None:
    """Make aiomysql bind ``bytes`` parameters again under PyMySQL >= 1.2.3.

    aiomysql 0.3.2 calls ``pymysql.converters.escape_bytes_prefixed``, which
    PyMySQL 1.2.3 turned into a placeholder string, so every bytes parameter
    (our session payload) fails with "'str' object is not callable"
    (aio-libs/aiomysql#1080). This installs the one-line function the pending
    upstream fix (aio-libs/aiomysql#1081) defines, and only when the imported
    name is broken.
    """
    module: Any = importlib.import_module("aiomysql.connection")
    if not callable(getattr(module, "escape_bytes_prefixed", None)):
        module.escape_bytes_prefixed = _escape_bytes_prefixed


def _escape_bytes_prefixed(value: bytes, mapping: object = None) -> str:
    return f"_binary X'{value.hex()}'"
