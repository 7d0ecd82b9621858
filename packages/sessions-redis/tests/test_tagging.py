"""Tagging on Redis (issue #13), against a standalone server, a Sentinel-managed
master and a 3-master Cluster, sync and async: a set per tag, listed and
destroyed in one round trip per slot, stale members pruned when listed, and no
extra round trip for writes that keep their tag."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from redis.cluster import key_slot
from sessions import Session
from sessions.driver import StoredSession
from sessions.testing import new_key
from sessions_redis.driver import RedisDriver
from sessions_redis.tags import tagged_plan

AGE = 600


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Calls:
    """Driver operations in one flavour: ``calls.tagged(tag)`` runs ``tagged``, or
    ``atagged`` on one event loop kept for the whole test (a blocking portal)."""

    def __init__(self, driver: RedisDriver, portal: BlockingPortal | None) -> None:
        self.driver = driver
        self.portal = portal

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if self.portal is None:
            return getattr(self.driver, name)  # type: ignore[no-any-return]
        method = getattr(self.driver, "a" + name)
        portal = self.portal
        return lambda *args: portal.call(method, *args)


@pytest.fixture
def calls(target: Any, flavour: str) -> Iterator[Calls]:
    driver = target.harness(flavour).driver
    if flavour == "sync":
        yield Calls(driver, None)
        driver.close()
        return
    with start_blocking_portal("asyncio") as portal:
        yield Calls(driver, portal)
        portal.call(driver.aclose)


def members(target: Any, tag: str) -> set[str]:
    return {m.decode() for m in target.raw("SMEMBERS", f"{target.prefix}tag:{tag}")}


def ids(found: list[StoredSession]) -> set[str]:
    return {s.session_id for s in found}


def test_lists_the_live_sessions_of_a_tag_with_values_and_expiry(target: Any, calls: Calls) -> None:
    ada = [new_key() for _ in range(3)]
    for i, key in enumerate(ada):
        assert calls.write_versioned(key, {"__tag__": "ada", "i": i}, None) is True
    other, untagged = new_key(), new_key()
    calls.write(other, {"__tag__": "bob"})
    calls.write(untagged, {"x": 1})
    before = time.time()
    found = calls.tagged("ada")
    assert ids(found) == set(ada)
    for stored in found:
        assert stored.values == {"__tag__": "ada", "i": ada.index(stored.session_id)}
        assert before + AGE - 5 <= stored.expires_at <= time.time() + AGE + 1
    assert ids(calls.tagged("bob")) == {other}
    assert calls.tagged("nobody") == []


def test_expired_destroyed_retagged_and_untagged_sessions_are_not_listed_and_pruned(
    target: Any, calls: Calls
) -> None:
    keys = {name: new_key() for name in ("live", "expired", "destroyed", "retagged", "untagged")}
    for name, key in keys.items():
        calls.write(key, {"__tag__": "ada", "name": name})
    target.raw("PEXPIRE", target.prefix + keys["expired"], 1)
    calls.destroy(keys["destroyed"])
    record = calls.read_versioned(keys["retagged"])
    assert calls.write_versioned(keys["retagged"], {"__tag__": "bob"}, record.version) is True
    calls.write(keys["untagged"], {"name": "untagged"})
    time.sleep(0.01)
    assert members(target, "ada") == set(keys.values())
    assert ids(calls.tagged("ada")) == {keys["live"]}
    assert members(target, "ada") == {keys["live"]}  # pruned while listing
    assert ids(calls.tagged("bob")) == {keys["retagged"]}


def test_long_tags_and_large_sessions(target: Any, calls: Calls) -> None:
    # The scripts read a record's first 300 bytes for its header; a longer tag
    # needs a second read, and must compare exactly all the same.
    long_tag = "u" * 299 + "é" * 200
    other = long_tag[:-1] + "x"
    key, big = new_key(), new_key()
    blob = "x" * 200_000
    assert calls.write_versioned(key, {"__tag__": long_tag, "blob": blob}, None) is True
    calls.write(big, {"__tag__": other})
    record = calls.read_versioned(key)
    assert record.values["blob"] == blob
    assert calls.write_versioned(key, {"__tag__": long_tag, "n": 1}, record.version) is True
    assert members(target, long_tag) == {key}
    assert ids(calls.tagged(long_tag)) == {key}
    assert ids(calls.tagged(other)) == {big}
    assert calls.destroy_tagged(other) == 1
    assert calls.read(key) == {"__tag__": long_tag, "n": 1}


def test_own_age_sets_the_ttl_and_expiry_of_listed_sessions(target: Any, calls: Calls) -> None:
    key = new_key()
    calls.write_versioned(key, {"__tag__": "ada", "__age__": 30}, None)
    (stored,) = calls.tagged("ada")
    assert time.time() + 25 <= stored.expires_at <= time.time() + 31
    assert 25 <= target.raw_ttl(target.prefix + key) <= 30


def test_peek_reads_without_refreshing_the_expiry(target: Any, calls: Calls) -> None:
    key = new_key()
    calls.write(key, {"__tag__": "ada", "n": 1})
    target.raw("EXPIRE", target.prefix + key, 100)
    stored = calls.peek(key)
    assert stored is not None
    assert stored.session_id == key
    assert stored.values == {"__tag__": "ada", "n": 1}
    assert time.time() + 95 <= stored.expires_at <= time.time() + 101
    assert target.raw_ttl(target.prefix + key) <= 100
    assert calls.peek(new_key()) is None
    target.raw_set(target.prefix + key, b"\x80 not a record")
    assert calls.peek(key) is None


def test_destroy_tagged_keeps_one_and_leaves_other_tags_alone(target: Any, calls: Calls) -> None:
    ada = [new_key() for _ in range(4)]
    for key in ada:
        calls.write(key, {"__tag__": "ada"})
    bob = new_key()
    calls.write(bob, {"__tag__": "bob"})
    moved = ada[3]
    calls.write(moved, {"__tag__": "bob"})  # re-tagged: still in ada's set, but not ada's
    assert calls.destroy_tagged("ada", ada[0]) == 2
    assert calls.read(ada[0]) == {"__tag__": "ada"}
    assert calls.read(ada[1]) is None
    assert calls.read(ada[2]) is None
    assert calls.read(moved) == {"__tag__": "bob"}
    assert ids(calls.tagged("ada")) == {ada[0]}
    assert members(target, "ada") == {ada[0]}
    assert ids(calls.tagged("bob")) == {bob, moved}
    assert calls.destroy_tagged("bob") == 2
    assert calls.tagged("bob") == []
    assert calls.destroy_tagged("nobody") == 0


def test_write_that_keeps_its_tag_costs_no_extra_command(
    target: Any, calls: Calls, tools: Any
) -> None:
    key = new_key()
    calls.write_versioned(key, {"__tag__": "ada", "n": 0}, None)
    record = calls.read_versioned(key)
    tools.reset_stats(*target.servers)
    assert calls.write_versioned(key, {"__tag__": "ada", "n": 1}, record.version) is True
    assert tools.command_counts(*target.servers) == {"evalsha": 1, "getrange": 1, "set": 1}
    record = calls.read_versioned(key)
    calls.tagged("bob")  # connections to the nodes of bob's set are open (HELLO not counted)
    tools.reset_stats(*target.servers)
    assert calls.write_versioned(key, {"__tag__": "bob", "n": 2}, record.version) is True
    counts = tools.command_counts(*target.servers)
    # The tag changed: the new set gets the member, inside the script off
    # Cluster, by one follow-up SADD on Cluster (the set is on another slot).
    assert counts == {"evalsha": 1, "getrange": 1, "set": 1, "sadd": 1}
    assert ids(calls.tagged("bob")) == {key}


def test_listing_and_destroying_are_one_script_off_cluster(
    target: Any, calls: Calls, tools: Any
) -> None:
    if target.name == "cluster":
        pytest.skip("Cluster: see test_three_slots_one_tag_on_cluster")
    keys = [new_key() for _ in range(20)]
    for key in keys:
        calls.write(key, {"__tag__": "ada"})
    tools.reset_stats(*target.servers)
    assert ids(calls.tagged("ada")) == set(keys)
    counts = tools.command_counts(*target.servers)
    # One round trip: the EVALSHA; SMEMBERS, GET and PTTL run inside it.
    assert counts == {"evalsha": 1, "smembers": 1, "get": 20, "pttl": 20}
    tools.reset_stats(*target.servers)
    assert calls.destroy_tagged("ada") == 20
    counts = tools.command_counts(*target.servers)
    assert counts == {"evalsha": 1, "smembers": 1, "get": 20, "del": 20, "srem": 1}


def _keys_on_distinct_nodes(target: Any, n: int) -> list[str]:
    """Session keys whose slots belong to ``n`` different cluster nodes."""
    owners: dict[int, str] = {}
    slots_of = target.admins[0].execute_command("CLUSTER", "SLOTS")
    ranges = [(int(r[0]), int(r[1]), int(r[2][1])) for r in slots_of]
    while len(owners) < n:
        key = new_key()
        slot = key_slot((target.prefix + key).encode())
        port = next(p for lo, hi, p in ranges if lo <= slot <= hi)
        owners.setdefault(port, key)
    return list(owners.values())


def test_three_slots_one_tag_on_cluster(target: Any, calls: Calls, tools: Any) -> None:
    if target.name != "cluster":
        pytest.skip("Cluster only")
    keys = _keys_on_distinct_nodes(target, 3)
    assert len({key_slot((target.prefix + k).encode()) for k in keys}) == 3
    for key in keys:
        assert calls.write_versioned(key, {"__tag__": "ada", "k": key}, None) is True
    assert members(target, "ada") == set(keys)
    tools.reset_stats(*target.servers)
    found = calls.tagged("ada")
    assert {s.session_id: s.values["k"] for s in found} == {k: k for k in keys}
    # SMEMBERS on the set's node, then one pipeline: GET and PTTL per session,
    # grouped per node and sent to the three nodes at once. Nothing stale: no SREM.
    assert tools.command_counts(*target.servers) == {"smembers": 1, "get": 3, "pttl": 3}
    # Every node has run the script once (other tests flush the script caches).
    for key in _keys_on_distinct_nodes(target, 3):
        calls.write(key, {"__tag__": "warm-up"})
    assert calls.destroy_tagged("warm-up") == 3
    tools.reset_stats(*target.servers)
    assert calls.destroy_tagged("ada", keys[0]) == 2
    counts = tools.command_counts(*target.servers)
    assert counts == {"smembers": 1, "evalsha": 2, "getrange": 2, "del": 2, "srem": 1}
    assert ids(calls.tagged("ada")) == {keys[0]}
    assert calls.read(keys[1]) is None


def test_cluster_destroy_tagged_after_script_flush_falls_back_to_eval(
    target: Any, calls: Calls
) -> None:
    if target.name != "cluster":
        pytest.skip("Cluster only: the per-session scripts run in a pipeline there")
    keys = _keys_on_distinct_nodes(target, 3)
    for key in keys:
        calls.write(key, {"__tag__": "ada"})
    for admin in target.admins:
        admin.script_flush()
    assert calls.destroy_tagged("ada") == 3
    assert all(calls.read(key) is None for key in keys)


def test_cluster_prune_never_drops_a_session_tagged_again_meanwhile(target: Any) -> None:
    # The set and the sessions are on different slots, so pruning is not one
    # atomic step. Step the listing by hand and re-tag a stale member with
    # this tag between its check and its SREM: it must stay in the set.
    if target.name != "cluster":
        pytest.skip("Cluster only: off Cluster the whole listing is one script")
    driver = target.harness().driver
    stale, live = new_key(), new_key()
    driver.write(stale, {"__tag__": "ada"})
    driver.write(live, {"__tag__": "ada"})
    driver.write(stale, {"__tag__": "bob"})
    client = driver._client("tagged")
    plan = tagged_plan(target.prefix, driver.tag_key("ada"), "ada", True, driver._decoded, AGE)
    step = next(plan)
    while True:
        if step[0] == "command" and step[1][0] == "SREM":
            # A request tags it "ada" again: its script stores the record and
            # its SADD lands before our SREM.
            record = driver.read_versioned(stale)
            assert driver.write_versioned(stale, {"__tag__": "ada"}, record.version) is True
        if step[0] == "command":
            reply = client.execute_command(*step[1])
        else:
            pipe = client.pipeline()
            for command in step[1]:
                pipe.execute_command(*command)
            reply = pipe.execute(raise_on_error=False)
        try:
            step = plan.send(reply)
        except StopIteration as done:
            listed = done.value
            break
    assert ids(listed) == {live}  # it was not "ada" when listed
    assert members(target, "ada") == {stale, live}
    assert ids(driver.tagged("ada")) == {stale, live}
    driver.close()


# -- through core ---------------------------------------------------------------------


def test_through_core_tag_regenerate_untag_and_sign_out_other_devices(target: Any) -> None:
    h = target.harness()
    manager = h.manager

    def login() -> Session:
        h.jar.clear()
        context = h.context()
        session = Session(manager, context)
        session.initiate()
        session.put("user", 42)
        session.tag("user:42")
        session.commit()
        h.finish(context)
        return session

    phone, laptop, tablet = login(), login(), login()
    assert {s.session_id for s in manager.sessions.tagged("user:42")} == {
        phone.session_id,
        laptop.session_id,
        tablet.session_id,
    }
    # The tablet's session is regenerated (a privilege change): the old id
    # drops out of the listing, the new one is in it, still tagged.
    context = h.context()
    again = Session(manager, context)
    again.initiate()
    again.regenerate()
    again.commit()
    h.finish(context)
    listed = {s.session_id: s for s in manager.sessions.tagged("user:42")}
    assert set(listed) == {phone.session_id, laptop.session_id, again.session_id}
    assert listed[again.session_id].tag == "user:42"
    assert listed[again.session_id].values == {"user": 42}
    info = manager.sessions.get(phone.session_id)
    assert info is not None
    assert info.tag == "user:42"
    # Untagging removes it from the listing.
    context = h.context()
    untag = Session(manager, context)
    untag.initiate()
    untag.untag()
    untag.commit()
    h.finish(context)
    assert {s.session_id for s in manager.sessions.tagged("user:42")} == {
        phone.session_id,
        laptop.session_id,
    }
    # "Sign out other devices" from the phone.
    assert manager.sessions.destroy_tagged("user:42", keep=phone.session_id) == 1
    assert {s.session_id for s in manager.sessions.tagged("user:42")} == {phone.session_id}
    assert target.raw_get(target.prefix + laptop.session_id) is None
    manager.driver.close()


def test_through_core_async(target: Any) -> None:
    async def main() -> None:
        h = target.harness("async")
        manager = h.manager
        tagged = []
        for _ in range(3):
            h.jar.clear()
            session = Session(manager, h.context())
            await session.ainitiate()
            session.put("user", 7)
            session.tag("user:7")
            await session.acommit()
            tagged.append(session.session_id)
        assert {s.session_id for s in await manager.sessions.atagged("user:7")} == set(tagged)
        info = await manager.sessions.aget(tagged[0])
        assert info is not None
        assert info.values == {"user": 7}
        assert await manager.sessions.adestroy_tagged("user:7", keep=tagged[0]) == 2
        assert [s.session_id for s in await manager.sessions.atagged("user:7")] == [tagged[0]]
        await manager.driver.aclose()

    anyio.run(main)
