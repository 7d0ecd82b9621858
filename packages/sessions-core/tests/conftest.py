"""Shared fixtures of core's tests.

Core's tests never autoload installed driver plugins. The lifecycle scenarios
run through real HTTP requests against an "ops" app built for each integration
(ASGI, WSGI, Flask) and each of core's drivers, so one scenario covers them all.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sessions import Driver, Session, SessionConfig, SessionManager
from sessions.driver import DriverConfig, RequestContext


@pytest.fixture(autouse=True)
def _no_installed_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Core's tests see only core's drivers, and leave no plugin cache behind
    for the driver packages' tests that run later in the same process."""
    from sessions.plugins import reset_plugins

    monkeypatch.setenv("SESSIONS_PLUGINS", "")
    reset_plugins()
    yield
    reset_plugins()


SECRET = "core-tests-secret-0123456789-abcdefghij"
OLD_SECRET = "core-tests-old-secret-9876543210-zyxwvu"


# -- the ops protocol: a request body is a list of session operations ----------


def run_ops(session: Session, ops: list[list[Any]]) -> list[Any]:
    """Apply ``ops`` (``[["put", "k", 1], ["get", "k"], ...]``) to ``session``.

    An operation that raises returns ``{"error": ClassName}`` so scenarios can
    assert on refusals without the app answering 500.
    """
    results: list[Any] = []
    for name, *args in ops:
        try:
            if name == "flash_messages":
                results.append(session.flash_messages.all())
            elif name == "set":
                session[args[0]] = args[1]
                results.append(None)
            elif name == "item":
                results.append(session[args[0]])
            else:
                attr = getattr(session, name)
                results.append(attr(*args) if callable(attr) else attr)
        except Exception as exc:
            results.append({"error": type(exc).__name__, "message": str(exc)})
    return results


def state(session: Session, results: list[Any]) -> bytes:
    """The JSON body every ops app answers with."""
    body = {
        "results": results,
        "session_id": session.session_id,
        "fresh": session.fresh,
        "readonly": session.readonly,
        "all": session.all(),
        "flash": session.flash_messages.all(),
        "modified": session.has_been_modified,
    }
    return json.dumps(body, default=str).encode()


# -- a spy around core's drivers, to see what reaches the store ----------------


class _SpyRequest:
    def __init__(self, spy: Spy, inner: Any) -> None:
        self._spy = spy
        self._inner = inner

    def read(self, key: str) -> Any:
        self._spy.calls.append(("read", key))
        return self._inner.read(key)

    def write(self, key: str, values: dict[str, Any]) -> None:
        self._spy.calls.append(("write", key))
        self._inner.write(key, values)

    def destroy(self, key: str) -> None:
        self._spy.calls.append(("destroy", key))
        self._inner.destroy(key)

    def touch(self, key: str) -> None:
        self._spy.calls.append(("touch", key))
        self._inner.touch(key)

    async def aread(self, key: str) -> Any:
        return self.read(key)

    async def awrite(self, key: str, values: dict[str, Any]) -> None:
        self.write(key, values)

    async def adestroy(self, key: str) -> None:
        self.destroy(key)

    async def atouch(self, key: str) -> None:
        self.touch(key)


class Spy(_SpyRequest):
    """Wraps memory or cookie and records each store operation."""

    def __init__(self, inner: Any) -> None:
        super().__init__(self, inner)
        self.calls: list[tuple[str, str]] = []
        self.touches_on_read = getattr(inner, "touches_on_read", False)

    def for_request(self, context: RequestContext) -> Any:
        return _SpyRequest(self, self.inner.for_request(context))

    @property
    def inner(self) -> Any:
        return self._inner

    def ops(self) -> list[str]:
        """Operation names since the last call, then forget them."""
        names = [op for op, _ in self.calls if op != "read"]
        self.calls.clear()
        return names


def spy_factory(driver: str) -> Callable[[DriverConfig], Spy]:
    def build(config: DriverConfig) -> Spy:
        from sessions.plugins import load_plugins

        cls = load_plugins(autoload=False).get(driver).load()
        inner_config = DriverConfig(
            name=driver,
            options={},
            age=config.age,
            session=config.session,
            notify_decode_failed=config.notify_decode_failed,
        )
        return Spy(cls(inner_config))

    return build


# -- clients -------------------------------------------------------------------


class OpsClient:
    """An HTTP client for an ops app, with a cookie jar we control exactly."""

    def __init__(self, http: httpx.Client, manager: SessionManager) -> None:
        self.http = http
        self.manager = manager
        self.jar: dict[str, str] = {}
        self.last: httpx.Response | None = None

    @property
    def spy(self) -> Spy:
        driver: Spy = self.manager.driver
        return driver

    @property
    def cookie(self) -> str | None:
        """The session id cookie the browser holds."""
        return self.jar.get(self.manager.config.cookie_name)

    def request(
        self, ops: list[list[Any]] | None = None, *, path: str = "/ops", cookie: str | None = None
    ) -> dict[str, Any]:
        header = (
            cookie if cookie is not None else "; ".join(f"{k}={v}" for k, v in self.jar.items())
        )
        response = self.http.post(
            path,
            content=json.dumps(ops or []),
            headers={"cookie": header.encode()} if header else {},
        )
        self.http.cookies.clear()
        self.last = response
        assert response.status_code == 200, response.text
        for line in response.headers.get_list("set-cookie"):
            pair, _, attrs = line.partition(";")
            name, _, value = pair.partition("=")
            if "max-age=0" in attrs.lower():
                self.jar.pop(name, None)
            else:
                self.jar[name] = value
        result: dict[str, Any] = response.json() if path == "/ops" else {}
        return result

    def set_cookies(self) -> list[str]:
        assert self.last is not None
        return self.last.headers.get_list("set-cookie")


def _asgi_app(
    manager: SessionManager, exclude: tuple[str, ...], backend: str = "asyncio"
) -> httpx.Client:
    from sessions.asgi import SessionMiddleware
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route
    from starlette.testclient import TestClient

    async def ops(request: Request) -> Response:
        session: Session = request.session  # type: ignore[assignment]
        results = run_ops(session, json.loads(await request.body() or b"[]"))
        return Response(state(session, results), media_type="application/json")

    async def plain(request: Request) -> Response:
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[Route("/ops", ops, methods=["POST"]), Route("/static/x", plain, methods=["POST"])]
    )
    return TestClient(SessionMiddleware(app, manager, exclude_paths=exclude), backend=backend)


class _ServedClient(httpx.Client):
    """An httpx client for a real WSGI server on a loopback port, stopped on close."""

    def __init__(self, server: Any) -> None:
        import threading

        self._server = server
        # A short poll interval keeps shutdown (once per client) fast.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        super().__init__(base_url=f"http://127.0.0.1:{server.server_address[1]}")

    def close(self) -> None:
        super().close()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _wsgi_app(manager: SessionManager, exclude: tuple[str, ...]) -> httpx.Client:
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from sessions.wsgi import SessionMiddleware

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        if environ["PATH_INFO"] == "/ops":
            session: Session = environ["sessions.session"]
            payload = state(session, run_ops(session, json.loads(body or b"[]")))
            start_response("200 OK", [("Content-Type", "application/json")])
            return [payload]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    middleware = SessionMiddleware(app, manager, exclude_paths=exclude)
    return _ServedClient(make_server("127.0.0.1", 0, middleware, handler_class=Quiet))


def _flask_app(manager: SessionManager, exclude: tuple[str, ...]) -> httpx.Client:
    import flask
    from sessions.flask import FlaskSessions
    from werkzeug.serving import make_server

    app = flask.Flask("ops")

    @app.post("/ops")
    def ops() -> flask.Response:
        session: Session = flask.session  # type: ignore[assignment]
        results = run_ops(session, json.loads(flask.request.get_data() or b"[]"))
        return flask.Response(state(session, results), mimetype="application/json")

    @app.post("/static/x")
    def plain() -> str:
        return "ok"

    FlaskSessions(app, manager, exclude_paths=exclude)
    return _ServedClient(make_server("127.0.0.1", 0, app, threaded=True))


#: Integration name -> builder of an httpx client over the ops app.
#: The ops app answers POST /ops with ``state()`` and POST /static/x (excluded) with "ok".
INTEGRATIONS: dict[str, Callable[[SessionManager, tuple[str, ...]], httpx.Client]] = {
    "asgi": _asgi_app,
    "asgi-trio": functools.partial(_asgi_app, backend="trio"),
    "wsgi": _wsgi_app,
    "flask": _flask_app,
}
DRIVERS = ["memory", "cookie"]


def _driver_available(name: str) -> bool:
    try:
        __import__(f"sessions.drivers.{name}")
    except ImportError:
        return False
    return True


@pytest.fixture(params=DRIVERS)
def driver_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if not _driver_available(name):
        pytest.skip(f"the {name} driver is not there yet")
    return name


@pytest.fixture(params=sorted(INTEGRATIONS))
def integration(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def make_client(driver_name: str, integration: str) -> Iterator[Callable[..., OpsClient]]:
    """Build an OpsClient for this (integration, driver) with config overrides."""
    clients: list[OpsClient] = []

    def make(
        *,
        share_store_with: OpsClient | None = None,
        exclude: tuple[str, ...] = ("/static",),
        **overrides: Any,
    ) -> OpsClient:
        options = {"secret": SECRET, "driver": "spy", **overrides}
        if share_store_with is not None:
            shared = share_store_with.manager.driver
            factory: Any = lambda config: shared  # noqa: E731
        else:
            factory = spy_factory(driver_name)
        manager = SessionManager(
            SessionConfig(**options), autoload_plugins=False, drivers={"spy": factory}
        )
        client = OpsClient(INTEGRATIONS[integration](manager, exclude), manager)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.http.close()


@pytest.fixture
def client(make_client: Callable[..., OpsClient]) -> OpsClient:
    """An OpsClient with the default config."""
    return make_client()


class AsyncOnlyDriver(Driver):
    """A driver with only the async flavour, that stores nothing."""

    async def read(self, session_id: str) -> dict[str, Any] | None:
        return None

    async def write(self, session_id: str, values: dict[str, Any]) -> None:
        pass

    async def destroy(self, session_id: str) -> None:
        pass

    async def touch(self, session_id: str) -> None:
        pass


@pytest.fixture
def async_only_driver() -> type[AsyncOnlyDriver]:
    """A driver class with only the async flavour (test modules cannot import this one)."""
    return AsyncOnlyDriver
