"""Lazy sessions and throttled touches, counted by memcached itself."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sessions import SessionConfig, SessionManager
from sessions.asgi import SessionMiddleware, load_session
from sessions_memcached.driver import MemcachedDriver
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

SECRET = "memcached-lazy-secret-0123456789abcdefgh"


async def put(request: Request) -> PlainTextResponse:
    (await load_session(request)).increment("n")
    return PlainTextResponse("ok")


async def read(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str((await load_session(request)).get("n")))


async def nothing(request: Request) -> PlainTextResponse:
    return PlainTextResponse("untouched")


@pytest.fixture
def client(memcached: Any) -> Iterator[TestClient]:
    config = SessionConfig(
        secret=SECRET,
        driver="memcached",
        age="1h",
        lazy=True,
        touch_interval="5m",
        drivers={"memcached": {"servers": [memcached.address], "key_prefix": "lazy:"}},
    )
    manager = SessionManager(config, autoload_plugins=False, drivers={"memcached": MemcachedDriver})
    routes = [Route("/put", put), Route("/read", read), Route("/nothing", nothing)]
    with TestClient(SessionMiddleware(Starlette(routes=routes), manager)) as http:
        yield http
    manager.close()


def _delta(memcached: Any, before: dict[str, int]) -> dict[str, int]:
    after = memcached.counters()
    return {k: after[k] - before[k] for k in before if after[k] != before[k]}


def test_an_unused_lazy_session_sends_no_command_and_no_cookie(
    client: TestClient, memcached: Any
) -> None:
    client.get("/put")
    before = memcached.counters()
    response = client.get("/nothing")
    assert _delta(memcached, before) == {}
    assert "set-cookie" not in response.headers
    assert "vary" not in response.headers


def test_a_read_whose_touch_is_not_due_is_one_plain_get_and_no_cookie(
    client: TestClient, memcached: Any
) -> None:
    client.get("/put")
    before = memcached.counters()
    response = client.get("/read")
    assert response.text == "1"
    assert _delta(memcached, before) == {"cmd_get": 1}
    assert "set-cookie" not in response.headers
    assert response.headers["vary"] == "Cookie"


def test_an_anonymous_visitor_gets_no_cookie_and_costs_nothing(
    client: TestClient, memcached: Any
) -> None:
    before = memcached.counters()
    response = client.get("/read")
    assert response.text == "None"
    assert _delta(memcached, before) == {}
    assert "set-cookie" not in response.headers


def test_tagging_is_refused_naming_the_drivers_that_can(memcached: Any) -> None:
    from sessions import TaggingNotSupportedError
    from sessions.driver import RequestContext

    manager = SessionManager(
        SessionConfig(
            secret=SECRET,
            driver="memcached",
            drivers={"memcached": {"servers": [memcached.address]}},
        ),
        autoload_plugins=False,
        drivers={"memcached": MemcachedDriver},
    )
    assert manager.sessions.supports_tagging is False
    session = manager.session(RequestContext({}))
    session.initiate()
    with pytest.raises(TaggingNotSupportedError, match=r"'memcached'.*memory, file, redis, sql"):
        session.tag("user-1")
    manager.close()
