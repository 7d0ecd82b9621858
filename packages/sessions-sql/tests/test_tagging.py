"""The tagging capability on each database, sync and async: the ``tag`` column is
written from ``values["__tag__"]`` on every write, and one statement lists,
peeks at or destroys sessions."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from sessions.codec import encode
from sessions.driver import StoredSession
from sessions.testing import Harness, new_key
from sessions_sql.driver import SQLDriver
from sqlalchemy import update

from .conftest import Database, StatementLog
from .test_versioned import Call, expire, run


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def ids(listed: list[StoredSession]) -> set[str]:
    return {s.session_id for s in listed}


def test_tagged_lists_the_live_sessions_of_a_tag_with_values_and_expiry(
    any_db: Database, flavour: str
) -> None:
    async def body(h: Harness, call: Call) -> None:
        tag = f"user-{new_key()[:8]}"
        one, two, other, untagged = new_key(), new_key(), new_key(), new_key()
        await call("write", one, {"__tag__": tag, "a": 1})
        await call("write_versioned", two, {"__tag__": tag, "__age__": 86400}, None)
        await call("write", other, {"__tag__": tag + "x"})
        await call("write", untagged, {"a": 1})
        listed = await call("tagged", tag)
        assert ids(listed) == {one, two}
        by_id = {s.session_id: s for s in listed}
        assert by_id[one].values == {"__tag__": tag, "a": 1}
        now = time.time()
        assert now + 590 < by_id[one].expires_at <= now + 600
        assert now + 86390 < by_id[two].expires_at <= now + 86400
        assert all(isinstance(s, StoredSession) for s in listed)
        assert any_db.row(one).tag == tag
        assert any_db.row(untagged).tag is None

    run(flavour, any_db, body)


def test_expired_destroyed_retagged_and_untagged_sessions_are_not_listed(
    any_db: Database, flavour: str
) -> None:
    async def body(h: Harness, call: Call) -> None:
        tag = f"user-{new_key()[:8]}"
        keys = [new_key() for _ in range(5)]
        live, expired, destroyed, retagged, untagged = keys
        for key in keys:
            await call("write_versioned", key, {"__tag__": tag}, None)
        expire(any_db, expired)
        await call("destroy", destroyed)
        record = await call("read_versioned", retagged)
        await call("write_versioned", retagged, {"__tag__": tag + "-else"}, record.version)
        await call("write", untagged, {"a": 1})
        assert ids(await call("tagged", tag)) == {live}
        assert ids(await call("tagged", tag + "-else")) == {retagged}

    run(flavour, any_db, body)


def test_regenerate_moves_the_tag_to_the_new_id(any_db: Database, flavour: str) -> None:
    # What core does on regenerate: write the values (tag included) under the
    # new id, destroy the old one.
    async def body(h: Harness, call: Call) -> None:
        tag = f"user-{new_key()[:8]}"
        old, new = new_key(), new_key()
        await call("write_versioned", old, {"__tag__": tag, "n": 1}, None)
        await call("write_versioned", new, {"__tag__": tag, "n": 1}, None)
        await call("destroy", old)
        assert ids(await call("tagged", tag)) == {new}

    run(flavour, any_db, body)


def test_destroy_tagged_keeps_one_and_counts_the_live_ones(any_db: Database, flavour: str) -> None:
    async def body(h: Harness, call: Call) -> None:
        tag = f"user-{new_key()[:8]}"
        keep, a, b, expired, stranger = (new_key() for _ in range(5))
        for key in (keep, a, b, expired):
            await call("write", key, {"__tag__": tag})
        await call("write", stranger, {"__tag__": tag + "-stranger"})
        expire(any_db, expired)
        assert await call("destroy_tagged", tag, keep) == 2
        assert await call("read", a) is None
        assert await call("read", b) is None
        assert await call("read", keep) == {"__tag__": tag}
        assert ids(await call("tagged", tag)) == {keep}
        assert ids(await call("tagged", tag + "-stranger")) == {stranger}
        # Without keep, every one goes; a tag with nothing live destroys nothing.
        assert await call("destroy_tagged", tag) == 1
        assert await call("read", keep) is None
        assert await call("destroy_tagged", tag) == 0

    run(flavour, any_db, body)


def test_peek_reads_without_refreshing(any_db: Database, flavour: str) -> None:
    async def body(h: Harness, call: Call) -> None:
        key = new_key()
        await call("write", key, {"__tag__": "t", "a": 1})
        soon = datetime.now(UTC) + timedelta(seconds=30)
        t = any_db.table()
        with any_db.engine.begin() as conn:
            conn.execute(update(t).where(t.c.key == key).values(expires_at=soon))
        peeked = await call("peek", key)
        assert peeked.session_id == key
        assert peeked.values == {"__tag__": "t", "a": 1}
        assert abs(peeked.expires_at - soon.timestamp()) < 0.01
        stored = any_db.row(key).expires_at.replace(tzinfo=UTC)
        assert abs(stored - soon) < timedelta(milliseconds=1), "peek refreshed the expiry"
        # A read refreshes it (the expiry is well past touch_interval): peek did not.
        await call("read", key)
        assert any_db.row(key).expires_at.replace(tzinfo=UTC) > soon + timedelta(seconds=500)
        expire(any_db, key)
        assert await call("peek", key) is None
        assert await call("peek", new_key()) is None
        assert await call("peek", "not a storage key") is None

    run(flavour, any_db, body)


def test_tag_changes_follow_every_write(any_db: Database, flavour: str) -> None:
    async def body(h: Harness, call: Call) -> None:
        key = new_key()
        await call("write", key, {"__tag__": "a"})
        assert any_db.row(key).tag == "a"
        await call("write", key, {"__tag__": "b"})
        assert any_db.row(key).tag == "b"
        record = await call("read_versioned", key)
        await call("write_versioned", key, {"x": 1}, record.version)
        assert any_db.row(key).tag is None
        unicode = f"ü ✓ Ünïcode {key}"
        await call("write_versioned", key, {"__tag__": unicode}, record.version + 1)
        assert ids(await call("tagged", unicode)) == {key}
        # Tags compare exactly: another case is another tag.
        assert await call("tagged", unicode.upper()) == []

    run(flavour, any_db, body)


@pytest.mark.parametrize("tag", ["", None, 7])
def test_a_bad_tag_is_refused_clearly(sqlite_db: Database, tag: Any) -> None:
    async def body(h: Harness, call: Call) -> None:
        with pytest.raises(ValueError, match="a tag is a non-empty string"):
            await call("tagged", tag)
        with pytest.raises(ValueError, match="a tag is a non-empty string"):
            await call("destroy_tagged", tag)

    run("sync", sqlite_db, body)


def test_a_tag_longer_than_the_column_is_refused_before_writing(sqlite_db: Database) -> None:
    async def body(h: Harness, call: Call) -> None:
        key = new_key()
        with pytest.raises(ValueError, match=r"its tag is 256 characters long.*up to 255"):
            await call("write", key, {"__tag__": "x" * 256})
        await call("write", key, {"__tag__": "x" * 255})
        assert ids(await call("tagged", "x" * 255)) == {key}

    run("sync", sqlite_db, body)


def test_one_statement_each_for_a_thousand_sessions(any_db: Database) -> None:
    any_db.table()
    h = Harness(SQLDriver, {"url": any_db.url}, age=600)
    tag = f"user-{new_key()[:8]}"
    keys = [new_key() for _ in range(1000)]
    t = any_db.table()
    expires = datetime.now(UTC) + timedelta(seconds=600)
    rows = [
        {"key": k, "data": encode({"__tag__": tag}), "expires_at": expires, "tag": tag}
        for k in keys
    ]
    with any_db.engine.begin() as conn:  # one batch: the test is about reading them
        conn.execute(t.insert(), rows)
    log = StatementLog(h.driver.engine)
    assert len(h.call("tagged", tag)) == 1000
    assert [s.split(" ", 1)[0].upper() for s in log.take()] == ["SELECT"]
    assert h.call("peek", keys[0]) is not None
    assert [s.split(" ", 1)[0].upper() for s in log.take()] == ["SELECT"]
    assert h.call("destroy_tagged", tag, keys[0]) == 999
    assert [s.split(" ", 1)[0].upper() for s in log.take()] == ["DELETE"]
    h.manager.close()


def test_async_statements_for_tagging(any_db: Database) -> None:
    any_db.table()

    async def main() -> None:
        h = Harness(SQLDriver, {"url": any_db.url}, age=600)
        try:
            engine = await h.driver.aengine()
            log = StatementLog(engine.sync_engine)
            key = new_key()
            await h.acall("write", key, {"__tag__": key})
            log.take()
            driver = h.driver
            assert ids(await driver.atagged(key)) == {key}
            assert (await driver.apeek(key)).values == {"__tag__": key}
            assert await driver.adestroy_tagged(key) == 1
            verbs = [s.split(" ", 1)[0].upper() for s in log.take()]
            assert verbs == ["SELECT", "SELECT", "DELETE"]
        finally:
            await h.manager.aclose()

    anyio.run(main)
