"""The request lifecycle through the real ASGI middleware and a real Redis:
what is stored where, and how many commands each kind of request costs
(counted by the server itself, INFO commandstats)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sessions import SessionConfig, SessionManager
from sessions.asgi import SessionMiddleware
from sessions.keys import storage_key
from sessions.testing.servers import ServerProcess
from sessions_redis.driver import RedisDriver
from sessions_redis.records import parse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

AGE = 600
# A changed session is one EVALSHA (the compare-and-set script); INFO
# commandstats also counts the GETRANGE (the header) and SET the script runs inside the server,
# which are not round trips.
SCRIPT_WRITE = {"evalsha": 1, "getrange": 1, "set": 1}


async def put(request: Request) -> JSONResponse:
    for key, value in request.query_params.items():
        request.session.put(key, value)
    return JSONResponse(request.session.all())


async def get(request: Request) -> JSONResponse:
    return JSONResponse(request.session.all())


async def regenerate(request: Request) -> JSONResponse:
    request.session.regenerate()
    return JSONResponse(request.session.all())


async def clear(request: Request) -> JSONResponse:
    request.session.clear()
    return JSONResponse({})


async def untouched(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def flash(request: Request) -> JSONResponse:
    request.session.flash("notice", "saved")
    return JSONResponse({})


async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json(websocket.session.all())
    await websocket.close()


ROUTES = [
    WebSocketRoute("/ws", ws),
    Route("/put", put),
    Route("/get", get),
    Route("/regenerate", regenerate),
    Route("/clear", clear),
    Route("/untouched", untouched),
    Route("/flash", flash),
]


def make_manager(url: str, prefix: str, **options: Any) -> SessionManager:
    config = SessionConfig(
        secret="asgi-redis-tests-secret-0123456789abcdef",
        driver="redis",
        age=AGE,
        drivers={"redis": {"url": url, "key_prefix": prefix, **options}},
    )
    return SessionManager(config, autoload_plugins=False, drivers={"redis": RedisDriver})


@pytest.fixture
def prefix() -> str:
    return f"t{secrets.token_hex(4)}:"


@pytest.fixture(params=["asyncio", "trio"])
def client(
    redis_server: ServerProcess, tools: Any, prefix: str, request: pytest.FixtureRequest
) -> Iterator[TestClient]:
    """A client of the app on asyncio (the driver's redis.asyncio flavour) and on
    trio (where core runs the sync flavour in worker threads): same behaviour,
    same commands."""
    manager = make_manager(tools.url_of(redis_server), prefix)
    app = SessionMiddleware(Starlette(routes=ROUTES), manager)
    # The context manager keeps one event loop for all requests, as a server does.
    with TestClient(app, backend=request.param) as test_client:
        yield test_client


def stored_key(client: TestClient, prefix: str) -> str:
    token = client.cookies["session"].split(".")[0]
    return prefix + storage_key(token)


def count(
    client: TestClient, path: str, servers: list[ServerProcess], tools: Any
) -> dict[str, int]:
    tools.reset_stats(*servers)
    response = client.get(path)
    assert response.status_code == 200
    return tools.command_counts(*servers)


def test_cookie_name_is_core_default(client: TestClient) -> None:
    # The helper above reads the id cookie by name; fail clearly if core renames it.
    response = client.get("/put?a=1")
    assert list(response.cookies) == ["session"]


def test_stores_codec_payload_under_hashed_key_with_ttl(
    client: TestClient, redis_server: ServerProcess, tools: Any, prefix: str
) -> None:
    client.get("/put?user=ada")
    key = stored_key(client, prefix)
    token = client.cookies["session"].split(".")[0]
    admin = tools.admin(redis_server)
    stored = json.loads(parse(admin.get(key)).payload)
    assert stored.pop("__created__") == pytest.approx(time.time(), abs=5)  # core's own key
    assert stored == {"user": "ada"}
    assert admin.keys(f"{prefix}*") == [key.encode()]
    assert token not in key  # the raw token never reaches storage
    assert AGE - 5 <= admin.ttl(key) <= AGE


def test_values_persist_across_requests(client: TestClient) -> None:
    client.get("/put?user=ada")
    client.get("/put?lang=fr")
    assert client.get("/get").json() == {"user": "ada", "lang": "fr"}


def test_unchanged_session_costs_one_getex_and_refreshes_ttl(
    client: TestClient, redis_server: ServerProcess, tools: Any, prefix: str
) -> None:
    client.get("/put?user=ada")
    key = stored_key(client, prefix)
    admin = tools.admin(redis_server)
    admin.expire(key, 30)
    assert count(client, "/get", [redis_server], tools) == {"getex": 1}
    assert admin.ttl(key) > 30


def test_changed_session_costs_getex_then_one_script(
    client: TestClient, redis_server: ServerProcess, tools: Any
) -> None:
    client.get("/put?user=ada")
    assert count(client, "/put?user=bob", [redis_server], tools) == {"getex": 1, **SCRIPT_WRITE}
    assert client.get("/get").json() == {"user": "bob"}


def test_route_that_ignores_session_costs_one_command(
    client: TestClient, redis_server: ServerProcess, tools: Any
) -> None:
    client.get("/put?user=ada")
    assert count(client, "/untouched", [redis_server], tools) == {"getex": 1}


def test_request_without_cookie_costs_nothing_and_stores_nothing(
    client: TestClient, redis_server: ServerProcess, tools: Any, prefix: str
) -> None:
    assert count(client, "/get", [redis_server], tools) == {}
    assert tools.admin(redis_server).keys(f"{prefix}*") == []


def test_first_write_costs_one_script(
    client: TestClient, redis_server: ServerProcess, tools: Any
) -> None:
    client.get("/put?warm=up")  # opens the pool's connection (HELLO), not counted below
    client.cookies.clear()
    assert count(client, "/put?user=ada", [redis_server], tools) == SCRIPT_WRITE


def test_clearing_deletes_the_key(
    client: TestClient, redis_server: ServerProcess, tools: Any, prefix: str
) -> None:
    client.get("/put?user=ada")
    key = stored_key(client, prefix)
    assert count(client, "/clear", [redis_server], tools) == {"getex": 1, "del": 1}
    assert tools.admin(redis_server).exists(key) == 0


def test_regenerate_moves_the_session_and_deletes_the_old_key(
    client: TestClient, redis_server: ServerProcess, tools: Any, prefix: str
) -> None:
    client.get("/put?user=ada")
    old = stored_key(client, prefix)
    counts = count(client, "/regenerate", [redis_server], tools)
    new = stored_key(client, prefix)
    assert new != old
    assert counts == {"getex": 1, "del": 1, **SCRIPT_WRITE}
    admin = tools.admin(redis_server)
    assert admin.exists(old) == 0
    stored = json.loads(parse(admin.get(new)).payload)
    assert stored.pop("__created__") == pytest.approx(time.time(), abs=5)
    assert stored == {"user": "ada"}


def test_flash_messages_live_one_request(client: TestClient) -> None:
    client.get("/put?user=ada")
    client.get("/flash")
    client.get("/get")
    assert client.get("/get").json() == {"user": "ada"}


def test_unknown_id_gives_fresh_session_and_is_not_adopted(
    client: TestClient, redis_server: ServerProcess, tools: Any, prefix: str
) -> None:
    client.get("/put?user=ada")
    key = stored_key(client, prefix)
    tools.admin(redis_server).delete(key)
    assert client.get("/get").json() == {}
    client.get("/put?user=bob")
    assert stored_key(client, prefix) != key


def test_corrupt_entry_gives_fresh_session(
    client: TestClient, redis_server: ServerProcess, tools: Any, prefix: str
) -> None:
    client.get("/put?user=ada")
    key = stored_key(client, prefix)
    tools.admin(redis_server).set(key, b"{not json")
    response = client.get("/get")
    assert response.status_code == 200
    assert response.json() == {}


def test_websocket_gets_read_only_session(
    client: TestClient, redis_server: ServerProcess, tools: Any
) -> None:
    client.get("/put?user=ada")
    tools.reset_stats(redis_server)
    with client.websocket_connect("/ws") as socket:
        assert socket.receive_json() == {"user": "ada"}
    assert tools.command_counts(redis_server) == {"getex": 1}
