"""SQLAlchemy driver for sessions: SQLite, PostgreSQL, MariaDB/MySQL, sync and async.

Select it with ``driver="sql"`` and ``drivers={"sql": {"url": ...}}``. The table
is :data:`sessions_table` in :data:`metadata` (or :func:`make_table` on your own
``MetaData``), so Alembic can own its migrations.

SQLAlchemy is imported only when one of these names is first used (or the
driver is selected), so discovering installed drivers stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .schema import make_table, metadata, sessions_table

__all__ = ["make_table", "metadata", "sessions_table"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import schema

        return getattr(schema, name)
    raise AttributeError(f"module 'sessions_sql' has no attribute {name!r}")
