"""Lazy sessions on every first-party driver: a request that never uses its session
calls no driver operation (so no store I/O) and gets no cookie, through ASGI and
WSGI; a request that does use it reads and writes as usual.

Redis and memcached are private servers on loopback ports; the file and SQLite
stores live in a temporary directory. The servers' own command counts for lazy
requests are checked in the redis and memcached packages.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sessions import SessionConfig, SessionManager
from sessions.asgi import SessionMiddleware as AsgiMiddleware
from sessions.asgi import load_session
from sessions.driver import OPS
from sessions.plugins import load_plugins
from sessions.testing.servers import ServerProcess, require_binary

SECRET = "lazy-drivers-secret-0123456789abcdefghijk"
DRIVERS = ["memory", "cookie", "file", "sql", "redis", "memcached"]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    workdir = tmp_path_factory.mktemp("lazy")
    redis_bin = require_binary(shutil.which("redis-server") or "redis-server")
    memcached_bin = require_binary(shutil.which("memcached") or "/usr/bin/memcached")
    redis = ServerProcess(
        "lazy-redis",
        lambda port, wd: [redis_bin, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
    ).start()
    memcached = ServerProcess(
        "lazy-memcached",
        lambda port, wd: [
            memcached_bin,
            "-l",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "0",
            "-u",
            "root",
        ],
    ).start()
    try:
        yield {
            "memory": {},
            "cookie": {},
            "file": {"location": str(Path(workdir) / "files")},
            "sql": {"url": f"sqlite:///{Path(workdir) / 'sessions.db'}"},
            "redis": {"url": f"redis://127.0.0.1:{redis.port}/0"},
            "memcached": {"servers": [f"127.0.0.1:{memcached.port}"]},
        }
    finally:
        redis.cleanup()
        memcached.cleanup()


def counting(driver: str) -> tuple[type, list[str]]:
    """The installed driver class, recording every operation core calls on it."""
    base = load_plugins().get(driver).load()
    calls: list[str] = []

    def recorder(name: str) -> Any:
        method = getattr(base, name)

        if name.startswith("a"):

            @functools.wraps(method)
            async def arecord(self: Any, *args: Any, **kwargs: Any) -> Any:
                calls.append(name + ("(no touch)" if False in args[1:2] else ""))
                return await method(self, *args, **kwargs)

            return arecord

        @functools.wraps(method)
        def record(self: Any, *args: Any, **kwargs: Any) -> Any:
            # A read asked not to refresh the expiry is recorded as such.
            calls.append(name + ("(no touch)" if False in args[1:2] else ""))
            return method(self, *args, **kwargs)

        return record

    names = [n for op in OPS for n in (op, "a" + op) if callable(getattr(base, n, None))]
    cls = type(f"Counting{base.__name__}", (base,), {n: recorder(n) for n in names})
    return cls, calls


def manager(
    driver: str, options: dict[str, Any], **config: Any
) -> tuple[SessionManager, list[str]]:
    cls, calls = counting(driver)
    sessions = SessionManager(
        SessionConfig(
            secret=SECRET, driver=driver, drivers={driver: options}, **({"lazy": True} | config)
        ),
        autoload_plugins=False,
        drivers={driver: cls},
    )
    return sessions, calls


def wsgi(sessions: SessionManager) -> httpx.Client:
    from sessions.wsgi import SessionMiddleware

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = b"untouched"
        if environ["PATH_INFO"] == "/use":
            body = str(environ["sessions.session"].increment("n")).encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]

    transport = httpx.WSGITransport(app=SessionMiddleware(app, sessions))
    return httpx.Client(transport=transport, base_url="http://t")


def asgi_requests(
    sessions: SessionManager, paths: list[str], calls: list[str]
) -> list[tuple[httpx.Response, list[str]]]:
    """Each response with the driver operations its request made."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = b"untouched"
        if scope["path"] == "/use":
            body = str((await load_session(scope)).increment("n")).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    async def run() -> list[tuple[httpx.Response, list[str]]]:
        transport = httpx.ASGITransport(app=AsgiMiddleware(app, sessions))
        done = []
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for path in paths:
                calls.clear()
                done.append((await client.get(path), list(calls)))
        return done

    return anyio.run(run)


@pytest.mark.parametrize("driver", DRIVERS)
def test_wsgi_unused_lazy_session_calls_no_driver_operation(
    driver: str, stores: dict[str, dict[str, Any]]
) -> None:
    sessions, calls = manager(driver, stores[driver])
    client = wsgi(sessions)
    assert client.get("/use").text == "1"
    # The cookie driver works on a per-request object (its store is the cookie).
    assert calls or driver == "cookie", "using the session reached the driver"
    calls.clear()
    untouched = client.get("/nothing")
    assert calls == []
    assert "set-cookie" not in untouched.headers
    assert client.get("/use").text == "2"
    sessions.close()


@pytest.mark.parametrize("driver", DRIVERS)
def test_asgi_unused_lazy_session_calls_no_driver_operation(
    driver: str, stores: dict[str, dict[str, Any]]
) -> None:
    sessions, calls = manager(driver, stores[driver])
    (first, _), (untouched, made), (again, _) = asgi_requests(
        sessions, ["/use", "/nothing", "/use"], calls
    )
    assert first.text == "1"
    assert made == []
    assert "set-cookie" not in untouched.headers
    assert "vary" not in untouched.headers
    assert again.text == "2"
    sessions.close()


@pytest.mark.parametrize("driver", DRIVERS)
def test_touch_interval_skips_the_refresh_until_due(
    driver: str, stores: dict[str, dict[str, Any]]
) -> None:
    """A read-only request whose refresh is not due: one read that does not refresh
    (where the store's read refreshes by itself), no touch, no write, no cookie."""
    sessions, calls = manager(driver, stores[driver], lazy=False, touch_interval="5m")
    client = wsgi(sessions)
    assert client.get("/use").text == "1"
    calls.clear()
    read = client.get("/nothing")
    assert "set-cookie" not in read.headers
    assert not [c for c in calls if c.lstrip("a").startswith(("write", "touch"))], calls
    if driver != "cookie":
        flavours = sessions.flavours
        if sessions.touches_on_read:
            assert flavours.read_touch_flag, f"{driver} reads always refresh the expiry"
            assert [c for c in calls if "read" in c] == [f"{calls[0].split('(')[0]}(no touch)"]
        else:
            assert len([c for c in calls if "read" in c]) == 1
    sessions.close()
