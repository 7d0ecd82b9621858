"""The connection pool: reuse, a cap on idle connections, and the idle timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sessions.testing import Harness, new_key
from sessions_memcached.driver import MemcachedDriver


def _connections(memcached: Any) -> int:
    return int(memcached.raw.stats()[b"total_connections"])


def _open(memcached: Any) -> int:
    return int(memcached.raw.stats()[b"curr_connections"])


def test_idle_connections_beyond_pool_size_are_closed(
    start_memcached: Callable[..., Any],
) -> None:
    # A server of its own: connections of other tests' pools, closed whenever
    # they are collected, would move the counts below.
    memcached = start_memcached()
    h = Harness(MemcachedDriver, {"servers": [memcached.address], "pool_size": 2}, 60)
    (pool,) = list(h.driver._ring)
    barrier = threading.Barrier(6)

    def hold(client: Any) -> None:
        client.version()  # connected...
        barrier.wait()  # ...and held until all six are

    before = _connections(memcached)
    open_before = _open(memcached)
    threads = [threading.Thread(target=pool.run, args=(hold,)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _connections(memcached) - before == 6
    assert pool.idle == 2
    # The four beyond pool_size were closed; the two kept serve what follows.
    deadline = time.monotonic() + 5
    while _open(memcached) != open_before + 2:
        assert time.monotonic() < deadline, "extra connections were not closed"
        time.sleep(0.02)
    key = new_key()
    before = _connections(memcached)
    h.call("write", key, {"a": 1})
    for _ in range(20):
        assert h.call("read", key) == {"a": 1}
    assert _connections(memcached) == before
    h.manager.close()


def test_idle_timeout_replaces_quiet_connections(memcached: Any) -> None:
    h = Harness(MemcachedDriver, {"servers": [memcached.address], "idle_timeout": 0.3}, 60)
    key = new_key()
    h.call("write", key, {"a": 1})
    before = _connections(memcached)
    h.call("read", key)
    assert _connections(memcached) == before
    time.sleep(0.5)
    assert h.call("read", key) == {"a": 1}
    assert _connections(memcached) == before + 1
    h.manager.close()
