"""Upgrading a table made by the previous release: nobody is logged out.

The driver's first layout was ``key, data, expires_at, version, owner`` (the
DDL of ``schema.py`` before tagging, 1eeed8e and earlier, copied in
:func:`first_layout_table`). This release also writes an indexed ``tag`` column.
The driver checks the table at startup: with ``create_table`` off it refuses
to start, saying what to run; with it on it adds the column and index itself.
Either way the rows written before the upgrade keep working.
"""

from __future__ import annotations

import inspect as inspect_module
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from sessions.codec import encode
from sessions.driver import Record
from sessions.errors import DriverError
from sessions.testing import Harness, new_key
from sessions_sql.cli import render_upgrade
from sessions_sql.driver import SQLDriver
from sessions_sql.schema import UTCDateTime
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    inspect,
    text,
)
from sqlalchemy.dialects import mysql

from .conftest import Database

_MYSQL = ("mysql", "mariadb")


def first_layout_table(name: str, *, version: bool = True) -> Table:
    """The table exactly as the first layout's ``make_table`` defined it.

    ``version=False`` drops the version column, as a hand-made table might.
    """
    key_type = (
        String(43)
        .with_variant(String(43, collation="C"), "postgresql")
        .with_variant(mysql.CHAR(43, charset="ascii", collation="ascii_bin"), *_MYSQL)
    )
    data_type = LargeBinary().with_variant(mysql.LONGBLOB(), *_MYSQL)
    columns = [
        Column("key", key_type, primary_key=True),
        Column("data", data_type, nullable=False),
        Column("expires_at", UTCDateTime(), nullable=False),
    ]
    if version:
        columns.append(Column("version", BigInteger, nullable=False, server_default="1"))
    columns.append(Column("owner", String(255), nullable=True))
    return Table(name, MetaData(), *columns, Index(f"ix_{name}_expires_at", "expires_at"))


def old_table(db: Database, *, version: bool = True) -> tuple[str, str]:
    """A first-layout table holding one session written as that release wrote it."""
    name = f"old_{secrets.token_hex(4)}"
    table = first_layout_table(name, version=version)
    table.create(db.engine)
    key = new_key()
    with db.engine.begin() as conn:
        # The earlier upsert named these three columns; version took its default.
        conn.execute(
            table.insert().values(
                key=key,
                data=encode({"user": 42}),
                expires_at=datetime.now(UTC) + timedelta(minutes=10),
            )
        )
    return name, key


async def _maybe_await(result: object) -> object:
    return await result if inspect_module.isawaitable(result) else result


def columns_and_indexes(db: Database, name: str) -> tuple[set[str], set[str]]:
    inspector = inspect(db.engine)
    columns = {c["name"] for c in inspector.get_columns(name)}
    indexes = {str(i["name"]) for i in inspector.get_indexes(name)}
    return columns, indexes


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_without_create_table_startup_says_how_to_upgrade(any_db: Database, flavour: str) -> None:
    name, key = old_table(any_db)
    options = {"url": any_db.url, "table": name, "create_table": False}

    async def main() -> None:
        h = Harness(SQLDriver, options, age=600)
        try:
            read = h.driver.read if flavour == "sync" else h.driver.aread
            with pytest.raises(DriverError) as caught:
                await _maybe_await(read(key))
        finally:
            await h.manager.aclose()
        message = str(caught.value)
        assert "failed to check the table" in message
        assert f"TableOutdatedError: table '{name}' lacks column(s) tag" in message
        assert f"op.add_column('{name}', sa.Column('tag'" in message
        assert f"op.create_index('ix_{name}_tag', '{name}', ['tag'])" in message
        assert "sessions sql ddl --upgrade" in message
        assert f"ALTER TABLE {name} ADD COLUMN tag VARCHAR(255)" in message
        assert "create_table=true" in message

    anyio.run(main)
    # Nothing was changed behind the operator's back.
    assert "tag" not in columns_and_indexes(any_db, name)[0]


def test_the_printed_upgrade_keeps_every_session(any_db: Database, flavour: str) -> None:
    name, key = old_table(any_db)
    upgrade = render_upgrade(any_db.engine.url, name)
    with any_db.engine.begin() as conn:
        for statement in upgrade.split(";"):
            if statement.strip():
                conn.execute(text(statement))
    columns, indexes = columns_and_indexes(any_db, name)
    assert {"tag", "owner", "version"} <= columns
    assert f"ix_{name}_tag" in indexes
    _still_signed_in(any_db, name, key, flavour, create=False)


@pytest.mark.parametrize("version", [True, False], ids=["first layout", "no version column"])
def test_create_table_adds_the_missing_columns_itself(
    any_db: Database, flavour: str, version: bool, caplog: pytest.LogCaptureFixture
) -> None:
    name, key = old_table(any_db, version=version)
    with caplog.at_level(logging.WARNING, logger="sessions_sql"):
        _still_signed_in(any_db, name, key, flavour, create=True)
    columns, indexes = columns_and_indexes(any_db, name)
    assert {"tag", "version"} <= columns
    assert f"ix_{name}_tag" in indexes
    added = "tag" if version else "version, tag"
    assert f"adding column(s) {added} to table {name}" in caplog.text


def _still_signed_in(db: Database, name: str, key: str, flavour: str, *, create: bool) -> None:
    """The earlier session reads, merges and gets tagged through the upgraded driver."""
    options = {"url": db.url, "table": name, "create_table": create}

    async def main() -> None:
        h = Harness(SQLDriver, options, age=600)
        driver = h.driver
        try:
            if flavour == "sync":
                record = driver.read_versioned(key)
                assert record == Record({"user": 42}, 1)
                assert driver.write_versioned(key, {"user": 42, "__tag__": "u42"}, 1) is True
                assert [s.session_id for s in driver.tagged("u42")] == [key]
                assert driver.read_versioned(key).version == 2
            else:
                record = await driver.aread_versioned(key)
                assert record == Record({"user": 42}, 1)
                stored = await driver.awrite_versioned(key, {"user": 42, "__tag__": "u42"}, 1)
                assert stored is True
                assert [s.session_id for s in await driver.atagged("u42")] == [key]
                assert (await driver.aread_versioned(key)).version == 2
        finally:
            await h.manager.aclose()

    anyio.run(main)


def test_a_row_without_a_version_reads_as_version_0(any_db: Database) -> None:
    # A hand-made table whose version column allows NULL.
    name = f"nullable_{secrets.token_hex(4)}"
    table = make_nullable_version_table(name)
    table.create(any_db.engine)
    key = new_key()
    with any_db.engine.begin() as conn:
        conn.execute(
            table.insert().values(
                key=key,
                data=encode({"user": 1}),
                expires_at=datetime.now(UTC) + timedelta(minutes=10),
                version=None,
            )
        )
    h = Harness(SQLDriver, {"url": any_db.url, "table": name}, age=600)
    assert h.call("read_versioned", key) == Record({"user": 1}, 0)
    assert h.call("write_versioned", key, {"user": 1, "n": 1}, 1) is False
    assert h.call("write_versioned", key, {"user": 1, "n": 1}, 0) is True
    assert h.call("read_versioned", key) == Record({"user": 1, "n": 1}, 1)
    h.manager.close()


def make_nullable_version_table(name: str) -> Table:
    table = first_layout_table(name, version=False)
    table.append_column(Column("version", BigInteger, nullable=True))
    table.append_column(Column("tag", String(255), nullable=True))
    return table


def migrate_add_tag(op: Any, table: str = "sessions") -> None:
    """The Alembic migration docs/drivers/sql.md shows (``upgrade()``'s body)."""
    import sqlalchemy as sa
    from sqlalchemy.dialects import mysql

    tag = (
        sa.String(255)
        .with_variant(sa.String(255, collation="C"), "postgresql")
        .with_variant(
            mysql.VARCHAR(255, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
        )
    )
    op.add_column(table, sa.Column("tag", tag, nullable=True))
    op.create_index(f"ix_{table}_tag", table, ["tag"])


def test_the_documented_alembic_migration(any_db: Database) -> None:
    pytest.importorskip("alembic", reason="Alembic is in the dev group")
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    from sessions_sql.schema import make_table

    name, key = old_table(any_db)
    with any_db.engine.begin() as conn:
        # Other tests' tables share the database: compare this one only.
        only = {"include_name": lambda n, kind, _p: kind != "table" or n == name}
        context = MigrationContext.configure(conn, opts=only)
        migrate_add_tag(Operations(context), name)
        # Autogenerate now finds nothing to add: only the unused owner column to drop.
        diff = compare_metadata(context, make_table(MetaData(), name).metadata)
    structural = [d[0] for d in diff if isinstance(d, tuple)]
    assert structural == ["remove_column"], diff
    assert diff[0][3].name == "owner"
    _still_signed_in(any_db, name, key, "sync", create=False)
