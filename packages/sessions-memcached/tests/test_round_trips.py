"""Round trips per request, counted by memcached itself, through the whole ASGI stack.

An unchanged session costs one ``gat`` (memcached counts it as a touch command)
and nothing else; a changed one ``gat`` + ``set``; every request reuses the
manager's connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sessions import Session, SessionConfig, SessionManager
from sessions.asgi import SessionMiddleware
from sessions_memcached.driver import MemcachedDriver
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

SECRET = "memcached-tests-secret-0123456789abcdef"


async def view(request: Request) -> JSONResponse:
    session: Session = request.session  # type: ignore[assignment]
    action = request.query_params.get("do", "read")
    if action == "put":
        session.put("n", session.get("n", 0) + 1)
    elif action == "clear":
        session.clear()
    elif action == "regenerate":
        session.regenerate()
    elif action == "flash":
        session.flash("notice", "saved")
    return JSONResponse({"n": session.get("n"), "fresh": session.fresh})


@pytest.fixture
def client(memcached: Any) -> Iterator[TestClient]:
    config = SessionConfig(
        secret=SECRET,
        driver="memcached",
        age="1h",
        drivers={"memcached": {"servers": [memcached.address], "key_prefix": "trips:"}},
    )
    manager = SessionManager(config, autoload_plugins=False, drivers={"memcached": MemcachedDriver})
    app = Starlette(routes=[Route("/", view)])
    with TestClient(SessionMiddleware(app, manager)) as http:
        yield http
    manager.close()


def _delta(memcached: Any, before: dict[str, int]) -> dict[str, int]:
    after = memcached.counters()
    return {k: after[k] - before[k] for k in before if after[k] != before[k]}


def test_commands_per_request(client: TestClient, memcached: Any) -> None:
    before = memcached.counters()
    assert client.get("/?do=put").json() == {"n": 1, "fresh": True}
    # No cookie yet: nothing to read, one acknowledged set, one new connection.
    assert _delta(memcached, before) == {"cmd_set": 1, "total_connections": 1}

    before = memcached.counters()
    assert client.get("/").json() == {"n": 1, "fresh": False}
    # Unchanged: get-and-touch alone, on the same connection.
    assert _delta(memcached, before) == {"cmd_touch": 1}

    before = memcached.counters()
    assert client.get("/?do=put").json() == {"n": 2, "fresh": False}
    assert _delta(memcached, before) == {"cmd_touch": 1, "cmd_set": 1}

    before = memcached.counters()
    client.get("/?do=clear")
    # Emptied: read, then delete the record.
    assert _delta(memcached, before) == {"cmd_touch": 1, "delete_hits": 1}


def test_regenerate_deletes_old_and_writes_new(client: TestClient, memcached: Any) -> None:
    client.get("/?do=put")
    old = client.cookies["session"]
    before = memcached.counters()
    client.get("/?do=regenerate")
    assert client.cookies["session"] != old
    assert _delta(memcached, before) == {"cmd_touch": 1, "delete_hits": 1, "cmd_set": 1}


def test_many_requests_share_one_connection(client: TestClient, memcached: Any) -> None:
    client.get("/?do=put")
    before = memcached.counters()
    for _ in range(30):
        client.get("/")
    for _ in range(10):
        client.get("/?do=put")
    assert _delta(memcached, before) == {"cmd_touch": 40, "cmd_set": 10}


def test_request_without_session_costs_nothing(client: TestClient, memcached: Any) -> None:
    before = memcached.counters()
    assert client.get("/").json() == {"n": None, "fresh": True}
    assert _delta(memcached, before) == {}


def test_read_refreshes_expiry(memcached: Any) -> None:
    manager = SessionManager(
        SessionConfig(
            secret=SECRET,
            driver="memcached",
            age=100,
            drivers={"memcached": {"servers": [memcached.address], "key_prefix": "ttl:"}},
        ),
        autoload_plugins=False,
        drivers={"memcached": MemcachedDriver},
    )
    driver = manager.driver
    key = "K" * 43
    driver.write(key, {"a": 1})
    memcached.raw.touch(f"ttl:{key}", 5)
    assert memcached.ttl(f"ttl:{key}") <= 5
    assert driver.read(key) == {"a": 1}
    assert 98 <= memcached.ttl(f"ttl:{key}") <= 100
    manager.close()
