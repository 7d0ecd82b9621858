"""SQLAlchemy driver for sessions: SQLite, PostgreSQL, MariaDB/MySQL, sync and async.

Select it with ``driver="sql"`` and ``drivers={"sql": {"url": ...}}``. The table
is :data:`sessions_table` in :data:`metadata` (or :func:`make_table` on your own
``MetaData``), so Alembic can own its migrations.
"""

from .schema import make_table, metadata, sessions_table

__all__ = ["make_table", "metadata", "sessions_table"]
