"""The applications under soak, built in each server worker from the environment.

Every app has the same two routes:

* ``GET /inc`` increments the session's counter ``n`` and answers its new value;
* ``GET /get`` answers the counter without changing it (for the final check).

``SOAK_DRIVER`` and ``SOAK_OPTIONS`` (JSON) configure ours; ``SOAK_REDIS_URL``
the peers (starsessions, Flask-Session), which store in Redis.
"""

from __future__ import annotations

import json
import os
from typing import Any

SECRET = "soak-secret-0123456789abcdef0123456789abcdef"
AGE = 7200


def _manager() -> Any:
    from sessions import SessionConfig, SessionManager

    driver = os.environ["SOAK_DRIVER"]
    options = json.loads(os.environ.get("SOAK_OPTIONS") or "{}")
    config = SessionConfig(secret=SECRET, driver=driver, age=AGE, drivers={driver: options})
    return SessionManager(config)


def ours_asgi() -> Any:
    """Starlette + sessions.asgi.SessionMiddleware (uvicorn)."""
    from contextlib import asynccontextmanager

    from sessions.asgi import SessionMiddleware
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    manager = _manager()

    async def inc(request: Request) -> PlainTextResponse:
        session = request.session
        session.increment("n")
        return PlainTextResponse(str(session.get("n")))

    async def get(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(request.session.get("n", 0)))

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        yield
        await manager.aclose()

    app = Starlette(routes=[Route("/inc", inc), Route("/get", get)], lifespan=lifespan)
    return SessionMiddleware(app, manager)


def starsessions_asgi() -> Any:
    """Starlette + starsessions with its RedisStore (uvicorn)."""
    import redis.asyncio
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starsessions import SessionAutoloadMiddleware, SessionMiddleware
    from starsessions.stores.redis import RedisStore

    store = RedisStore(connection=redis.asyncio.Redis.from_url(os.environ["SOAK_REDIS_URL"]))

    async def inc(request: Request) -> PlainTextResponse:
        n = int(request.session.get("n", 0)) + 1
        request.session["n"] = n
        return PlainTextResponse(str(n))

    async def get(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(request.session.get("n", 0)))

    app = SessionAutoloadMiddleware(Starlette(routes=[Route("/inc", inc), Route("/get", get)]))
    return SessionMiddleware(app, store=store, lifetime=AGE, rolling=True, cookie_https_only=False)


def ours_flask() -> Any:
    """Flask + sessions.flask (gunicorn)."""
    from flask import Flask, session
    from sessions.flask import FlaskSessions

    app = Flask("soak")
    FlaskSessions(app, _manager(), templates=False)

    @app.route("/inc")
    def inc() -> str:
        session.increment("n")  # type: ignore[attr-defined]
        return str(session.get("n"))

    @app.route("/get")
    def get() -> str:
        return str(session.get("n", 0))

    return app


def flask_session_wsgi() -> Any:
    """Flask + Flask-Session's redis backend (gunicorn)."""
    import redis
    from flask import Flask, session
    from flask_session import Session

    app = Flask("soak")
    app.config.update(
        SESSION_TYPE="redis",
        SESSION_REDIS=redis.Redis.from_url(os.environ["SOAK_REDIS_URL"]),
        PERMANENT_SESSION_LIFETIME=AGE,
    )
    Session(app)

    @app.route("/inc")
    def inc() -> str:
        n = int(session.get("n", 0)) + 1
        session["n"] = n
        return str(n)

    @app.route("/get")
    def get() -> str:
        return str(session.get("n", 0))

    return app
