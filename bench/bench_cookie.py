"""Issue 4: the in-process cost of a cookie-stored session that reads and writes a counter.

Contenders, in one run:

* ASGI: a bare Starlette app, Starlette's SessionMiddleware (signed, not
  encrypted), starsessions' CookieStore (signed, not encrypted), and ours on
  the cookie driver (AES-256-GCM, plus a signed id cookie).
* WSGI: a bare WSGI app, Beaker's encrypted cookie session (AES via the
  ``cryptography`` backend, JSON serializer), and ours on the cookie driver.

Every row carries whether the contender sends a Set-Cookie over 4096 bytes
(which browsers drop) when the session grows to about 6 KB.

The rows are timed with bench.harness one contender after another; on a
shared machine the load drifts between them, so the ASGI ratio that matters
(ours / Starlette) is measured a second time with the contenders' batches
taken in turn and counted in CPU time (``interleaved_us``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterable
from typing import Any

from harness import (
    Jar,
    Result,
    asgi_runner,
    asgi_scope,
    compare,
    report,
    wsgi_environ,
    wsgi_runner,
)
from sessions import SessionConfig, SessionManager
from sessions.asgi import SessionMiddleware
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware as StarletteSessions
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

SECRET = "bench-secret-0123456789-abcdefghijklmnop"
# Incompressible, so a contender that compresses (Beaker does) still has to
# carry about 6 KB.
BIG = "".join(hashlib.sha512(str(i).encode()).hexdigest() for i in range(48))
LIMIT = 4096


# -- ASGI contenders -------------------------------------------------------------


async def counter(request: Request) -> PlainTextResponse:
    session = request.session
    session["count"] = session.get("count", 0) + 1
    return PlainTextResponse(str(session["count"]))


async def grow(request: Request) -> PlainTextResponse:
    request.session["big"] = BIG
    return PlainTextResponse("grown")


async def bare_counter(request: Request) -> PlainTextResponse:
    return PlainTextResponse("1")


def _routes(endpoint: Any) -> list[Route]:
    return [Route("/", endpoint), Route("/grow", grow)]


def bare() -> Any:
    return Starlette(routes=[Route("/", bare_counter)])


def starlette_sessions() -> Any:
    return Starlette(
        routes=_routes(counter), middleware=[Middleware(StarletteSessions, secret_key=SECRET)]
    )


def starsessions_cookie() -> Any:
    from starsessions import CookieStore, SessionAutoloadMiddleware
    from starsessions import SessionMiddleware as StarSessions

    return Starlette(
        routes=_routes(counter),
        middleware=[
            Middleware(StarSessions, store=CookieStore(secret_key=SECRET), lifetime=7200),
            Middleware(SessionAutoloadMiddleware),
        ],
    )


def ours_asgi() -> Any:
    manager = SessionManager(SessionConfig(secret=SECRET, driver="cookie"), autoload_plugins=False)
    return Starlette(
        routes=_routes(counter), middleware=[Middleware(SessionMiddleware, manager=manager)]
    )


def oversize_asgi(app: Any) -> str:
    """What the app does when the session outgrows a cookie: one request to /grow."""
    sizes: list[int] = []
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
            sizes.extend(len(v) for k, v in message.get("headers", ()) if k == b"set-cookie")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/grow",
        "raw_path": b"/grow",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }
    try:
        asyncio.run(app(scope, receive, send))
    except Exception as exc:
        return f"refused ({type(exc).__name__})"
    return _verdict(sizes)


def _verdict(sizes: list[int]) -> str:
    largest = max(sizes, default=0)
    if largest > LIMIT:
        return f"sent a {largest}-byte Set-Cookie silently"
    return "no oversized cookie sent"


# -- WSGI contenders -------------------------------------------------------------

StartResponse = Callable[..., Any]


def _wsgi_counter(key: str) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        session = environ[key]
        if environ["PATH_INFO"] == "/grow":
            session["big"] = BIG
        else:
            session["count"] = session.get("count", 0) + 1
        if hasattr(session, "save"):
            session.save()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    return app


def bare_wsgi(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"1"]


def beaker_cookie() -> Any:
    from beaker.middleware import SessionMiddleware as BeakerSessions

    return BeakerSessions(
        _wsgi_counter("beaker.session"),
        {
            "session.type": "cookie",
            "session.key": "beaker",
            "session.encrypt_key": SECRET,
            "session.validate_key": SECRET[::-1],
            "session.crypto_type": "cryptography",
            "session.data_serializer": "json",
            "session.httponly": True,
            "session.timeout": 7200,
        },
    )


def ours_wsgi() -> Any:
    from sessions.wsgi import ENVIRON_KEY
    from sessions.wsgi import SessionMiddleware as WsgiSessions

    manager = SessionManager(SessionConfig(secret=SECRET, driver="cookie"), autoload_plugins=False)
    return WsgiSessions(_wsgi_counter(ENVIRON_KEY), manager)


def oversize_wsgi(app: Any) -> str:
    """What the WSGI app does when the session outgrows a cookie."""

    sizes: list[int] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        sizes.extend(len(v) for k, v in headers if k.lower() == "set-cookie")
        return lambda data: None

    environ = wsgi_environ("/grow")
    try:
        for _ in app(environ, start_response):
            pass
    except Exception as exc:
        return f"refused ({type(exc).__name__})"
    return _verdict(sizes)


# -- interleaved cross-check ---------------------------------------------------------


def _asgi_batch(app: Any) -> Callable[[int], float]:
    """A batch runner over ``app`` (as bench.harness.time_asgi drives it), own jar and loop.

    It counts this process's CPU time, not wall-clock time: the requests run
    in-process with no I/O, so the two agree on a quiet machine, and on a
    shared one CPU time leaves out the time other processes held the core.
    """
    import time

    jar = Jar()
    loop = asyncio.new_event_loop()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            if message["status"] >= 500:
                raise RuntimeError(f"benchmark request failed with {message['status']}")
            for key, value in message.get("headers", ()):
                if key.lower() == b"set-cookie":
                    jar.store(value.decode("latin-1"))

    async def batch(n: int) -> float:
        start = time.process_time()
        for _ in range(n):
            scope = asgi_scope("/", jar)
            await app(scope, receive, send)
        return time.process_time() - start

    return lambda n: loop.run_until_complete(batch(n))


def interleaved_us(apps: dict[str, Any], batch: int, repeats: int) -> dict[str, float]:
    """Median µs/request per app, the batches of all apps taken in turn.

    On a shared machine the load drifts during a run; taking one batch of each
    contender in turn exposes them all to the same drift (cache pollution
    included), so their ratio holds even when the absolute figures wander.
    """
    import statistics

    runners = {name: _asgi_batch(app) for name, app in apps.items()}
    for run in runners.values():
        run(max(batch // 5, 20))
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            samples[name].append(run(batch) / batch * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


# -- the run ---------------------------------------------------------------------


def main(quick: bool) -> str:
    batch, repeats = (300, 3) if quick else (3000, 9)
    asgi = "ASGI request reading and writing a counter in a cookie session (in-process)"
    wsgi = "WSGI request reading and writing a counter in an encrypted cookie session"

    # Contenders' batches are interleaved (harness.compare) so background load
    # lands on all of them alike.
    asgi_apps = {
        "bare Starlette (no sessions)": (bare, False),
        "Starlette SessionMiddleware (signed)": (starlette_sessions, True),
        "starsessions CookieStore (signed)": (starsessions_cookie, True),
        "sessions cookie driver (AES-256-GCM)": (ours_asgi, True),
    }
    runners = {name: asgi_runner(build()) for name, (build, _) in asgi_apps.items()}
    medians = compare({k: run for k, (run, _) in runners.items()}, batch=batch, repeats=repeats)
    for _, close in runners.values():
        close()
    a_bare, a_star, a_stars, a_ours = (
        Result(asgi, name, medians[name], {"over 4 KB": oversize_asgi(build())} if over else {})
        for name, (build, over) in asgi_apps.items()
    )
    wsgi_apps = {
        "bare WSGI app (no sessions)": (lambda: bare_wsgi, False),
        "Beaker cookie session (AES, JSON)": (beaker_cookie, True),
        "sessions cookie driver (AES-256-GCM)": (ours_wsgi, True),
    }
    medians = compare(
        {name: wsgi_runner(build()) for name, (build, _) in wsgi_apps.items()},
        batch=batch,
        repeats=repeats,
    )
    w_bare, w_beaker, w_ours = (
        Result(wsgi, name, medians[name], {"over 4 KB": oversize_wsgi(build())} if over else {})
        for name, (build, over) in wsgi_apps.items()
    )

    lines = [
        report([a_bare, a_star, a_stars, a_ours], baseline=a_bare.name),
        report([w_bare, w_beaker, w_ours], baseline=w_bare.name),
        "",
    ]
    for row, base in ((a_star, a_bare), (a_stars, a_bare), (a_ours, a_bare)):
        lines.append(f"  {row.name}: adds {row.us - base.us:6.1f} µs to the bare app")
    for row, base in ((w_beaker, w_bare), (w_ours, w_bare)):
        lines.append(f"  {row.name}: adds {row.us - base.us:6.1f} µs to the bare WSGI app")
    lines.append(
        f"  ratio ours / Starlette SessionMiddleware = {a_ours.us / a_star.us:.2f} "
        f"(whole request; target <= 1.00)"
    )
    lines.append(
        f"  ratio of added cost, ours / Starlette SessionMiddleware = "
        f"{(a_ours.us - a_bare.us) / (a_star.us - a_bare.us):.2f}"
    )
    lines.append(f"  ratio ours / starsessions CookieStore = {a_ours.us / a_stars.us:.2f}")
    cross = interleaved_us(
        {
            "bare": bare(),
            "starlette": starlette_sessions(),
            "starsessions": starsessions_cookie(),
            "ours": ours_asgi(),
        },
        batch=batch // 3,
        repeats=repeats * 3,
    )
    lines.append(
        f"  interleaved cross-check (batches taken in turn, CPU time): bare {cross['bare']:.1f}, "
        f"Starlette {cross['starlette']:.1f}, ours {cross['ours']:.1f} µs/request; "
        f"starsessions {cross['starsessions']:.1f}; "
        f"ratio ours / Starlette = {cross['ours'] / cross['starlette']:.2f} (target <= 1.00), "
        f"ours / starsessions = {cross['ours'] / cross['starsessions']:.2f}"
    )
    lines.append(f"  ratio ours / Beaker (WSGI) = {w_ours.us / w_beaker.us:.2f}")
    return "\n".join(lines)
