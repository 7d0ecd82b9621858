"""Failover: when the master holding the sessions dies and a replica is
promoted (by Sentinel, or by the cluster itself), sessions written before the
failure are read back from the new master, with no restart of the application.

While the promotion is under way a request may fail, and then only with the
driver's own error naming the operation; once it is over, requests work again.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis
import redis.asyncio.sentinel
import redis.sentinel
from sessions import DriverError, SessionConfig
from sessions.driver import DriverConfig
from sessions.testing import new_key
from sessions.testing.servers import ServerProcess, require_binary
from sessions_redis.driver import RedisDriver

SECRET = "failover-tests-secret-0123456789abcdef"
SERVICE = "sessions-ha"

pytestmark = pytest.mark.slow


def driver(**options: Any) -> RedisDriver:
    values = {opt.name: opt.default for opt in RedisDriver.options}
    values.update(options)
    return RedisDriver(DriverConfig("redis", values, 600, SessionConfig(secret=SECRET, age=600)))


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.05)


def replicated(master: ServerProcess, replicas: int) -> None:
    """Block until every write so far reached ``replicas`` replicas."""
    client = redis.Redis(host=master.host, port=master.port, socket_timeout=5)
    try:
        assert client.execute_command("WAIT", replicas, 5000) >= replicas
    finally:
        client.close()


def link_up(replica: ServerProcess) -> bool:
    client = redis.Redis(host=replica.host, port=replica.port, socket_timeout=2)
    try:
        return client.info("replication").get("master_link_status") == "up"
    finally:
        client.close()


def driver_error_for(operation: str, exc: DriverError) -> bool:
    message = str(exc)
    return exc.operation == operation and "'redis'" in message and operation in message


def until_served(attempt: Callable[[], Any], operation: str, timeout: float = 30.0) -> Any:
    """Retry ``attempt`` as a client would retry a failed request; any failure
    on the way must be the driver's error for ``operation``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return attempt()
        except DriverError as exc:
            if not driver_error_for(operation, exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


async def until_served_async(
    attempt: Callable[[], Awaitable[Any]], operation: str, timeout: float = 30.0
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await attempt()
        except DriverError as exc:
            if not driver_error_for(operation, exc) or time.monotonic() > deadline:
                raise
            await anyio.sleep(0.1)


@dataclass
class SentinelGroup:
    master: ServerProcess
    replica: ServerProcess
    sentinel: ServerProcess

    def master_port(self) -> int:
        client = redis.Redis(host="127.0.0.1", port=self.sentinel.port, socket_timeout=2)
        try:
            _, port = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
            return int(port)
        finally:
            client.close()

    def known_replicas(self) -> int:
        client = redis.Redis(host="127.0.0.1", port=self.sentinel.port, socket_timeout=2)
        try:
            return len(client.execute_command("SENTINEL", "REPLICAS", SERVICE))
        finally:
            client.close()


@pytest.fixture
def sentinel_group(tools: Any) -> Iterator[SentinelGroup]:
    """A master, its replica and a Sentinel that fails over after 300 ms of silence."""
    binary = require_binary("redis-server")
    # No pause before the first full sync (Redis waits 5 s by default for more replicas).
    master = tools.start_redis("redis-ha-master", "--repl-diskless-sync-delay", "0")
    servers = [master]
    try:
        replica = tools.start_redis(
            "redis-ha-replica", "--replicaof", "127.0.0.1", str(master.port)
        )
        servers.append(replica)
        wait_until(lambda: link_up(replica), "the replica to sync with its master")

        def command(port: int, workdir: Path) -> list[str]:
            conf = workdir / "sentinel.conf"
            if not conf.exists():  # Sentinel rewrites its file; keep what it learnt
                conf.write_text(
                    f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
                    f"sentinel monitor {SERVICE} 127.0.0.1 {master.port} 1\n"
                    f"sentinel down-after-milliseconds {SERVICE} 300\n"
                    f"sentinel failover-timeout {SERVICE} 3000\n"
                )
            return [binary, str(conf), "--sentinel"]

        sentinel = ServerProcess("redis-ha-sentinel", command).start()
        servers.append(sentinel)
        group = SentinelGroup(master, replica, sentinel)
        wait_until(lambda: group.known_replicas() == 1, "Sentinel to discover the replica")
        yield group
    finally:
        for server in reversed(servers):
            server.cleanup()


def fail_over(group: SentinelGroup) -> None:
    replicated(group.master, 1)
    group.master.stop()
    wait_until(lambda: group.master_port() == group.replica.port, "Sentinel to promote the replica")


def test_sync_sessions_survive_a_sentinel_failover(sentinel_group: SentinelGroup) -> None:
    watcher = redis.sentinel.Sentinel([("127.0.0.1", sentinel_group.sentinel.port)])
    client = watcher.master_for(SERVICE, socket_timeout=2, socket_connect_timeout=1)
    store = driver(client=client)
    keys = [new_key() for _ in range(20)]
    for i, key in enumerate(keys):
        store.write(key, {"n": i})

    fail_over(sentinel_group)

    assert until_served(lambda: store.read(keys[0]), "read") == {"n": 0}
    assert [store.read(key) for key in keys] == [{"n": i} for i in range(len(keys))]
    store.write(keys[0], {"n": "after"})
    assert store.read(keys[0]) == {"n": "after"}
    promoted = redis.Redis(host="127.0.0.1", port=sentinel_group.replica.port)
    assert promoted.exists(store.key(keys[0])) == 1
    promoted.close()
    client.close()


def test_async_sessions_survive_a_sentinel_failover(sentinel_group: SentinelGroup) -> None:
    keys = [new_key() for _ in range(20)]

    async def main() -> None:
        watcher = redis.asyncio.sentinel.Sentinel([("127.0.0.1", sentinel_group.sentinel.port)])
        client = watcher.master_for(SERVICE, socket_timeout=2, socket_connect_timeout=1)
        store = driver(client=client)
        for i, key in enumerate(keys):
            await store.awrite(key, {"n": i})

        await anyio.to_thread.run_sync(fail_over, sentinel_group)

        assert await until_served_async(lambda: store.aread(keys[0]), "read") == {"n": 0}
        assert [await store.aread(key) for key in keys] == [{"n": i} for i in range(len(keys))]
        await store.awrite(keys[0], {"n": "after"})
        assert await store.aread(keys[0]) == {"n": "after"}
        await client.aclose()

    anyio.run(main)


@pytest.fixture
def replicated_cluster(tools: Any) -> Iterator[list[ServerProcess]]:
    """Three masters, each with one replica; a master silent for 1 s is replaced."""
    nodes = tools.start_cluster(
        "redis-ha-cluster",
        6,
        1,
        "--cluster-node-timeout",
        "1000",
        # No pause before the first full sync of a replica.
        "--repl-diskless-sync-delay",
        "0",
    )
    try:
        # Every replica in sync before anything is written.
        wait_until(
            lambda: all(role(n) == "master" or link_up(n) for n in nodes), "the replicas to sync"
        )
        yield nodes
    finally:
        for node in nodes:
            node.cleanup()


def cluster_ok(node: ServerProcess, known: int) -> bool:
    client = redis.Redis(host=node.host, port=node.port, socket_timeout=2)
    try:
        info = client.execute_command("CLUSTER", "INFO")
        text = info.decode() if isinstance(info, bytes) else str(info)
        return "cluster_state:ok" in text and f"cluster_known_nodes:{known}" in text
    finally:
        client.close()


def role(node: ServerProcess) -> str:
    client = redis.Redis(host=node.host, port=node.port, socket_timeout=2)
    try:
        return str(client.info("replication")["role"])
    finally:
        client.close()


def holds(node: ServerProcess, key: str) -> bool:
    client = redis.Redis(host=node.host, port=node.port, socket_timeout=2)
    try:
        return bool(client.exists(key))
    except redis.exceptions.MovedError:
        return False  # the key's slot is served by another master
    finally:
        client.close()


def master_port_of(node: ServerProcess) -> int | None:
    client = redis.Redis(host=node.host, port=node.port, socket_timeout=2)
    try:
        port = client.info("replication").get("master_port")
        return None if port is None else int(port)
    finally:
        client.close()


def test_sessions_survive_a_cluster_failover(replicated_cluster: list[ServerProcess]) -> None:
    url = f"redis://{replicated_cluster[0].address}/0"
    store = driver(url=url, cluster=True, socket_timeout=2, socket_connect_timeout=1)
    keys = [new_key() for _ in range(60)]
    for i, key in enumerate(keys):
        store.write(key, {"n": i})
    for node in replicated_cluster:
        if role(node) == "master":
            replicated(node, 1)

    # Kill a master that is not the URL's node, so the driver's startup node survives.
    victim = next(n for n in replicated_cluster[1:] if role(n) == "master")
    on_victim = [k for k in keys if holds(victim, store.key(k))]
    assert on_victim, "the sessions should be spread over every master"
    heir = next(n for n in replicated_cluster if master_port_of(n) == victim.port)
    victim.stop()
    wait_until(lambda: role(heir) == "master", "the victim's replica to take over")
    survivors = [n for n in replicated_cluster if n is not victim]
    wait_until(lambda: all(cluster_ok(n, 6) for n in survivors), "the cluster to settle")

    assert until_served(lambda: store.read(on_victim[0]), "read") == {"n": keys.index(on_victim[0])}
    assert [store.read(key) for key in keys] == [{"n": i} for i in range(len(keys))]
    store.write(on_victim[0], {"n": "after"})
    assert store.read(on_victim[0]) == {"n": "after"}
    store.close()
