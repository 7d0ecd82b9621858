"""Statements per operation, counted with SQLAlchemy's before_cursor_execute event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from sessions.codec import encode
from sessions.session import Session
from sessions.testing import Harness, new_key
from sessions_sql.driver import SQLDriver

from .conftest import Database, StatementLog

UPSERT = {"sqlite": "ON CONFLICT", "postgresql": "ON CONFLICT", "mysql": "ON DUPLICATE KEY UPDATE"}


def verbs(statements: list[str]) -> list[str]:
    return [s.split(" ", 1)[0].upper() for s in statements]


def harness(db: Database, **options: Any) -> Harness:
    db.table()
    return Harness(SQLDriver, {"url": db.url, **options}, age=600)


def test_one_statement_per_operation(any_db: Database) -> None:
    h = harness(any_db)
    log = StatementLog(h.driver.engine)
    key = new_key()

    h.call("write", key, {"a": 1})
    (upsert,) = log.take()
    assert upsert.upper().startswith("INSERT")
    assert UPSERT[any_db.backend] in upsert.upper()

    h.call("write", key, {"a": 2})
    assert verbs(log.take()) == ["INSERT"]
    assert any_db.row(key).version == 2

    assert h.call("read", key) == {"a": 2}
    assert verbs(log.take()) == ["SELECT"]

    h.call("touch", key)
    assert verbs(log.take()) == ["UPDATE"]

    h.call("destroy", key)
    assert verbs(log.take()) == ["DELETE"]
    assert h.call("read", key) is None
    assert verbs(log.take()) == ["SELECT"]
    assert h.driver.touches_on_read is True


def test_read_refreshes_a_stale_expiry_with_one_more_statement(any_db: Database) -> None:
    h = harness(any_db)
    log = StatementLog(h.driver.engine)
    key = new_key()
    # Written long ago: 10 s left of 600, far more than touch_interval (60 s) spent.
    any_db.put_raw(key, encode({"old": True}), expires_in=10)

    assert h.call("read", key) == {"old": True}
    assert verbs(log.take()) == ["SELECT", "UPDATE"]
    left = any_db.row(key).expires_at.replace(tzinfo=UTC) - datetime.now(UTC)
    assert timedelta(seconds=590) < left <= timedelta(seconds=600)

    # Fresh again: the next read is a single SELECT.
    assert h.call("read", key) == {"old": True}
    assert verbs(log.take()) == ["SELECT"]


def test_touch_interval_zero_reads_and_refreshes_in_one_statement(any_db: Database) -> None:
    h = harness(any_db, touch_interval=0)
    log = StatementLog(h.driver.engine)
    key = new_key()
    any_db.put_raw(key, encode({"a": 1}), expires_in=500)
    assert h.call("read", key) == {"a": 1}
    statements = log.take()
    if any_db.backend == "mysql":
        # MariaDB/MySQL have no UPDATE ... RETURNING: read is a SELECT and core touches.
        assert verbs(statements) == ["SELECT"]
        assert h.driver.touches_on_read is False
    else:
        assert verbs(statements) == ["UPDATE"]
        assert "RETURNING" in statements[0].upper()
        assert h.driver.touches_on_read is True
        left = any_db.row(key).expires_at.replace(tzinfo=UTC) - datetime.now(UTC)
        assert left > timedelta(seconds=590)


def _request(h: Harness, change: dict[str, Any] | None) -> None:
    context = h.context()
    session = Session(h.manager, context)
    session.initiate()
    for key, value in (change or {}).items():
        session.put(key, value)
    session.commit()
    h.finish(context)


@pytest.mark.parametrize("interval", [60, 0])
def test_statements_per_request_through_core(any_db: Database, interval: int) -> None:
    h = harness(any_db, touch_interval=interval)
    log = StatementLog(h.driver.engine)
    _request(h, {"user": "ada"})  # no cookie yet: nothing to read
    assert verbs(log.take()) == ["INSERT"]

    _request(h, None)  # read-only
    read_only = verbs(log.take())
    _request(h, {"n": 1})  # read-write: the read, then one compare-and-set UPDATE
    read_write = log.take()

    if interval == 0 and any_db.backend == "mysql":
        assert read_only == ["SELECT", "UPDATE"]
        assert verbs(read_write) == ["SELECT", "UPDATE"]
    elif interval == 0:
        assert read_only == ["UPDATE"]
        assert verbs(read_write) == ["UPDATE", "UPDATE"]
    else:
        assert read_only == ["SELECT"]
        assert verbs(read_write) == ["SELECT", "UPDATE"]
    cas = read_write[1].lower()
    assert "version" in cas.split(" where ", 1)[1], cas
    assert "expires_at >" in cas.split(" where ", 1)[1], cas


def test_async_statements_per_request(any_db: Database) -> None:
    h_options = {"url": any_db.url}
    any_db.table()

    async def main() -> None:
        h = Harness(SQLDriver, h_options, age=600)
        try:
            engine = await h.driver.aengine()
            assert engine.dialect.is_async
            log = StatementLog(engine.sync_engine)
            for change, expected in (
                ({"user": "ada"}, ["INSERT"]),
                (None, ["SELECT"]),
                ({"n": 1}, ["SELECT", "UPDATE"]),
            ):
                context = h.context()
                session = Session(h.manager, context)
                await session.ainitiate()
                for key, value in (change or {}).items():
                    session.put(key, value)
                await session.acommit()
                h.finish(context)
                assert verbs(log.take()) == expected
            key = new_key()
            await h.acall("destroy", key)
            await h.acall("touch", key)
            assert verbs(log.take()) == ["DELETE", "UPDATE"]
        finally:
            await h.manager.aclose()

    anyio.run(main)


@pytest.mark.parametrize("op", ["read", "read_versioned"])
def test_a_read_told_not_to_touch_never_refreshes(any_db: Database, op: str) -> None:
    # Core passes touch=False when its own touch_interval says no refresh is due.
    h = harness(any_db, touch_interval=0)
    log = StatementLog(h.driver.engine)
    key = new_key()
    any_db.put_raw(key, encode({"a": 1}), expires_in=10)
    before = any_db.row(key).expires_at
    got = h.call(op, key, False)
    assert (got if op == "read" else got.values) == {"a": 1}
    assert verbs(log.take()) == ["SELECT"]
    assert any_db.row(key).expires_at == before

    async def main() -> None:
        h = Harness(SQLDriver, {"url": any_db.url, "touch_interval": 0}, age=600)
        try:
            got = await getattr(h.driver, "a" + op)(key, False)
            assert (got if op == "read" else got.values) == {"a": 1}
            assert any_db.row(key).expires_at == before
            if h.driver.touches_on_read:  # not MariaDB with touch_interval=0: core touches
                await getattr(h.driver, "a" + op)(key)  # the default still refreshes
                assert any_db.row(key).expires_at > before
        finally:
            await h.manager.aclose()

    anyio.run(main)


def test_the_driver_touch_interval_option_is_deprecated_for_the_session_configs(
    sqlite_db: Database,
) -> None:
    sqlite_db.table()
    h = Harness(SQLDriver, {"url": sqlite_db.url, "touch_interval": 5}, age=600)
    with pytest.warns(DeprecationWarning, match=r"SessionConfig\(touch_interval=\.\.\.\)"):
        h.manager.driver  # builds it
    assert h.driver._interval == timedelta(seconds=5)
    # Unset, it follows the session config: core decides when a refresh is due...
    h = Harness(SQLDriver, {"url": sqlite_db.url}, age=600, touch_interval="5m")
    assert h.driver._interval == timedelta(0)
    # ...and without one, refreshes stay throttled to once a minute, as before.
    h = Harness(SQLDriver, {"url": sqlite_db.url}, age=600)
    assert h.driver._interval == timedelta(seconds=60)
