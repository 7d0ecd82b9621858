"""The sync flavour through the WSGI middleware: the same command costs as async."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from sessions import SessionConfig, SessionManager
from sessions.testing.servers import ServerProcess
from sessions.wsgi import SessionMiddleware
from sessions_redis.driver import RedisDriver
from werkzeug.test import Client


def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    session = environ["sessions.session"]
    path = environ["PATH_INFO"]
    if path == "/put":
        key, _, value = environ["QUERY_STRING"].partition("=")
        session.put(key, value)
    body = json.dumps(session.all()).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


@pytest.fixture
def client(redis_server: ServerProcess, tools: Any) -> Iterator[Client]:
    config = SessionConfig(
        secret="wsgi-redis-tests-secret-0123456789abcdef",
        driver="redis",
        age=600,
        drivers={"redis": {"url": tools.url_of(redis_server), "key_prefix": secrets.token_hex(4)}},
    )
    manager = SessionManager(config, autoload_plugins=False, drivers={"redis": RedisDriver})
    yield Client(SessionMiddleware(app, manager))
    manager.close()


def counted(client: Client, path: str, server: ServerProcess, tools: Any) -> dict[str, int]:
    tools.reset_stats(server)
    response = client.get(path)
    assert response.status_code == 200
    return dict(tools.command_counts(server))


def test_sync_round_trip_and_command_costs(
    client: Client, redis_server: ServerProcess, tools: Any
) -> None:
    client.get("/put?user=ada")
    assert counted(client, "/get", redis_server, tools) == {"getex": 1}
    assert counted(client, "/put?lang=fr", redis_server, tools) == {
        "getex": 1,
        "evalsha": 1,  # the compare-and-set script, and inside it:
        "getrange": 1,
        "set": 1,
    }
    assert json.loads(client.get("/get").data) == {"user": "ada", "lang": "fr"}
