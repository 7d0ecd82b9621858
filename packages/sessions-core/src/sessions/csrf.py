"""CSRF protection: a synchronizer token kept in the session.

* :func:`csrf_token` (also ``session.csrf_token()`` and the Jinja global
  ``csrf_token()``) returns the token to put in a form field named
  ``csrf_token`` or an ``X-CSRF-Token`` header.
* :func:`verify` checks a submitted token in constant time.
* :class:`CsrfMiddleware` (ASGI) and :class:`WsgiCsrfMiddleware` (WSGI), and
  :func:`sessions.flask.csrf_protect` for Flask, refuse an unsafe-method request
  (POST, PUT, PATCH, DELETE) without a valid token with a 403.

How the token works:

* Each session has one random 32-byte secret, stored under the reserved key
  ``"_csrf"`` together with a digest of the session id it was made for.
* It rotates when the session id changes: after ``regenerate()`` (call it at
  sign-in and sign-out) the stored secret belongs to the old id, so it no longer
  verifies and the next ``csrf_token()`` makes a new one. A token stolen before
  sign-in is worthless after it. ``clear()`` drops it too.
* Every call returns the secret masked with a fresh one-time pad (as Django
  does), so the page's bytes differ on each render and compression side
  channels (BREACH) cannot recover it; any masked form verifies.
* Issuing the first token writes the session (it must survive to the POST),
  so a page that renders a form starts a stored session.

This module imports no web framework.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from email.message import Message as EmailMessage
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from .exclude import ExcludedPaths

if TYPE_CHECKING:
    from .session import Session

__all__ = [
    "CSRF_KEY",
    "FORM_FIELD",
    "HEADER",
    "MAX_BODY_BYTES",
    "SAFE_METHODS",
    "CsrfMiddleware",
    "WsgiCsrfMiddleware",
    "csrf_token",
    "rejection",
    "verify",
]

#: The reserved session key holding the secret: ``{"for": ..., "secret": ...}``.
CSRF_KEY = "_csrf"
#: Form field the middleware reads the token from.
FORM_FIELD = "csrf_token"
#: Header the middleware reads the token from (scripts, JSON APIs).
HEADER = "X-CSRF-Token"
#: Methods that must not change state, so they need no token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
#: Largest body the middleware reads to find the form field.
MAX_BODY_BYTES = 1024 * 1024

_SECRET_BYTES = 32
_FORM = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"
logger = logging.getLogger("sessions.csrf")


def _binding(session: Session) -> str:
    # A digest, not the id itself: the id is the storage key and need not be copied.
    return hashlib.sha256(session.session_id.encode("ascii")).hexdigest()[:32]


def _secret(session: Session) -> bytes | None:
    """The session's current secret, or None (never issued, or issued for an old id)."""
    entry = session.get(CSRF_KEY)
    if type(entry) is not dict or entry.get("for") != _binding(session):
        return None
    stored = entry.get("secret")
    if type(stored) is not str:
        return None
    try:
        raw = base64.urlsafe_b64decode(stored.encode("ascii"))
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == _SECRET_BYTES else None


def csrf_token(session: Session) -> str:
    """A token for ``session``, to send with the next unsafe request.

    Makes and stores the session's secret on first use (and after the session
    id changed); each call returns it under a new mask.
    """
    secret = _secret(session)
    if secret is None:
        secret = secrets.token_bytes(_SECRET_BYTES)
        session.put(
            CSRF_KEY,
            {"for": _binding(session), "secret": base64.urlsafe_b64encode(secret).decode()},
        )
    pad = secrets.token_bytes(_SECRET_BYTES)
    masked = pad + bytes(a ^ b for a, b in zip(pad, secret, strict=True))
    return base64.urlsafe_b64encode(masked).rstrip(b"=").decode("ascii")


def _unmask(token: str) -> bytes | None:
    if not isinstance(token, str) or len(token) != 86 or not token.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii") + b"==")
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 2 * _SECRET_BYTES:
        return None
    pad, masked = raw[:_SECRET_BYTES], raw[_SECRET_BYTES:]
    return bytes(a ^ b for a, b in zip(pad, masked, strict=True))


def verify(session: Session, token: str | None) -> bool:
    """True when ``token`` is a valid token of ``session`` (constant-time comparison)."""
    secret = _secret(session)
    given = _unmask(token) if token else None
    if secret is None or given is None:
        return False
    return hmac.compare_digest(secret, given)


def rejection(session: Session, token: str | None, field: str, header: str) -> str | None:
    """Why a request carrying ``token`` must be refused, or None when it is valid."""
    if verify(session, token):
        return None
    if not token:
        problem = "the request carries no CSRF token"
    elif _secret(session) is None:
        problem = (
            "this session has no CSRF token (it expired, was cleared, or was regenerated "
            "since the form was rendered)"
        )
    else:
        problem = "the CSRF token does not match this session"
    return (
        f"CSRF check failed: {problem}. A form must send the value of csrf_token() in a "
        f"field named {field!r}, or a script in an {header!r} header. Reload the page "
        "and submit again."
    )


def _form_field(body: bytes, content_type: str, field: str) -> str | None:
    media = content_type.split(";", 1)[0].strip().lower()
    if media == _FORM:
        for key, value in parse_qsl(body.decode("latin-1"), keep_blank_values=True):
            if key == field:
                return value
        return None
    if media == _MULTIPART:
        head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
        message = BytesParser().parsebytes(head + body)
        if not message.is_multipart():
            return None
        for part in message.get_payload():
            if (
                isinstance(part, EmailMessage)
                and part.get_param("name", header="content-disposition") == field
            ):
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    return payload.decode("utf-8", "replace").strip()
        return None
    return None


def _no_session(where: str) -> str:
    return (
        f"CSRF check failed: there is no session in {where} to check the token against. "
        "Place the CSRF middleware inside the session middleware, and list paths that "
        "the session middleware excludes in the CSRF middleware's exempt_paths too."
    )


def _session_or_reason(session: Any, where: str) -> tuple[Session | None, str | None]:
    from .session import Session

    if isinstance(session, Session):
        return session, None
    # Fail closed: without a session nothing can be verified.
    return None, _no_session(where)


# -- ASGI ----------------------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class CsrfMiddleware:
    """ASGI middleware refusing unsafe requests without a valid CSRF token (403).

    Wrap the application *inside* :class:`sessions.asgi.SessionMiddleware`::

        app = SessionMiddleware(CsrfMiddleware(app, exempt_paths=["/webhooks"]), manager)

    The token is read from the ``X-CSRF-Token`` header, else from the
    ``csrf_token`` field of an urlencoded or multipart body of up to
    :data:`MAX_BODY_BYTES` (the body is replayed to the application unchanged).

    Args:
        app: the ASGI application to protect.
        exempt_paths: path prefixes that are not checked (webhooks, token-authenticated APIs).
        field_name: the form field holding the token.
        header_name: the header holding the token.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        exempt_paths: Iterable[str] = (),
        field_name: str = FORM_FIELD,
        header_name: str = HEADER,
    ) -> None:
        self.app = app
        self._exempt = ExcludedPaths(exempt_paths)
        self.field_name = field_name
        self.header_name = header_name
        self._header = header_name.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method", "GET") in SAFE_METHODS
            or (self._exempt and scope.get("path", "") in self._exempt)
        ):
            await self.app(scope, receive, send)
            return
        session, reason = _session_or_reason(scope.get("session"), "scope['session']")
        if session is None:
            await _forbidden(send, reason or "")
            return
        token = content_type = None
        for name, value in scope.get("headers", ()):
            if name == self._header:
                token = value.decode("latin-1")
            elif name == b"content-type":
                content_type = value.decode("latin-1")
        replay: list[Message] = []
        if not token and content_type:
            body, replay, complete = await _read_body(receive)
            if complete:
                token = _form_field(body, content_type, self.field_name)
        reason = rejection(session, token, self.field_name, self.header_name)
        if reason is not None:
            logger.info("refused %s %s: %s", scope.get("method"), scope.get("path"), reason)
            await _forbidden(send, reason)
            return

        async def replayed() -> Message:
            return replay.pop(0) if replay else await receive()

        await self.app(scope, replayed, send)


async def _read_body(receive: Receive) -> tuple[bytes, list[Message], bool]:
    """The body (up to the limit), the messages to replay, and whether it is whole."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return b"", messages, False
        size += len(message.get("body", b""))
        if size > MAX_BODY_BYTES:
            return b"", messages, False
        if not message.get("more_body", False):
            return b"".join(m.get("body", b"") for m in messages), messages, True


async def _forbidden(send: Send, reason: str) -> None:
    body = f"403 Forbidden\n\n{reason}\n".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# -- WSGI ----------------------------------------------------------------------------------

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class WsgiCsrfMiddleware:
    """WSGI middleware refusing unsafe requests without a valid CSRF token (403).

    Wrap the application *inside* :class:`sessions.wsgi.SessionMiddleware`::

        app = SessionMiddleware(WsgiCsrfMiddleware(app), manager)

    Same token sources and arguments as :class:`CsrfMiddleware`.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        exempt_paths: Iterable[str] = (),
        field_name: str = FORM_FIELD,
        header_name: str = HEADER,
    ) -> None:
        self.app = app
        self._exempt = ExcludedPaths(exempt_paths)
        self.field_name = field_name
        self.header_name = header_name
        self._environ_key = "HTTP_" + header_name.upper().replace("-", "_")

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET") in SAFE_METHODS or (
            self._exempt and environ.get("PATH_INFO", "") in self._exempt
        ):
            return self.app(environ, start_response)
        from .wsgi import ENVIRON_KEY

        session, reason = _session_or_reason(environ.get(ENVIRON_KEY), f"environ[{ENVIRON_KEY!r}]")
        if session is not None:
            token = environ.get(self._environ_key)
            content_type = str(environ.get("CONTENT_TYPE", ""))
            if not token and content_type:
                body = _wsgi_body(environ)
                if body is not None:
                    token = _form_field(body, content_type, self.field_name)
            reason = rejection(session, token, self.field_name, self.header_name)
        if reason is None:
            return self.app(environ, start_response)
        logger.info(
            "refused %s %s: %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), reason
        )
        body = f"403 Forbidden\n\n{reason}\n".encode()
        start_response(
            "403 Forbidden",
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
        )
        return [body]


def _wsgi_body(environ: dict[str, Any]) -> bytes | None:
    """The request body (put back for the application), or None when too large."""
    import io

    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    stream = environ.get("wsgi.input")
    if stream is None or not 0 <= length <= MAX_BODY_BYTES:
        return None
    body: bytes = stream.read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body
