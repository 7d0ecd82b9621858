"""sessions.fastapi: SessionDep gives the typed session in HTTP and websocket endpoints."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, WebSocket
from sessions import Session, SessionConfig, SessionManager
from sessions.asgi import SessionMiddleware
from sessions.fastapi import SessionDep, get_session
from starlette.testclient import TestClient

SECRET = "fastapi-tests-secret-0123456789-abcdefgh"


def build() -> TestClient:
    manager = SessionManager(SessionConfig(secret=SECRET, driver="memory"), autoload_plugins=False)
    app = FastAPI()
    app.add_middleware(SessionMiddleware, manager=manager, exclude_paths=["/health"])

    @app.get("/")
    async def home(session: SessionDep) -> dict[str, object]:
        return {"type": type(session).__name__, "n": session.increment("n")}

    @app.get("/sync")
    def sync_home(session: SessionDep) -> dict[str, object]:
        return {"n": session.increment("n")}

    @app.get("/health")
    async def health(session: SessionDep) -> str:
        return "unreachable"

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, session: SessionDep) -> None:
        await websocket.accept()
        await websocket.send_json({"n": session.get("n"), "readonly": session.readonly})
        await websocket.close()

    return TestClient(app)


def test_session_dep_is_our_session_and_persists() -> None:
    client = build()
    assert client.get("/").json() == {"type": "Session", "n": 1}
    assert client.get("/sync").json() == {"n": 2}
    assert client.get("/").json() == {"type": "Session", "n": 3}


def test_session_dep_in_a_websocket_is_read_only() -> None:
    client = build()
    client.get("/")
    with client.websocket_connect("/ws") as ws:
        assert ws.receive_json() == {"n": 1, "readonly": True}


def test_session_dep_without_a_session_says_what_to_fix() -> None:
    with pytest.raises(LookupError, match="exclude_paths"):
        build().get("/health")


def test_get_session_is_the_dependency_function() -> None:
    assert SessionDep.__metadata__[0].dependency is get_session  # type: ignore[attr-defined]
    assert SessionDep.__origin__ is Session  # type: ignore[attr-defined]
