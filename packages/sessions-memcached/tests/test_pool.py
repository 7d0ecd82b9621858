"""The connection pool: reuse, a cap on idle connections, and the idle timeout."""

from __future__ import annotations

import threading
import time
from typing import Any

from sessions.testing import Harness, new_key
from sessions_memcached.driver import MemcachedDriver


def _peer_ports(memcached: Any) -> set[int]:
    """The client-side ports of the connections the server has open (``stats conns``)."""
    ports = set()
    for name, value in memcached.raw.stats("conns").items():
        if name.endswith(b":addr") and value.startswith(b"tcp:"):
            ports.add(int(value.rsplit(b":", 1)[1]))
    return ports


def test_idle_connections_beyond_pool_size_are_closed(memcached: Any) -> None:
    h = Harness(MemcachedDriver, {"servers": [memcached.address], "pool_size": 2}, 60)
    (pool,) = list(h.driver._ring)
    barrier = threading.Barrier(6)
    held: dict[int, Any] = {}  # local port -> client

    def hold(client: Any) -> None:
        client.version()  # connected...
        held[client.sock.getsockname()[1]] = client
        barrier.wait()  # ...and held until all six are

    threads = [threading.Thread(target=pool.run, args=(hold,)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Six distinct connections, as the server saw them (by their ports, so that
    # other clients of this server do not count).
    assert len(held) == 6
    assert pool.idle == 2
    kept = {port for port, client in held.items() if client.sock is not None}
    assert len(kept) == 2
    # The four beyond pool_size were closed; the two kept serve what follows.
    deadline = time.monotonic() + 5
    while (open_ports := _peer_ports(memcached) & set(held)) != kept:
        assert time.monotonic() < deadline, f"still open: {open_ports}, kept: {kept}"
        time.sleep(0.02)
    key = new_key()
    h.call("write", key, {"a": 1})
    for _ in range(20):
        assert h.call("read", key) == {"a": 1}
    assert {client.sock.getsockname()[1] for _, client in pool._idle} <= kept
    assert _peer_ports(memcached) & set(held) == kept
    h.manager.close()


def test_idle_timeout_replaces_quiet_connections(memcached: Any) -> None:
    h = Harness(MemcachedDriver, {"servers": [memcached.address], "idle_timeout": 0.3}, 60)
    (pool,) = list(h.driver._ring)

    def idle_port() -> int:
        ((_, client),) = pool._idle
        return int(client.sock.getsockname()[1])

    key = new_key()
    h.call("write", key, {"a": 1})
    first = idle_port()
    h.call("read", key)
    assert idle_port() == first  # reused while fresh
    time.sleep(0.5)
    assert h.call("read", key) == {"a": 1}
    second = idle_port()
    assert second != first  # the quiet one was closed and replaced
    deadline = time.monotonic() + 5
    while first in _peer_ports(memcached):
        assert time.monotonic() < deadline, "the quiet connection stayed open"
        time.sleep(0.02)
    assert second in _peer_ports(memcached)
    h.manager.close()
