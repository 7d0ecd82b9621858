"""A Redis that answers "try again shortly" costs a request time, not an error.

A restarted Redis replies ``LOADING`` to every command while it reads its
dataset back. The tests make that happen on demand with ``DEBUG RELOAD`` (save,
empty, load again) on a server with a few thousand keys, loaded slowly
(``key-load-delay``) and answering clients as it goes
(``loading-process-events-interval-bytes``), so the server is loading for about
half a second; requests made meanwhile must succeed once it is done, standalone,
behind Sentinel and in a cluster, sync and async. Redis itself counts the
``LOADING`` replies it sent (``INFO errorstats``), which proves each request met one.

Also: with Redis down, the error a request gets carries no unrelated
``IndexError`` from the driver's free list in its traceback.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis
import redis.asyncio.sentinel
import redis.sentinel
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry
from sessions import DriverError, SessionConfig
from sessions.driver import DriverConfig
from sessions.testing import new_key
from sessions.testing.servers import ServerProcess, require_binary
from sessions_redis.driver import RedisDriver

DEBUG = ("--enable-debug-command", "local")
SERVICE = "sessions-loading"


def make(**options: Any) -> RedisDriver:
    values = {opt.name: opt.default for opt in RedisDriver.options}
    values.update(options)
    config = SessionConfig(secret="loading-tests-secret-0123456789abcdef", age=600)
    return RedisDriver(DriverConfig("redis", values, 600, config))


def loading_replies(node: ServerProcess) -> int:
    client = redis.Redis(host=node.host, port=node.port, socket_timeout=5)
    try:
        return int(client.info("errorstats").get("errorstat_LOADING", {}).get("count", 0))
    finally:
        client.close()


@contextlib.contextmanager
def reloading(node: ServerProcess, fill_prefix: str = "fill:") -> Iterator[None]:
    """Keep ``node`` loading its dataset for about half a second, from the start
    of the block (which is entered once the server says it is loading)."""
    client = redis.Redis(host=node.host, port=node.port, socket_timeout=10)
    client.execute_command("DEBUG", "POPULATE", 5000, fill_prefix)
    client.config_set("key-load-delay", 100)  # µs per key
    client.config_set("loading-process-events-interval-bytes", 1024)
    failed: list[BaseException] = []

    def reload() -> None:
        reloader = redis.Redis(host=node.host, port=node.port, socket_timeout=30)
        try:
            reloader.execute_command("DEBUG", "RELOAD")
        except BaseException as exc:
            failed.append(exc)
        finally:
            reloader.close()

    thread = threading.Thread(target=reload)
    thread.start()
    probe = redis.Redis(
        host=node.host, port=node.port, socket_timeout=5, retry=Retry(NoBackoff(), 0)
    )
    try:
        deadline = time.monotonic() + 5
        while probe.info("persistence")["loading"] != 1:
            assert thread.is_alive(), "DEBUG RELOAD ended before the server was seen loading"
            assert time.monotonic() < deadline, "the server never loaded"
            time.sleep(0.002)
        yield
    finally:
        thread.join(timeout=30)
        probe.close()
        client.config_set("key-load-delay", 0)
        client.close()
    assert not failed, failed


def test_standalone_sync_and_async_wait_out_loading(tools: Any) -> None:
    server = tools.start_redis("redis-loading", *DEBUG)
    try:
        store = make(url=tools.url_of(server))
        key = new_key()
        store.write(key, {"a": 1})
        with reloading(server):
            started = time.monotonic()
            assert store.read(key) == {"a": 1}
            waited = time.monotonic() - started
        assert loading_replies(server) >= 1
        assert 0.05 < waited < 2

        async def main() -> None:
            before = loading_replies(server)
            with reloading(server):
                await store.awrite(key, {"a": 2})
            assert await store.aread(key) == {"a": 2}
            assert loading_replies(server) > before
            await store.aclose()

        anyio.run(main)
    finally:
        server.cleanup()


def test_loading_longer_than_the_timeout_is_an_error_naming_it(tools: Any) -> None:
    server = tools.start_redis("redis-loading-long", *DEBUG)
    try:
        store = make(url=tools.url_of(server), socket_timeout=0.2)
        key = new_key()
        store.write(key, {"a": 1})
        with reloading(server):
            started = time.monotonic()
            with pytest.raises(DriverError) as caught:
                store.read(key)
            assert time.monotonic() - started < 0.2 + 0.5
        assert "BusyLoadingError" in str(caught.value)
        assert "loading the dataset" in str(caught.value)
        assert store.read(key) == {"a": 1}
        store.close()
    finally:
        server.cleanup()


@pytest.fixture
def sentinel_group(tools: Any) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    binary = require_binary("redis-server")
    master = tools.start_redis("redis-loading-master", *DEBUG)

    def command(port: int, workdir: Path) -> list[str]:
        conf = workdir / "sentinel.conf"
        if not conf.exists():
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {master.port} 1\n"
            )
        return [binary, str(conf), "--sentinel"]

    sentinel = ServerProcess("redis-loading-sentinel", command)
    try:
        sentinel.start()
        yield master, sentinel
    finally:
        sentinel.cleanup()
        master.cleanup()


def test_sentinel_clients_wait_out_loading(
    sentinel_group: tuple[ServerProcess, ServerProcess],
) -> None:
    master, sentinel = sentinel_group
    # The application's client does not retry by itself: the driver must.
    watcher = redis.sentinel.Sentinel([("127.0.0.1", sentinel.port)])
    client = watcher.master_for(SERVICE, socket_timeout=2, retry=Retry(NoBackoff(), 0))
    store = make(client=client)
    key = new_key()
    store.write(key, {"a": 1})
    with reloading(master):
        assert store.read(key) == {"a": 1}
    assert loading_replies(master) >= 1
    client.close()

    async def main() -> None:
        awatcher = redis.asyncio.sentinel.Sentinel([("127.0.0.1", sentinel.port)])
        aclient = awatcher.master_for(SERVICE, socket_timeout=2, retry=AsyncRetry(NoBackoff(), 0))
        astore = make(client=aclient)
        before = loading_replies(master)
        with reloading(master):
            assert await astore.aread(key) == {"a": 1}
        assert loading_replies(master) > before
        await aclient.aclose()

    anyio.run(main)


@pytest.mark.slow
def test_cluster_waits_out_a_loading_master(tools: Any) -> None:
    nodes = tools.start_cluster(
        "redis-loading-cluster", 3, 0, "--cluster-node-timeout", "5000", *DEBUG
    )
    try:
        store = make(url=tools.url_of(nodes[0]), cluster=True)
        victim = nodes[1]
        probe = redis.cluster.RedisCluster(host=victim.host, port=victim.port)
        on_victim = lambda k: probe.get_node_from_key(k).port == victim.port  # noqa: E731
        key = next(k for k in iter(new_key, None) if on_victim(store.key(k)))
        tag = next(f"t{i}" for i in range(10_000) if on_victim(f"{{t{i}}}"))
        probe.close()
        store.write(key, {"a": 1})
        with reloading(victim, fill_prefix=f"{{{tag}}}:fill"):
            assert store.read(key) == {"a": 1}
        assert loading_replies(victim) >= 1

        async def main() -> None:
            before = loading_replies(victim)
            with reloading(victim, fill_prefix=f"{{{tag}}}:fill"):
                await store.awrite(key, {"a": 2})
            assert await store.aread(key) == {"a": 2}
            assert loading_replies(victim) > before
            await store.aclose()

        anyio.run(main)
        store.close()
    finally:
        for node in nodes:
            node.cleanup()


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def test_redis_down_leaves_no_index_error_in_the_traceback(tools: Any) -> None:
    server = tools.start_redis("redis-down")
    store = make(url=tools.url_of(server), retries=0)
    server.cleanup()  # nothing was ever connected: the free lists are empty
    with pytest.raises(DriverError) as sync_failure:
        store.read(new_key())

    async def main() -> BaseException:
        with pytest.raises(DriverError) as caught:
            await store.aread(new_key())
        await store.aclose()
        return caught.value

    async_failure = anyio.run(main)
    for failure in (sync_failure.value, async_failure):
        chain = _chain(failure)
        assert any(isinstance(e, redis.ConnectionError) for e in chain), chain
        assert not any(isinstance(e, IndexError) for e in chain), chain
