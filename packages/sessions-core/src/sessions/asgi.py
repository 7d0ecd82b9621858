"""ASGI integration: Starlette, FastAPI and any ASGI application.

The session is ``scope["session"]``, so Starlette's ``request.session`` is it.
HTTP requests get a session that is committed just before the response headers
leave; websocket connections get a read-only one; lifespan passes through (and
a manager the middleware built itself is closed at lifespan shutdown).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any, Protocol

from .config import SessionConfig
from .driver import RequestContext
from .exclude import ExcludedPaths
from .http import asgi_cache_safe_headers
from .manager import SessionManager
from .proxy import ProxyWarning
from .session import Session

__all__ = ["SessionBridge", "SessionMiddleware", "current_session", "load_session"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class SessionBridge(Protocol):
    """Moves a session kept by another library into ours, once per browser.

    Called on every HTTP request right after the session is initiated, before
    the application runs; ``context.cookies`` are the request's cookies and
    cookies queued on ``context`` are sent with the response. See
    :class:`sessions.bridges.starlette.StarletteCookieBridge`.
    """

    def migrate(self, session: Session, context: RequestContext) -> None:
        """Adopt the other library's data into ``session`` and expire its cookie."""


class SessionMiddleware:
    """Pure ASGI middleware that gives every request a session.

    Args:
        app: the ASGI application to wrap.
        manager: the :class:`~sessions.SessionManager`; built from
            ``config`` (or ``SessionConfig.from_env()``) when omitted. A
            manager passed in belongs to the application, which closes it
            (``await manager.aclose()`` in its lifespan); one the middleware
            built is closed by the middleware at lifespan shutdown.
        config: used only when ``manager`` is omitted.
        exclude_paths: path prefixes (``"/static"``, ``"/health"``) that get no
            session, cost no store I/O and receive no cookie.
        bridges: :class:`SessionBridge` objects that move sessions of a
            previous session library into ours (read-only on their side).

    A response with a 5xx status, or an application that raises before it
    responds, leaves the store untouched and sets no cookie, unless the config's
    ``commit_on_error`` is true.
    """

    def __init__(
        self,
        app: ASGIApp,
        manager: SessionManager | None = None,
        *,
        config: SessionConfig | None = None,
        exclude_paths: Iterable[str] = (),
        bridges: Iterable[SessionBridge] = (),
    ) -> None:
        self.app = app
        #: True when the middleware built the manager, and so closes it at shutdown.
        self.owns_manager = manager is None
        self.manager = manager or SessionManager(config or SessionConfig.from_env())
        self.enabled = self.manager.config.enabled
        if self.enabled:
            self.manager.driver  # noqa: B018 - a bad driver or option fails at startup
        self._exclude = ExcludedPaths(exclude_paths)
        self._excludes = bool(self._exclude)
        self._proxy = ProxyWarning(self.manager.config.cookie.secure)
        self._commit_on_error = self.manager.config.commit_on_error
        self._bridges = tuple(bridges)
        # Bridges read the old library's session on every request, so they need ours read too.
        self._defer = self.manager.config.lazy and not self._bridges

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_after_close(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                try:
                    await self.manager.aclose()
                except Exception as exc:
                    # The server reports this and exits non-zero, instead of a
                    # leaked pool going unnoticed.
                    message = {
                        "type": "lifespan.shutdown.failed",
                        "message": f"closing the session manager failed: {exc!r}",
                    }
            await send(message)

        await self.app(scope, receive, send_after_close)

    async def _start_response(self, message: Message, session: Session, send: Send) -> None:
        """Commit ``session``, then send the response start with its cookies and Vary."""
        if session.initiated:
            await session.acommit()
        context = session.context
        cookies = context.headers()
        if cookies and self._proxy.active and not context.https:
            # A cookie leaves without Secure: is a TLS proxy in front?
            self._proxy.check_asgi(context.scope.get("headers", ()))
        if cookies or session.accessed:
            headers = list(message.get("headers", ()))
            for cookie in cookies:
                headers.append((b"set-cookie", cookie.encode("latin-1")))
            asgi_cache_safe_headers(headers, vary=True, private=bool(cookies))
            message["headers"] = headers
        await send(message)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan" and self.owns_manager:
            await self._lifespan(scope, receive, send)
            return
        if (
            (kind != "http" and kind != "websocket")
            or not self.enabled
            or (self._excludes and scope.get("path", "") in self._exclude)
        ):
            await self.app(scope, receive, send)
            return
        if kind == "websocket":
            session = Session(self.manager, RequestContext.for_asgi(scope))
            await session.ainitiate(readonly=True)
            scope["session"] = session
            try:
                await self.app(scope, receive, send)
            finally:
                session.detach()
            return
        if self._defer:
            # Neither the context nor the cookies are made unless the app uses it.
            session = Session.deferred(self.manager, _context_for, scope)
        else:
            context = RequestContext.for_asgi(scope)
            session = Session(self.manager, context)
            await session.ainitiate()
            for bridge in self._bridges:
                bridge.migrate(session, context)
        scope["session"] = session
        started = False

        # A plain function returning the awaitable it forwards: a request whose
        # lazy session went unused costs no extra coroutine per message.
        def send_with_cookie(message: Message) -> Awaitable[None]:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                # A lazy session nobody used has nothing to commit and adds no header;
                # a server error keeps the request's half-done changes out of the store.
                if (session.initiated or session.accessed) and (
                    self._commit_on_error or message.get("status", 200) < 500
                ):
                    return self._start_response(message, session, send)
            return send(message)

        try:
            await self.app(scope, receive, send_with_cookie)
        except Exception:
            if self._commit_on_error and not started and session.initiated:
                await session.acommit()
            raise
        finally:
            session.detach()


# Bound once: reading the classmethod off the class would make a new bound
# method on every request.
_context_for = RequestContext.for_asgi


async def load_session(connection: Any) -> Session:
    """The request's session, read from the store first if it is lazy and not read yet.

    With ``SessionConfig(lazy=True)`` an async application awaits this before
    using the session (FastAPI's ``SessionDep`` does it), so the read never
    blocks the event loop. Without ``lazy`` it is :func:`current_session`.
    """
    session = current_session(connection)
    if not session.initiated:
        await session.ainitiate()
    return session


def current_session(connection: Any) -> Session:
    """The session of a request, with a clear error when there is none.

    ``connection`` is a Starlette/FastAPI ``Request`` or ``WebSocket`` (anything
    with a ``scope``) or an ASGI scope. In FastAPI, wrap it in a one-line
    dependency so the session is typed::

        def session(request: Request) -> Session:
            return current_session(request)

        SessionDep = Annotated[Session, Depends(session)]

    Raises:
        LookupError: the scope holds no session of ours: the middleware is
            missing, the path is excluded, or another session middleware set
            ``scope["session"]``.
    """
    scope = getattr(connection, "scope", connection)
    found = scope.get("session") if isinstance(scope, Mapping) else None
    if isinstance(found, Session):
        return found
    what = "nothing" if found is None else f"a {type(found).__name__}"
    raise LookupError(
        f"no session in scope['session'] (it holds {what}): wrap the application in "
        "sessions.asgi.SessionMiddleware, check its exclude_paths, and remove any "
        "other session middleware"
    )
