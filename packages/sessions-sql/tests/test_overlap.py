"""Overlapping requests on one cookie, through the real WSGI and ASGI middlewares.

One request is held between its read (the middleware's initiate) and its
commit while another request on the same cookie runs to completion; then the
held one commits. With the compare-and-set write nothing acknowledged is lost
and a logout or regenerate is never undone. The stress test runs 8 clients on
one cookie at once.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from sessions import SessionConfig, SessionManager
from sessions.asgi import SessionMiddleware as ASGIMiddleware
from sessions.session import Session
from sessions.wsgi import ENVIRON_KEY
from sessions.wsgi import SessionMiddleware as WSGIMiddleware
from sessions_sql.driver import SQLDriver

from .conftest import SECRET, Database

COOKIE = "session"


def _manager(db: Database) -> SessionManager:
    db.table()
    config = SessionConfig(secret=SECRET, driver="sql", age=600, drivers={"sql": {"url": db.url}})
    return SessionManager(config, autoload_plugins=False, drivers={"sql": SQLDriver})


def _apply(session: Session, path: str) -> Any:
    """What the test application does for ``path``; returns the response body."""
    parts = path.strip("/").split("/")
    op = parts[0]
    if op == "put":
        session.put(parts[1], int(parts[2]))
    elif op == "inc":
        session.increment("n", int(parts[1]))
    elif op == "clear":
        session.clear()
    elif op == "login":
        session.regenerate()
        session.put("user", 42)
    elif op == "flash":
        session.flash(parts[1], True)
    elif op == "stress":
        session.increment("n")
        session.put(f"client{parts[1]}", int(parts[2]))
    return {"values": session.all(), "flash": session.flash_messages.all()}


class Held:
    """Holds the request whose path is ``path`` after its read until released."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.entered = threading.Event()
        self.release = threading.Event()


def _cookie_of(headers: list[tuple[str, str]]) -> str | None:
    for name, value in headers:
        if name.lower() == "set-cookie" and value.startswith(f"{COOKIE}="):
            token = value.split(";", 1)[0].split("=", 1)[1]
            return token or None
    return None


# -- WSGI ---------------------------------------------------------------------------


def wsgi_app(manager: SessionManager, held: Held | None = None) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = environ[ENVIRON_KEY]
        path = environ["PATH_INFO"]
        body = _apply(session, path)
        if held is not None and path == held.path:
            held.entered.set()
            assert held.release.wait(10), "the held request was never released"
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]

    return WSGIMiddleware(app, manager)


def wsgi_get(app: Any, path: str, cookie: str | None) -> tuple[dict[str, Any], str | None]:
    """One request; the response body and the session cookie it sets (else ``cookie``)."""
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(),
    }
    if cookie is not None:
        environ["HTTP_COOKIE"] = f"{COOKIE}={cookie}"
    got: list[tuple[str, str]] = []

    def start_response(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
        assert status.startswith("200"), status
        got.extend(headers)

    body = b"".join(app(environ, start_response))
    return json.loads(body), _cookie_of(got) or cookie


# -- ASGI ---------------------------------------------------------------------------


class AHeld:
    def __init__(self, path: str) -> None:
        self.path = path
        self.entered = anyio.Event()
        self.release = anyio.Event()


def asgi_app(manager: SessionManager, held: AHeld | None = None) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        session = scope["session"]
        body = _apply(session, scope["path"])
        if held is not None and scope["path"] == held.path:
            held.entered.set()
            with anyio.fail_after(10):
                await held.release.wait()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    return ASGIMiddleware(app, manager)


async def asgi_get(app: Any, path: str, cookie: str | None) -> tuple[dict[str, Any], str | None]:
    headers = [(b"host", b"127.0.0.1")]
    if cookie is not None:
        headers.append((b"cookie", f"{COOKIE}={cookie}".encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    assert start["status"] == 200, start
    got = [(k.decode(), v.decode()) for k, v in start["headers"]]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return json.loads(body), _cookie_of(got) or cookie


# -- the overlapping pairs ------------------------------------------------------------

#: name: (set-up path, held (slow) request, fast request, check(old cookie view, fast's view))
Check = Callable[[dict[str, Any], dict[str, Any]], None]


def _keys(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert old["values"] == {"seed": 1, "a": 1, "b": 2}


def _increments(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert old["values"] == {"seed": 1, "n": 11}


def _clear(old: dict[str, Any], new: dict[str, Any]) -> None:
    # The slow request's put does not bring the logged-out session back.
    assert old["values"] == {}


def _regenerate(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert old["values"] == {}, "the old id opens the session again after regenerate"
    assert new["values"] == {"seed": 1, "user": 42}


def _flash(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert old["flash"] == {"a": True, "b": True}


SCENARIOS: dict[str, tuple[str, str, Check]] = {
    "different keys": ("/put/a/1", "/put/b/2", _keys),
    "increments": ("/inc/1", "/inc/10", _increments),
    "clear": ("/put/cart/3", "/clear", _clear),
    "regenerate": ("/put/cart/3", "/login", _regenerate),
    "flash": ("/flash/a", "/flash/b", _flash),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_overlap_sync(any_db: Database, scenario: str) -> None:
    slow, fast, check = SCENARIOS[scenario]
    manager = _manager(any_db)
    held = Held(slow)
    app = wsgi_app(manager, held)
    try:
        _, cookie = wsgi_get(app, "/put/seed/1", None)
        outcome: list[Any] = []
        thread = threading.Thread(target=lambda: outcome.append(wsgi_get(app, slow, cookie)))
        thread.start()
        assert held.entered.wait(10)
        _, fast_cookie = wsgi_get(app, fast, cookie)  # commits while the slow one is held
        held.release.set()
        thread.join(10)
        assert outcome, "the held request failed"
        old, _ = wsgi_get(app, "/show", cookie)
        new, _ = wsgi_get(app, "/show", fast_cookie)
        check(old, new)
    finally:
        held.release.set()
        manager.close()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_overlap_async(any_db: Database, scenario: str) -> None:
    slow, fast, check = SCENARIOS[scenario]

    async def main() -> None:
        manager = _manager(any_db)
        held = AHeld(slow)
        app = asgi_app(manager, held)
        try:
            _, cookie = await asgi_get(app, "/put/seed/1", None)
            outcome: list[Any] = []

            async def slow_request() -> None:
                outcome.append(await asgi_get(app, slow, cookie))

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(slow_request)
                with anyio.fail_after(10):
                    await held.entered.wait()
                _, fast_cookie = await asgi_get(app, fast, cookie)
                held.release.set()
            assert outcome, "the held request failed"
            old, _ = await asgi_get(app, "/show", cookie)
            new, _ = await asgi_get(app, "/show", fast_cookie)
            check(old, new)
        finally:
            await manager.aclose()

    anyio.run(main)


# -- stress -------------------------------------------------------------------------

CLIENTS = 8
REQUESTS = 50


class Tally:
    """What each client got acknowledged (a 200), and what failed."""

    def __init__(self) -> None:
        self.acked = [0] * CLIENTS
        self.last = [0] * CLIENTS
        self.errors: list[BaseException] = []

    def ok(self, client: int, i: int) -> None:
        self.acked[client] += 1
        self.last[client] = i

    def check(self, final: dict[str, Any]) -> None:
        # Core retries a conflicting commit for up to 10 s: every request lands.
        assert self.errors == [], self.errors[:3]
        total = sum(self.acked)
        assert total == CLIENTS * REQUESTS, f"only {total} requests succeeded"
        values = final["values"]
        assert values["n"] == total, "an acknowledged increment was lost (or one counted twice)"
        for client in range(CLIENTS):
            assert values.get(f"client{client}", 0) == self.last[client], (
                f"client {client}'s last acknowledged key was lost"
            )


def test_stress_sync(any_db: Database) -> None:
    manager = _manager(any_db)
    app = wsgi_app(manager)
    try:
        _, cookie = wsgi_get(app, "/put/seed/1", None)
        tally = Tally()

        def client(number: int) -> None:
            for i in range(1, REQUESTS + 1):
                try:
                    wsgi_get(app, f"/stress/{number}/{i}", cookie)
                except Exception as exc:
                    tally.errors.append(exc)
                else:
                    tally.ok(number, i)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        final, _ = wsgi_get(app, "/show", cookie)
        tally.check(final)
    finally:
        manager.close()


def test_stress_async(any_db: Database) -> None:
    async def main() -> None:
        manager = _manager(any_db)
        app = asgi_app(manager)
        try:
            _, cookie = await asgi_get(app, "/put/seed/1", None)
            tally = Tally()

            async def client(number: int) -> None:
                for i in range(1, REQUESTS + 1):
                    try:
                        await asgi_get(app, f"/stress/{number}/{i}", cookie)
                    except Exception as exc:
                        tally.errors.append(exc)
                    else:
                        tally.ok(number, i)

            async with anyio.create_task_group() as tasks:
                for number in range(CLIENTS):
                    tasks.start_soon(client, number)
            final, _ = await asgi_get(app, "/show", cookie)
            tally.check(final)
        finally:
            await manager.aclose()

    anyio.run(main)
