"""The SQL each operation runs, built once per table and dialect.

Every operation is one statement where the dialect allows it: an upsert
(``ON CONFLICT`` on SQLite and PostgreSQL, ``ON DUPLICATE KEY UPDATE`` on
MariaDB/MySQL), and reading with refreshing the expiry as one
``UPDATE ... RETURNING`` where the dialect has it. Statements use named bind
parameters so SQLAlchemy compiles each one once and reuses it.

The compare-and-set write is one conditional statement whose row count says
whether it applied: ``UPDATE ... WHERE key = :k AND version = :v AND
expires_at > :now`` for a session that was read, and, for a new one, an insert
that leaves a live row alone but replaces an expired one (``ON CONFLICT DO
UPDATE ... WHERE expires_at <= :now`` on SQLite and PostgreSQL; on
MariaDB/MySQL, whose ``ON DUPLICATE KEY UPDATE`` reports a skipped row and an
insert alike, a plain ``INSERT`` whose duplicate-key error is followed by
:attr:`Statements.replace_expired`). The database checks and writes in one
statement, so the step is atomic for every process and server.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Delete,
    Select,
    Table,
    Update,
    bindparam,
    delete,
    false,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import BindParameter

__all__ = ["Statements"]

MYSQL_FAMILY = ("mysql", "mariadb")


@dataclass(frozen=True)
class Statements:
    """Compiled-once statements for one table on one dialect.

    Bind parameters: ``k`` storage key, ``d`` payload, ``now`` the current
    instant, ``exp`` the new expiry, ``stale`` the expiry below which a read
    refreshes the row, ``v`` the version a compare-and-set expects, ``tag``
    the session's tag (or NULL), ``keep`` a key ``destroy_tagged`` spares.

    Reads return the version as ``COALESCE(version, 0)``: a row without one
    (a hand-made table whose column allows NULL) reads as version 0, and a
    compare-and-set against 0 replaces it.
    """

    select: Select[Any]
    read_refresh: Update | None
    upsert: Insert
    touch: Update
    destroy: Delete
    gc_batch: Delete
    #: Compare-and-set replace of a live row still at version ``v``.
    cas_update: Update
    #: Compare-and-set delete of a live row still at version ``v``.
    cas_delete: Delete
    #: Insert a new row; on SQLite/PostgreSQL also replaces an expired one.
    create: Insert
    #: MariaDB/MySQL: after ``create`` hit a duplicate key, replace the row if expired.
    replace_expired: Update | None
    #: The row's data and expiry, without refreshing it (``peek``).
    peek: Select[Any]
    #: The live row's data and version: did a retried compare-and-set land the first time?
    current: Select[Any]
    #: Every live row of one tag: key, data, expiry.
    tagged: Select[Any]
    #: Delete every live row of one tag but ``keep``.
    destroy_tagged: Delete
    #: Every column, no rows: fails when the table lacks one (checked at startup).
    probe: Select[Any]

    @classmethod
    def build(cls, table: Table, dialect: Dialect, gc_batch_size: int) -> Statements:
        """Statements for ``table`` as ``dialect`` runs them."""
        c = table.c
        now: BindParameter[datetime] = bindparam("now")
        alive = (c.key == bindparam("k"), c.expires_at > now)
        version = _version(table)
        select_ = select(c.data, (c.expires_at < bindparam("stale")).label("stale"), version).where(
            *alive
        )
        read_refresh = None
        if dialect.update_returning:
            read_refresh = (
                update(table)
                .where(*alive)
                .values(expires_at=bindparam("exp"))
                .returning(c.data, version)
            )
        touch = update(table).where(*alive).values(expires_at=bindparam("exp"))
        destroy = delete(table).where(c.key == bindparam("k"))
        same_version = version == bindparam("v")
        replace = {
            "data": bindparam("d"),
            "version": version + 1,
            "expires_at": bindparam("exp"),
            "tag": bindparam("tag"),
        }
        mysql_family = dialect.name in MYSQL_FAMILY
        replace_expired = None
        if mysql_family:
            replace_expired = (
                update(table).where(c.key == bindparam("k"), c.expires_at <= now).values(replace)
            )
        live_tag = (c.tag == bindparam("tag"), c.expires_at > now)
        return cls(
            select=select_,
            read_refresh=read_refresh,
            upsert=_upsert(table, dialect.name),
            touch=touch,
            destroy=destroy,
            gc_batch=_gc_batch(table, dialect.name, gc_batch_size),
            cas_update=update(table).where(*alive, same_version).values(replace),
            cas_delete=delete(table).where(*alive, same_version),
            # Row counts of INSERTs are kept only when asked for (psycopg drops them).
            create=_create(table, dialect.name).execution_options(preserve_rowcount=True),
            replace_expired=replace_expired,
            peek=select(c.data, c.expires_at).where(*alive),
            current=select(c.data, version).where(*alive),
            tagged=select(c.key, c.data, c.expires_at).where(*live_tag),
            destroy_tagged=delete(table).where(*live_tag, c.key != bindparam("keep")),
            probe=select(*c).where(false()),
        )


def _version(table: Table) -> ColumnElement[int]:
    return func.coalesce(table.c.version, 0)


def _new_row() -> dict[str, Any]:
    return {
        "key": bindparam("k"),
        "data": bindparam("d"),
        "expires_at": bindparam("exp"),
        "version": 1,
        "tag": bindparam("tag"),
    }


def _create(table: Table, dialect: str) -> Insert:
    if dialect in MYSQL_FAMILY:
        return insert(table).values(_new_row())
    # Only an expired row is replaced: the version keeps counting up, so a
    # request that read the row before it expired cannot match it again.
    expired = table.c.expires_at <= bindparam("now")
    if dialect == "postgresql":
        pg = postgresql.insert(table).values(_new_row())
        return pg.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "data": pg.excluded.data,
                "version": _version(table) + 1,
                "expires_at": pg.excluded.expires_at,
                "tag": pg.excluded.tag,
            },
            where=expired,
        )
    if dialect == "sqlite":
        lite = sqlite.insert(table).values(_new_row())
        return lite.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "data": lite.excluded.data,
                "version": _version(table) + 1,
                "expires_at": lite.excluded.expires_at,
                "tag": lite.excluded.tag,
            },
            where=expired,
        )
    raise ValueError(f"the sql driver has no conditional insert for dialect {dialect!r}")


def _upsert(table: Table, dialect: str) -> Insert:
    values: dict[str, Any] = {
        "key": bindparam("k"),
        "data": bindparam("d"),
        "expires_at": bindparam("exp"),
        "tag": bindparam("tag"),
    }
    version = _version(table) + 1
    if dialect in MYSQL_FAMILY:
        my = mysql.insert(table).values(values)
        return my.on_duplicate_key_update(
            data=my.inserted.data,
            expires_at=my.inserted.expires_at,
            version=version,
            tag=my.inserted.tag,
        )
    if dialect == "postgresql":
        pg = postgresql.insert(table).values(values)
        return pg.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "data": pg.excluded.data,
                "expires_at": pg.excluded.expires_at,
                "version": version,
                "tag": pg.excluded.tag,
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
                "tag": lite.excluded.tag,
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
