"""The memory driver passes the conformance suite in both flavours."""

from __future__ import annotations

import pytest
from sessions import ConfigError
from sessions.drivers.memory import MemoryDriver
from sessions.testing import AsyncDriverConformance, DriverConformance, Harness


def _corrupt(harness: Harness, session_id: str) -> None:
    harness.driver.store_raw(session_id, b"\x80not json")


class TestMemorySync(DriverConformance):
    driver_factory = MemoryDriver

    def corrupt(self, harness: Harness, session_id: str) -> None:
        _corrupt(harness, session_id)


class TestMemoryAsync(AsyncDriverConformance):
    driver_factory = MemoryDriver

    def corrupt(self, harness: Harness, session_id: str) -> None:
        _corrupt(harness, session_id)


class TestMemoryTrio(TestMemoryAsync):
    backend = "trio"


def test_gc_removes_only_expired() -> None:
    h = Harness(MemoryDriver, {}, age=60)
    h.call("write", "a" * 43, {"x": 1})
    h.driver._data["b" * 43] = (0.0, b"{}", 1)
    assert h.driver.gc().removed == 1
    assert h.call("read", "a" * 43) == {"x": 1}


def test_max_sessions_is_a_hard_cap_evicting_the_least_recently_used() -> None:
    h = Harness(MemoryDriver, {"max_sessions": 10}, age=60)
    keys = [f"{i:043d}" for i in range(1000)]
    h.call("write", keys[0], {"first": True})
    for key in keys[1:]:
        h.call("read", keys[0])  # keeps the first one recently used
        h.call("write", key, {"k": key})
    assert len(h.driver._data) == 10
    assert h.call("read", keys[0]) == {"first": True}
    assert h.call("read", keys[-1]) == {"k": keys[-1]}
    assert h.call("read", keys[1]) is None


def test_max_sessions_must_be_positive() -> None:
    with pytest.raises(ConfigError, match=r"drivers\.under_test\.max_sessions"):
        Harness(MemoryDriver, {"max_sessions": 0}, age=60).driver
