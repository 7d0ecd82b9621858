"""Redis going away, mid-request or between requests, and coming back: requests
fail with an error naming the driver, the operation and the address, and the
next request after the restart works, with no restart of the application."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from sessions import DriverError, SessionConfig, SessionManager
from sessions.asgi import SessionMiddleware as AsgiMiddleware
from sessions.testing.servers import ServerProcess
from sessions.wsgi import SessionMiddleware as WsgiMiddleware
from sessions_redis.driver import RedisDriver
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from werkzeug.test import Client

#: Set by a test: called inside the request, after the session was read.
on_request: list[Callable[[], None]] = []


def manager_for(server: ServerProcess, **options: Any) -> SessionManager:
    config = SessionConfig(
        secret="fault-tests-secret-0123456789abcdef",
        driver="redis",
        age=600,
        drivers={"redis": {"url": f"redis://{server.address}/0", **options}},
    )
    return SessionManager(config, autoload_plugins=False, drivers={"redis": RedisDriver})


async def asgi_view(request: Request) -> JSONResponse:
    session = request.session
    while on_request:
        on_request.pop()()
    if request.url.path == "/put":
        for key, value in request.query_params.items():
            session.put(key, value)
    return JSONResponse(session.all())


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    session = environ["sessions.session"]
    while on_request:
        on_request.pop()()
    if environ["PATH_INFO"] == "/put":
        key, _, value = environ["QUERY_STRING"].partition("=")
        session.put(key, value)
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(session.all()).encode()]


class AsgiBrowser:
    """Requests through the ASGI middleware (the async flavour)."""

    def __init__(self, manager: SessionManager) -> None:
        app = AsgiMiddleware(
            Starlette(routes=[Route("/put", asgi_view), Route("/get", asgi_view)]), manager
        )
        self.client = TestClient(app).__enter__()

    def get(self, path: str) -> Any:
        response = self.client.get(path)
        assert response.status_code == 200
        return response.json()

    def close(self) -> None:
        self.client.__exit__(None, None, None)


class WsgiBrowser:
    """Requests through the WSGI middleware (the sync flavour)."""

    def __init__(self, manager: SessionManager) -> None:
        self.client = Client(WsgiMiddleware(wsgi_app, manager))

    def get(self, path: str) -> Any:
        response = self.client.get(path)
        assert response.status_code == 200
        return json.loads(response.data)

    def close(self) -> None:
        pass


@pytest.fixture(params=["async", "sync"])
def browser_factory(request: pytest.FixtureRequest) -> Iterable[Callable[..., Any]]:
    made: list[Any] = []

    def make(manager: SessionManager) -> Any:
        browser = (AsgiBrowser if request.param == "async" else WsgiBrowser)(manager)
        made.append(browser)
        return browser

    yield make
    on_request.clear()
    for browser in made:
        browser.close()


def assert_names_everything(exc: DriverError, operation: str, server: ServerProcess) -> None:
    message = str(exc)
    assert "'redis'" in message
    assert f"failed to {operation}" in message
    assert f"redis://{server.address}/0" in message
    assert exc.operation == operation
    assert exc.__cause__ is not None


def test_down_between_requests_then_back(
    own_redis: ServerProcess, browser_factory: Callable[..., Any]
) -> None:
    browser = browser_factory(manager_for(own_redis))
    assert browser.get("/put?user=ada") == {"user": "ada"}
    own_redis.stop()
    with pytest.raises(DriverError) as failed:
        browser.get("/get")
    assert_names_everything(failed.value, "read", own_redis)
    own_redis.start()
    # The server kept nothing (no persistence), so the session starts afresh.
    assert browser.get("/get") == {}
    assert browser.get("/put?user=bob") == {"user": "bob"}
    assert browser.get("/get") == {"user": "bob"}


def test_drops_mid_request_then_back(
    own_redis: ServerProcess, browser_factory: Callable[..., Any]
) -> None:
    browser = browser_factory(manager_for(own_redis))
    assert browser.get("/put?user=ada") == {"user": "ada"}
    on_request.append(own_redis.stop)
    with pytest.raises(DriverError) as failed:
        browser.get("/put?user=bob")
    assert_names_everything(failed.value, "write", own_redis)
    own_redis.start()
    assert browser.get("/put?user=cy") == {"user": "cy"}
    assert browser.get("/get") == {"user": "cy"}


def test_restart_while_idle_is_invisible(
    own_redis: ServerProcess, browser_factory: Callable[..., Any], tools: Any
) -> None:
    # Pooled connections die with the server; the next request must not fail.
    browser = browser_factory(manager_for(own_redis))
    assert browser.get("/put?user=ada") == {"user": "ada"}
    own_redis.restart()
    assert browser.get("/get") == {}
    assert browser.get("/put?user=bob") == {"user": "bob"}


def test_killed_connection_is_retried_on_a_new_one(
    own_redis: ServerProcess, browser_factory: Callable[..., Any], tools: Any
) -> None:
    browser = browser_factory(manager_for(own_redis))
    assert browser.get("/put?user=ada") == {"user": "ada"}
    admin = tools.admin(own_redis)
    on_request.append(lambda: admin.client_kill_filter(_type="normal", skipme=True))
    assert browser.get("/put?lang=fr") == {"user": "ada", "lang": "fr"}
    assert browser.get("/get") == {"user": "ada", "lang": "fr"}


def test_without_retries_a_killed_connection_fails_once(
    own_redis: ServerProcess, browser_factory: Callable[..., Any], tools: Any
) -> None:
    # Pooled connections are reused without a probe (a probe per command would
    # cost a syscall), so with retries=0 a connection killed while idle fails
    # the one command that finds it dead; the next command reconnects.
    browser = browser_factory(manager_for(own_redis, retries=0))
    assert browser.get("/put?user=ada") == {"user": "ada"}
    admin = tools.admin(own_redis)
    on_request.append(lambda: admin.client_kill_filter(_type="normal", skipme=True))
    with pytest.raises(DriverError) as failed:
        browser.get("/put?lang=fr")
    assert_names_everything(failed.value, "write", own_redis)
    assert browser.get("/get") == {"user": "ada"}


def test_unreachable_at_startup_fails_on_first_request_not_at_import(
    own_redis: ServerProcess, browser_factory: Callable[..., Any]
) -> None:
    own_redis.stop()
    browser = browser_factory(manager_for(own_redis))
    with pytest.raises(DriverError) as failed:
        browser.get("/put?user=ada")
    assert_names_everything(failed.value, "write", own_redis)
    own_redis.start()
    assert browser.get("/put?user=ada") == {"user": "ada"}


def test_server_without_getex_is_named_clearly(tools: Any) -> None:
    # As a Redis older than 6.2 would: GETEX is an unknown command.
    server = tools.start_redis("redis-no-getex", "--rename-command", "GETEX", "GETEX_HIDDEN")
    try:
        browser = WsgiBrowser(manager_for(server))
        assert browser.get("/put?user=ada") == {"user": "ada"}
        with pytest.raises(DriverError) as failed:
            browser.get("/get")
        assert_names_everything(failed.value, "read", server)
        assert "needs Redis >= 6.2" in str(failed.value)
    finally:
        server.cleanup()
