"""Quart integration: ``quart.session`` becomes a :class:`~sessions.Session`.

    from quart import Quart
    from sessions import SessionConfig
    from sessions.quart import QuartSessions

    app = Quart(__name__)
    QuartSessions(app, config=SessionConfig(secret="...", driver="redis"))

The mirror of :mod:`sessions.flask` for Quart, Flask's async twin: the same
session class (Flask-style ``new``/``modified``/``permanent``, and Quart's
``flash()``/``get_flashed_messages()`` mapped onto our flash messages), but read
and committed with ``ainitiate()``/``acommit()``, so async drivers are awaited
on the event loop and sync-only ones run in a worker thread. Websocket
handlers get a read-only session. Templates get read-only ``session`` and
``flash_messages`` (see :mod:`sessions.jinja`).

This is the only module of ``sessions`` that imports Quart (the
``sessions-core[quart]`` extra).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from quart import Quart, Response, has_request_context, has_websocket_context
from quart import request as quart_request
from quart import session as current_quart_session
from quart.sessions import SessionInterface, SessionMixin
from quart.wrappers import BaseRequestWebsocket, Websocket

from .config import SessionConfig
from .cookies import parse_cookie_header
from .csrf import FORM_FIELD, HEADER, SAFE_METHODS, rejection
from .driver import RequestContext
from .exclude import ExcludedPaths
from .flask import FlaskSession, _ExcludedSession, add_response_headers, config_from_app
from .jinja import install, template_globals
from .manager import SessionManager
from .proxy import ProxyWarning
from .session import Session

__all__ = ["QuartSessionInterface", "QuartSessions", "csrf_protect", "session"]


class QuartSessionInterface(SessionInterface):
    """A Quart ``SessionInterface`` backed by a :class:`~sessions.SessionManager`.

    ``open_session`` awaits :meth:`Session.ainitiate` before the view runs and
    ``save_session`` awaits :meth:`Session.acommit`, then adds the
    ``Set-Cookie`` headers. Quart's ``SESSION_COOKIE_*`` settings are not used:
    the cookie follows the :class:`~sessions.SessionConfig`.

    A 5xx response (which includes the 500 of a view that raised) commits
    nothing and sets no cookie, unless the config's ``commit_on_error`` is true.
    """

    null_session_class = _ExcludedSession

    def __init__(self, manager: SessionManager, exclude_paths: Iterable[str] = ()) -> None:
        self.manager = manager
        self._exclude = ExcludedPaths(exclude_paths)
        self._proxy = ProxyWarning(manager.config.cookie.secure)

    async def open_session(self, app: Quart, request: BaseRequestWebsocket) -> FlaskSession | None:
        """Read the request's session (read-only for websockets); None on excluded paths."""
        if self._exclude and request.path in self._exclude:
            return None
        header = request.headers.get("Cookie")
        websocket = isinstance(request, Websocket)
        https = request.scheme in ("https", "wss")
        if self._proxy.active and not https:
            self._proxy.check_asgi(request.scope.get("headers", ()))
        context = RequestContext(
            parse_cookie_header([header]) if header else {}, https=https, scope=request.scope
        )
        # Quart's form is awaited (``await request.form``): flash_all() and
        # friends take the form as an argument, as in any ASGI application.
        session = FlaskSession(self.manager, context)
        if (
            self.manager.config.lazy
            and not websocket
            and self.manager.config.cookie_name not in context.cookies
        ):
            # Quart's session is a sync proxy that cannot await a lazy read, so only
            # a request without a session cookie (nothing to read) is left lazy.
            session.defer()
        else:
            await session.ainitiate(readonly=websocket)
        return session

    async def save_session(self, app: Quart, session: SessionMixin, response: Any) -> None:
        """Commit the session and add its cookies to ``response`` (None for websockets)."""
        if not isinstance(session, FlaskSession):
            return
        status = getattr(response, "status_code", 200)
        if status >= 500 and not self.manager.config.commit_on_error:
            return  # a server error keeps the request's half-done changes out
        await session.acommit()
        if response is None:
            return
        add_response_headers(session, response)


def session() -> FlaskSession:
    """The current request's (or websocket's) session, typed as our session class.

    ``quart.session`` is the same object, typed by Quart as its ``SessionMixin``.

    Raises:
        RuntimeError: called outside a request or websocket.
        LookupError: no session of ours here: :class:`QuartSessions` is not
            installed, or the path is excluded.
    """
    if not (has_request_context() or has_websocket_context()):
        raise RuntimeError(
            "sessions.quart.session() was called outside a request: call it in a view, "
            "a websocket handler or a before/after-request function"
        )
    found = cast(Any, current_quart_session)._get_current_object()
    if isinstance(found, FlaskSession):
        return found
    raise LookupError(
        f"quart.session is a {type(found).__name__}, not a sessions session: install "
        "sessions.quart.QuartSessions(app) and check its exclude_paths"
    )


def _current_session() -> Session | None:
    if not (has_request_context() or has_websocket_context()):
        return None
    found = cast(Any, current_quart_session)._get_current_object()
    return found if isinstance(found, Session) else None


class QuartSessions:
    """Installs sessions on a Quart application.

    Args:
        app: the application (or call :meth:`init_app` later).
        manager: the :class:`~sessions.SessionManager` to use; the
            application closes it (``await manager.aclose()`` in an
            ``after_serving`` function).
        config: a :class:`~sessions.SessionConfig`, used when ``manager`` is
            omitted. Without either, ``app.config["SESSIONS"]`` (a
            SessionConfig or a mapping of its fields) is used, else
            ``SessionConfig.from_env()``. A manager built here is closed
            when the application stops serving.
        exclude_paths: path prefixes that get no session, no store I/O and no cookie.
        templates: install read-only ``session`` and ``flash_messages`` in templates.
    """

    def __init__(
        self,
        app: Quart | None = None,
        manager: SessionManager | None = None,
        *,
        config: SessionConfig | None = None,
        exclude_paths: Iterable[str] = (),
        templates: bool = True,
    ) -> None:
        self.manager = manager
        self.config = config
        self.exclude_paths = tuple(exclude_paths)
        self.templates = templates
        if app is not None:
            self.init_app(app)

    def _manager_for(self, app: Quart) -> tuple[SessionManager, bool]:
        if self.manager is not None:
            return self.manager, False
        config = self.config if self.config is not None else config_from_app(app.config)
        self.manager = SessionManager(config)
        return self.manager, True

    def init_app(self, app: Quart) -> None:
        """Replace ``app.session_interface``; a disabled config leaves Quart's own."""
        manager, owned = self._manager_for(app)
        app.extensions["sessions"] = self
        if not manager.config.enabled:
            return
        manager.driver  # noqa: B018 - a bad driver or option fails at startup
        # Quart types the attribute as its cookie interface; any SessionInterface works.
        app.session_interface = QuartSessionInterface(  # type: ignore[assignment]
            manager, self.exclude_paths
        )
        if owned:

            async def close_manager() -> None:
                await manager.aclose()

            app.after_serving(close_manager)
        if self.templates:
            install(app.jinja_env, _current_session)
            # Quart puts its own (writable) ``session`` in every template
            # context; a later context processor replaces it with the read-only view.
            app.context_processor(lambda: template_globals(_current_session))


def csrf_protect(
    app: Quart,
    *,
    exempt_paths: Iterable[str] = (),
    field_name: str = FORM_FIELD,
    header_name: str = HEADER,
) -> None:
    """Refuse unsafe-method requests (POST, PUT, PATCH, DELETE) without a valid
    CSRF token with a 403, before the view runs: the Quart twin of
    :func:`sessions.flask.csrf_protect`. Call it after :class:`QuartSessions`.
    """
    if "sessions" not in app.extensions:
        raise RuntimeError(
            "csrf_protect(app) needs the session: install QuartSessions on the app first"
        )
    exempt = ExcludedPaths(exempt_paths)

    async def check_csrf() -> Response | None:
        request = quart_request
        if request.method in SAFE_METHODS or (exempt and request.path in exempt):
            return None
        current = _current_session()
        if current is None:
            # Fail closed: a path QuartSessions excludes has no session to check against.
            reason: str | None = (
                "CSRF check failed: this path has no session (QuartSessions excludes it); "
                "list it in csrf_protect()'s exempt_paths too"
            )
        else:
            token = request.headers.get(header_name) or (await request.form).get(field_name)
            reason = rejection(current, token, field_name, header_name)
        if reason is None:
            return None
        return Response(f"403 Forbidden\n\n{reason}\n", 403, mimetype="text/plain")

    app.before_request(check_csrf)
