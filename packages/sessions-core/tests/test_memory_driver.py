"""The memory driver passes the conformance suite in both flavours."""

from __future__ import annotations

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
    h.driver._data["b" * 43] = (0.0, b"{}")
    assert h.driver.gc().removed == 1
    assert h.call("read", "a" * 43) == {"x": 1}
