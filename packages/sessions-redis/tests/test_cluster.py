"""A real Redis Cluster of three masters, started by the tests: sessions spread
over the slots of every node, are read back through any node, cost the same
commands per request as on one server, and pass the conformance suite."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from redis.cluster import key_slot
from sessions import SessionConfig, SessionManager
from sessions.asgi import SessionMiddleware
from sessions.driver import DriverConfig
from sessions.testing import (
    AsyncConcurrentCommits,
    AsyncDriverConformance,
    ConcurrentCommits,
    DriverConformance,
    Harness,
    new_key,
)
from sessions_redis.driver import RedisDriver
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

pytestmark = pytest.mark.slow

SESSIONS = 40


def make_driver(url: str, prefix: str) -> RedisDriver:
    options = {opt.name: opt.default for opt in RedisDriver.options}
    options.update(url=url, key_prefix=prefix, cluster=True)
    config = SessionConfig(secret="cluster-tests-secret-0123456789abcdef", age=600)
    return RedisDriver(DriverConfig(name="redis", options=options, age=600, session=config))


def keys_per_node(cluster: Any, tools: Any, prefix: str) -> list[int]:
    return [len(tools.admin(node).keys(prefix + "*")) for node in cluster.nodes]


def test_sync_sessions_spread_over_nodes_and_read_back_through_any(
    redis_cluster: Any, tools: Any
) -> None:
    prefix = f"c{secrets.token_hex(3)}:"
    writer = make_driver(redis_cluster.url, prefix)
    ids = [new_key() for _ in range(SESSIONS)]
    for i, session_id in enumerate(ids):
        writer.write(session_id, {"n": i})
    writer.close()
    # Spread over many slots (two random keys share one of the 16384 slots now and
    # then, so not necessarily SESSIONS distinct ones).
    assert len({key_slot((prefix + i).encode()) for i in ids}) > SESSIONS // 2
    per_node = keys_per_node(redis_cluster, tools, prefix)
    assert sum(per_node) == SESSIONS
    assert all(count > 0 for count in per_node), per_node
    for node in redis_cluster.nodes:
        reader = make_driver(tools.url_of(node), prefix)
        assert [reader.read(i) for i in ids] == [{"n": n} for n in range(SESSIONS)]
        reader.destroy(ids[0])
        assert reader.read(ids[0]) is None
        reader.write(ids[0], {"n": 0})
        reader.close()


def test_async_sessions_spread_over_nodes_and_read_back_through_any(
    redis_cluster: Any, tools: Any
) -> None:
    prefix = f"c{secrets.token_hex(3)}:"
    ids = [new_key() for _ in range(SESSIONS)]

    async def main() -> None:
        writer = make_driver(redis_cluster.url, prefix)
        for i, session_id in enumerate(ids):
            await writer.awrite(session_id, {"n": i})
        await writer.aclose()
        for node in redis_cluster.nodes:
            reader = make_driver(tools.url_of(node), prefix)
            assert [await reader.aread(i) for i in ids] == [{"n": n} for n in range(SESSIONS)]
            await reader.atouch(ids[1])
            await reader.aclose()

    anyio.run(main)
    per_node = keys_per_node(redis_cluster, tools, prefix)
    assert sum(per_node) == SESSIONS
    assert all(count > 0 for count in per_node), per_node


async def put(request: Request) -> JSONResponse:
    for key, value in request.query_params.items():
        request.session.put(key, value)
    return JSONResponse(request.session.all())


async def get(request: Request) -> JSONResponse:
    return JSONResponse(request.session.all())


def cluster_client(url: str, prefix: str) -> TestClient:
    config = SessionConfig(
        secret="cluster-tests-secret-0123456789abcdef",
        driver="redis",
        age=600,
        drivers={"redis": {"url": url, "key_prefix": prefix, "cluster": True}},
    )
    manager = SessionManager(config, autoload_plugins=False, drivers={"redis": RedisDriver})
    routes = [Route("/put", put), Route("/get", get)]
    return TestClient(SessionMiddleware(Starlette(routes=routes), manager))


@pytest.fixture
def prefix() -> str:
    return f"c{secrets.token_hex(3)}:"


@pytest.fixture
def client(redis_cluster: Any, prefix: str) -> Iterator[TestClient]:
    with cluster_client(redis_cluster.url, prefix) as test_client:
        yield test_client


def test_commands_per_request_on_cluster(
    client: TestClient, redis_cluster: Any, tools: Any
) -> None:
    client.get("/put?user=ada")
    client.get("/get")  # the client has now learned the slot map and opened its connections
    tools.reset_stats(*redis_cluster.nodes)
    assert client.get("/get").json() == {"user": "ada"}
    assert tools.command_counts(*redis_cluster.nodes) == {"getex": 1}
    tools.reset_stats(*redis_cluster.nodes)
    assert client.get("/put?lang=fr").json() == {"user": "ada", "lang": "fr"}
    # One EVALSHA; the GETRANGE and SET inside the script are counted by the server too.
    assert tools.command_counts(*redis_cluster.nodes) == {
        "getex": 1,
        "evalsha": 1,
        "getrange": 1,
        "set": 1,
    }


def test_browser_sessions_survive_switching_startup_node(
    client: TestClient, redis_cluster: Any, prefix: str, tools: Any
) -> None:
    cookies: list[str] = []
    # Sessions until every master holds some (a dozen leave one empty 2% of the time).
    while len(cookies) < 12 or not all(keys_per_node(redis_cluster, tools, prefix)):
        assert len(cookies) < 200, "the sessions should spread over every master"
        client.cookies.clear()
        client.get(f"/put?n={len(cookies)}")
        cookies.append(client.cookies["session"])
    with cluster_client(tools.url_of(redis_cluster.nodes[2]), prefix) as other:
        for i, cookie in enumerate(cookies):
            other.cookies.set("session", cookie)
            assert other.get("/get").json() == {"n": str(i)}


class _ClusterBase:
    driver_factory = RedisDriver
    driver_options: dict[str, Any] = {}

    @pytest.fixture(autouse=True)
    def _cluster(self, redis_cluster: Any, tools: Any) -> None:
        self.nodes = redis_cluster.nodes
        self.driver_options = {"url": redis_cluster.url, "key_prefix": "cc:", "cluster": True}

    def corrupt(self, harness: Harness, session_id: str) -> None:
        harness.driver._client("read").set("cc:" + session_id, b"\xff garbage", ex=60)


class TestClusterSync(_ClusterBase, DriverConformance):
    pass


class TestClusterAsync(_ClusterBase, AsyncDriverConformance):
    pass


class TestClusterTrio(TestClusterAsync):
    backend = "trio"


class TestClusterConcurrency(_ClusterBase, ConcurrentCommits):
    """Overlapping requests on one cookie; the 8x50 stress across the 3 masters' slots."""


class TestClusterConcurrencyAsync(_ClusterBase, AsyncConcurrentCommits):
    pass


def test_ready_made_cluster_clients(redis_cluster: Any, tools: Any) -> None:
    import redis.asyncio.cluster
    import redis.cluster

    node = redis_cluster.nodes[1]
    prefix = f"c{secrets.token_hex(3)}:"
    options = {opt.name: opt.default for opt in RedisDriver.options}
    config = SessionConfig(secret="cluster-tests-secret-0123456789abcdef", age=600)
    client = redis.cluster.RedisCluster(host=node.host, port=node.port)
    sync = RedisDriver(
        DriverConfig("redis", {**options, "client": client, "key_prefix": prefix}, 600, config)
    )
    addresses = ",".join(sorted(n.address for n in redis_cluster.nodes))
    assert sync.describe() == f"redis cluster {addresses}"
    ids = [new_key() for _ in range(10)]
    for i, session_id in enumerate(ids):
        sync.write(session_id, {"n": i})

    async def main() -> None:
        aclient = redis.asyncio.cluster.RedisCluster(host=node.host, port=node.port)
        driver = RedisDriver(
            DriverConfig("redis", {**options, "client": aclient, "key_prefix": prefix}, 600, config)
        )
        assert [await driver.aread(i) for i in ids] == [{"n": n} for n in range(10)]
        await driver.aclose()
        await aclient.aclose()

    anyio.run(main)
    sync.close()
    assert client.get(prefix + ids[0]) is not None  # the application's client stays open
    client.close()
