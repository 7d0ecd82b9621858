"""Overlapping requests on one session: conflict-free commits (the versioned capability).

Each test holds one request between its read and its commit while another
request on the same cookie commits, through core with the memory driver, in
both flavours. The merge rules are those of sessions.changes and
sessions.commits; drivers are covered by the conformance kit and their own
packages' tests against real servers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from sessions import Session
from sessions.commits import MAX_ATTEMPTS, CommitConflictError
from sessions.driver import Driver, Record
from sessions.drivers.memory import MemoryDriver
from sessions.testing import Harness

Action = Callable[[Session], Any]


def stored(h: Harness, values: dict[str, Any]) -> None:
    """A stored session whose cookie is in the harness's jar."""
    context = h.context()
    session = Session(h.manager, context)
    session.initiate()
    session.update(values)
    session.flash_messages
    session.commit()
    h.finish(context)


def overlap(h: Harness, slow: Action, fast: Action) -> Session:
    """``slow`` reads, ``fast`` runs a whole request, then ``slow`` commits."""
    held = Session(h.manager, h.context())
    held.initiate()
    slow(held)
    context = h.context()
    quick = Session(h.manager, context)
    quick.initiate()
    fast(quick)
    quick.commit()
    h.finish(context)
    held.commit()
    return held


async def aoverlap(h: Harness, slow: Action, fast: Action) -> Session:
    held = Session(h.manager, h.context())
    await held.ainitiate()
    slow(held)
    context = h.context()
    quick = Session(h.manager, context)
    await quick.ainitiate()
    fast(quick)
    await quick.acommit()
    h.finish(context)
    await held.acommit()
    return held


def now(h: Harness) -> Session:
    session = Session(h.manager, h.context())
    session.initiate()
    return session


SCENARIOS: dict[str, tuple[dict[str, Any], Action, Action, Callable[[Session], None]]] = {}


def scenario(
    initial: dict[str, Any], slow: Action, fast: Action
) -> Callable[[Callable[[Session], None]], Callable[[Session], None]]:
    def register(check: Callable[[Session], None]) -> Callable[[Session], None]:
        SCENARIOS[check.__name__] = (initial, slow, fast, check)
        return check

    return register


@scenario({"user": 42}, lambda s: s.put("a", 1), lambda s: s.put("b", 2))
def different_keys_both_survive(after: Session) -> None:
    assert after.all() == {"user": 42, "a": 1, "b": 2}


@scenario({"n": 0}, lambda s: s.increment("n", 5), lambda s: s.increment("n", 3))
def increments_add_up(after: Session) -> None:
    assert after.get("n") == 8


@scenario(
    {"cart": {"items": 1, "name": "x"}},
    lambda s: s.decrement("cart.items"),
    lambda s: (s.increment("cart.items", 10), s.put("coupon", "Z")),
)
def nested_increments_add_up(after: Session) -> None:
    assert after.all() == {"cart": {"items": 10, "name": "x"}, "coupon": "Z"}


@scenario({"k": "old"}, lambda s: s.put("k", "slow"), lambda s: s.put("k", "fast"))
def the_later_commit_wins_per_key(after: Session) -> None:
    assert after.get("k") == "slow"


@scenario({"k": 1, "j": 2}, lambda s: s.forget("k"), lambda s: s.put("j", 3))
def a_forget_merges(after: Session) -> None:
    assert after.all() == {"j": 3}


@scenario({"user": 42}, lambda s: s.put("cart", 1), lambda s: s.clear())
def a_logout_is_never_undone(after: Session) -> None:
    assert after.fresh
    assert after.all() == {}


@scenario({"user": 42}, lambda s: s.clear(), lambda s: s.put("cart", 1))
def a_clear_wins_over_the_concurrent_change(after: Session) -> None:
    assert after.fresh
    assert after.all() == {}


@scenario({"user": 42}, lambda s: s.put("cart", 1), lambda s: s.regenerate())
def a_regenerate_wins_over_the_concurrent_change(after: Session) -> None:
    # The jar now holds the regenerated cookie: the slow request's change to the
    # old id was dropped, not written back under either id.
    assert not after.fresh
    assert after.all() == {"user": 42}


@scenario({"user": 42}, lambda s: s.flash("notice", "slow"), lambda s: s.flash("alert", "fast"))
def flash_messages_merge(after: Session) -> None:
    assert after.flash_messages.all() == {"notice": "slow", "alert": "fast"}


@scenario({"only": 1, "b": 1}, lambda s: s.forget("only"), lambda s: s.put("b", 2))
def emptying_key_by_key_keeps_the_other_requests_keys(after: Session) -> None:
    assert after.all() == {"b": 2}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_overlap_sync(name: str) -> None:
    initial, slow, fast, check = SCENARIOS[name]
    h = Harness(MemoryDriver, {}, age=60)
    stored(h, initial)
    overlap(h, slow, fast)
    check(now(h))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_overlap_async(name: str) -> None:
    initial, slow, fast, check = SCENARIOS[name]

    async def main() -> None:
        h = Harness(MemoryDriver, {}, age=60)
        stored(h, initial)
        await aoverlap(h, slow, fast)
        check(now(h))

    anyio.run(main)


def test_the_old_cookie_of_a_regenerated_session_opens_nothing_after_a_slow_commit() -> None:
    h = Harness(MemoryDriver, {}, age=60)
    stored(h, {"user": 42})
    old_cookie = dict(h.jar)
    overlap(h, lambda s: s.put("cart", 1), lambda s: s.regenerate())
    h.jar = old_cookie
    again = now(h)
    assert again.fresh
    assert again.all() == {}
    assert len(h.driver._data) == 1  # only the regenerated record


def test_emptied_session_is_removed_when_nobody_changed_it() -> None:
    h = Harness(MemoryDriver, {}, age=60)
    stored(h, {"only": 1})
    session = now(h)
    session.forget("only")
    session.commit()
    assert h.driver._data == {}


def test_a_regenerate_keeps_a_change_committed_before_it_read() -> None:
    h = Harness(MemoryDriver, {}, age=60)
    stored(h, {"user": 42})
    login = Session(h.manager, h.context())
    login.initiate()
    login.regenerate()
    login.put("role", "admin")
    login.commit()
    assert login.fresh
    assert h.call("read", login.session_id) == {"user": 42, "role": "admin"}


class Refusing(Driver):
    """A versioned store that always reports a conflict."""

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.attempts = 0

    def read(self, session_id: str) -> dict[str, Any] | None:
        return {"n": 1}

    def read_versioned(self, session_id: str) -> Record | None:
        return Record({"n": 1}, self.attempts)

    def write(self, session_id: str, values: dict[str, Any]) -> None:
        raise AssertionError("a versioned driver is written with write_versioned")

    def write_versioned(self, session_id: str, values: dict[str, Any], version: int | None) -> bool:
        self.attempts += 1
        return False

    def destroy(self, session_id: str) -> None:
        pass

    def touch(self, session_id: str) -> None:
        pass


def test_a_commit_that_keeps_conflicting_fails_instead_of_losing_its_change() -> None:
    h = Harness(Refusing, {}, age=60)
    h.jar[h.manager.config.cookie_name] = h.manager.signer.sign("t" * 43)
    session = now(h)
    session.put("x", 1)
    with pytest.raises(CommitConflictError, match=f"{MAX_ATTEMPTS} attempts"):
        session.commit()
    assert h.driver.attempts == MAX_ATTEMPTS


class LastWriteWins(Driver):
    """A third-party driver without the versioned capability."""

    store: dict[str, dict[str, Any]] = {}

    def read(self, session_id: str) -> dict[str, Any] | None:
        found = self.store.get(session_id)
        return None if found is None else dict(found)

    def write(self, session_id: str, values: dict[str, Any]) -> None:
        self.store[session_id] = dict(values)

    def destroy(self, session_id: str) -> None:
        self.store.pop(session_id, None)

    def touch(self, session_id: str) -> None:
        pass


def test_a_driver_without_the_capability_keeps_last_write_wins() -> None:
    h = Harness(LastWriteWins, {}, age=60)
    assert not h.manager.flavours.versioned
    stored(h, {"user": 42})
    overlap(h, lambda s: s.put("a", 1), lambda s: s.put("b", 2))
    assert now(h).all() == {"user": 42, "a": 1}


CLIENTS, ROUNDS = 8, 50


class CountingMemory(MemoryDriver):
    """The memory driver, counting refused compare-and-sets (so a stress test
    proves it really overlapped)."""

    refused = 0

    def write_versioned(self, session_id: str, values: dict[str, Any], version: int | None) -> bool:
        done = super().write_versioned(session_id, values, version)
        if not done:
            type(self).refused += 1
        return done


def test_stress_threads_every_increment_and_key_survives() -> None:
    CountingMemory.refused = 0
    h = Harness(CountingMemory, {}, age=60)
    stored(h, {"n": 0})
    start = threading.Barrier(CLIENTS)
    errors: list[BaseException] = []

    def client(i: int) -> None:
        try:
            start.wait()
            for r in range(ROUNDS):
                session = Session(h.manager, h.context())
                session.initiate()
                session.increment("n")
                session.put(f"client{i}", r)
                time.sleep(0.0005)  # hold the request open so others read the same version
                session.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    after = now(h)
    assert after.get("n") == CLIENTS * ROUNDS
    assert all(after.get(f"client{i}") == ROUNDS - 1 for i in range(CLIENTS))
    assert CountingMemory.refused > 0, "the clients never overlapped"


def test_stress_tasks_every_increment_and_key_survives() -> None:
    async def main() -> None:
        CountingMemory.refused = 0
        h = Harness(CountingMemory, {}, age=60)
        stored(h, {"n": 0})

        async def client(i: int) -> None:
            for r in range(ROUNDS):
                session = Session(h.manager, h.context())
                await session.ainitiate()
                session.increment("n")
                session.put(f"client{i}", r)
                await anyio.sleep(0)  # let the others read the same version
                await session.acommit()

        async with anyio.create_task_group() as tg:
            for i in range(CLIENTS):
                tg.start_soon(client, i)
        after = now(h)
        assert after.get("n") == CLIENTS * ROUNDS
        assert all(after.get(f"client{i}") == ROUNDS - 1 for i in range(CLIENTS))
        assert CountingMemory.refused > 0, "the clients never overlapped"

    anyio.run(main)
