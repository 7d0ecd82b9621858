"""Overlapping requests on one session: conflict-free commits (the versioned capability).

Each test holds one request between its read and its commit while another
request on the same cookie commits, through core with the memory driver, in
both flavours. The merge rules are those of sessions.changes and
sessions.commits; drivers are covered by the conformance kit and their own
packages' tests against real servers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from sessions import Session, commits
from sessions.commits import CommitConflictError
from sessions.driver import Driver, Record
from sessions.drivers.memory import MemoryDriver
from sessions.testing import AsyncConcurrentCommits, ConcurrentCommits, Harness
from sessions.testing.concurrency import current, store

Action = Callable[[Session], Any]


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


class TestMemoryConcurrency(ConcurrentCommits):
    driver_factory = MemoryDriver


class TestMemoryConcurrencyAsync(AsyncConcurrentCommits):
    driver_factory = MemoryDriver


class TestMemoryConcurrencyTrio(AsyncConcurrentCommits):
    driver_factory = MemoryDriver
    backend = "trio"


def test_the_old_cookie_of_a_regenerated_session_opens_nothing_after_a_slow_commit() -> None:
    h = Harness(MemoryDriver, {}, age=60)
    store(h, {"user": 42})
    old_cookie = dict(h.jar)
    overlap(h, lambda s: s.put("cart", 1), lambda s: s.regenerate())
    h.jar = old_cookie
    again = current(h)
    assert again.fresh
    assert again.all() == {}
    assert len(h.driver._data) == 1  # only the regenerated record


def test_emptied_session_is_removed_when_nobody_changed_it() -> None:
    h = Harness(MemoryDriver, {}, age=60)
    store(h, {"only": 1})
    session = current(h)
    session.forget("only")
    session.commit()
    assert h.driver._data == {}


def test_a_regenerate_keeps_a_change_committed_before_it_read() -> None:
    h = Harness(MemoryDriver, {}, age=60)
    store(h, {"user": 42})
    context = h.context()
    login = Session(h.manager, context)
    login.initiate()
    login.regenerate()
    login.put("role", "admin")
    login.commit()
    h.finish(context)
    assert login.fresh
    assert current(h).all() == {"user": 42, "role": "admin"}


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


def test_a_commit_that_keeps_conflicting_fails_instead_of_losing_its_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(commits, "COMMIT_DEADLINE", 0.3)
    h = Harness(Refusing, {}, age=60)
    h.jar[h.manager.config.cookie_name] = h.manager.signer.sign("t" * 43)
    session = current(h)
    session.put("x", 1)
    started = time.monotonic()
    with pytest.raises(CommitConflictError, match=r"on each of \d+ attempts"):
        session.commit()
    assert 0.3 <= time.monotonic() - started < 2
    assert h.driver.attempts > 2


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
    store(h, {"user": 42})
    overlap(h, lambda s: s.put("a", 1), lambda s: s.put("b", 2))
    assert current(h).all() == {"user": 42, "a": 1}


class CountingMemory(MemoryDriver):
    """The memory driver, counting refused compare-and-sets."""

    refused = 0

    def write_versioned(self, session_id: str, values: dict[str, Any], version: int | None) -> bool:
        done = super().write_versioned(session_id, values, version)
        if not done:
            type(self).refused += 1
        return done


class TestStressReallyOverlaps(ConcurrentCommits):
    """The kit's stress check, proving its clients really collide."""

    driver_factory = CountingMemory

    def test_stress_every_increment_and_key_survives(self) -> None:
        CountingMemory.refused = 0
        super().test_stress_every_increment_and_key_survives()
        assert CountingMemory.refused > 0, "the clients never overlapped"


class TestStressReallyOverlapsAsync(AsyncConcurrentCommits):
    driver_factory = CountingMemory

    def test_stress_every_increment_and_key_survives(self) -> None:
        CountingMemory.refused = 0
        super().test_stress_every_increment_and_key_survives()
        assert CountingMemory.refused > 0, "the clients never overlapped"


def test_a_commit_that_raised_is_not_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """An error page's second commit (Flask's save_session) must not store it after all."""
    monkeypatch.setattr(commits, "COMMIT_DEADLINE", 0.05)
    h = Harness(Refusing, {}, age=60)
    h.jar[h.manager.config.cookie_name] = h.manager.signer.sign("t" * 43)
    session = current(h)
    session.put("x", 1)
    with pytest.raises(CommitConflictError):
        session.commit()
    attempts = h.driver.attempts
    session.commit()
    assert h.driver.attempts == attempts
