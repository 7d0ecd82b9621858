"""Jinja integration: ``session`` and ``flash_messages`` in templates, read-only,
and ``csrf_token()`` for forms.

Templates can look values up (``session.get('cart', 0)``,
``flash_messages.get('errors.title')``, ``flash_messages.has(...)``,
``flash_messages.all()``) but cannot change the session: the objects they
see have no ``put``, ``forget`` or ``flash``. Changing state is the job of the
view, not of the template that renders its result.

* Starlette / FastAPI: pass :func:`context_processor` to ``Jinja2Templates``.
* Flask: :class:`sessions.flask.FlaskSessions` installs both names itself.
* Litestar: :func:`install_from_request` (templates are rendered with the
  request in their context).
* Anything else: :func:`install` with a function that returns the current session.

This module never imports a web framework, and Jinja only when :func:`install` runs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .flash import FlashMessages
from .session import Session

if TYPE_CHECKING:
    import jinja2

__all__ = [
    "TemplateCsrfToken",
    "TemplateFlashMessages",
    "TemplateSession",
    "context_processor",
    "install",
    "install_from_request",
    "template_globals",
]

#: Returns the session of the request being rendered, or None outside a request.
SessionSource = Callable[[], Session | None]
_EMPTY_FLASH = FlashMessages()


def _detached(value: Any) -> Any:
    """A copy of nested containers, so a template's ``.update()`` or ``.append()``
    cannot reach into the session."""
    return copy.deepcopy(value) if isinstance(value, dict | list) else value


class _ReadOnlyView:
    """Source binding and the read-only mapping protocol of both template views."""

    __slots__ = ("_source",)

    def __init__(self, source: Session | SessionSource | None) -> None:
        if source is None or isinstance(source, Session):
            bound = source
            self._source: SessionSource = lambda: bound
        else:
            self._source = source

    def _mapping(self) -> Mapping[str, Any]:
        raise NotImplementedError

    def __getitem__(self, key: str) -> Any:
        return _detached(self._mapping()[key])

    def __contains__(self, key: object) -> bool:
        return key in self._mapping()

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {dict(self._mapping())!r}>"


class TemplateSession(_ReadOnlyView):
    """A read-only view of a session, for templates.

    Bound either to one session or to a function that returns the current
    request's session (for environment-wide globals). Outside a request, or
    on a path the middleware excludes, it behaves as an empty session.
    """

    __slots__ = ()

    def _values(self) -> dict[str, Any]:
        session = self._source()
        if session is None or not session.initiated:
            return {}
        return session.all()

    def get(self, key: str, default: Any = None) -> Any:
        """Value at ``key`` (dot paths allowed), or ``default``."""
        session = self._source()
        if session is None or not session.initiated:
            return default
        return _detached(session.get(key, default))

    def has(self, key: str) -> bool:
        """True when ``key`` is present and not None."""
        session = self._source()
        return session is not None and session.initiated and session.has(key)

    def all(self) -> dict[str, Any]:
        """A copy of every value."""
        return _detached(self._values())  # type: ignore[no-any-return]

    @property
    def is_empty(self) -> bool:
        """True when the session holds no values."""
        return not self._values()

    @property
    def fresh(self) -> bool:
        """True when this request started a new session (or regenerated it)."""
        session = self._source()
        return session is None or session.fresh

    _mapping = _values


class TemplateFlashMessages(_ReadOnlyView):
    """A read-only view of the flash messages the previous request left."""

    __slots__ = ()

    def _messages(self) -> FlashMessages:
        session = self._source()
        if session is None or not session.initiated:
            return _EMPTY_FLASH
        return session.flash_messages

    def get(self, key: str, default: Any = None) -> Any:
        """Message at ``key`` (dot paths allowed), or ``default``."""
        return _detached(self._messages().get(key, default))

    def has(self, key: str) -> bool:
        """True when a message is present (and not None) at ``key``."""
        return self._messages().has(key)

    def all(self) -> dict[str, Any]:
        """A copy of every message."""
        return _detached(self._messages().all())  # type: ignore[no-any-return]

    @property
    def is_empty(self) -> bool:
        """True when the previous request flashed nothing."""
        return self._messages().is_empty

    _mapping = _messages


class TemplateCsrfToken:
    """The ``csrf_token()`` template global: the current session's CSRF token.

    ``<input type="hidden" name="csrf_token" value="{{ csrf_token() }}">``.
    The one template call that may write the session: issuing the first token
    stores it (see :mod:`sessions.csrf`).
    """

    __slots__ = ("_source",)

    def __init__(self, source: Session | SessionSource | None) -> None:
        self._source = _ReadOnlyView(source)._source

    def __call__(self) -> str:
        from .csrf import csrf_token

        session = self._source()
        if session is None or not session.initiated:
            raise RuntimeError(
                "csrf_token() needs the request's session: render the template inside a "
                "request handled by the session middleware (and not on an excluded path)"
            )
        return csrf_token(session)


def template_globals(source: Session | SessionSource | None) -> dict[str, Any]:
    """``session`` and ``flash_messages`` read-only views over ``source``, and ``csrf_token``."""
    return {
        "session": TemplateSession(source),
        "flash_messages": TemplateFlashMessages(source),
        "csrf_token": TemplateCsrfToken(source),
    }


def context_processor(request: Any) -> dict[str, Any]:
    """Starlette/FastAPI ``Jinja2Templates`` context processor.

    ``Jinja2Templates(directory="templates", context_processors=[context_processor])``
    gives every ``TemplateResponse`` the request's ``session`` and
    ``flash_messages``, read from ``request.scope["session"]`` (set by
    :class:`sessions.asgi.SessionMiddleware`).
    """
    scope = getattr(request, "scope", None)
    if scope is None:
        raise TypeError(
            f"context_processor() needs a Starlette Request (with .scope), "
            f"got {type(request).__name__}"
        )
    session = scope.get("session")
    return template_globals(session if isinstance(session, Session) else None)


def install(environment: jinja2.Environment, current: SessionSource) -> None:
    """Add read-only ``session`` and ``flash_messages``, and ``csrf_token()``, to ``environment``.

    ``current`` returns the session of the request being rendered (None
    outside one); it is called on every lookup, so one environment serves
    every request.
    """
    environment.globals.update(template_globals(current))


_TEMPLATE_NAMES = frozenset(("session", "flash_messages"))


def install_from_request(environment: jinja2.Environment, request_key: str = "request") -> None:
    """Give templates read-only ``session`` and ``flash_messages`` taken from the
    request each template is rendered with.

    For frameworks that put the request into every template context (Litestar's
    ``Template`` responses do, as ``request``) but have no context processors.
    The request is anything with an ASGI ``scope`` holding our session. A
    ``session`` or ``flash_messages`` passed in the context explicitly wins.
    """
    from jinja2.utils import missing

    base: Any = environment.context_class

    class SessionContext(base):  # type: ignore[misc]
        """Resolves the two names from the request when the context lacks them."""

        def resolve_or_missing(self, key: str) -> Any:
            value = super().resolve_or_missing(key)
            if value is not missing or key not in _TEMPLATE_NAMES:
                return value
            request = super().resolve_or_missing(request_key)
            scope = getattr(request, "scope", None)
            found = scope.get("session") if isinstance(scope, Mapping) else None
            return template_globals(found if isinstance(found, Session) else None)[key]

    environment.context_class = SessionContext
