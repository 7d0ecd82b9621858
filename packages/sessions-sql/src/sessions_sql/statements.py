"""The SQL each operation runs, built once per table and dialect.

Every operation is one statement where the dialect allows it: an upsert
(``ON CONFLICT`` on SQLite and PostgreSQL, ``ON DUPLICATE KEY UPDATE`` on
MariaDB/MySQL), and reading with refreshing the expiry as one
``UPDATE ... RETURNING`` where the dialect has it. Statements use named bind
parameters so SQLAlchemy compiles each one once and reuses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Delete, Select, Table, Update, bindparam, delete, select, update
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.dml import Insert

__all__ = ["Statements"]

MYSQL_FAMILY = ("mysql", "mariadb")


@dataclass(frozen=True)
class Statements:
    """Compiled-once statements for one table on one dialect.

    Bind parameters: ``k`` storage key, ``d`` payload, ``now`` the current
    instant, ``exp`` the new expiry, ``stale`` the expiry below which a read
    refreshes the row.
    """

    select: Select[Any]
    read_refresh: Update | None
    upsert: Insert
    touch: Update
    destroy: Delete
    gc_batch: Delete

    @classmethod
    def build(cls, table: Table, dialect: Dialect, gc_batch_size: int) -> Statements:
        """Statements for ``table`` as ``dialect`` runs them."""
        c = table.c
        alive = (c.key == bindparam("k"), c.expires_at > bindparam("now"))
        select_ = select(c.data, (c.expires_at < bindparam("stale")).label("stale")).where(*alive)
        read_refresh = None
        if dialect.update_returning:
            read_refresh = (
                update(table).where(*alive).values(expires_at=bindparam("exp")).returning(c.data)
            )
        touch = update(table).where(*alive).values(expires_at=bindparam("exp"))
        destroy = delete(table).where(c.key == bindparam("k"))
        return cls(
            select=select_,
            read_refresh=read_refresh,
            upsert=_upsert(table, dialect.name),
            touch=touch,
            destroy=destroy,
            gc_batch=_gc_batch(table, dialect.name, gc_batch_size),
        )


def _upsert(table: Table, dialect: str) -> Insert:
    values: dict[str, Any] = {
        "key": bindparam("k"),
        "data": bindparam("d"),
        "expires_at": bindparam("exp"),
    }
    version = table.c.version + 1
    if dialect in MYSQL_FAMILY:
        my = mysql.insert(table).values(values)
        return my.on_duplicate_key_update(
            data=my.inserted.data, expires_at=my.inserted.expires_at, version=version
        )
    if dialect == "postgresql":
        pg = postgresql.insert(table).values(values)
        return pg.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "data": pg.excluded.data,
                "expires_at": pg.excluded.expires_at,
                "version": version,
            },
        )
    if dialect == "sqlite":
        lite = sqlite.insert(table).values(values)
        return lite.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "data": lite.excluded.data,
                "expires_at": lite.excluded.expires_at,
                "version": version,
            },
        )
    raise ValueError(f"the sql driver has no upsert for dialect {dialect!r}")


def _gc_batch(table: Table, dialect: str, size: int) -> Delete:
    c = table.c
    expired = c.expires_at <= bindparam("now")
    if dialect in MYSQL_FAMILY:
        # MariaDB/MySQL refuse LIMIT inside an IN subquery but take DELETE ... LIMIT.
        return delete(table).where(expired).with_dialect_options(mysql_limit=size)
    victims = select(c.key).where(expired).limit(size)
    if dialect == "postgresql":
        # Rows a request is writing right now are left for the next run.
        victims = victims.with_for_update(skip_locked=True)
    # The outer condition is checked again against a row updated concurrently,
    # so a session written since the subquery ran is not deleted.
    return delete(table).where(expired, c.key.in_(victims))
