"""WSGI specifics: commit before the headers, form reading for flash_all, startup checks.

The shared lifecycle scenarios (test_lifecycle.py) already run on this
middleware; these cover what only WSGI has. Requests go over real HTTP to
wsgiref's server on a loopback port.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlencode
from wsgiref.simple_server import WSGIRequestHandler, make_server
from wsgiref.util import setup_testing_defaults

import httpx
import pytest
from sessions import ConfigError, Session, SessionConfig, SessionError, SessionManager
from sessions.wsgi import MAX_FORM_BYTES, SessionMiddleware, current_session
from werkzeug.wrappers import Request as WerkzeugRequest

SECRET = "wsgi-tests-secret-0123456789-abcdefghijk"
WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def manager(drivers: dict[str, Any] | None = None, **config: Any) -> SessionManager:
    return SessionManager(
        SessionConfig(secret=SECRET, driver=config.pop("driver", "memory"), **config),
        autoload_plugins=False,
        drivers=drivers,
    )


@pytest.fixture
def serve() -> Iterator[Callable[[WSGIApp], httpx.Client]]:
    """Serve a WSGI app with wsgiref on a free loopback port; yield an httpx client."""
    running: list[tuple[Any, threading.Thread, httpx.Client]] = []

    def start(app: WSGIApp) -> httpx.Client:
        server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        thread.start()
        client = httpx.Client(base_url=f"http://127.0.0.1:{server.server_address[1]}")
        running.append((server, thread, client))
        return client

    yield start
    for server, thread, client in running:
        client.close()
        server.shutdown()
        server.server_close()
        thread.join()


def respond(start_response: Any, body: object, status: str = "200 OK") -> list[bytes]:
    start_response(status, [("Content-Type", "application/json")])
    return [json.dumps(body, default=str).encode()]


def test_session_is_in_environ_and_persists(serve: Callable[[WSGIApp], httpx.Client]) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = current_session(environ)
        assert session is environ["sessions.session"]
        return respond(start_response, {"n": session.increment("n"), "fresh": session.fresh})

    client = serve(SessionMiddleware(app, manager()))
    assert client.get("/").json() == {"n": 1, "fresh": True}
    assert client.get("/").json() == {"n": 2, "fresh": False}


def test_commit_happens_before_start_response_passes_headers_on(
    serve: Callable[[WSGIApp], httpx.Client],
) -> None:
    sessions = manager()

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        session: Session = environ["sessions.session"]
        session.put("user", "ada")
        start_response("200 OK", [("Content-Type", "text/plain")])
        # The body runs after start_response: the store must already hold the write.
        stored = sessions.driver.read(session.session_id)
        yield json.dumps(stored).encode()

    client = serve(SessionMiddleware(app, sessions))
    response = client.get("/")
    assert response.json()["user"] == "ada"
    assert response.headers["set-cookie"].startswith("session=")


def test_app_headers_are_kept_and_cookies_appended(
    serve: Callable[[WSGIApp], httpx.Client],
) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["sessions.session"].put("a", 1)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Set-Cookie", "theme=dark")])
        return [b"ok"]

    response = serve(SessionMiddleware(app, manager())).get("/")
    cookies = response.headers.get_list("set-cookie")
    assert cookies[0] == "theme=dark"
    assert cookies[1].startswith("session=")
    assert response.headers["content-type"] == "text/plain"


def test_error_page_started_twice_commits_once_and_keeps_the_cookie() -> None:
    writes: list[str] = []
    sessions = manager()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["sessions.session"].put("a", 1)
        start_response("200 OK", [])
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            import sys

            start_response("500 Internal Server Error", [], sys.exc_info())
        return [b"error"]

    middleware = SessionMiddleware(app, sessions)
    original = sessions.driver.write_versioned

    def counting_write(key: str, values: dict[str, Any], version: int | None) -> bool:
        writes.append(key)
        return bool(original(key, values, version))

    sessions.driver.write_versioned = counting_write  # type: ignore[method-assign]
    seen: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen.append((status, headers))
        return lambda data: None

    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    assert list(middleware(environ, start_response)) == [b"error"]
    assert len(writes) == 1
    assert [status for status, _ in seen] == ["200 OK", "500 Internal Server Error"]
    for _, headers in seen:
        assert any(name == "Set-Cookie" and v.startswith("session=") for name, v in headers)


def test_excluded_paths_and_disabled_sessions_pass_through(
    serve: Callable[[WSGIApp], httpx.Client],
) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        return respond(start_response, {"session": "sessions.session" in environ})

    client = serve(SessionMiddleware(app, manager(), exclude_paths=["/static/"]))
    for path in ("/static", "/static/app.css"):
        response = client.get(path)
        assert response.json() == {"session": False}
        assert "set-cookie" not in response.headers
    assert client.get("/staticky").json() == {"session": True}

    disabled = serve(SessionMiddleware(app, manager(enabled=False)))
    response = disabled.get("/")
    assert response.json() == {"session": False}
    assert "set-cookie" not in response.headers


def test_current_session_without_the_middleware_says_what_is_missing() -> None:
    with pytest.raises(LookupError, match=r"SessionMiddleware"):
        current_session({})


def test_secure_follows_the_url_scheme() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["sessions.session"].put("a", 1)
        start_response("200 OK", [])
        return [b""]

    middleware = SessionMiddleware(app, manager())
    for scheme, secure in (("http", False), ("https", True)):
        environ: dict[str, Any] = {"wsgi.url_scheme": scheme}
        setup_testing_defaults(environ)
        captured: list[list[tuple[str, str]]] = []
        middleware(environ, lambda status, headers, exc=None: captured.append(headers))
        cookie = next(v for k, v in captured[0] if k == "Set-Cookie")
        assert ("; Secure" in cookie) is secure


def test_async_only_driver_fails_at_construction(async_only_driver: type[Any]) -> None:
    sessions = manager(driver="asyncstore", drivers={"asyncstore": async_only_driver})
    with pytest.raises(ConfigError, match=r"driver='asyncstore'.*async-only.*ASGI"):
        SessionMiddleware(lambda environ, start_response: [], sessions)


def test_bad_driver_and_bad_exclude_path_fail_at_construction() -> None:
    with pytest.raises(Exception, match="'nope'"):
        SessionMiddleware(lambda e, s: [], manager(driver="nope"))
    with pytest.raises(ValueError, match="start with '/'"):
        SessionMiddleware(lambda e, s: [], manager(), exclude_paths=["static"])


# -- flash_all and friends read the urlencoded form themselves ---------------------


def form_app(read_first: bool) -> WSGIApp:
    """Flashes the form, either after or before the app reads the body itself."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session: Session = environ["sessions.session"]
        if environ["REQUEST_METHOD"] == "GET":
            return respond(start_response, session.flash_messages.all())
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = b""
        if read_first:
            body = environ["wsgi.input"].read(length)
        try:
            session.flash_except(["password"])
        except (TypeError, ValueError) as exc:
            return respond(start_response, {"error": type(exc).__name__, "message": str(exc)})
        if not read_first:
            body = environ["wsgi.input"].read(length)
        return respond(start_response, {"body": body.decode()})

    return app


@pytest.mark.parametrize("read_first", [True, False], ids=["app-reads-first", "flash-first"])
def test_flash_all_reads_the_form_without_taking_it_from_the_app(
    serve: Callable[[WSGIApp], httpx.Client], read_first: bool
) -> None:
    client = serve(SessionMiddleware(form_app(read_first), manager()))
    fields = [("title", "Hi there"), ("tag", "a"), ("tag", "b"), ("password", "x"), ("e", "")]
    body = urlencode(fields)
    response = client.post(
        "/", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.json() == {"body": body}
    assert client.get("/").json() == {"title": "Hi there", "tag": ["a", "b"], "e": ""}


def test_flash_all_after_the_response_started_says_the_session_was_committed(
    serve: Callable[[WSGIApp], httpx.Client],
) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        session: Session = environ["sessions.session"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            session.flash_all()
        except SessionError as exc:
            yield str(exc).encode()

    client = serve(SessionMiddleware(app, manager()))
    response = client.post(
        "/", content="a=1", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert "committed when the application called start_response" in response.text


def test_flash_all_decodes_the_declared_charset(serve: Callable[[WSGIApp], httpx.Client]) -> None:
    client = serve(SessionMiddleware(form_app(False), manager()))
    body = urlencode({"name": "Zoë"}, encoding="latin-1")
    client.post(
        "/",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded; charset=latin-1"},
    )
    assert client.get("/").json() == {"name": "Zoë"}


@pytest.mark.parametrize(
    "charset", ["rot13", "zlib", "hex", "base64", "idna", "undefined", "bogus-charset", "utf-8"]
)
def test_flash_all_falls_back_to_utf8_for_a_charset_that_is_no_text_encoding(
    serve: Callable[[WSGIApp], httpx.Client], charset: str
) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session: Session = environ["sessions.session"]
        if environ["REQUEST_METHOD"] == "POST":
            session.flash_all()  # no try: an exception here is a 500
        return respond(start_response, session.flash_messages.all())

    client = serve(SessionMiddleware(app, manager()))
    body = urlencode({"name": "Zoë", "q": "a+b"}, encoding="utf-8")
    response = client.post(
        "/",
        content=body,
        headers={"content-type": f"application/x-www-form-urlencoded; charset={charset}"},
    )
    assert response.status_code == 200
    assert client.get("/").json() == {"name": "Zoë", "q": "a+b"}


def test_flash_all_works_under_a_werkzeug_request(
    serve: Callable[[WSGIApp], httpx.Client],
) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session: Session = environ["sessions.session"]
        if environ["REQUEST_METHOD"] == "GET":
            return respond(start_response, session.flash_messages.all())
        form = WerkzeugRequest(environ).form
        session.flash_all()
        return respond(start_response, form.to_dict(flat=False))

    client = serve(SessionMiddleware(app, manager()))
    response = client.post("/", data={"q": "search", "n": ["1", "2"]})
    assert response.json() == {"q": ["search"], "n": ["1", "2"]}
    assert client.get("/").json() == {"q": "search", "n": ["1", "2"]}


def test_flash_all_on_a_multipart_or_json_body_asks_for_the_form(
    serve: Callable[[WSGIApp], httpx.Client],
) -> None:
    client = serve(SessionMiddleware(form_app(False), manager()))
    multipart = client.post("/", data={"a": "1"}, files={"f": ("f.txt", b"x")}).json()
    assert multipart["error"] == "TypeError"
    assert "multipart/form-data" in multipart["message"]
    assert "session.flash_all(request.form)" in multipart["message"]
    as_json = client.post("/", json={"a": 1}).json()
    assert "application/json" in as_json["message"]


def test_flash_all_of_a_bodyless_request_flashes_nothing(
    serve: Callable[[WSGIApp], httpx.Client],
) -> None:
    client = serve(SessionMiddleware(form_app(False), manager()))
    assert client.post("/").json() == {"body": ""}
    assert client.get("/").json() == {}


def test_a_form_too_large_to_buffer_is_refused_clearly_and_left_to_the_app(
    serve: Callable[[WSGIApp], httpx.Client],
) -> None:
    client = serve(SessionMiddleware(form_app(False), manager()))
    big = "x=" + "a" * (MAX_FORM_BYTES + 1)
    response = client.post(
        "/", content=big, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    body = response.json()
    assert body["error"] == "FormTooLargeError"
    assert str(MAX_FORM_BYTES) in body["message"]
    assert "explicitly" in body["message"]


def test_recorded_input_supports_the_file_api_apps_use() -> None:
    """readline, iteration and sized reads see exactly the body, before and after flash_all."""
    seen: dict[str, Any] = {}
    body = b"a=1\nb=2\nc=3"

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        seen["first"] = stream.readline()
        seen["form"] = environ["sessions.session"]._form()
        seen["two"] = stream.read(2)
        seen["rest"] = list(stream)
        seen["eof"] = stream.read()
        start_response("200 OK", [])
        return [b""]

    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body + b"trailing bytes beyond CONTENT_LENGTH"),
    }
    setup_testing_defaults(environ)
    SessionMiddleware(app, manager())(environ, lambda *args: None)
    assert seen["first"] == b"a=1\n"
    assert seen["form"] == {"a": "1\nb=2\nc=3"}
    assert seen["two"] == b"b="
    assert seen["rest"] == [b"2\n", b"c=3"]
    assert seen["eof"] == b""
