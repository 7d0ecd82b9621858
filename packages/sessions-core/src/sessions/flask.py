"""Flask integration: ``flask.session`` becomes a :class:`~sessions.Session`.

    from flask import Flask
    from sessions import SessionConfig
    from sessions.flask import FlaskSessions

    app = Flask(__name__)
    FlaskSessions(app, config=SessionConfig(secret="...", driver="file"))

Flask's own ``flash()`` and ``get_flashed_messages()`` keep working: they are
mapped onto the session's flash messages under the key ``"_flashes"`` (see
:class:`FlaskSession`). Templates get read-only ``session`` and
``flash_messages`` (see :mod:`sessions.jinja`).

This is the only module of ``sessions`` that imports Flask (the
``sessions-core[flask]`` extra).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

from flask import Flask, has_request_context
from flask import request as flask_request
from flask import session as current_flask_session
from flask.sessions import NullSession, SessionInterface, SessionMixin
from flask.wrappers import Request, Response

from .config import SessionConfig
from .cookies import parse_cookie_header
from .csrf import FORM_FIELD, HEADER, SAFE_METHODS, rejection
from .driver import RequestContext
from .exclude import ExcludedPaths
from .jinja import install, template_globals
from .manager import SessionManager
from .proxy import ProxyWarning
from .session import Session

if TYPE_CHECKING:
    from werkzeug.datastructures import MultiDict

__all__ = [
    "FLASHES_KEY",
    "FlaskSession",
    "FlaskSessions",
    "SessionsInterface",
    "config_from_app",
    "csrf_protect",
    "response_cookies",
    "session",
    "vary_on_cookie",
]

#: The session key Flask's ``flash()`` and ``get_flashed_messages()`` use.
FLASHES_KEY = "_flashes"
_PERMANENT_KEY = "_permanent"
_MISSING: Any = object()


def _message(entry: Any) -> list[Any]:
    """One ``(category, message)`` pair as the codec stores it: a list of plain values."""
    category, message = entry
    # Markup is a str subclass the codec refuses; it is stored as its text.
    category = str(category) if isinstance(category, str) else category
    message = str(message) if isinstance(message, str) else message
    return [category, message]


class FlaskSession(Session, SessionMixin):
    """The session Flask sees as ``flask.session``.

    Adds the attributes Flask expects:

    * ``new``: the session started (or was regenerated) on this request.
    * ``modified``: this request changed it. Set ``session.modified = True``
      after mutating a nested value in place (``session["cart"].append(x)``)
      so the change is written.
    * ``permanent``: the cookie carries a Max-Age (default: the opposite of
      ``clear_with_browser``). Setting it stores ``"_permanent"`` in the
      session, as Flask does, when it differs from the config.
    * ``accessed``: the request looked at the session (adds ``Vary: Cookie``).

    ``session["_flashes"]`` is Flask's flash list, kept as our flash messages:
    reading it gives the messages the previous request flashed (until
    ``get_flashed_messages()`` consumed them) followed by those flashed in this
    request; writing it flashes the new entries for the next request only.
    """

    def __init__(
        self,
        manager: SessionManager,
        context: RequestContext,
        *,
        form: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__(manager, context, form=form)
        self.accessed = False
        self._flashes_consumed = False

    @property
    def new(self) -> bool:  # type: ignore[override]
        """True when this request started the session or moved it to a new id."""
        return self.fresh

    @property
    def modified(self) -> bool:
        """True when this request changed the values."""
        return self.has_been_modified

    @modified.setter
    def modified(self, value: bool) -> None:
        if value:
            # In-place edits of nested values are invisible to the session, so
            # any top-level key may have changed.
            self.mark_modified()
        else:
            self._modified = False

    @property
    def permanent(self) -> bool:
        """True when the cookie outlives the browser (it carries a Max-Age)."""
        self._readable()
        return self._is_permanent()

    @permanent.setter
    def permanent(self, value: bool) -> None:
        if bool(value) == (not self._manager.config.clear_with_browser):
            self.forget(_PERMANENT_KEY)
        else:
            self.put(_PERMANENT_KEY, bool(value))

    def _is_permanent(self) -> bool:
        stored = self._values.get(_PERMANENT_KEY)
        if isinstance(stored, bool):
            return stored
        return not self._manager.config.clear_with_browser

    def _readable(self) -> dict[str, Any]:
        values = super()._readable()
        self.accessed = True
        return values

    # -- Flask's flash list ----------------------------------------------------------

    def _previous_flashes(self) -> list[list[Any]]:
        if self._flashes_consumed:
            return []
        previous = self.flash_messages.get(FLASHES_KEY)
        return [list(entry) for entry in previous] if isinstance(previous, list) else []

    def _pending_flashes(self) -> list[tuple[Any, ...]] | None:
        self._readable()
        current = self._flashed.get(FLASHES_KEY, [])
        pending = [*self._previous_flashes(), *current]
        return [tuple(entry) for entry in pending] if pending else None

    def _set_flashes(self, value: Any) -> None:
        self._writable("flash")
        entries = [_message(entry) for entry in value]
        previous = self._previous_flashes()
        if entries[: len(previous)] == previous:
            # flash() read the pending list, appended, and wrote it back: the
            # previous request's entries are already on their way out.
            entries = entries[len(previous) :]
        else:
            self._flashes_consumed = True
        self._flashed.pop(FLASHES_KEY, None)
        if entries:
            self.flash(FLASHES_KEY, entries)

    def _consume_flashes(self) -> None:
        self._writable("consume flashed messages")
        self._flashes_consumed = True
        self._flashed.pop(FLASHES_KEY, None)

    def reflash(self) -> None:
        """Keep the current flash messages for one more request.

        Flask messages that ``get_flashed_messages()`` already returned stay consumed.
        """
        super().reflash()
        if self._flashes_consumed:
            self._reflashed.pop(FLASHES_KEY, None)

    def reflash_except(self, keys: Iterable[str]) -> None:
        """Keep every flash message but the named ones (and consumed Flask ones)."""
        super().reflash_except(keys)
        if self._flashes_consumed:
            self._reflashed.pop(FLASHES_KEY, None)

    def commit(self) -> None:
        """Persist the session; kept and new Flask messages are stored together."""
        kept = self._reflashed.get(FLASHES_KEY)
        new = self._flashed.get(FLASHES_KEY)
        if isinstance(kept, list) and isinstance(new, list):
            # Core lets this request's flash win over a reflashed key; for
            # Flask's list both halves are wanted, in order.
            self._flashed[FLASHES_KEY] = [*kept, *new]
        super().commit()

    def get(self, key: str, default: Any = None) -> Any:
        """Value at ``key`` (dot paths allowed); ``"_flashes"`` is Flask's flash list."""
        if key == FLASHES_KEY:
            pending = self._pending_flashes()
            return default if pending is None else pending
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        if key == FLASHES_KEY:
            pending = self._pending_flashes()
            if pending is None:
                raise KeyError(key)
            return pending
        return super().__getitem__(key)

    def __setitem__(self, key: str, value: Any) -> None:
        if key == FLASHES_KEY:
            self._set_flashes(value)
            return
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        if key == FLASHES_KEY:
            if self._pending_flashes() is None:
                raise KeyError(key)
            self._consume_flashes()
            return
        super().__delitem__(key)

    def __contains__(self, key: object) -> bool:
        if key == FLASHES_KEY:
            return self._pending_flashes() is not None
        return super().__contains__(key)


class _ExcludedSession(NullSession):
    """What ``flask.session`` is on an excluded path: empty, and refuses writes."""

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(
            "the session is unavailable on this path: it matches FlaskSessions' "
            "exclude_paths, which get no session and no cookie"
        )

    __setitem__ = __delitem__ = clear = pop = popitem = update = setdefault = _fail


class SessionsInterface(SessionInterface):
    """A Flask ``SessionInterface`` backed by a :class:`~sessions.SessionManager`.

    ``open_session`` reads the session (before the view runs);
    ``save_session`` commits it and adds its ``Set-Cookie`` headers to the
    response. Flask's ``SESSION_COOKIE_*`` settings are not used: the cookie
    follows the :class:`~sessions.SessionConfig`.

    A 5xx response (which includes the 500 of a view that raised) commits
    nothing and sets no cookie, unless the config's ``commit_on_error`` is true.
    """

    null_session_class = _ExcludedSession

    def __init__(self, manager: SessionManager, exclude_paths: Iterable[str] = ()) -> None:
        self.manager = manager
        self._exclude = ExcludedPaths(exclude_paths)
        self._proxy = ProxyWarning(manager.config.cookie.secure)

    def open_session(self, app: Flask, request: Request) -> FlaskSession | None:
        """Read the request's session; None (an empty, read-only one) on excluded paths."""
        if self._exclude and request.path in self._exclude:
            return None
        header = request.environ.get("HTTP_COOKIE")
        https = request.scheme == "https"
        if self._proxy.active and not https:
            self._proxy.check_wsgi(request.environ)
        context = RequestContext(
            parse_cookie_header([header]) if header else {}, https=https, scope=request.environ
        )

        def form() -> MultiDict[str, str]:
            return request.form

        session = FlaskSession(self.manager, context, form=form)
        if self.manager.config.lazy:
            session.defer()  # read on first use
        else:
            session.initiate()
        return session

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Commit the session and add its cookies to ``response``."""
        if not isinstance(session, FlaskSession):
            return
        if response.status_code >= 500 and not self.manager.config.commit_on_error:
            return  # a server error keeps the request's half-done changes out
        if session.initiated:
            session.commit()
        add_response_headers(session, response)


def add_response_headers(session: FlaskSession, response: Any) -> None:
    """Add a committed session's cookies, ``Vary: Cookie`` and ``Cache-Control: private``."""
    cookies = response_cookies(session)
    for value in cookies:
        response.headers.add("Set-Cookie", value)
    if cookies or session.accessed:
        vary_on_cookie(response)
    if cookies and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "private"


def response_cookies(session: FlaskSession) -> list[str]:
    """``Set-Cookie`` values of a committed session, with Max-Age following ``permanent``."""
    context = session.context
    if session.initiated and not session.readonly:
        own = session.expiry
        wanted = None
        if session._is_permanent():
            wanted = own if own else session._manager.config.age_seconds
        for name, cookie in list(context.outgoing.items()):
            if cookie.max_age != 0 and cookie.max_age != wanted:
                context.outgoing[name] = dataclasses.replace(cookie, max_age=wanted)
    return context.headers()


def vary_on_cookie(response: Any) -> None:
    """Add ``Cookie`` to the response's ``Vary`` header (a Flask or Quart response)."""
    # What ``response.vary.add("Cookie")`` does, without parsing the header
    # into a HeaderSet on every response (a measurable share of each request).
    vary = response.headers.get("Vary")
    if not vary:
        response.headers["Vary"] = "Cookie"
    elif "cookie" not in {part.strip().lower() for part in vary.split(",")}:
        response.headers["Vary"] = f"{vary}, Cookie"


def session() -> FlaskSession:
    """The current request's session, typed as our :class:`FlaskSession`.

    ``flask.session`` is the same object, but typed by Flask as its own
    ``SessionMixin``; use this accessor where mypy should see ``get``/``put``,
    ``flash``, ``regenerate()``... ::

        from sessions.flask import session

        @app.post("/cart")
        def add() -> Response:
            session().increment("cart.items")

    Raises:
        RuntimeError: called outside a request.
        LookupError: this request has no session of ours: :class:`FlaskSessions`
            is not installed on the app, or the path is excluded.
    """
    if not has_request_context():
        raise RuntimeError(
            "sessions.flask.session() was called outside a request: call it in a view, "
            "a before/after-request function, or a test_request_context()"
        )
    found = cast(Any, current_flask_session)._get_current_object()
    if isinstance(found, FlaskSession):
        return found
    raise LookupError(
        f"flask.session is a {type(found).__name__}, not a sessions session: install "
        "sessions.flask.FlaskSessions(app) and check its exclude_paths"
    )


def _current_session() -> Session | None:
    if not has_request_context():
        return None
    # The proxy resolves to the request's object; templates keep the object itself.
    session = cast(Any, current_flask_session)._get_current_object()
    return session if isinstance(session, Session) else None


def config_from_app(app_config: Mapping[str, Any]) -> SessionConfig:
    """The config in a Flask or Quart app's ``config["SESSIONS"]``.

    A :class:`~sessions.SessionConfig`, or a mapping of its fields; when the key
    is absent, :meth:`SessionConfig.from_env`.
    """
    given = app_config.get("SESSIONS")
    if isinstance(given, SessionConfig):
        return given
    if isinstance(given, Mapping):
        return SessionConfig(**given)
    if given is None:
        return SessionConfig.from_env()
    raise TypeError(
        f"app.config['SESSIONS'] must be a SessionConfig or a mapping of its "
        f"fields, got {type(given).__name__}"
    )


class FlaskSessions:
    """Installs sessions on a Flask application.

    Args:
        app: the application (or call :meth:`init_app` later).
        manager: the :class:`~sessions.SessionManager` to use.
        config: a :class:`~sessions.SessionConfig`, used when ``manager`` is omitted.
            Without either, ``app.config["SESSIONS"]`` (a SessionConfig or a
            mapping of its fields) is used, else ``SessionConfig.from_env()``.
        exclude_paths: path prefixes that get no session, no store I/O and no cookie.
        templates: install read-only ``session`` and ``flash_messages`` in templates.

    Raises:
        ConfigError: at construction, when the driver is async-only or misconfigured.
    """

    def __init__(
        self,
        app: Flask | None = None,
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

    def _manager_for(self, app: Flask) -> SessionManager:
        if self.manager is not None:
            return self.manager
        config = self.config if self.config is not None else config_from_app(app.config)
        self.manager = SessionManager(config)
        return self.manager

    def init_app(self, app: Flask) -> None:
        """Replace ``app.session_interface``; a disabled config leaves Flask's own."""
        manager = self._manager_for(app)
        app.extensions["sessions"] = self
        if not manager.config.enabled:
            return
        manager.require_sync()
        app.session_interface = SessionsInterface(manager, self.exclude_paths)
        if self.templates:
            install(app.jinja_env, _current_session)
            # Flask injects its own (writable) ``session`` into every template
            # context; a later context processor replaces it with the read-only view.
            app.context_processor(lambda: template_globals(_current_session))


def csrf_protect(
    app: Flask,
    *,
    exempt_paths: Iterable[str] = (),
    field_name: str = FORM_FIELD,
    header_name: str = HEADER,
) -> None:
    """Refuse unsafe-method requests (POST, PUT, PATCH, DELETE) without a valid
    CSRF token with a 403, before the view runs.

    The token (``session.csrf_token()``, or ``{{ csrf_token() }}`` in a
    template) is read from the ``X-CSRF-Token`` header or the ``csrf_token``
    form field. Call it after :class:`FlaskSessions`. See :mod:`sessions.csrf`.
    """
    if "sessions" not in app.extensions:
        raise RuntimeError(
            "csrf_protect(app) needs the session: install FlaskSessions on the app first"
        )
    exempt = ExcludedPaths(exempt_paths)

    def check_csrf() -> Response | None:
        request = flask_request
        if request.method in SAFE_METHODS or (exempt and request.path in exempt):
            return None
        current = _current_session()
        if current is None:
            # Fail closed: a path FlaskSessions excludes has no session to check against.
            reason: str | None = (
                "CSRF check failed: this path has no session (FlaskSessions excludes it); "
                "list it in csrf_protect()'s exempt_paths too"
            )
        else:
            token = request.headers.get(header_name) or request.form.get(field_name)
            reason = rejection(current, token, field_name, header_name)
        if reason is None:
            return None
        return Response(f"403 Forbidden\n\n{reason}\n", 403, mimetype="text/plain")

    app.before_request(check_csrf)
