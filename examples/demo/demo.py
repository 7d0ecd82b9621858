"""Minimal demo until the full one lands: a counter on the session."""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from sessions import SessionConfig, SessionManager
from sessions.asgi import SessionMiddleware

config = SessionConfig.from_env(
    secret=os.environ.get("SESSION_SECRET", "demo-secret-do-not-use-in-production-0123456789")
)


async def home(request: Request) -> HTMLResponse:
    count = request.session.increment("visits")
    return HTMLResponse(f"<h1>Visits: {count}</h1><p>driver: {config.driver}</p>")


app = SessionMiddleware(Starlette(routes=[Route("/", home)]), SessionManager(config))
