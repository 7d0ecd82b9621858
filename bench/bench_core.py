"""Issue 2: the in-process cost of an ASGI request that reads and writes a counter.

Contenders, in one run: a bare Starlette app (no sessions), Starlette's own
SessionMiddleware (signed cookie), starsessions with its CookieStore, and ours
on the memory driver; plus a request to a path our middleware excludes, which
should cost what the bare app costs.
"""

from __future__ import annotations

from typing import Any

from harness import Result, asgi_runner, compare, report
from sessions import SessionConfig, SessionManager
from sessions.asgi import SessionMiddleware
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware as StarletteSessions
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

SECRET = "bench-secret-0123456789-abcdefghijklmnop"


async def counter(request: Request) -> PlainTextResponse:
    session = request.session
    session["count"] = session.get("count", 0) + 1
    return PlainTextResponse(str(session["count"]))


async def bare_counter(request: Request) -> PlainTextResponse:
    return PlainTextResponse("1")


def _routes(endpoint: Any) -> list[Route]:
    return [Route("/", endpoint), Route("/health", bare_counter)]


def bare() -> Any:
    return Starlette(routes=_routes(bare_counter))


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


def ours(driver: str = "memory") -> Any:
    manager = SessionManager(SessionConfig(secret=SECRET, driver=driver), autoload_plugins=False)
    return Starlette(
        routes=_routes(counter),
        middleware=[Middleware(SessionMiddleware, manager=manager, exclude_paths=["/health"])],
    )


def main(quick: bool) -> str:
    batch, repeats = (300, 3) if quick else (3000, 9)
    group = "ASGI request reading and writing a counter (in-process)"
    contenders = {
        "bare Starlette (no sessions)": asgi_runner(bare()),
        "Starlette SessionMiddleware": asgi_runner(starlette_sessions()),
        "starsessions CookieStore": asgi_runner(starsessions_cookie()),
        "sessions (memory driver)": asgi_runner(ours()),
        "bare Starlette, /health": asgi_runner(bare(), "/health"),
        "sessions, excluded /health": asgi_runner(ours(), "/health"),
    }
    medians = compare({k: run for k, (run, _) in contenders.items()}, batch=batch, repeats=repeats)
    for _, close in contenders.values():
        close()
    rows = [Result(group, name, us) for name, us in medians.items()]
    base = medians["bare Starlette (no sessions)"]
    star = medians["Starlette SessionMiddleware"]
    lines = [report(rows, baseline="bare Starlette (no sessions)"), ""]
    for r in rows[1:]:
        lines.append(f"  {r.name}: adds {r.us - base:6.1f} µs to the bare app")
    ours_us = medians["sessions (memory driver)"]
    excluded = medians["sessions, excluded /health"] / medians["bare Starlette, /health"]
    lines.append(
        f"  ratio sessions(memory) / Starlette SessionMiddleware = {ours_us / star:.2f}"
        " (target <= 1.00)"
    )
    lines.append(f"  ratio excluded /health / bare app's /health = {excluded:.2f} (target <= 1.10)")
    return "\n".join(lines)
