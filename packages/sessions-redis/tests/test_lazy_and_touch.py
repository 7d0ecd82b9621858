"""Lazy sessions and throttled touches, counted by Redis itself (INFO commandstats)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from sessions import SessionConfig, SessionManager
from sessions.asgi import SessionMiddleware, load_session
from sessions.testing.servers import ServerProcess
from sessions_redis.driver import RedisDriver
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient


async def put(request: Request) -> PlainTextResponse:
    (await load_session(request)).increment("n")
    return PlainTextResponse("ok")


async def read(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str((await load_session(request)).get("n")))


async def nothing(request: Request) -> PlainTextResponse:
    return PlainTextResponse("untouched")


@pytest.fixture
def client(redis_server: ServerProcess, tools: Any) -> Iterator[TestClient]:
    config = SessionConfig(
        secret="redis-lazy-secret-0123456789abcdefghijk",
        driver="redis",
        age="1h",
        lazy=True,
        touch_interval="5m",
        drivers={"redis": {"url": tools.url_of(redis_server), "key_prefix": secrets.token_hex(4)}},
    )
    manager = SessionManager(config, autoload_plugins=False, drivers={"redis": RedisDriver})
    routes = [Route("/put", put), Route("/read", read), Route("/nothing", nothing)]
    with TestClient(SessionMiddleware(Starlette(routes=routes), manager)) as http:
        yield http
    manager.close()


def test_an_unused_lazy_session_sends_no_command_and_no_cookie(
    client: TestClient, redis_server: ServerProcess, tools: Any
) -> None:
    client.get("/put")
    tools.reset_stats(redis_server)
    response = client.get("/nothing")
    assert tools.command_counts(redis_server) == {}
    assert "set-cookie" not in response.headers


def test_a_read_whose_touch_is_not_due_is_one_plain_get_and_no_cookie(
    client: TestClient, redis_server: ServerProcess, tools: Any
) -> None:
    client.get("/put")
    tools.reset_stats(redis_server)
    response = client.get("/read")
    assert response.text == "1"
    assert tools.command_counts(redis_server) == {"get": 1}
    assert "set-cookie" not in response.headers
    assert response.headers["vary"] == "Cookie"
