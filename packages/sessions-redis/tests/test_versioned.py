"""Conflict-free commits on Redis (issue #12), against real servers: the record
format and its upgrade from the previous release, the compare-and-set script
(NOSCRIPT fallback, retried writes, fresh versions on plain writes, per-session
TTL), and genuinely overlapping requests on one cookie (one held between its
read and its commit while another commits) on a standalone server, a
Sentinel-managed master and a 3-master Cluster, sync and async, with the
commands each costs."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sessions import Session
from sessions.driver import Record
from sessions.testing import Harness, new_key
from sessions_redis.records import parse
from sessions_redis.scripts import CAS

AGE = 600
# What INFO commandstats shows for one compare-and-set: the EVALSHA, and the
# GETRANGE (the header) and SET it runs inside the server (not round trips).
ONE_WRITE = {"evalsha": 1, "getrange": 1, "set": 1}


def open_session(h: Harness) -> Session:
    """A request carrying the harness's cookie (not yet initiated)."""
    return Session(h.manager, h.context())


def store(h: Harness, values: dict[str, Any]) -> str:
    """Commit ``values`` as a new session; its cookie goes in the jar; returns its key."""
    h.jar.clear()
    context = h.context()
    session = Session(h.manager, context)
    session.initiate()
    for key, value in values.items():
        session.put(key, value)
    session.commit()
    h.finish(context)
    return session.session_id


async def astore(h: Harness, values: dict[str, Any]) -> str:
    h.jar.clear()
    context = h.context()
    session = Session(h.manager, context)
    await session.ainitiate()
    for key, value in values.items():
        session.put(key, value)
    await session.acommit()
    h.finish(context)
    return session.session_id


def read_back(h: Harness) -> Session:
    session = open_session(h)
    session.initiate()
    return session


# -- the record format and the script ------------------------------------------------


def test_record_carries_version_and_tag_header(target: Any) -> None:
    h = target.harness()
    driver = h.driver
    key = new_key()
    driver.write(key, {"user": "ada"})
    untagged = target.raw_get(target.prefix + key)
    assert untagged is not None
    assert untagged.startswith(b"v")
    parsed = parse(untagged)
    assert parsed.tag is None
    assert json.loads(parsed.payload) == {"user": "ada"}
    record = driver.read_versioned(key)
    assert record == Record({"user": "ada"}, parsed.version)
    driver.write(key, {"user": "ada", "__tag__": "user:ä:1"})
    tagged = target.raw_get(target.prefix + key)
    assert tagged is not None
    assert tagged.startswith(b"v%d,9:user:\xc3\xa4:1{" % parse(tagged).version)
    assert parse(tagged).tag == "user:ä:1"
    driver.close()


def test_previous_release_record_reads_as_version_zero_and_upgrades(target: Any) -> None:
    h = target.harness()
    key = new_key()
    # Exactly what the previous release stored: the codec's JSON, no header.
    target.raw_set(target.prefix + key, b'{"user":"ada","n":1}')
    assert h.driver.read(key) == {"user": "ada", "n": 1}
    assert h.driver.read_versioned(key) == Record({"user": "ada", "n": 1}, 0)
    assert h.driver.write_versioned(key, {"user": "ada", "n": 2}, 1) is False
    assert h.driver.write_versioned(key, {"user": "ada", "n": 2}, 0) is True
    upgraded = target.raw_get(target.prefix + key)
    assert upgraded is not None
    assert parse(upgraded).version > 0
    assert h.driver.read(key) == {"user": "ada", "n": 2}
    h.driver.close()


def test_upgrade_logs_nobody_out_through_core(target: Any) -> None:
    h = target.harness()
    key = store(h, {"user": "ada"})
    # The server still holds what the previous release wrote for this cookie.
    target.raw_set(target.prefix + key, b'{"user":"ada","visits":1}')
    session = read_back(h)
    assert session.fresh is False
    assert session.all() == {"user": "ada", "visits": 1}
    session.increment("visits")
    session.commit()
    assert read_back(h).all() == {"user": "ada", "visits": 2}
    h.driver.close()


def test_plain_write_gives_a_new_version_a_concurrent_cas_notices(target: Any) -> None:
    h = target.harness()
    key = new_key()
    h.driver.write(key, {"n": 1})
    first = h.driver.read_versioned(key)
    assert first is not None
    h.driver.write(key, {"n": 1})  # the same values again: still a new version
    second = h.driver.read_versioned(key)
    assert second is not None
    assert second.version != first.version
    assert h.driver.write_versioned(key, {"n": 2}, first.version) is False
    assert h.driver.write_versioned(key, {"n": 2}, second.version) is True
    h.driver.write(key, {})  # a plain write stores even an empty dict (only a CAS of {} deletes)
    assert h.driver.read(key) == {}
    h.driver.close()


def test_writes_use_the_sessions_own_age(target: Any) -> None:
    h = target.harness()
    driver = h.driver
    key, other = new_key(), new_key()
    assert driver.write_versioned(key, {"a": 1, "__age__": 30}, None) is True
    driver.write(other, {"a": 1, "__age__": 45})
    assert 25 <= target.raw_ttl(target.prefix + key) <= 30
    assert 40 <= target.raw_ttl(target.prefix + other) <= 45
    driver.close()


def test_missing_script_falls_back_to_eval(target: Any, tools: Any) -> None:
    h = target.harness()
    key = new_key()
    h.driver.write(key, {"n": 1})
    for admin in target.admins:
        admin.script_flush()
    record = h.driver.read_versioned(key)
    assert record is not None
    tools.reset_stats(*target.servers)
    assert h.driver.write_versioned(key, {"n": 2}, record.version) is True
    counts = tools.command_counts(*target.servers)
    # EVALSHA answered NOSCRIPT (it is counted as a failed call), EVAL ran it.
    assert counts.get("eval") == 1
    assert h.driver.read(key) == {"n": 2}
    tools.reset_stats(*target.servers)
    record = h.driver.read_versioned(key)
    assert record is not None
    assert h.driver.write_versioned(key, {"n": 3}, record.version) is True
    assert "eval" not in tools.command_counts(*target.servers)  # cached by the EVAL
    h.driver.close()


def test_a_write_sent_again_after_a_lost_reply_reports_success(target: Any) -> None:
    # A connection dropped after the server ran the script: the retry (same
    # arguments, same new version) must not look like a conflict, or core
    # would replay this request's increments a second time.
    h = target.harness()
    driver = h.driver
    key = new_key()
    driver.write(key, {"n": 1})
    record = driver.read_versioned(key)
    assert record is not None
    keys, args = driver._cas_call(key, {"n": 2}, str(record.version))
    client = driver._client("write")
    assert CAS.run(client, keys, args) == 1
    assert CAS.run(client, keys, args) == 1
    stale_keys, stale_args = driver._cas_call(key, {"n": 3}, str(record.version))
    assert CAS.run(client, stale_keys, stale_args) == 0
    assert driver.read(key) == {"n": 2}
    driver.close()


def test_empty_values_delete_only_at_the_read_version(target: Any) -> None:
    h = target.harness()
    key = new_key()
    h.driver.write(key, {"n": 1})
    record = h.driver.read_versioned(key)
    assert record is not None
    h.driver.write(key, {"n": 2})
    assert h.driver.write_versioned(key, {}, record.version) is False
    assert h.driver.read(key) == {"n": 2}
    assert h.driver.write_versioned(key, {}, None) is False  # exists: not a "create"
    fresh = h.driver.read_versioned(key)
    assert fresh is not None
    assert h.driver.write_versioned(key, {}, fresh.version) is True
    assert target.raw_get(target.prefix + key) is None
    assert h.driver.write_versioned(new_key(), {}, None) is True  # absent, as expected
    h.driver.close()


def test_unchanged_costs_one_getex_changed_one_script_conflict_one_more_each(
    target: Any, tools: Any
) -> None:
    h = target.harness()
    store(h, {"n": 0})
    read_back(h)  # connections open, slot map known
    tools.reset_stats(*target.servers)
    unchanged = read_back(h)
    unchanged.commit()
    assert tools.command_counts(*target.servers) == {"getex": 1}
    tools.reset_stats(*target.servers)
    changed = read_back(h)
    changed.increment("n")
    changed.commit()
    assert tools.command_counts(*target.servers) == {"getex": 1, **ONE_WRITE}
    slow, fast = read_back(h), read_back(h)
    fast.increment("n")
    fast.commit()
    slow.increment("n", 10)
    tools.reset_stats(*target.servers)
    slow.commit()
    # Refused CAS (EVALSHA, GETRANGE), a re-read (GETEX), the merged CAS (EVALSHA, GETRANGE, SET).
    assert tools.command_counts(*target.servers) == {
        "evalsha": 2,
        "getrange": 2,
        "getex": 1,
        "set": 1,
    }
    assert read_back(h).get("n") == 12
    h.driver.close()


# -- genuine overlap: one request held between its read and its commit -----------

SCENARIOS = ["keys", "increments", "clear", "regenerate", "flash"]


def _act(scenario: str, session: Session, who: str) -> None:
    if scenario == "keys":
        session.put(who, True)
    elif scenario == "increments":
        session.increment("n", 1 if who == "slow" else 10)
    elif scenario == "clear":
        if who == "fast":
            session.clear()  # a logout
        else:
            session.put("cart", 3)
    elif scenario == "regenerate":
        if who == "fast":
            session.regenerate()
            session.put("user", 43)
        else:
            session.put("cart", 3)
    else:
        session.flash(who, f"from {who}")


def _check(scenario: str, h: Harness, old_key: str, target: Any, final: Session) -> None:
    if scenario == "keys":
        assert final.all() == {"user": 42, "n": 0, "slow": True, "fast": True}
    elif scenario == "increments":
        assert final.all() == {"user": 42, "n": 11}
    elif scenario == "clear":
        # The logout stays a logout: the old cookie opens nothing, nothing came back.
        assert final.fresh is True
        assert final.all() == {}
        assert target.raw_get(target.prefix + old_key) is None
    elif scenario == "regenerate":
        # The old id stays dead; the new one has the regenerated session only.
        assert target.raw_get(target.prefix + old_key) is None
        assert final.session_id != old_key
        assert final.all() == {"user": 43, "n": 0}
    else:
        assert final.flash_messages.all() == {"slow": "from slow", "fast": "from fast"}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_overlapping_requests_sync(scenario: str, target: Any) -> None:
    h = target.harness()
    old_key = store(h, {"user": 42, "n": 0})
    slow_context = h.context()
    slow = Session(h.manager, slow_context)
    slow.initiate()  # held here while the fast request runs start to finish
    fast_context = h.context()
    fast = Session(h.manager, fast_context)
    fast.initiate()
    _act(scenario, fast, "fast")
    fast.commit()
    h.finish(fast_context)
    _act(scenario, slow, "slow")
    slow.commit()
    if scenario not in ("clear", "regenerate"):
        h.finish(slow_context)
    _check(scenario, h, old_key, target, read_back(h))
    h.driver.close()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_overlapping_requests_async(scenario: str, target: Any) -> None:
    async def main() -> None:
        h = target.harness("async")
        old_key = await astore(h, {"user": 42, "n": 0})
        slow_context = h.context()
        slow = Session(h.manager, slow_context)
        await slow.ainitiate()
        read = asyncio.Event()
        committed = asyncio.Event()

        async def fast_request() -> None:
            await read.wait()
            context = h.context()
            fast = Session(h.manager, context)
            await fast.ainitiate()
            _act(scenario, fast, "fast")
            await fast.acommit()
            h.finish(context)
            committed.set()

        task = asyncio.create_task(fast_request())
        read.set()
        await committed.wait()  # the slow request is held between read and commit
        _act(scenario, slow, "slow")
        await slow.acommit()
        await task
        if scenario not in ("clear", "regenerate"):
            h.finish(slow_context)
        final = Session(h.manager, h.context())
        await final.ainitiate()
        _check(scenario, h, old_key, target, final)
        await h.manager.driver.aclose()

    asyncio.run(main())


# The 8-client stress (every acknowledged increment and key survives) runs from
# the kit: TestRedisConcurrency* (test_conformance.py) and TestClusterConcurrency*
# (test_cluster.py).


def test_read_without_touch_is_one_get_that_keeps_the_expiry(target: Any, tools: Any) -> None:
    # touch_interval: core reads with touch=False while no refresh is due.
    h = target.harness()
    key = new_key()
    h.driver.write(key, {"n": 1})
    target.raw("EXPIRE", target.prefix + key, 100)
    tools.reset_stats(*target.servers)
    record = h.driver.read_versioned(key, touch=False)
    assert record is not None
    assert record.values == {"n": 1}
    assert h.driver.read(key, touch=False) == {"n": 1}
    assert tools.command_counts(*target.servers) == {"get": 2}
    assert target.raw_ttl(target.prefix + key) <= 100
    assert h.driver.read(key) == {"n": 1}  # the default touches
    assert target.raw_ttl(target.prefix + key) > 100
    h.driver.close()


def test_async_read_without_touch_keeps_the_expiry(target: Any) -> None:
    async def main() -> None:
        h = target.harness("async")
        key = new_key()
        await h.driver.awrite(key, {"n": 1})
        target.raw("EXPIRE", target.prefix + key, 100)
        record = await h.driver.aread_versioned(key, touch=False)
        assert record is not None
        assert await h.driver.aread(key, touch=False) == {"n": 1}
        assert target.raw_ttl(target.prefix + key) <= 100
        assert await h.driver.aread_versioned(key) is not None
        assert target.raw_ttl(target.prefix + key) > 100
        await h.driver.aclose()

    asyncio.run(main())
