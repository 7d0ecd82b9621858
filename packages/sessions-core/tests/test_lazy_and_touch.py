"""Lazy sessions, throttled touches and cache-safe headers, through ASGI and WSGI.

Store operations are counted by a recording memory driver; the headers are
what a real HTTP client receives.
"""

from __future__ import annotations

import asyncio
import gc
import io
import time
from typing import Any, ClassVar

import anyio
import httpx
import pytest
from sessions import SessionConfig, SessionManager
from sessions.asgi import SessionMiddleware as AsgiMiddleware
from sessions.asgi import load_session
from sessions.driver import DriverConfig, Record
from sessions.drivers.memory import MemoryDriver
from sessions.errors import SessionError, SessionNotInitiatedError
from sessions.wsgi import SessionMiddleware as WsgiMiddleware

SECRET = "lazy-tests-secret-0123456789abcdefghijklm"


class Counting(MemoryDriver):
    """The memory driver, recording every operation (and whether reads refreshed)."""

    touches_on_read: ClassVar[bool] = True
    blocking: ClassVar[bool] = True  # behave like a networked store

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        self.ops: list[str] = []

    def read_versioned(self, session_id: str, touch: bool = True) -> Record | None:
        self.ops.append("read" if touch else "read-no-touch")
        return super().read_versioned(session_id)

    async def aread_versioned(self, session_id: str, touch: bool = True) -> Record | None:
        return self.read_versioned(session_id, touch)

    def write_versioned(self, session_id: str, values: dict[str, Any], version: int | None) -> bool:
        self.ops.append("write")
        return super().write_versioned(session_id, values, version)

    def touch(self, session_id: str) -> None:
        self.ops.append("touch")
        super().touch(session_id)

    def destroy(self, session_id: str) -> None:
        self.ops.append("destroy")
        super().destroy(session_id)


def manager(**config: Any) -> SessionManager:
    return SessionManager(
        SessionConfig(secret=SECRET, driver="counting", **config),
        autoload_plugins=False,
        drivers={"counting": Counting},
    )


def wsgi_app(sessions: SessionManager) -> WsgiMiddleware:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        session = environ["sessions.session"]
        headers = [("Content-Type", "text/plain")]
        body = b"ok"
        if path == "/put":
            session.put("n", 1)
        elif path == "/get":
            body = str(session.get("n")).encode()
        elif path == "/cached":
            headers += [("Cache-Control", "public, max-age=60"), ("Vary", "Accept-Encoding")]
            body = str(session.get("n")).encode()
        start_response("200 OK", headers)
        return [body]

    return WsgiMiddleware(app, sessions)


def wsgi_client(sessions: SessionManager) -> httpx.Client:
    transport = httpx.WSGITransport(app=wsgi_app(sessions))
    return httpx.Client(transport=transport, base_url="http://t")


def asgi_app(sessions: SessionManager) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        path = scope["path"]
        headers: list[tuple[bytes, bytes]] = []
        body = b"ok"
        if path == "/put":
            (await load_session(scope)).put("n", 1)
        elif path == "/get":
            body = str((await load_session(scope)).get("n")).encode()
        elif path == "/sync-get":
            body = str(scope["session"].get("n")).encode()
        elif path == "/cached":
            headers = [(b"cache-control", b"no-store"), (b"vary", b"Accept")]
            body = str((await load_session(scope)).get("n")).encode()
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return AsgiMiddleware(app, sessions)


def asgi_get(
    sessions: SessionManager, *paths: str, cookies: dict[str, str] | None = None
) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=asgi_app(sessions))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            if cookies:
                client.cookies.update(cookies)
            return [await client.get(path) for path in paths]

    return anyio.run(run)


def ops(sessions: SessionManager) -> list[str]:
    return list(sessions.driver.ops)


# -- lazy ------------------------------------------------------------------------------------


def test_lazy_wsgi_request_that_never_uses_its_session_costs_nothing() -> None:
    sessions = manager(lazy=True)
    client = wsgi_client(sessions)
    assert client.get("/put").headers["set-cookie"]
    sessions.driver.ops.clear()
    untouched = client.get("/nothing")
    assert ops(sessions) == []
    assert "set-cookie" not in untouched.headers
    assert "vary" not in untouched.headers
    assert client.get("/get").text == "1"
    assert ops(sessions) == ["read"]


def test_lazy_new_session_that_stays_empty_gets_no_cookie() -> None:
    sessions = manager(lazy=True)
    client = wsgi_client(sessions)
    read_only = client.get("/get")
    assert read_only.text == "None"
    assert "set-cookie" not in read_only.headers
    assert read_only.headers["vary"] == "Cookie"  # it read the session
    assert ops(sessions) == []


def test_lazy_asgi_costs_nothing_until_loaded() -> None:
    sessions = manager(lazy=True)
    first, untouched, read = asgi_get(sessions, "/put", "/nothing", "/get")
    assert "set-cookie" in first.headers
    assert "set-cookie" not in untouched.headers
    assert "vary" not in untouched.headers
    assert read.text == "1"
    assert ops(sessions) == ["write", "read"]


def test_lazy_asgi_sync_access_to_a_blocking_store_says_to_await() -> None:
    sessions = manager(lazy=True)
    cookie = asgi_get(sessions, "/put")[0].cookies
    with pytest.raises(SessionNotInitiatedError, match="load_session"):
        asgi_get(sessions, "/sync-get", cookies=dict(cookie))


def test_lazy_asgi_loads_a_non_blocking_store_on_first_use() -> None:
    sessions = SessionManager(
        SessionConfig(secret=SECRET, driver="memory", lazy=True), autoload_plugins=False
    )
    cookie = asgi_get(sessions, "/put")[0].cookies
    assert asgi_get(sessions, "/sync-get", cookies=dict(cookie))[0].text == "1"


def test_defaults_are_unchanged_down_to_the_first_cookie() -> None:
    sessions = manager()
    client = wsgi_client(sessions)
    first = client.get("/nothing")
    cookie = first.headers["set-cookie"]
    value = cookie.split(";")[0].split("=", 1)[1]
    assert len(value) == 87
    assert value[43] == "."
    assert cookie.endswith("; Path=/; Max-Age=7200; HttpOnly; SameSite=Lax")
    assert ops(sessions) == []  # a new, empty session is not stored...
    client.get("/nothing")
    assert ops(sessions) == ["read"]  # ...and its cookie is read and opens nothing, as before


# -- touch_interval --------------------------------------------------------------------------


def test_touch_interval_skips_touches_and_cookies_until_due() -> None:
    sessions = manager(touch_interval="5m")
    client = wsgi_client(sessions)
    first = client.get("/put")
    stamped = first.cookies["session"]
    assert stamped.count(".") == 2
    sessions.driver.ops.clear()
    again = client.get("/get")
    assert again.text == "1"
    assert "set-cookie" not in again.headers
    assert ops(sessions) == ["read-no-touch"]


def test_touch_interval_refreshes_when_due_and_takes_old_cookies() -> None:
    sessions = manager(touch_interval="5m")
    client = wsgi_client(sessions)
    client.get("/put")
    token = sessions.signer.open(client.cookies["session"])
    assert token is not None
    for cookie in (
        sessions.signer.sign(token.token, int(time.time()) - 301),  # refreshed 5 min ago
        sessions.signer.sign(token.token),  # the previous release's cookie
    ):
        client.cookies.clear()
        client.cookies.set("session", cookie)
        sessions.driver.ops.clear()
        due = client.get("/get")
        assert due.text == "1"
        assert ops(sessions) == ["read"]  # the read refreshed the expiry
        renewed = sessions.signer.open(due.cookies["session"])
        assert renewed is not None
        assert renewed.touched == pytest.approx(time.time(), abs=5)


def test_a_forged_touch_time_does_not_verify() -> None:
    sessions = manager(touch_interval="5m")
    value = sessions.signer.sign("a" * 43, int(time.time()))
    token, stamp, mac = value.split(".")
    assert sessions.signer.open(f"{token}.{int(stamp, 36) + 9999:x}.{mac}") is None


# -- headers ---------------------------------------------------------------------------------


def test_wsgi_vary_and_cache_control_merge_with_the_apps() -> None:
    client = wsgi_client(manager())
    put = client.get("/put")
    assert put.headers["vary"] == "Cookie"
    assert put.headers["cache-control"] == "private"
    cached = client.get("/cached")
    assert cached.headers["vary"] == "Accept-Encoding, Cookie"
    assert cached.headers["cache-control"] == "public, max-age=60"  # the app's, kept


def test_asgi_vary_and_cache_control_merge_with_the_apps() -> None:
    put, cached = asgi_get(manager(), "/put", "/cached")
    assert put.headers["vary"] == "Cookie"
    assert put.headers["cache-control"] == "private"
    assert cached.headers["vary"] == "Accept, Cookie"
    assert cached.headers["cache-control"] == "no-store"


def test_cookie_driver_reseals_only_when_the_touch_is_due_or_the_data_changed() -> None:
    sessions = SessionManager(
        SessionConfig(secret=SECRET, driver="cookie", touch_interval="5m"),
        autoload_plugins=False,
    )
    client = wsgi_client(sessions)
    first = client.get("/put")
    assert {c.split("=", 1)[0] for c in first.headers.get_list("set-cookie")} == {
        "session",
        "session.data",
    }
    read = client.get("/get")
    assert read.text == "1"
    assert "set-cookie" not in read.headers  # nothing re-sealed, no nonce spent
    changed = client.get("/put")
    assert len(changed.headers.get_list("set-cookie")) == 2
    opened = sessions.signer.open(client.cookies["session"])
    assert opened is not None
    data = client.cookies["session.data"]
    client.cookies.clear()
    client.cookies.set("session", sessions.signer.sign(opened.token, int(time.time()) - 400))
    client.cookies.set("session.data", data)
    due = client.get("/get")
    assert due.text == "1"
    assert len(due.headers.get_list("set-cookie")) == 2


# -- no work left for the cycle collector ---------------------------------------------------


def _garbage_after(requests: Any) -> int:
    """Objects the cycle collector finds after ``requests()`` ran with it disabled."""
    gc.collect()
    gc.disable()
    try:
        requests()
        return gc.collect()
    finally:
        gc.enable()


@pytest.mark.parametrize("lazy", [True, False])
def test_an_asgi_request_leaves_no_reference_cycle(lazy: bool) -> None:
    # scope -> session -> context -> scope would keep every request's objects
    # alive until the cycle collector runs: memory churn and pauses under load.
    app = asgi_app(manager(lazy=lazy))
    cookie = asgi_get(app.manager, "/put")[0].headers["set-cookie"].split(";")[0]

    async def one(path: str) -> None:
        scope = {
            "type": "http",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "headers": [(b"cookie", cookie.encode())],
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(message: dict[str, Any]) -> None:
            pass

        await app(scope, receive, send)

    def run_all() -> None:
        for path in ("/nothing", "/get"):
            coroutine = one(path)
            with pytest.raises(StopIteration):
                coroutine.send(None)  # nothing here suspends: one step runs it all

    asyncio.run(one("/get"))
    assert _garbage_after(run_all) == 0


@pytest.mark.parametrize("lazy", [True, False])
def test_a_wsgi_request_leaves_no_reference_cycle(lazy: bool) -> None:
    sessions = manager(lazy=lazy)
    cookie = wsgi_client(sessions).get("/put").headers["set-cookie"].split(";")[0]
    app = wsgi_app(sessions)

    def run_all() -> None:
        for path in ("/nothing", "/get"):
            environ = {
                "REQUEST_METHOD": "GET",
                "PATH_INFO": path,
                "wsgi.url_scheme": "http",
                "wsgi.input": io.BytesIO(),
                "HTTP_COOKIE": cookie,
            }
            body = app(environ, lambda status, headers, exc_info=None: None)
            assert list(body)

    run_all()
    assert _garbage_after(run_all) == 0


def test_a_lazy_session_first_used_after_its_request_says_the_request_is_over() -> None:
    sessions = manager(lazy=True)
    kept: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        kept.append(scope["session"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def run() -> None:
        transport = httpx.ASGITransport(app=AsgiMiddleware(app, sessions))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/")).status_code == 200

    anyio.run(run)
    with pytest.raises(SessionError, match="request is over"):
        kept[0].get("n")
    assert ops(sessions) == []
