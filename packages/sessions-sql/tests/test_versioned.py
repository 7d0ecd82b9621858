"""The compare-and-set write, statement by statement, on each database in both flavours.

The conformance kit checks the contract; these check what is particular to
SQL: expired rows (still in the table until gc) neither match a compare-and-set
nor block a create, the version keeps counting across a replaced row, each
operation is one statement, and each record expires after its own age.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from sessions.codec import encode
from sessions.driver import Record
from sessions.testing import Harness, new_key
from sessions_sql.driver import SQLDriver
from sqlalchemy import update

from .conftest import Database, StatementLog

Call = Callable[..., Awaitable[Any]]


def run(flavour: str, db: Database, body: Callable[[Harness, Call], Awaitable[None]]) -> None:
    """Run ``body`` with the driver's sync or async flavour (``call(op, *args)``)."""
    db.table()

    async def main() -> None:
        h = Harness(SQLDriver, {"url": db.url}, age=600)
        try:
            if flavour == "sync":

                async def call(op: str, *args: Any) -> Any:
                    return h.call(op, *args)

                await body(h, call)
            else:
                # The async methods themselves (aread_versioned, atagged...), on this loop.
                async def acall(op: str, *args: Any) -> Any:
                    return await getattr(h.driver, "a" + op)(*args)

                await body(h, acall)
        finally:
            await h.manager.aclose()

    anyio.run(main)


def expire(db: Database, key: str) -> None:
    """Move a row's expiry into the past, as if its age had passed (gc has not run)."""
    t = db.table()
    with db.engine.begin() as conn:
        conn.execute(
            update(t).where(t.c.key == key).values(expires_at=datetime.now(UTC) - timedelta(1))
        )


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_create_replaces_an_expired_row_and_the_version_keeps_counting(
    any_db: Database, flavour: str
) -> None:
    async def body(h: Harness, call: Call) -> None:
        key = new_key()
        assert await call("write_versioned", key, {"a": 1}, None) is True
        first = await call("read_versioned", key)
        assert await call("write_versioned", key, {"a": 2}, first.version) is True
        expire(any_db, key)
        assert await call("read_versioned", key) is None
        # An expired row is no record: a create replaces it...
        assert await call("write_versioned", key, {"b": 1}, None) is True
        again = await call("read_versioned", key)
        assert again.values == {"b": 1}
        # ...with a version the earlier readers never saw.
        assert again.version > first.version + 1
        assert any_db.row(key).expires_at.replace(tzinfo=UTC) > datetime.now(UTC)

    run(flavour, any_db, body)


def test_an_expired_row_is_never_replaced_or_deleted_by_its_old_version(
    any_db: Database, flavour: str
) -> None:
    async def body(h: Harness, call: Call) -> None:
        key = new_key()
        await call("write_versioned", key, {"user": 42}, None)
        record = await call("read_versioned", key)
        expire(any_db, key)
        assert await call("write_versioned", key, {"user": 42, "x": 1}, record.version) is False
        assert await call("write_versioned", key, {}, record.version) is False
        await call("touch", key)
        row = any_db.row(key)
        assert row.version == record.version, "the expired row was written"
        assert row.expires_at.replace(tzinfo=UTC) < datetime.now(UTC), "the row came back"

    run(flavour, any_db, body)


def test_a_live_row_blocks_a_create_and_the_connection_stays_usable(
    any_db: Database, flavour: str
) -> None:
    # On MariaDB the create is a plain INSERT whose duplicate-key error is caught.
    async def body(h: Harness, call: Call) -> None:
        key = new_key()
        assert await call("write_versioned", key, {"a": 1}, None) is True
        for _ in range(3):
            assert await call("write_versioned", key, {"a": 2}, None) is False
        assert await call("read", key) == {"a": 1}
        assert any_db.row(key).version == 1

    run(flavour, any_db, body)


def test_plain_writes_give_a_new_version(any_db: Database, flavour: str) -> None:
    async def body(h: Harness, call: Call) -> None:
        key = new_key()
        await call("write", key, {"a": 1})
        before = await call("read_versioned", key)
        await call("write", key, {"a": 2})
        assert await call("write_versioned", key, {"a": 3}, before.version) is False
        assert await call("read", key) == {"a": 2}

    run(flavour, any_db, body)


def test_removing_with_no_version_holds_only_when_nothing_is_stored(
    any_db: Database, flavour: str
) -> None:
    async def body(h: Harness, call: Call) -> None:
        key = new_key()
        assert await call("write_versioned", key, {}, None) is True
        await call("write", key, {"a": 1})
        assert await call("write_versioned", key, {}, None) is False
        assert await call("read", key) == {"a": 1}

    run(flavour, any_db, body)


@pytest.mark.parametrize("version", ["1", -1, 1.0, True])
def test_a_version_that_was_not_read_is_refused(sqlite_db: Database, version: Any) -> None:
    async def body(h: Harness, call: Call) -> None:
        with pytest.raises(ValueError, match="versions are the integers read_versioned returns"):
            await call("write_versioned", new_key(), {"a": 1}, version)

    run("sync", sqlite_db, body)


def test_rows_written_by_the_previous_release_read_with_their_version(
    any_db: Database, flavour: str
) -> None:
    # put_raw inserts as release 0.1's upsert did: the version is the column default.
    async def body(h: Harness, call: Call) -> None:
        key = new_key()
        any_db.put_raw(key, encode({"user": 7}))
        record = await call("read_versioned", key)
        assert record == Record({"user": 7}, 1)
        assert await call("write_versioned", key, {"user": 7, "n": 1}, 1) is True
        assert await call("read_versioned", key) == Record({"user": 7, "n": 1}, 2)

    run(flavour, any_db, body)


def test_each_record_expires_after_its_own_age(any_db: Database, flavour: str) -> None:
    async def body(h: Harness, call: Call) -> None:
        long, short, default = new_key(), new_key(), new_key()
        await call("write_versioned", long, {"__age__": 30 * 86400}, None)
        await call("write", short, {"__age__": 5})
        await call("write", default, {"__age__": "bogus"})

        def left(key: str) -> float:
            expires = any_db.row(key).expires_at.replace(tzinfo=UTC)
            return (expires - datetime.now(UTC)).total_seconds()

        assert 30 * 86400 - 10 < left(long) <= 30 * 86400
        assert 0 < left(short) <= 5
        assert 590 < left(default) <= 600
        record = await call("read_versioned", short)
        assert await call("write_versioned", short, {"__age__": 50}, record.version) is True
        assert 40 < left(short) <= 50

    run(flavour, any_db, body)


def test_versioned_operations_are_one_statement_each(any_db: Database) -> None:
    any_db.table()
    h = Harness(SQLDriver, {"url": any_db.url}, age=600)
    log = StatementLog(h.driver.engine)
    key = new_key()
    assert h.call("write_versioned", key, {"a": 1}, None) is True
    (create,) = log.take()
    assert create.upper().startswith("INSERT")
    record = h.call("read_versioned", key)
    (read,) = log.take()
    assert read.upper().startswith("SELECT")
    assert h.call("write_versioned", key, {"a": 2}, record.version) is True
    (cas,) = log.take()
    assert cas.upper().startswith("UPDATE")
    assert h.call("write_versioned", key, {}, record.version + 1) is True
    (delete,) = log.take()
    assert delete.upper().startswith("DELETE")
    where = delete.lower().split(" where ", 1)[1]
    assert "version" in where
    assert "expires_at >" in where
    h.manager.close()


def test_a_retried_compare_and_set_that_had_landed_counts_once(sqlite_db: Database) -> None:
    # The connection dies after the UPDATE committed but before its result came
    # back: the driver retries on a new connection, finds its own version gone,
    # and must recognise its own write instead of reporting a conflict (core
    # would then replay the request's increment a second time).
    import sqlite3

    from sessions.session import Session
    from sqlalchemy import event

    sqlite_db.table()
    h = Harness(SQLDriver, {"url": sqlite_db.url}, age=600)
    context = h.context()
    first = Session(h.manager, context)
    first.initiate()
    first.increment("n")
    first.commit()
    h.finish(context)
    cut = {"armed": True}

    def execute_then_die(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        cursor.execute(statement, parameters)
        if cut["armed"] and statement.lstrip().upper().startswith("UPDATE"):
            cut["armed"] = False
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        return True

    event.listen(h.driver.engine, "do_execute", execute_then_die)
    context = h.context()
    second = Session(h.manager, context)
    second.initiate()
    second.increment("n")
    second.commit()
    h.finish(context)
    assert cut["armed"] is False, "the connection was never cut"
    assert sqlite_db.row(second.session_id).version == 2, "written twice"
    again = Session(h.manager, h.context())
    again.initiate()
    assert again.get("n") == 2, "the retried increment was counted twice (or lost)"
    h.manager.close()
