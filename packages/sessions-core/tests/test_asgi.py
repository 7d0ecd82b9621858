"""ASGI specifics: websockets, lifespan, streaming, disabled sessions, FastAPI-style access."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sessions import ConfigError, DriverNotFoundError, SessionConfig, SessionManager
from sessions.asgi import SessionMiddleware
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

SECRET = "asgi-tests-secret-0123456789-abcdefghijk"


def build(**config: Any) -> tuple[TestClient, list[str]]:
    events: list[str] = []

    async def put(request: Request) -> Response:
        request.session["n"] = request.session.get("n", 0) + 1
        return JSONResponse({"n": request.session["n"]})

    async def stream(request: Request) -> Response:
        request.session.put("streamed", True)

        async def body() -> AsyncIterator[bytes]:
            yield b"a"
            yield b"b"

        return StreamingResponse(body())

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        session = websocket.scope["session"]
        try:
            session.put("x", 1)
            refused = "no"
        except Exception as exc:
            refused = type(exc).__name__
        await websocket.send_json(
            {"n": session.get("n"), "readonly": session.readonly, "put": refused}
        )
        await websocket.close()

    async def health(request: Request) -> Response:
        return PlainTextResponse(("session" in request.scope and "yes") or "no")

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    app = Starlette(
        routes=[
            Route("/", put),
            Route("/stream", stream),
            Route("/health", health),
            WebSocketRoute("/ws", ws),
        ],
        lifespan=lifespan,
    )
    manager = SessionManager(
        SessionConfig(secret=SECRET, driver="memory", **config), autoload_plugins=False
    )
    return TestClient(SessionMiddleware(app, manager, exclude_paths=["/health/"])), events


def test_request_session_is_ours_and_persists() -> None:
    client, _ = build()
    assert client.get("/").json() == {"n": 1}
    assert client.get("/").json() == {"n": 2}


def test_websocket_gets_a_read_only_session() -> None:
    client, _ = build()
    client.get("/")
    with client.websocket_connect("/ws") as ws:
        data = ws.receive_json()
    assert data == {"n": 1, "readonly": True, "put": "ReadOnlySessionError"}
    assert client.get("/").json() == {"n": 2}


def test_lifespan_passes_through() -> None:
    client, events = build()
    with client:
        client.get("/")
    assert events == ["startup", "shutdown"]


def test_streaming_response_carries_the_cookie() -> None:
    client, _ = build()
    response = client.get("/stream")
    assert response.text == "ab"
    assert "session=" in response.headers["set-cookie"]


def test_excluded_paths_get_no_session_and_no_cookie() -> None:
    client, _ = build()
    for path in ("/health", "/health/"):
        response = client.get(path)
        assert response.text == "no"
        assert "set-cookie" not in response.headers


def test_disabled_sessions_pass_through() -> None:
    client, _ = build(enabled=False)
    response = client.get("/health")
    assert response.text == "no"


def test_secure_auto_follows_the_scheme() -> None:
    client, _ = build()
    assert "Secure" not in client.get("/").headers["set-cookie"]
    secure = TestClient(client.app, base_url="https://testserver")
    assert "Secure" in secure.get("/").headers["set-cookie"]


def test_bad_exclude_path_fails_at_startup() -> None:
    manager = SessionManager(SessionConfig(secret=SECRET, driver="memory"), autoload_plugins=False)
    with pytest.raises(ValueError, match="start with '/'"):
        SessionMiddleware(Starlette(), manager, exclude_paths=["static"])


def test_bad_driver_fails_when_the_manager_is_built() -> None:
    with pytest.raises(DriverNotFoundError, match="'nope'"):
        SessionManager(SessionConfig(secret=SECRET, driver="nope"), autoload_plugins=False)
    with pytest.raises(ConfigError, match=r"drivers\.memory\.bogus"):
        SessionManager(
            SessionConfig(secret=SECRET, driver="memory", drivers={"memory": {"bogus": 1}}),
            autoload_plugins=False,
        )


def test_current_session_from_a_request_a_websocket_or_a_scope() -> None:
    from sessions import Session
    from sessions.asgi import current_session

    async def view(request: Request) -> Response:
        session = current_session(request)
        assert session is current_session(request.scope)
        session.put("seen", True)
        return PlainTextResponse(type(session).__name__)

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"seen": current_session(websocket).get("seen")})
        await websocket.close()

    manager = SessionManager(SessionConfig(secret=SECRET, driver="memory"))
    app = SessionMiddleware(
        Starlette(routes=[Route("/", view), WebSocketRoute("/ws", ws)]), manager
    )
    with TestClient(app) as client:
        assert client.get("/").text == Session.__name__
        with client.websocket_connect("/ws") as socket:
            assert socket.receive_json() == {"seen": True}


@pytest.mark.parametrize(
    ("scope", "holds"),
    [
        ({"type": "http"}, "nothing"),  # no middleware, or an excluded path
        ({"type": "http", "session": {"n": 1}}, "a dict"),  # Starlette's own middleware
    ],
)
def test_current_session_without_our_session_says_what_to_fix(
    scope: dict[str, Any], holds: str
) -> None:
    from sessions.asgi import current_session

    with pytest.raises(LookupError) as failed:
        current_session(Request(scope))
    message = str(failed.value)
    assert f"(it holds {holds})" in message
    assert "sessions.asgi.SessionMiddleware" in message
    assert "exclude_paths" in message
