"""sessions.testing.session_for/asession_for: reading and writing an app's
sessions in tests without HTTP; and Flask's session_transaction on our interface."""

from __future__ import annotations

import anyio
import flask
import pytest
from sessions import SessionConfig, SessionManager
from sessions.asgi import SessionMiddleware
from sessions.flask import FlaskSessions
from sessions.testing import asession_for, session_for
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

SECRET = "testing-helper-secret-0123456789-abcdefgh"


def make_manager(**config: object) -> SessionManager:
    return SessionManager(
        SessionConfig(secret=SECRET, **{"driver": "memory", **config}),  # type: ignore[arg-type]
        autoload_plugins=False,
    )


def starlette_client(manager: SessionManager) -> TestClient:
    async def home(request: Request) -> Response:
        session = request.session
        visits = session.increment("visits")
        return PlainTextResponse(f"user={session.get('user.name', '')} visits={visits}")

    app = Starlette(routes=[Route("/", home)])
    return TestClient(SessionMiddleware(app, manager))


def test_write_before_a_request_read_after_it() -> None:
    manager = make_manager()
    client = starlette_client(manager)
    with session_for(manager, client.cookies) as session:
        assert session.fresh
        session.put("user.name", "ada")
    assert client.get("/").text == "user=ada visits=1"
    with session_for(manager, client.cookies) as session:
        assert not session.fresh
        assert session.get("visits") == 1
        session.put("visits", 41)
    assert client.get("/").text == "user=ada visits=42"


def test_a_dict_jar_and_regenerate() -> None:
    manager = make_manager()
    jar: dict[str, str] = {}
    with session_for(manager, jar) as session:
        session.put("n", 1)
    first = jar["session"]
    with session_for(manager, jar) as session:
        session.regenerate()
    assert jar["session"] != first
    with session_for(manager, {"session": first}) as session:
        assert session.fresh  # the old id is gone
    with session_for(manager, jar) as session:
        assert session.get("n") == 1
        session.clear()
    with session_for(manager, jar) as session:
        assert session.all() == {}


def test_deleted_cookies_leave_the_jar() -> None:
    # The cookie driver deletes its data cookie when the session empties.
    manager = make_manager(driver="cookie")
    jar: dict[str, str] = {}
    with session_for(manager, jar) as session:
        session.put("n", 1)
    assert len(jar) == 2
    with session_for(manager, jar) as session:
        session.clear()
    assert len(jar) == 1


def test_an_exception_in_the_block_commits_nothing() -> None:
    manager = make_manager()
    jar: dict[str, str] = {}

    def half_way() -> None:
        with session_for(manager, jar) as session:
            session.put("n", 1)
            raise RuntimeError("test failed half way")

    with pytest.raises(RuntimeError):
        half_way()
    assert jar == {}


def test_readonly_reads_and_refuses_writes() -> None:
    manager = make_manager()
    jar: dict[str, str] = {}
    with session_for(manager, jar) as session:
        session.put("n", 1)
    before = dict(jar)
    with session_for(manager, jar, readonly=True) as session:
        assert session.get("n") == 1
        with pytest.raises(Exception, match="read-only"):
            session.put("n", 2)
    assert jar == before


def test_async_twin() -> None:
    manager = make_manager()
    jar: dict[str, str] = {}

    async def scenario() -> object:
        async with asession_for(manager, jar) as session:
            session.flash("notice", "hi")
        async with asession_for(manager, jar) as session:
            return session.flash_messages.get("notice")

    assert anyio.run(scenario) == "hi"


def test_wrong_manager_argument_says_what_is_needed() -> None:
    with pytest.raises(TypeError, match="SessionManager"), session_for({}):  # type: ignore[arg-type]
        pass


def test_flask_session_transaction_uses_our_sessions() -> None:
    manager = make_manager()
    app = flask.Flask(__name__)
    FlaskSessions(app, manager)

    @app.get("/")
    def home() -> str:
        return f"user={flask.session.get('user.name')} n={flask.session.increment('n')}"

    client = app.test_client()
    with client.session_transaction() as session:
        session.put("user.name", "ada")
    assert client.get("/").text == "user=ada n=1"
    with client.session_transaction() as session:
        assert session["n"] == 1
