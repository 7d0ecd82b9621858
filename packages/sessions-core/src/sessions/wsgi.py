"""WSGI integration: any WSGI application (Werkzeug, Bottle, Pyramid, plain WSGI).

The session is ``environ["sessions.session"]``. It is read before the
application runs and committed when the application calls ``start_response``,
so the ``Set-Cookie`` headers leave with the response headers. WSGI is
synchronous: the configured driver must offer sync methods, which is checked
when the middleware is constructed.
"""

from __future__ import annotations

import codecs
import functools
import io
from collections.abc import Callable, Iterable
from email.message import Message
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

from .config import SessionConfig
from .driver import RequestContext
from .errors import SessionError
from .exclude import ExcludedPaths
from .http import cache_safe_headers
from .manager import SessionManager
from .proxy import ProxyWarning
from .session import Session

__all__ = [
    "ENVIRON_KEY",
    "MAX_FORM_BYTES",
    "FormTooLargeError",
    "SessionMiddleware",
    "current_session",
]

#: Where the session is placed in the WSGI environ.
ENVIRON_KEY = "sessions.session"
#: Largest urlencoded body that ``flash_all()`` and friends read without an explicit form.
MAX_FORM_BYTES = 1024 * 1024

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
_FORM_TYPE = "application/x-www-form-urlencoded"


class FormTooLargeError(SessionError, ValueError):
    """The request body is too large for ``flash_all()`` to read it on its own."""


class _RecordingInput(io.RawIOBase):
    """``wsgi.input`` that remembers the bytes it hands the application.

    ``flash_all()`` may be called after the application read the body (it
    usually is: validate, then flash), or before; either way the form must
    be available to both, so every byte pulled from the server's stream is
    kept, and the application's read position is tracked separately.
    """

    def __init__(self, stream: Any, length: int) -> None:
        super().__init__()
        self._stream = stream
        self._left = length
        self._buffer = bytearray()
        self._pos = 0

    def readable(self) -> bool:
        return True

    def _pull(self, size: int) -> None:
        while self._left > 0 and len(self._buffer) - self._pos < size:
            chunk = self._stream.read(min(self._left, max(size, 8192)))
            if not chunk:
                self._left = 0
                break
            self._left -= len(chunk)
            self._buffer += chunk

    def readinto(self, target: Any) -> int:
        view = memoryview(target).cast("B")
        self._pull(len(view))
        count = min(len(view), len(self._buffer) - self._pos)
        view[:count] = self._buffer[self._pos : self._pos + count]
        self._pos += count
        return count

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            self._pull(self._left)
            size = len(self._buffer) - self._pos
        self._pull(size)
        data = bytes(self._buffer[self._pos : self._pos + size])
        self._pos += len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        limit = size if size is not None and size >= 0 else None
        while True:
            end = self._buffer.find(b"\n", self._pos)
            if end >= 0 or self._left == 0:
                break
            if limit is not None and len(self._buffer) - self._pos >= limit:
                break
            self._pull(len(self._buffer) - self._pos + 8192)
        stop = len(self._buffer) if end < 0 else end + 1
        if limit is not None:
            stop = min(stop, self._pos + limit)
        data = bytes(self._buffer[self._pos : stop])
        self._pos = stop
        return data

    def body(self) -> bytes:
        """The whole body, without moving the application's read position."""
        self._pull(self._left + len(self._buffer))
        return bytes(self._buffer)


def _content_length(environ: dict[str, Any]) -> int | None:
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    return length if length >= 0 else None


def _charset(content_type: str) -> str:
    message = Message()
    message["content-type"] = content_type
    return _text_encoding(message.get_content_charset() or "utf-8")


@functools.lru_cache(maxsize=64)
def _text_encoding(charset: str) -> str:
    """``charset`` if it decodes bytes to text under errors="replace", else UTF-8.

    The name comes from the client: bytes-to-bytes codecs (zlib, hex, base64),
    text transforms (rot13) and codecs that refuse "replace" (idna, undefined)
    would otherwise raise out of ``flash_all()`` as a 500.
    """
    try:
        info = codecs.lookup(charset)
        if not getattr(info, "_is_text_encoding", True):
            return "utf-8"
        b"probe=\xff\x00%41+".decode(info.name, "replace")
    except (LookupError, UnicodeError, ValueError, TypeError):
        return "utf-8"
    return info.name


def _server_error(status: str) -> bool:
    """True for a ``5xx ...`` status line (an unparsable one counts as an error)."""
    code = status[:3]
    return not code.isdigit() or code[0] == "5"


def _media_type(environ: dict[str, Any]) -> str:
    return str(environ.get("CONTENT_TYPE", "")).split(";", 1)[0].strip().lower()


class _Form:
    """Reads the request's urlencoded form for ``flash_all()`` on first use."""

    __slots__ = ("_environ", "_form", "_input")

    def __init__(self, environ: dict[str, Any], recording: _RecordingInput | None) -> None:
        self._environ: dict[str, Any] | None = environ
        self._input = recording
        self._form: dict[str, Any] | None = None

    def release(self) -> None:
        """Let go of the environ once the response started (see ``SessionMiddleware``)."""
        self._environ = None

    def __call__(self) -> dict[str, Any]:
        if self._form is not None:
            return self._form
        environ = self._environ
        if environ is None:
            raise SessionError(
                "flash_all() and flash_only() read the submitted form only before the "
                "response starts: the session was committed when the application called "
                "start_response, so later changes would not be stored"
            )
        media = _media_type(environ)
        if self._input is None:
            if media == _FORM_TYPE:
                raise FormTooLargeError(
                    f"the request body (CONTENT_LENGTH={environ.get('CONTENT_LENGTH')!r}) is "
                    f"missing a length or larger than {MAX_FORM_BYTES} bytes, so flash_all() "
                    "cannot read it: pass the parsed form explicitly, "
                    "e.g. session.flash_all(request.form)"
                )
            if media not in ("", "text/plain") or _content_length(environ):
                raise TypeError(
                    f"flash_all() can read only {_FORM_TYPE} bodies by itself; this request "
                    f"is {media or 'without a content type'}: pass the parsed form "
                    "explicitly, e.g. session.flash_all(request.form)"
                )
            self._form = {}
            return self._form
        charset = _charset(environ.get("CONTENT_TYPE", ""))
        text = self._input.body().decode(charset, "replace")
        form: dict[str, Any] = {}
        pairs = parse_qsl(text, keep_blank_values=True, encoding=charset, errors="replace")
        for key, value in pairs:
            if key not in form:
                form[key] = value
            elif isinstance(form[key], list):
                form[key].append(value)
            else:
                form[key] = [form[key], value]
        self._form = form
        return form


class SessionMiddleware:
    """WSGI middleware that gives every request a session.

    Args:
        app: the WSGI application to wrap.
        manager: the :class:`~sessions.SessionManager`; built from ``config``
            (or ``SessionConfig.from_env()``) when omitted.
        config: used only when ``manager`` is omitted.
        exclude_paths: path prefixes (``"/static"``, ``"/health"``) that get no
            session, cost no store I/O and receive no cookie.

    A response with a 5xx status, or an application that raises before it
    calls ``start_response``, leaves the store untouched and sets no cookie,
    unless the config's ``commit_on_error`` is true.

    Raises:
        ConfigError: at construction, when the driver is async-only or
            misconfigured.
    """

    def __init__(
        self,
        app: WSGIApp,
        manager: SessionManager | None = None,
        *,
        config: SessionConfig | None = None,
        exclude_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.manager = manager or SessionManager(config or SessionConfig.from_env())
        self.enabled = self.manager.config.enabled
        if self.enabled:
            # Builds the driver, so a bad driver or option fails at startup too.
            self.manager.require_sync()
        self._exclude = ExcludedPaths(exclude_paths)
        self._excludes = bool(self._exclude)
        self._proxy = ProxyWarning(self.manager.config.cookie.secure)
        self._commit_on_error = self.manager.config.commit_on_error
        self._lazy = self.manager.config.lazy

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not self.enabled or (self._excludes and environ.get("PATH_INFO", "") in self._exclude):
            return self.app(environ, start_response)
        header = environ.get("HTTP_COOKIE")
        https = environ.get("wsgi.url_scheme") == "https"
        # Parsed only if something looks at the cookies (a lazy session may not).
        context = RequestContext(
            https=https, scope=environ, cookie_headers=[header] if header else None
        )
        recording = None
        if environ.get("CONTENT_LENGTH"):  # a body to keep for flash_all()
            length = _content_length(environ)
            if (
                _media_type(environ) == _FORM_TYPE
                and length is not None
                and length <= MAX_FORM_BYTES
                and environ.get("wsgi.input") is not None
            ):
                recording = _RecordingInput(environ["wsgi.input"], length)
                environ["wsgi.input"] = recording
        form = _Form(environ, recording)
        session = Session(self.manager, context, form=form)
        if self._lazy:
            session.defer()
        else:
            session.initiate()
        environ[ENVIRON_KEY] = session
        committed = False

        def start_with_cookie(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> Callable[[bytes], object]:
            nonlocal committed
            # environ -> session -> context/form -> environ is a reference cycle that
            # would leave every request's objects to the cyclic garbage collector. The
            # session is committed here, so nothing needs the environ through it after.
            session.detach()
            form.release()
            if not (session.initiated or session.accessed):
                # A lazy session nobody used: nothing to commit, no header to add.
                if exc_info is None:
                    return start_response(status, headers)
                return start_response(status, headers, exc_info)
            # An error page may start the response a second time (with exc_info);
            # the store is written once, the cookies go with whichever headers win.
            # A server error keeps the request's half-done changes out of the store.
            if not committed and (self._commit_on_error or not _server_error(status)):
                committed = True
                if session.initiated:
                    session.commit()
            cookies = [("Set-Cookie", value) for value in context.headers()]
            if cookies and self._proxy.active and not https:
                # A cookie leaves without Secure: is a TLS proxy in front?
                self._proxy.check_wsgi(environ)
            if cookies or session.accessed:
                headers = [*headers, *cookies]
                cache_safe_headers(headers, vary=True, private=bool(cookies))
            if exc_info is None:
                return start_response(status, headers)
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, start_with_cookie)
        except Exception:
            if self._commit_on_error and not committed and session.initiated:
                committed = True
                session.commit()
            raise


def current_session(environ: dict[str, Any]) -> Session:
    """The request's session, with a clear error when the middleware is missing."""
    session = environ.get(ENVIRON_KEY)
    if not isinstance(session, Session):
        raise LookupError(
            f"no session in environ[{ENVIRON_KEY!r}]: wrap the application in "
            "sessions.wsgi.SessionMiddleware (and check exclude_paths)"
        )
    return session
