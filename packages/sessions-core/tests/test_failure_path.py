"""The failure path of the ASGI and WSGI middleware (Flask's is in test_flask.py):
a handler that raises, or a 5xx response, commits nothing unless
``commit_on_error`` is set; and the once-per-middleware warning about a
TLS-terminating proxy whose headers the server ignores (all three integrations)."""

from __future__ import annotations

import logging
from typing import Any
from wsgiref.util import setup_testing_defaults

import flask
import pytest
from sessions import SessionConfig, SessionManager
from sessions.asgi import SessionMiddleware as AsgiMiddleware
from sessions.flask import FlaskSessions
from sessions.wsgi import SessionMiddleware as WsgiMiddleware
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

SECRET = "failure-tests-secret-0123456789-abcdefghij"


def manager(**config: Any) -> SessionManager:
    return SessionManager(
        SessionConfig(secret=SECRET, driver="memory", **config), autoload_plugins=False
    )


# -- ASGI --------------------------------------------------------------------------------


def asgi_client(**config: Any) -> TestClient:
    async def start(request: Request) -> Response:
        request.session["started"] = True
        return PlainTextResponse("ok")

    async def boom(request: Request) -> Response:
        request.session["saw_raise"] = True
        raise RuntimeError("boom")

    async def unavailable(request: Request) -> Response:
        request.session["saw_503"] = True
        return PlainTextResponse("later", status_code=503)

    async def seen(request: Request) -> Response:
        return JSONResponse(request.session.all())

    app = Starlette(
        routes=[
            Route("/start", start),
            Route("/boom", boom),
            Route("/unavailable", unavailable),
            Route("/seen", seen),
        ]
    )
    return TestClient(AsgiMiddleware(app, manager(**config)), raise_server_exceptions=False)


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("commit_on_error", [False, True])
def test_asgi_server_errors_commit_nothing_unless_configured(
    commit_on_error: bool, lazy: bool
) -> None:
    client = asgi_client(commit_on_error=commit_on_error, lazy=lazy)
    assert client.get("/start").status_code == 200
    assert client.get("/boom").status_code == 500
    unavailable = client.get("/unavailable")
    assert unavailable.status_code == 503
    assert ("set-cookie" in unavailable.headers) is commit_on_error
    expected = {"started": True}
    if commit_on_error:
        expected |= {"saw_raise": True, "saw_503": True}
    assert client.get("/seen").json() == expected


# -- WSGI --------------------------------------------------------------------------------


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    session = environ["sessions.session"]
    path = environ["PATH_INFO"]
    if path == "/seen":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [repr(sorted(session.all())).encode()]
    session.put(path.strip("/"), True)
    if path == "/boom":
        raise RuntimeError("boom")
    start_response("503 Service Unavailable" if path == "/unavailable" else "200 OK", [])
    return [b""]


def call_wsgi(
    middleware: WsgiMiddleware, path: str, cookies: dict[str, str], **environ_extra: Any
) -> tuple[str, bytes]:
    environ: dict[str, Any] = {"PATH_INFO": path, **environ_extra}
    if cookies:
        environ["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    setup_testing_defaults(environ)
    seen: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen.append(status)
        for name, value in headers:
            if name == "Set-Cookie":
                cookie_name, _, rest = value.partition("=")
                cookies[cookie_name] = rest.split(";", 1)[0]
        return lambda data: None

    body = b"".join(middleware(environ, start_response))
    return seen[0], body


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("commit_on_error", [False, True])
def test_wsgi_server_errors_commit_nothing_unless_configured(
    commit_on_error: bool, lazy: bool
) -> None:
    middleware = WsgiMiddleware(wsgi_app, manager(commit_on_error=commit_on_error, lazy=lazy))
    cookies: dict[str, str] = {}
    assert call_wsgi(middleware, "/start", cookies)[0] == "200 OK"
    with pytest.raises(RuntimeError, match="boom"):
        call_wsgi(middleware, "/boom", cookies)
    assert call_wsgi(middleware, "/unavailable", cookies)[0].startswith("503")
    _, body = call_wsgi(middleware, "/seen", cookies)
    expected = ["start"] + (["boom", "unavailable"] if commit_on_error else [])
    assert body.decode() == repr(sorted(expected))


# -- the proxy warning ----------------------------------------------------------------------


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "WITHOUT the Secure flag" in r.getMessage()]


@pytest.mark.parametrize(
    "headers",
    [{"X-Forwarded-Proto": "https"}, {"Forwarded": 'for=10.0.0.1;proto="https"'}],
)
def test_asgi_warns_once_about_a_forwarded_https_request(
    caplog: pytest.LogCaptureFixture, headers: dict[str, str]
) -> None:
    client = asgi_client()
    with caplog.at_level(logging.WARNING, logger="sessions"):
        client.get("/start")  # no header: no warning
        assert warnings_of(caplog) == []
        for _ in range(3):
            client.get("/start", headers=headers)
    found = warnings_of(caplog)
    assert len(found) == 1
    assert "--proxy-headers" in found[0]
    assert "secure=True" in found[0]


def test_asgi_does_not_warn_over_https_or_with_secure_set(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="sessions"):
        asgi_client().get("https://testserver/start", headers={"X-Forwarded-Proto": "https"})
        explicit = asgi_client(cookie={"secure": False})
        explicit.get("/start", headers={"X-Forwarded-Proto": "https"})
        asgi_client().get("/start", headers={"X-Forwarded-Proto": "http"})
    assert warnings_of(caplog) == []


def test_wsgi_warns_once_about_a_forwarded_https_request(caplog: pytest.LogCaptureFixture) -> None:
    middleware = WsgiMiddleware(wsgi_app, manager())
    with caplog.at_level(logging.WARNING, logger="sessions"):
        call_wsgi(middleware, "/start", {})
        assert warnings_of(caplog) == []
        for _ in range(3):
            call_wsgi(middleware, "/start", {}, HTTP_X_FORWARDED_PROTO="https")
        call_wsgi(
            WsgiMiddleware(wsgi_app, manager()),
            "/start",
            {},
            HTTP_X_FORWARDED_PROTO="https",
            **{"wsgi.url_scheme": "https"},
        )
    assert len(warnings_of(caplog)) == 1


def test_flask_warns_once_about_a_forwarded_https_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = flask.Flask(__name__)

    @app.get("/")
    def index() -> str:
        flask.session["a"] = 1
        return "ok"

    FlaskSessions(app, manager())
    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger="sessions"):
        client.get("/")
        assert warnings_of(caplog) == []
        for _ in range(3):
            client.get("/", headers={"X-Forwarded-Proto": "https"})
    assert len(warnings_of(caplog)) == 1
