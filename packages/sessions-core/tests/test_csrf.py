"""sessions.csrf: the token, its rotation, and the ASGI, WSGI and Flask checks."""

from __future__ import annotations

import io
import re
from typing import Any
from wsgiref.util import setup_testing_defaults

import flask
import jinja2
import pytest
from sessions import ReadOnlySessionError, Session, SessionConfig, SessionManager
from sessions.asgi import SessionMiddleware as AsgiSessions
from sessions.csrf import CSRF_KEY, CsrfMiddleware, WsgiCsrfMiddleware, csrf_token, verify
from sessions.driver import RequestContext
from sessions.flask import FlaskSessions, csrf_protect
from sessions.jinja import install
from sessions.wsgi import SessionMiddleware as WsgiSessions
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

SECRET = "csrf-tests-secret-0123456789-abcdefghijkl"


def manager() -> SessionManager:
    return SessionManager(SessionConfig(secret=SECRET, driver="memory"), autoload_plugins=False)


def new_session(sessions: SessionManager, cookies: dict[str, str] | None = None) -> Session:
    session = sessions.session(RequestContext(cookies or {}))
    session.initiate()
    return session


def cookies_of(session: Session) -> dict[str, str]:
    return {name: c.value for name, c in session._context.outgoing.items()}


# -- the token ------------------------------------------------------------------------------


def test_token_verifies_under_any_mask_and_survives_the_request() -> None:
    sessions = manager()
    session = new_session(sessions)
    first, second = csrf_token(session), session.csrf_token()
    assert first != second  # a fresh mask per call (BREACH)
    assert re.fullmatch(r"[A-Za-z0-9_-]{86}", first)
    assert verify(session, first)
    assert verify(session, second)
    session.commit()
    later = new_session(sessions, cookies_of(session))
    assert verify(later, first)
    assert isinstance(later.get(CSRF_KEY), dict)
    later.csrf_token()
    assert not later.has_been_modified  # an issued token is reused, not rewritten


@pytest.mark.parametrize("bad", [None, "", "x" * 86, "short", "ü" * 86, "=" * 86])
def test_bad_tokens_do_not_verify(bad: Any) -> None:
    session = new_session(manager())
    session.csrf_token()
    assert not verify(session, bad)


def test_a_token_of_another_session_does_not_verify() -> None:
    sessions = manager()
    one, other = new_session(sessions), new_session(sessions)
    assert not verify(other, one.csrf_token())
    other.csrf_token()
    assert not verify(other, one.csrf_token())


def test_regenerate_rotates_the_token() -> None:
    sessions = manager()
    session = new_session(sessions)
    before = session.csrf_token()
    session.commit()
    again = new_session(sessions, cookies_of(session))
    assert verify(again, before)
    again.regenerate()
    assert not verify(again, before)
    after = again.csrf_token()
    assert verify(again, after)
    assert not verify(again, before)


def test_clear_drops_the_token() -> None:
    session = new_session(manager())
    token = session.csrf_token()
    session.clear()
    assert not verify(session, token)


def test_a_readonly_session_cannot_issue_a_token() -> None:
    session = manager().session(RequestContext({}))
    session.initiate(readonly=True)
    with pytest.raises(ReadOnlySessionError):
        session.csrf_token()


# -- ASGI ---------------------------------------------------------------------------------


def asgi_client(**options: Any) -> TestClient:
    async def form(request: Request) -> Response:
        return PlainTextResponse(request.scope["session"].csrf_token())

    async def change(request: Request) -> Response:
        data = await request.form()  # the body reaches the app unchanged
        request.scope["session"].increment("n")
        return JSONResponse({"n": request.scope["session"].get("n"), "note": data.get("note")})

    app = Starlette(
        routes=[
            Route("/form", form),
            Route("/change", change, methods=["POST", "PUT", "PATCH", "DELETE"]),
            Route("/hooks/in", change, methods=["POST"]),
        ]
    )
    return TestClient(AsgiSessions(CsrfMiddleware(app, **options), manager()))


def test_asgi_accepts_a_form_field_or_header_token_and_refuses_others() -> None:
    client = asgi_client(exempt_paths=["/hooks"])
    token = client.get("/form").text
    ok = client.post("/change", data={"csrf_token": token, "note": "hi"})
    assert ok.status_code == 200
    assert ok.json() == {"n": 1, "note": "hi"}
    multipart = client.post(
        "/change", data={"csrf_token": token, "note": "up"}, files={"f": ("a.txt", b"data")}
    )
    assert multipart.json() == {"n": 2, "note": "up"}
    for method in ("PUT", "PATCH", "DELETE"):
        assert client.request(method, "/change", headers={"X-CSRF-Token": token}).status_code == 200
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        refused = client.request(method, "/change")
        assert refused.status_code == 403
        assert "CSRF check failed: the request carries no CSRF token" in refused.text
        assert "'csrf_token'" in refused.text
        assert "'X-CSRF-Token'" in refused.text
    wrong = client.post("/change", data={"csrf_token": "x" * 86})
    assert wrong.status_code == 403
    assert "does not match" in wrong.text
    assert client.post("/hooks/in", data={"note": "webhook"}).status_code == 200
    assert client.get("/form").status_code == 200


def test_asgi_without_a_session_fails_closed_with_a_clear_message() -> None:
    async def ok(request: Request) -> Response:
        return PlainTextResponse("ok")

    client = TestClient(CsrfMiddleware(Starlette(routes=[Route("/", ok, methods=["POST"])])))
    refused = client.post("/")
    assert refused.status_code == 403
    assert "inside the session middleware" in refused.text
    assert "exempt_paths" in refused.text


def test_asgi_on_a_path_the_session_middleware_excludes_fails_closed() -> None:
    async def ok(request: Request) -> Response:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/health", ok, methods=["POST"])])
    client = TestClient(AsgiSessions(CsrfMiddleware(app), manager(), exclude_paths=["/health"]))
    assert client.post("/health").status_code == 403
    exempt = CsrfMiddleware(app, exempt_paths=["/health"])
    client = TestClient(AsgiSessions(exempt, manager(), exclude_paths=["/health"]))
    assert client.post("/health").status_code == 200


# -- WSGI ---------------------------------------------------------------------------------


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    session = environ["sessions.session"]
    if environ["REQUEST_METHOD"] == "GET":
        body = session.csrf_token().encode()
    else:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


def call(
    app: Any, method: str, cookies: dict[str, str], body: bytes = b"", **extra: Any
) -> tuple[str, bytes]:
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": "/", **extra}
    if body:
        environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["wsgi.input"] = io.BytesIO(body)
    if cookies:
        environ["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    setup_testing_defaults(environ)
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        statuses.append(status)
        for name, value in headers:
            if name == "Set-Cookie":
                key, _, rest = value.partition("=")
                cookies[key] = rest.split(";", 1)[0]
        return lambda data: None

    out = b"".join(app(environ, start_response))
    return statuses[0], out


def test_wsgi_accepts_a_form_field_or_header_token_and_refuses_others() -> None:
    app = WsgiSessions(WsgiCsrfMiddleware(wsgi_app), manager())
    cookies: dict[str, str] = {}
    _, token = call(app, "GET", cookies)
    body = f"csrf_token={token.decode()}&note=hi".encode()
    status, echoed = call(app, "POST", cookies, body)
    assert status == "200 OK"
    assert echoed == body  # the application still reads the whole body
    assert call(app, "DELETE", cookies, HTTP_X_CSRF_TOKEN=token.decode())[0] == "200 OK"
    status, message = call(app, "POST", cookies, b"note=hi")
    assert status == "403 Forbidden"
    assert b"CSRF check failed" in message
    assert call(app, "POST", {}, body)[0] == "403 Forbidden"  # another (fresh) session
    status, message = call(WsgiCsrfMiddleware(wsgi_app), "POST", {}, body)
    assert status == "403 Forbidden"
    assert b"inside the session middleware" in message


# -- Flask and Jinja ----------------------------------------------------------------------


def test_flask_hook_and_template_global() -> None:
    app = flask.Flask(__name__)

    @app.get("/")
    def page() -> str:
        return flask.render_template_string('<input name="csrf_token" value="{{ csrf_token() }}">')

    @app.post("/change")
    def change() -> str:
        flask.session["changed"] = True
        return "changed"

    @app.post("/api/in")
    def api_in() -> str:
        return "in"

    FlaskSessions(app, manager())
    csrf_protect(app, exempt_paths=["/api"])
    client = app.test_client()
    page_html = client.get("/").get_data(as_text=True)
    token = re.search(r'value="([^"]+)"', page_html)
    assert token is not None
    assert client.post("/change", data={"csrf_token": token.group(1)}).status_code == 200
    assert client.post("/change", headers={"X-CSRF-Token": token.group(1)}).status_code == 200
    refused = client.post("/change", data={"note": "x"})
    assert refused.status_code == 403
    assert "CSRF check failed" in refused.get_data(as_text=True)
    assert client.post("/api/in").status_code == 200


def test_flask_hook_needs_flask_sessions_first() -> None:
    with pytest.raises(RuntimeError, match="install FlaskSessions"):
        csrf_protect(flask.Flask(__name__))


def test_flask_hook_fails_closed_on_a_path_without_a_session() -> None:
    app = flask.Flask(__name__)

    @app.post("/static/x")
    def static_post() -> str:
        return "ok"

    FlaskSessions(app, manager(), exclude_paths=["/static"])
    csrf_protect(app)
    refused = app.test_client().post("/static/x")
    assert refused.status_code == 403
    assert "exempt_paths" in refused.get_data(as_text=True)


def test_jinja_global_outside_a_request_says_what_is_missing() -> None:
    environment = jinja2.Environment(autoescape=True)
    install(environment, lambda: None)
    with pytest.raises(RuntimeError, match="needs the request's session"):
        environment.from_string("{{ csrf_token() }}").render()
