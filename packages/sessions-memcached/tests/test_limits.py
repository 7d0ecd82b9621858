"""memcached's limits: the 30-day expiry rule and the item size limit."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from sessions import DriverError, SessionConfig, SessionManager
from sessions.asgi import SessionMiddleware
from sessions.testing import Harness, new_key
from sessions_memcached import SessionTooLargeError
from sessions_memcached.driver import MemcachedDriver
from sessions_memcached.expiry import MAX_RELATIVE, expiry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

DAY = 86400


def test_expiry_rule() -> None:
    assert expiry(60) == 60
    assert expiry(MAX_RELATIVE) == MAX_RELATIVE
    assert expiry(MAX_RELATIVE + 1, now=1_000_000_000) == 1_000_000_000 + MAX_RELATIVE + 1
    assert expiry(40 * DAY, now=1_700_000_000.9) == 1_700_000_000 + 40 * DAY


def test_relative_forty_days_would_expire_at_once(memcached: Any) -> None:
    # Why the rule matters: memcached reads 40 days in seconds as a 1970 timestamp.
    memcached.raw.set("rule:naive", b"x", expire=40 * DAY)
    assert memcached.raw.get("rule:naive") is None


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (30 * DAY, 30 * DAY),
        (30 * DAY + 1, 30 * DAY + 1),
        (40 * DAY, 40 * DAY),
        (400 * DAY, 400 * DAY),
    ],
)
def test_long_ages_keep_sessions_for_their_age(memcached: Any, age: int, expected: int) -> None:
    h = Harness(MemcachedDriver, {"servers": [memcached.address], "key_prefix": "long:"}, age)
    for op in ("write", "touch", "read"):
        key = new_key()
        h.call("write", key, {"a": 1})
        if op != "write":
            memcached.raw.touch(f"long:{key}", 60)
            h.call(op, key)
        assert h.call("read", key) == {"a": 1}
        ttl = memcached.ttl(f"long:{key}")
        assert ttl is not None
        # memcached's clock is whole seconds and may lag a loaded machine's by a
        # few, which shows in the TTL of an absolute expiry.
        assert abs(ttl - expected) <= 3, (op, ttl)


@pytest.fixture
def small_items(start_memcached: Callable[..., Any]) -> tuple[Any, Harness, str]:
    """A server that takes items up to 512 KB, and a key holding a small session."""
    server = start_memcached("-I", "512k")
    h = Harness(MemcachedDriver, {"servers": [server.address]}, 60)
    key = new_key()
    h.call("write", key, {"small": 1})
    return server, h, key


def test_too_large_session_fails_clearly_and_keeps_the_stored_one(
    small_items: tuple[Any, Harness, str],
) -> None:
    server, h, key = small_items
    with pytest.raises(SessionTooLargeError) as caught:
        h.call("write", key, {"blob": "x" * 600_000})
    error = caught.value
    assert isinstance(error, DriverError)
    assert error.limit == 512 * 1024
    assert error.size > 600_000
    assert not error.sent
    message = str(error)
    assert server.address in message
    assert "524288 bytes" in message
    assert "the stored session is unchanged" in message
    assert "memcached -I" in message
    # Refused before it was sent: the session the request started from survives
    # (memcached itself would have deleted it), and the connection stays usable.
    assert h.call("read", key) == {"small": 1}
    # Just under the limit still fits.
    h.call("write", key, {"blob": "y" * 500_000})
    assert h.call("read", key) == {"blob": "y" * 500_000}


def test_the_limit_is_asked_again_before_refusing(start_memcached: Callable[..., Any]) -> None:
    # A server restarted with a larger -I takes sessions the old limit refused.
    server = start_memcached("-I", "512k")
    h = Harness(MemcachedDriver, {"servers": [server.address]}, 60)
    key = new_key()
    h.call("write", key, {"blob": "y" * 2000})
    assert h.driver._limits == {server.address: 512 * 1024}
    server.stop()
    start_memcached("-I", "2m", port=server.process.port)
    h.call("write", key, {"blob": "x" * 600_000})
    assert h.call("read", key) == {"blob": "x" * 600_000}
    assert h.driver._limits == {server.address: 2 * 1024 * 1024}


def test_asking_a_down_server_for_its_limit_fails_the_write_once(
    start_memcached: Callable[..., Any],
) -> None:
    server = start_memcached()
    h = Harness(MemcachedDriver, {"servers": [server.address]}, 60)
    server.stop()
    with pytest.raises(DriverError) as caught:
        h.call("write", new_key(), {"blob": "y" * 5000})
    assert not isinstance(caught.value, SessionTooLargeError)
    assert caught.value.operation == "write"
    assert caught.value.address == server.address
    assert h.driver._limits == {}  # nothing learnt: asked again once it is back
    server.start()
    h.call("write", new_key(), {"blob": "y" * 5000})
    assert h.driver._limits == {server.address: 1024 * 1024}


def test_a_session_the_server_refuses_is_reported_as_sent(
    small_items: tuple[Any, Harness, str],
) -> None:
    # Where the driver's estimate of an item's overhead falls short, or the limit
    # could not be asked, memcached's own refusal is still a clear error.
    server, h, key = small_items
    h.driver._limits[server.address] = 10 * 1024 * 1024  # a wrong belief: 10 MB
    with pytest.raises(SessionTooLargeError) as caught:
        h.call("write", key, {"blob": "x" * 600_000})
    assert caught.value.sent
    assert caught.value.limit == 512 * 1024
    assert "memcached refused it and dropped the stored session" in str(caught.value)
    assert h.call("read", key) is None
    assert h.driver._limits == {server.address: 512 * 1024}


def test_too_large_session_fails_the_request_at_commit(
    start_memcached: Callable[..., Any],
) -> None:
    server = start_memcached("-I", "512k")
    manager = SessionManager(
        SessionConfig(
            secret="memcached-tests-secret-0123456789abcdef",
            driver="memcached",
            drivers={"memcached": {"servers": [server.address]}},
        ),
        autoload_plugins=False,
        drivers={"memcached": MemcachedDriver},
    )

    async def view(request: Request) -> PlainTextResponse:
        request.session["blob"] = "z" * int(request.query_params["n"])
        return PlainTextResponse("ok")

    app = SessionMiddleware(Starlette(routes=[Route("/", view)]), manager)
    with TestClient(app) as http:
        assert http.get("/?n=100").text == "ok"
        with pytest.raises(SessionTooLargeError, match="over its item size limit of 524288 bytes"):
            http.get("/?n=600000")
    manager.close()


def test_expiry_counts_from_the_last_read(memcached: Any) -> None:
    h = Harness(MemcachedDriver, {"servers": [memcached.address]}, 3)
    key = new_key()
    h.call("write", key, {"a": 1})
    for _ in range(3):
        time.sleep(1.2)
        assert h.call("read", key) == {"a": 1}
