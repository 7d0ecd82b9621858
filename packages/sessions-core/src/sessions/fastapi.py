"""FastAPI integration: the request's session as a typed dependency.

    from fastapi import FastAPI
    from sessions.asgi import SessionMiddleware
    from sessions.fastapi import SessionDep

    app = FastAPI()
    app.add_middleware(SessionMiddleware, manager=manager)

    @app.get("/")
    async def home(session: SessionDep) -> dict[str, int]:
        return {"visits": session.increment("visits")}

This is the only module of ``sessions`` that imports FastAPI (the
``sessions-core[fastapi]`` extra).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from .asgi import load_session
from .session import Session

__all__ = ["SessionDep", "get_session"]


async def get_session(connection: HTTPConnection) -> Session:
    """The session of the current request or websocket.

    A lazy session (``SessionConfig(lazy=True)``) is read here, on the event
    loop without blocking it, so endpoints that do not take the dependency
    cost no store I/O.

    Raises:
        LookupError: no :class:`sessions.asgi.SessionMiddleware` session here
            (the middleware is missing or the path is excluded); FastAPI
            answers 500 and logs the message, which says which.
    """
    return await load_session(connection)


#: A FastAPI dependency: ``session: SessionDep`` gives the typed :class:`~sessions.Session`.
SessionDep = Annotated[Session, Depends(get_session)]
