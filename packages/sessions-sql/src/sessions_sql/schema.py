"""The sessions table, as SQLAlchemy ``MetaData``/``Table`` that Alembic can own.

Column types, per dialect, and why:

* ``key``: the 43-character base64url storage key, the primary key. Base64url
  is case-sensitive, so MariaDB/MySQL get ``CHAR(43) CHARACTER SET ascii
  COLLATE ascii_bin`` (their default collations compare case-insensitively and
  would let two keys collide); PostgreSQL gets ``VARCHAR(43) COLLATE "C"``
  (byte-wise, so the b-tree needs no locale rules); SQLite's ``VARCHAR`` already
  compares bytes.
* ``data``: the codec's UTF-8 JSON bytes, stored opaque: ``BYTEA`` on
  PostgreSQL, ``BLOB`` on SQLite and ``LONGBLOB`` on MariaDB/MySQL (plain
  ``BLOB`` stops at 64 KiB there). A JSON column would re-parse on every write
  and could not hold the codec's exact encoding.
* ``expires_at``: an absolute instant, indexed for clean-up. PostgreSQL stores
  ``TIMESTAMP WITH TIME ZONE``; MariaDB/MySQL ``DATETIME(6)`` holding UTC
  (``TIMESTAMP`` would be shifted by the connection's ``time_zone`` and ends in
  2038); SQLite stores ISO-8601 text in UTC, which sorts chronologically. The
  driver only ever binds UTC, so no server or connection time zone matters.
* ``version``: incremented by every write; the compare-and-set write
  (conflict-free commits) only replaces the row when it still carries the
  version its request read.
* ``tag``: the session's tag (usually a user id; ``values["__tag__"]``),
  written with every write and indexed, so one query lists or destroys a
  user's sessions. ``utf8mb4_bin`` on MariaDB/MySQL and ``"C"`` on PostgreSQL:
  tags compare exactly, byte for byte. It replaces the first layout's ``owner``
  column, which was never written (see :mod:`sessions_sql.upgrade`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    TypeDecorator,
)
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.engine import Dialect

__all__ = [
    "DEFAULT_TABLE",
    "TAG_LENGTH",
    "UTCDateTime",
    "make_table",
    "metadata",
    "sessions_table",
]

DEFAULT_TABLE = "sessions"
#: Longest tag the ``tag`` column holds, in characters.
TAG_LENGTH = 255
_IMPORT_SELF = f"__import__({__name__!r}).{__name__.partition('.')[2]}"
_MYSQL = ("mysql", "mariadb")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-safe instant: aware datetimes in, aware UTC datetimes out.

    Naive values are refused rather than guessed at. Dialects without a zoned
    type store the UTC wall-clock time.
    """

    impl = DateTime
    cache_ok = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Alembic's autogenerate writes a type of ours as ``<its __module__>.<repr>``
        # and imports nothing for it: ``sessions_sql.schema.UTCDateTime()`` would be
        # a NameError in the migration. Seen from an instance, the module is an
        # expression that imports it, so the written migration runs as it is.
        self.__module__ = _IMPORT_SELF

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        """``TIMESTAMPTZ`` on PostgreSQL, ``DATETIME(6)`` on MariaDB/MySQL."""
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))
        if dialect.name in _MYSQL:
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC; naive on dialects that have no zoned type."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"expires_at must be timezone-aware, got naive {value!r}")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Always an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def make_table(
    metadata: MetaData | None = None, name: str = DEFAULT_TABLE, schema: str | None = None
) -> Table:
    """The sessions table, added to ``metadata`` (a new ``MetaData`` if omitted).

    Pass your application's ``MetaData`` so Alembic's autogenerate sees the table
    next to your own: ``make_table(Base.metadata)``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"table name must be a non-empty string, got {name!r}")
    target = MetaData() if metadata is None else metadata
    key_type = (
        String(43)
        .with_variant(String(43, collation="C"), "postgresql")
        .with_variant(mysql.CHAR(43, charset="ascii", collation="ascii_bin"), *_MYSQL)
    )
    data_type = LargeBinary().with_variant(mysql.LONGBLOB(), *_MYSQL)
    tag_type = (
        String(TAG_LENGTH)
        .with_variant(String(TAG_LENGTH, collation="C"), "postgresql")
        .with_variant(
            mysql.VARCHAR(TAG_LENGTH, charset="utf8mb4", collation="utf8mb4_bin"), *_MYSQL
        )
    )
    return Table(
        name,
        target,
        Column("key", key_type, primary_key=True),
        Column("data", data_type, nullable=False),
        Column("expires_at", UTCDateTime(), nullable=False),
        Column("version", BigInteger, nullable=False, server_default="1"),
        Column("tag", tag_type, nullable=True),
        Index(f"ix_{name}_expires_at", "expires_at"),
        Index(f"ix_{name}_tag", "tag"),
        schema=schema,
    )


#: A ``MetaData`` holding the default ``sessions`` table, for Alembic's ``target_metadata``.
metadata = MetaData()
#: The default ``sessions`` table.
sessions_table = make_table(metadata)
