"""Real Redis servers for the driver's tests, started on free loopback ports.

* ``redis_server``: one standalone server per test process (xdist worker),
  shared by the tests that only read and write their own random keys;
* ``own_redis``: a private server a test may stop and restart;
* ``redis_cluster``: three masters joined with ``redis-cli --cluster create``.

Helpers count the commands a request costs with the server's own statistics
(``CONFIG RESETSTAT`` then ``INFO commandstats``).
"""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio.sentinel
import redis.sentinel
from sessions.testing import Harness
from sessions.testing.servers import ServerProcess, free_port, require_binary
from sessions_redis.driver import RedisDriver

SECRET = "redis-driver-tests-secret-0123456789abcdef"

# Commands the tests themselves send to look at the server; never counted.
_OBSERVER_COMMANDS = frozenset({"info", "config|resetstat", "config", "cluster|info"})


def _redis_argv(binary: str, port: int, workdir: Path, *extra: str) -> list[str]:
    return [
        binary,
        "--save",
        "",
        "--appendonly",
        "no",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(workdir),
        *extra,
    ]


def _ping(server: ServerProcess) -> None:
    client = redis.Redis(host=server.host, port=server.port, socket_timeout=2)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.BusyLoadingError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        client.close()


def start_redis(name: str = "redis", *extra: str) -> ServerProcess:
    """Start a redis-server on a free loopback port (skips if none installed)."""
    binary = require_binary("redis-server")
    server = ServerProcess(
        name, lambda port, workdir: _redis_argv(binary, port, workdir, *extra), ready=_ping
    )
    return server.start()


def url_of(server: ServerProcess, db: int = 0) -> str:
    """The redis:// URL of a started server."""
    return f"redis://{server.address}/{db}"


_admins: dict[tuple[str, int], redis.Redis] = {}


def admin(server: ServerProcess) -> redis.Redis:
    """A plain client for looking at the server from the test (not the driver's).

    One per server, kept open, so its connection handshake (HELLO) happens
    before any statistics are reset and is never counted as the driver's.
    """
    key = (server.host, server.port)
    client = _admins.get(key)
    if client is None:
        client = _admins[key] = redis.Redis(host=server.host, port=server.port, socket_timeout=5)
    return client


def reset_stats(*servers: ServerProcess) -> None:
    """Zero the command statistics of every server."""
    for server in servers:
        client = admin(server)
        client.ping()
        client.config_resetstat()


def command_counts(*servers: ServerProcess) -> dict[str, int]:
    """Commands executed since :func:`reset_stats`, summed over ``servers``,
    leaving out the commands the tests use to observe."""
    totals: dict[str, int] = {}
    for server in servers:
        stats = admin(server).info("commandstats")
        for key, value in stats.items():
            name = key.removeprefix("cmdstat_")
            if name in _OBSERVER_COMMANDS:
                continue
            totals[name] = totals.get(name, 0) + int(value["calls"])
    return totals


@pytest.fixture(scope="session")
def redis_server() -> Iterator[ServerProcess]:
    """A standalone Redis shared by this test process."""
    server = start_redis()
    yield server
    server.cleanup()


@pytest.fixture
def own_redis() -> Iterator[ServerProcess]:
    """A private Redis this test may stop and restart."""
    server = start_redis("redis-own")
    yield server
    server.cleanup()


@dataclass
class Cluster:
    """A running three-master Redis Cluster."""

    nodes: list[ServerProcess]

    @property
    def url(self) -> str:
        """URL of the first node (any node works as the startup node)."""
        return url_of(self.nodes[0])


def _wait_cluster_ok(nodes: list[ServerProcess], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    for node in nodes:
        client = admin(node)
        while True:
            info = client.execute_command("CLUSTER", "INFO")
            text = info.decode() if isinstance(info, bytes) else str(info)
            if "cluster_state:ok" in text and f"cluster_known_nodes:{len(nodes)}" in text:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"cluster not ready on {node.address}:\n{text}")
            time.sleep(0.05)


def start_cluster(name: str, nodes: int, replicas: int, *extra: str) -> list[ServerProcess]:
    """``nodes`` cluster-enabled servers joined by ``redis-cli --cluster create``,
    ``replicas`` replicas per master. The caller cleans them up, even on failure:
    the list is filled as servers start."""
    cli = require_binary("redis-cli")
    started: list[ServerProcess] = []
    try:
        for i in range(nodes):
            started.append(
                start_redis(
                    f"{name}-{i}",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    # An explicit bus port: the default (port + 10000) may be
                    # taken, or out of range for a high free port.
                    "--cluster-port",
                    str(free_port()),
                    *extra,
                )
            )
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(node.address for node in started),
                "--cluster-replicas",
                str(replicas),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        _wait_cluster_ok(started)
    except BaseException:
        for node in started:
            node.cleanup()
        raise
    return started


class Tools:
    """The helpers above, handed to test modules through the ``tools`` fixture
    (test modules are imported by path, so they cannot import this one)."""

    start_redis = staticmethod(start_redis)
    start_cluster = staticmethod(start_cluster)
    url_of = staticmethod(url_of)
    admin = staticmethod(admin)
    reset_stats = staticmethod(reset_stats)
    command_counts = staticmethod(command_counts)
    secret = SECRET


@pytest.fixture(scope="session")
def tools() -> type[Tools]:
    """Server helpers: start_redis, start_cluster, url_of, admin, reset_stats, command_counts."""
    return Tools


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[Cluster]:
    """Three cluster-enabled masters, slots split by ``redis-cli --cluster create``."""
    nodes = start_cluster("redis-cluster", 3, 0, "--cluster-node-timeout", "2000")
    try:
        yield Cluster(nodes)
    finally:
        for node in nodes:
            node.cleanup()


@dataclass
class Sentinel:
    """A master and one Sentinel watching it as service ``mymaster``."""

    master: ServerProcess
    sentinel: ServerProcess
    service: str = "mymaster"


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[Sentinel]:
    """A Redis master plus a Sentinel (``redis-server --sentinel``) monitoring it."""
    binary = require_binary("redis-server")
    master = start_redis("redis-master")

    def command(port: int, workdir: Path) -> list[str]:
        conf = workdir / "sentinel.conf"
        if not conf.exists():
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
                f"sentinel monitor mymaster 127.0.0.1 {master.port} 1\n"
            )
        return [binary, str(conf), "--sentinel"]

    sentinel = ServerProcess("redis-sentinel", command)
    try:
        sentinel.start()
        yield Sentinel(master, sentinel)
    finally:
        sentinel.cleanup()
        master.cleanup()


# -- one test, three deployments --------------------------------------------------------

#: The session age of :class:`Target`'s harnesses.
TARGET_AGE = 600


@dataclass
class Target:
    """Where a test's sessions live (standalone, Sentinel or Cluster): driver
    options, the servers to count commands on, and raw access to the keys."""

    name: str
    options: dict[str, Any]
    servers: list[ServerProcess]
    prefix: str
    admins: list[redis.Redis] = field(default_factory=list)

    def driver_options(self, flavour: str = "sync") -> dict[str, Any]:
        """Driver options for the sync or async flavour (Sentinel: a client of that flavour)."""
        options = dict(self.options)
        group = options.pop("sentinel", None)
        if group is not None:
            sentinels = [("127.0.0.1", group.sentinel.port)]
            if flavour == "async":
                options["client"] = redis.asyncio.sentinel.Sentinel(sentinels).master_for(
                    group.service
                )
            else:
                options["client"] = redis.sentinel.Sentinel(sentinels).master_for(group.service)
        return options

    def harness(self, flavour: str = "sync") -> Harness:
        """A manager over the redis driver for this deployment, age TARGET_AGE."""
        return Harness(RedisDriver, self.driver_options(flavour), TARGET_AGE)

    def _on_owner(self, command: str, *args: Any) -> Any:
        # Standalone: the one server; Cluster: the node owning the key's slot
        # (the others answer MOVED).
        for admin in self.admins:
            try:
                return admin.execute_command(command, *args)
            except redis.exceptions.MovedError:
                continue
        raise AssertionError(f"no node accepted {command} {args[:1]}")

    def raw_get(self, key: str) -> bytes | None:
        """The bytes stored under ``key`` (prefix included), or None."""
        value: bytes | None = self._on_owner("GET", key)
        return value

    def raw_ttl(self, key: str) -> int:
        """TTL of ``key`` in seconds (-2: missing)."""
        return int(self._on_owner("TTL", key))

    def raw_set(self, key: str, value: bytes, ttl: int = TARGET_AGE) -> None:
        """Store raw bytes under ``key`` (as another program, or an older release, would)."""
        self._on_owner("SET", key, value, "EX", ttl)

    def raw(self, command: str, *args: Any) -> Any:
        """Any one-key command, sent to the node that owns the key."""
        return self._on_owner(command, *args)


@pytest.fixture(params=["standalone", "sentinel", "cluster"])
def target(request: pytest.FixtureRequest, tools: Any) -> Target:
    """The same test on a standalone server, a Sentinel-managed master and a 3-master Cluster."""
    prefix = f"v{secrets.token_hex(3)}:"
    kind = request.param
    if kind == "standalone":
        server = request.getfixturevalue("redis_server")
        servers = [server]
        options: dict[str, Any] = {"url": url_of(server)}
    elif kind == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
        servers = list(cluster.nodes)
        options = {"url": cluster.url, "cluster": True}
    else:
        group = request.getfixturevalue("redis_sentinel")
        servers = [group.master]
        options = {"sentinel": group}
    options["key_prefix"] = prefix
    return Target(kind, options, servers, prefix, [admin(s) for s in servers])
