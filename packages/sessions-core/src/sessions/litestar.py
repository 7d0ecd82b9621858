"""Litestar integration: our ASGI middleware, and the session as a dependency.

    from litestar import Litestar, get
    from litestar.di import Provide
    from litestar.middleware import DefineMiddleware
    from sessions.asgi import SessionMiddleware
    from sessions.litestar import SessionDep, provide_session

    app = Litestar(
        route_handlers=[...],
        middleware=[DefineMiddleware(SessionMiddleware, manager=manager)],
        dependencies={"session": Provide(provide_session, sync_to_thread=False)},
        on_shutdown=[manager.aclose],
    )

    @get("/")
    async def home(session: SessionDep) -> str: ...

:class:`sessions.asgi.SessionMiddleware` puts the session in
``scope["session"]``, which is what Litestar's ``request.session`` returns.
Litestar builds the middleware once per route, so always pass it the one
``manager`` (with only ``config=``, each route would get a store of its own),
and close the manager in ``on_shutdown``: Litestar's lifespan does not pass
through route middleware.

This is the only module of ``sessions`` that imports Litestar (the
``sessions-core[litestar]`` extra).
"""

from __future__ import annotations

from typing import Any

from litestar.di import NamedDependency
from litestar.types import Scope

from .asgi import current_session
from .jinja import install_from_request
from .session import Session

__all__ = ["SessionDep", "install_templates", "provide_session"]

#: A handler parameter ``session: SessionDep`` receives the injected session, typed
#: as a :class:`~sessions.Session` (Litestar's ``NamedDependency[Session]``).
SessionDep = NamedDependency[Session]


def provide_session(scope: Scope) -> Session:
    """Litestar dependency: the connection's session (read-only on websockets).

    Register it as ``dependencies={"session": Provide(provide_session,
    sync_to_thread=False)}`` and declare ``session: SessionDep`` in handlers.

    Raises:
        LookupError: the scope holds no session of ours (the middleware is
            missing from ``middleware=[...]`` or the path is excluded).
    """
    return current_session(scope)


def install_templates(engine: Any) -> None:
    """Give Jinja templates read-only ``session`` and ``flash_messages``.

    Pass it as ``TemplateConfig(..., engine=JinjaTemplateEngine,
    engine_callback=install_templates)``; it also takes a ``jinja2.Environment``.
    Each template reads them from the ``request`` Litestar renders it with.
    """
    environment = getattr(engine, "engine", engine)
    install_from_request(environment)
