"""Options are checked at startup with messages that say what would be valid;
the driver is found through its entry point and configurable from the environment."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sessions import ConfigError, SessionConfig, SessionManager
from sessions.plugins import reset_plugins
from sessions_memcached.driver import MemcachedDriver
from sessions_memcached.servers import parse_servers

SECRET = "memcached-tests-secret-0123456789abcdef"


def _manager(**options: Any) -> SessionManager:
    return SessionManager(
        SessionConfig(secret=SECRET, driver="memcached", drivers={"memcached": options}),
        autoload_plugins=False,
        drivers={"memcached": MemcachedDriver},
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["127.0.0.1:11211"], [("127.0.0.1", 11211)]),
        (["cache.internal"], [("cache.internal", 11211)]),
        ([" 127.0.0.1:1 ", "127.0.0.1:2"], [("127.0.0.1", 1), ("127.0.0.1", 2)]),
        (["[::1]:11300"], [("::1", 11300)]),
        (["[::1]"], [("::1", 11211)]),
        (["/run/memcached.sock"], ["/run/memcached.sock"]),
    ],
)
def test_server_forms(given: list[str], expected: list[Any]) -> None:
    assert parse_servers("servers", given) == expected


@pytest.mark.parametrize(
    ("given", "complaint"),
    [
        ([], "one or more memcached servers"),
        (["127.0.0.1:0"], "a port between 1 and 65535"),
        (["127.0.0.1:99999"], "a port between 1 and 65535"),
        (["127.0.0.1:http"], "a port between 1 and 65535"),
        (["::1"], "put IPv6 addresses in brackets"),
        (["[::1"], "'[ipv6]:port'"),
        ([":11211"], "'host:port'"),
        (["a:1", "a:1"], "each server once ('a:1' is repeated)"),
    ],
)
def test_bad_servers_fail_at_startup(given: list[str], complaint: str) -> None:
    with pytest.raises(ConfigError, match=r"drivers\.memcached\.servers") as caught:
        _manager(servers=given).driver
    assert complaint in str(caught.value)


@pytest.mark.parametrize(
    ("options", "field", "complaint"),
    [
        ({"key_prefix": "has space:"}, "key_prefix", "printable ASCII without spaces"),
        ({"key_prefix": "é:"}, "key_prefix", "printable ASCII"),
        ({"key_prefix": "p" * 208}, "key_prefix", "at most 207 characters"),
        ({"timeout": 0}, "timeout", "greater than 0"),
        ({"connect_timeout": -1}, "connect_timeout", "greater than 0"),
        ({"pool_size": 0}, "pool_size", "at least 1"),
        ({"idle_timeout": -5}, "idle_timeout", ">= 0"),
        ({"timeout": "soon"}, "timeout", "a value of type float"),
        ({"server": "127.0.0.1"}, "server", "valid options: connect_timeout"),
    ],
)
def test_bad_options_fail_at_startup(options: dict[str, Any], field: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=rf"drivers\.memcached\.{field}") as caught:
        _manager(**options).driver
    assert complaint in str(caught.value)


def test_longest_prefix_is_accepted() -> None:
    assert _manager(key_prefix="p" * 207).driver.describe() == "memcached at 127.0.0.1:11211"


def test_describe_lists_servers() -> None:
    driver = _manager(servers="127.0.0.1:1, [::1]:2").driver
    assert driver.describe() == "memcached at 127.0.0.1:1, [::1]:2"


def test_bad_session_ids_never_reach_memcached() -> None:
    # No server listens on port 1: any command sent would fail loudly.
    driver = _manager(servers=["127.0.0.1:1"]).driver
    assert driver.read("../etc/passwd") is None
    assert driver.read("k" * 44) is None
    driver.destroy("bad key")
    driver.touch("bad key")
    with pytest.raises(ValueError, match="a storage key is 43 base64url characters"):
        driver.write("bad key", {"a": 1})


@pytest.fixture
def plugins_from_entry_points(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Other packages' tests may restrict plugin loading for their own process.
    monkeypatch.delenv("SESSIONS_PLUGINS", raising=False)
    monkeypatch.delenv("SESSIONS_DISABLED_PLUGINS", raising=False)
    reset_plugins()
    yield
    reset_plugins()


@pytest.mark.usefixtures("plugins_from_entry_points")
def test_selected_by_name_from_the_environment(memcached: Any) -> None:
    environ = {
        "SESSION_DRIVER": "memcached",
        "SESSION_SECRET": SECRET,
        "SESSION_AGE": "30m",
        "SESSION_MEMCACHED_SERVERS": f"{memcached.address}",
        "SESSION_MEMCACHED_KEY_PREFIX": "env:",
        "SESSION_MEMCACHED_TIMEOUT": "0.5",
        "SESSION_MEMCACHED_POOL_SIZE": "4",
    }
    manager = SessionManager(SessionConfig.from_env(environ))
    driver = manager.driver
    assert isinstance(driver, MemcachedDriver)
    assert manager.touches_on_read is True
    assert manager.flavours.label == "sync+async"
    key = "E" * 43
    driver.write(key, {"from": "env"})
    assert memcached.raw.get(f"env:{key}") == b'{"from":"env"}'
    assert 1790 <= memcached.ttl(f"env:{key}") <= 1800
    manager.close()


def test_check_warns_that_a_restart_loses_every_session(memcached: Any) -> None:
    from click.testing import CliRunner
    from sessions.cli import make_cli

    reset_plugins()  # the entry point is loaded inside the call, under the env below
    env = {
        "SESSION_DRIVER": "memcached",
        "SESSION_SECRET": SECRET,
        "SESSION_MEMCACHED_SERVERS": memcached.address,
    }
    try:
        result = CliRunner().invoke(make_cli(), ["check"], env=env, catch_exceptions=False)
    finally:
        reset_plugins()
    assert result.exit_code == 0, result.output
    assert MemcachedDriver.durable is False
    assert "warning: driver 'memcached' is not durable" in result.output
    assert "logs every user out" in result.output
    assert result.output.rstrip().endswith("stores, reads and removes sessions")
