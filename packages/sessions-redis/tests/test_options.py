"""Options: validated at startup with messages that say what would be valid;
read from the environment; the ``client`` option for what a URL cannot say;
entry-point discovery; decode failures reported to the security hook."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import redis
import redis.asyncio
from sessions import ConfigError, DriverError, SessionConfig, SessionManager
from sessions.driver import DriverConfig
from sessions.plugins import reset_plugins
from sessions.testing import new_key
from sessions.testing.servers import ServerProcess
from sessions_redis.driver import RedisDriver

SECRET = "options-tests-secret-0123456789abcdef"


def manager(**options: Any) -> SessionManager:
    config = SessionConfig(secret=SECRET, driver="redis", drivers={"redis": options})
    return SessionManager(config, autoload_plugins=False, drivers={"redis": RedisDriver})


def driver(
    url: str = "redis://127.0.0.1:1/0", notify: Any = None, age: int = 600, **options: Any
) -> RedisDriver:
    values = {opt.name: opt.default for opt in RedisDriver.options}
    values.update(url=url, **options)
    config = SessionConfig(secret=SECRET, age=age)
    extra = {"notify_decode_failed": notify} if notify else {}
    return RedisDriver(DriverConfig("redis", values, age, config, **extra))


@pytest.mark.parametrize(
    ("options", "field", "hint"),
    [
        ({"url": "http://127.0.0.1:6379"}, "drivers.redis.url", "redis://"),
        ({"url": "127.0.0.1:6379"}, "drivers.redis.url", "unix://"),
        ({"url": "redis://127.0.0.1:port/0"}, "drivers.redis.url", "Port could not be cast"),
        ({"url": "redis://127.0.0.1/0?sokcet_timeout=1"}, "drivers.redis.url", "sokcet_timeout"),
        ({"url": "unix:///tmp/r.sock", "cluster": True}, "drivers.redis.url", "rediss://"),
        ({"client": "redis://127.0.0.1"}, "drivers.redis.client", "redis.Redis"),
        ({"client": redis.Redis(), "cluster": True}, "drivers.redis.cluster", "RedisCluster"),
        ({"max_connections": 0}, "drivers.redis.max_connections", ">= 1"),
        ({"retries": -1}, "drivers.redis.retries", ">= 0"),
        ({"socket_timeout": 0}, "drivers.redis.socket_timeout", "> 0"),
        ({"max_connections": "many"}, "drivers.redis.max_connections", "int"),
        ({"key_prefix": "{s}:", "cluster": True}, "drivers.redis.key_prefix", "slot"),
        ({"pool_size": 3}, "drivers.redis.pool_size", "max_connections"),
    ],
)
def test_bad_options_fail_at_startup(options: dict[str, Any], field: str, hint: str) -> None:
    with pytest.raises(ConfigError) as failed:
        manager(**options).driver
    assert failed.value.field == field
    assert hint in str(failed.value)


def test_password_never_appears_in_messages() -> None:
    url = "redis://user:hunter2@127.0.0.1:1/0"
    built = driver(url)
    assert built.describe() == "redis://user:***@127.0.0.1:1/0"
    with pytest.raises(DriverError) as failed:
        built.read(new_key())
    assert "hunter2" not in str(failed.value)
    with pytest.raises(ConfigError) as bad:
        manager(url="http://user:hunter2@127.0.0.1/").driver
    assert "hunter2" not in str(bad.value)


def test_a_password_in_the_query_is_masked_too() -> None:
    built = driver("redis://127.0.0.1:1/0?password=hunter2&socket_keepalive=true")
    assert built.describe() == "redis://127.0.0.1:1/0?password=***&socket_keepalive=true"
    with pytest.raises(DriverError) as failed:
        built.read(new_key())
    assert "hunter2" not in str(failed.value)
    with pytest.raises(ConfigError) as bad:
        manager(url="http://127.0.0.1/?password=hunter2").driver
    assert "hunter2" not in str(bad.value)


def test_options_from_environment(
    monkeypatch: pytest.MonkeyPatch, redis_server: ServerProcess, tools: Any
) -> None:
    monkeypatch.setenv("SESSION_DRIVER", "redis")
    monkeypatch.setenv("SESSION_SECRET", SECRET)
    monkeypatch.setenv("SESSION_REDIS_URL", tools.url_of(redis_server, 3))
    monkeypatch.setenv("SESSION_REDIS_KEY_PREFIX", "env:")
    monkeypatch.setenv("SESSION_REDIS_MAX_CONNECTIONS", "4")
    monkeypatch.setenv("SESSION_REDIS_SOCKET_TIMEOUT", "1.5")
    built = SessionManager(
        SessionConfig.from_env(), autoload_plugins=False, drivers={"redis": RedisDriver}
    )
    options = built.driver.config.options
    assert (options["max_connections"], options["socket_timeout"]) == (4, 1.5)
    key = new_key()
    built.driver.write(key, {"from": "env"})
    db3 = redis.Redis(host=redis_server.host, port=redis_server.port, db=3)
    assert db3.exists("env:" + key) == 1
    db3.close()
    built.close()


def test_found_through_its_entry_point(
    monkeypatch: pytest.MonkeyPatch, redis_server: ServerProcess, tools: Any
) -> None:
    # Other test modules may restrict plugin loading for their process; lift it here.
    monkeypatch.setenv("SESSIONS_PLUGINS", "redis")
    reset_plugins()
    try:
        config = SessionConfig(
            secret=SECRET, driver="redis", drivers={"redis": {"url": tools.url_of(redis_server)}}
        )
        built = SessionManager(config)
        assert type(built.driver) is RedisDriver
        assert built.flavours.label == "sync+async"
        assert built.touches_on_read is True
    finally:
        monkeypatch.undo()
        reset_plugins()


def test_default_url_and_prefix() -> None:
    built = manager().driver
    assert built.describe() == "redis://127.0.0.1:6379/0"
    assert built.key("abc") == "sessions:abc"


def test_decode_failure_reported_to_security_hook(redis_server: ServerProcess, tools: Any) -> None:
    seen: list[tuple[str, str]] = []
    prefix = f"h{secrets.token_hex(3)}:"
    built = driver(
        tools.url_of(redis_server),
        notify=lambda source, reason: seen.append((source, reason)),
        key_prefix=prefix,
    )
    bad, wrong_type = new_key(), new_key()
    admin = tools.admin(redis_server)
    admin.set(prefix + bad, b"v7:[1, 2]")
    admin.hset(prefix + wrong_type, "a", "b")
    assert built.read(bad) is None
    assert built.read(wrong_type) is None
    assert anyio.run(built.aread, wrong_type) is None
    assert [source for source, _ in seen] == ["store", "store", "store"]
    assert "top level is list" in seen[0][1]
    assert "WRONGTYPE" in seen[1][1]
    # A key of another type is overwritten by the next write.
    built.write(wrong_type, {"ok": True})
    assert built.read(wrong_type) == {"ok": True}
    built.close()


@pytest.fixture
def prefix() -> str:
    return f"o{secrets.token_hex(3)}:"


def test_given_sync_client_serves_both_flavours_and_stays_open(
    redis_server: ServerProcess, prefix: str
) -> None:
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    built = driver(client=client, key_prefix=prefix)
    assert built.describe() == f"redis://{redis_server.address}/0"
    key = new_key()
    built.write(key, {"a": 1})

    async def main() -> None:
        assert await built.aread(key) == {"a": 1}
        await built.awrite(key, {"a": 2})
        await built.atouch(key)
        await built.aclose()

    anyio.run(main)
    built.close()
    assert client.get(prefix + key) is not None  # the application's client still works
    assert 590 <= client.ttl(prefix + key) <= 600
    built.destroy(key)
    assert client.exists(prefix + key) == 0
    client.close()


def test_given_async_client_serves_async_and_refuses_sync_clearly(
    redis_server: ServerProcess, prefix: str
) -> None:
    key = new_key()

    async def main() -> None:
        client = redis.asyncio.Redis(host=redis_server.host, port=redis_server.port)
        built = driver(client=client, key_prefix=prefix)
        await built.awrite(key, {"a": 1})
        assert await built.aread(key) == {"a": 1}
        await built.adestroy(key)
        assert await built.aread(key) is None
        await built.aclose()
        assert await client.ping()  # not closed by the driver
        with pytest.raises(ConfigError) as failed:
            built.read(key)
        assert "sync client" in str(failed.value)
        await client.aclose()

    anyio.run(main)


@pytest.fixture
def owned(redis_server: ServerProcess, tools: Any) -> Iterator[RedisDriver]:
    built = driver(tools.url_of(redis_server))
    yield built
    built.close()


def test_one_async_client_per_event_loop(owned: RedisDriver) -> None:
    clients: list[Any] = []

    async def use() -> None:
        await owned.aread(new_key())
        await owned.aread(new_key())
        clients.append(owned._aclient())

    anyio.run(use)
    anyio.run(use)
    assert clients[0] is not clients[1]
    # The first loop is closed: its client is dropped when the next one is made.
    assert list(owned._loops.values()) == [clients[1]]


def test_sync_pool_is_shared_by_requests(
    owned: RedisDriver, redis_server: ServerProcess, tools: Any
) -> None:
    for _ in range(20):
        owned.write(new_key(), {"a": 1})
    lane = owned._client("read")
    pool = lane.client.connection_pool
    assert len(pool._available_connections) + len(pool._in_use_connections) == 1
    assert len(lane._free) == 1


def test_sentinel_master_as_client(redis_sentinel: Any, prefix: str, tools: Any) -> None:
    from redis.sentinel import Sentinel

    watcher = Sentinel([("127.0.0.1", redis_sentinel.sentinel.port)], socket_timeout=2)
    master = watcher.master_for(redis_sentinel.service, socket_timeout=2)
    built = driver(client=master, key_prefix=prefix)
    assert built.describe() == "redis sentinel master 'mymaster'"
    key = new_key()
    built.write(key, {"via": "sentinel"})
    assert built.read(key) == {"via": "sentinel"}
    assert tools.admin(redis_sentinel.master).exists(prefix + key) == 1
    master.close()
