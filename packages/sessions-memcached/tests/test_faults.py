"""Servers that go away: clear errors while down, service again once back, and
with several servers only the lost server's share of sessions is affected."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from sessions import DriverError, SessionConfig, SessionManager
from sessions.testing import Harness, new_key
from sessions_memcached.driver import MemcachedDriver


def _harness(*servers: Any, **extra: Any) -> Harness:
    options = {"servers": [s.address for s in servers], "timeout": 1.0, **extra}
    return Harness(MemcachedDriver, options, age=600)


def test_server_down_names_driver_operation_and_server(
    start_memcached: Callable[..., Any],
) -> None:
    server = start_memcached()
    h = _harness(server)
    key = new_key()
    h.call("write", key, {"a": 1})
    server.stop()
    for op, args in (("read", (key,)), ("write", (key, {"a": 2})), ("touch", (key,))):
        with pytest.raises(DriverError) as caught:
            h.call(op, *args)
        error = caught.value
        assert (error.driver, error.operation, error.address) == ("under_test", op, server.address)
        assert f"failed to {op} at {server.address}" in str(error)
        assert isinstance(error.__cause__, OSError)


def test_next_request_after_restart_works(start_memcached: Callable[..., Any]) -> None:
    server = start_memcached()
    h = _harness(server)
    key = new_key()
    h.call("write", key, {"a": 1})
    h.call("read", key)  # leaves a connection idle in the pool
    server.process.restart()
    # The pooled connection died with the old process: the first request
    # after the restart must still work (memcached lost its memory, though).
    assert h.call("read", key) is None
    h.call("write", key, {"a": 2})
    assert h.call("read", key) == {"a": 2}


def test_async_flavour_after_restart(start_memcached: Callable[..., Any]) -> None:
    server = start_memcached()

    async def main() -> None:
        h = _harness(server)
        key = new_key()
        await h.acall("write", key, {"a": 1})
        server.process.restart()
        assert await h.acall("read", key) is None
        await h.acall("write", key, {"a": 3})
        assert await h.acall("read", key) == {"a": 3}
        server.stop()
        with pytest.raises(DriverError, match=r"failed to read at 127\.0\.0\.1:\d+"):
            await h.acall("read", key)
        await h.manager.aclose()

    anyio.run(main)


def test_two_servers_spread_sessions(start_memcached: Callable[..., Any]) -> None:
    one, two = start_memcached(), start_memcached()
    h = _harness(one, two)
    keys = [new_key() for _ in range(400)]
    for key in keys:
        h.call("write", key, {"k": key})
    # memcached's own item counts, not the driver's idea of where keys went.
    assert one.items() + two.items() == 400
    assert 120 <= one.items() <= 280, (one.items(), two.items())
    for key in keys:
        assert h.driver.server_for(key) in (one.address, two.address)
        assert h.call("read", key) == {"k": key}


def test_losing_one_server_loses_only_its_share(start_memcached: Callable[..., Any]) -> None:
    one, two = start_memcached(), start_memcached()
    h = _harness(one, two)
    keys = [new_key() for _ in range(100)]
    for key in keys:
        h.call("write", key, {"k": key})
    on_two = {key for key in keys if h.driver.server_for(key) == two.address}
    assert 0 < len(on_two) < 100
    two.stop()
    for key in keys:
        if key in on_two:
            with pytest.raises(DriverError) as caught:
                h.call("read", key)
            assert caught.value.address == two.address
        else:
            assert h.call("read", key) == {"k": key}
    two.start()
    # Back, empty: its sessions start afresh; the other server's are intact.
    for key in keys:
        assert h.call("read", key) == (None if key in on_two else {"k": key})


def test_distribution_is_stable_across_managers(start_memcached: Callable[..., Any]) -> None:
    one, two = start_memcached(), start_memcached()
    first, second = _harness(one, two), _harness(two, one)
    for key in (new_key() for _ in range(50)):
        assert first.driver.server_for(key) == second.driver.server_for(key)


def test_timeout_is_a_driver_error(start_memcached: Callable[..., Any]) -> None:
    server = start_memcached()
    h = _harness(server, timeout=0.3)
    key = new_key()
    h.call("write", key, {"a": 1})
    # A frozen server accepts nothing and answers nothing: a hung memcached.
    pid = server.process._process.pid
    os.kill(pid, signal.SIGSTOP)
    _wait_stopped(pid)
    try:
        with pytest.raises(DriverError, match="failed to read") as caught:
            h.call("read", key)
        assert isinstance(caught.value.__cause__, TimeoutError)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert h.call("read", key) == {"a": 1}


def _wait_stopped(pid: int) -> None:
    """Wait until the kernel shows ``pid`` stopped (signals arrive asynchronously)."""
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
        assert time.monotonic() < deadline, "the server did not stop"
        time.sleep(0.01)


def test_manager_close_releases_connections(start_memcached: Callable[..., Any]) -> None:
    server = start_memcached()
    manager = SessionManager(
        SessionConfig(
            secret="memcached-tests-secret-0123456789abcdef",
            driver="memcached",
            drivers={"memcached": {"servers": [server.address]}},
        ),
        autoload_plugins=False,
        drivers={"memcached": MemcachedDriver},
    )
    manager.driver.write(new_key(), {"a": 1})
    connected = int(server.raw.stats()[b"curr_connections"])
    manager.close()
    # memcached notices a closed connection asynchronously.
    deadline = time.monotonic() + 5
    while int(server.raw.stats()[b"curr_connections"]) >= connected:
        assert time.monotonic() < deadline, "the driver's connection stayed open"
        time.sleep(0.02)
    assert int(server.raw.stats()[b"curr_connections"]) == connected - 1


def test_async_requests_queued_behind_a_hung_server_fail_by_the_deadline(
    start_memcached: Callable[..., Any],
) -> None:
    """With every worker thread waiting on a frozen server, queued calls do not wait
    for a thread on top of their own timeout: each fails by timeout + connect_timeout."""
    server = start_memcached()

    async def main() -> list[float]:
        h = _harness(server, timeout=0.4, connect_timeout=0.2, pool_size=2)
        key = new_key()
        await h.acall("write", key, {"a": 1})
        pid = server.process._process.pid
        os.kill(pid, signal.SIGSTOP)
        _wait_stopped(pid)
        took: list[float] = []

        async def one() -> None:
            started = time.monotonic()
            with pytest.raises(DriverError) as caught:
                await h.acall("read", key)
            assert isinstance(caught.value.__cause__, TimeoutError)
            took.append(time.monotonic() - started)

        try:
            async with anyio.create_task_group() as tg:
                for _ in range(6):  # three times as many calls as worker threads
                    tg.start_soon(one)
        finally:
            os.kill(pid, signal.SIGCONT)
        await h.manager.aclose()
        return took

    took = anyio.run(main)
    assert len(took) == 6
    assert max(took) < 0.6 + 0.5, took
