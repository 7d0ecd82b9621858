"""The memcached driver passes the conformance suite in both flavours, on a real server."""

from __future__ import annotations

import pytest
from sessions.testing import (
    AsyncConcurrentCommits,
    AsyncDriverConformance,
    ConcurrentCommits,
    DriverConformance,
    Harness,
)
from sessions_memcached.driver import MemcachedDriver


class _Memcached:
    driver_factory = MemcachedDriver
    # memcached's clock ticks in whole seconds, so an item may expire up to 1 s
    # early: an age of 4 lives at least 3 s, which leaves the kit's expiry tests
    # (touch after 0.6 of the age, read 0.6 later) 0.6 s of slack on a busy machine.
    age = 4

    @pytest.fixture(autouse=True)
    def _server(self, memcached) -> None:
        self.server = memcached
        self.driver_options = {"servers": [memcached.address], "key_prefix": "conformance:"}

    def corrupt(self, harness: Harness, session_id: str) -> None:
        self.server.raw.set(f"conformance:{session_id}", b"\x80{not json", expire=60)


class TestMemcachedSync(_Memcached, DriverConformance):
    pass


class TestMemcachedAsync(_Memcached, AsyncDriverConformance):
    pass


class TestMemcachedTrio(TestMemcachedAsync):
    backend = "trio"


class TestMemcachedConcurrency(_Memcached, ConcurrentCommits):
    """Overlapping requests on one cookie, merged with memcached's own cas."""

    age = 60


class TestMemcachedConcurrencyAsync(_Memcached, AsyncConcurrentCommits):
    age = 60
