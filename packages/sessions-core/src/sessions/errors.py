"""Exceptions raised by sessions and its drivers.

Every error says what was wrong, where, and what would be valid, so that a
misconfiguration is fixed from the message alone.
"""

from __future__ import annotations

from .redact import redact, redact_text


class SessionError(Exception):
    """Base class of every error this library raises."""


class ConfigError(SessionError, ValueError):
    """A configuration value is missing or invalid.

    Raised at startup (when :class:`~sessions.SessionConfig` or
    :class:`~sessions.SessionManager` is built), never during a request.
    ``given`` is kept (and printed) with credentials masked: a password in a
    URL, or the whole value of a secret-named field (see :mod:`sessions.redact`).
    """

    def __init__(self, field: str, given: object, valid: str) -> None:
        self.field = field
        self.given = redact(given, field)
        self.valid = valid
        super().__init__(f"invalid session config {field}={self.given!r}: {valid}")


class DriverNotFoundError(SessionError, LookupError):
    """The configured driver is not installed, or its plugin failed to load."""


class DriverConflictError(SessionError):
    """Two distributions register a driver under the same name."""


class DriverError(SessionError):
    """A driver's storage operation failed (server down, connection dropped...).

    The message names the driver, the operation and the address; the original
    exception is chained as ``__cause__``.
    """

    def __init__(self, driver: str, operation: str, address: str, cause: BaseException) -> None:
        self.driver = driver
        self.operation = operation
        self.address = address
        super().__init__(
            f"session driver {driver!r} failed to {operation} at {redact_text(address)}: "
            f"{type(cause).__name__}: {redact_text(str(cause))}"
        )


class SessionNotInitiatedError(SessionError, RuntimeError):
    """The session was used before ``initiate()``/``ainitiate()`` was called."""


class ReadOnlySessionError(SessionError, RuntimeError):
    """A read-only session (websocket, ``initiate(readonly=True)``) was modified."""


class UnsupportedValueError(SessionError, TypeError):
    """A value of a type the session codec cannot store faithfully was put."""


class NotANumberError(SessionError, TypeError):
    """``increment``/``decrement`` was called on a key that does not hold a number."""


class DecodeError(SessionError, ValueError):
    """A stored payload is not a valid session encoding."""


class CookieTooLargeError(SessionError):
    """A Set-Cookie header would exceed what browsers accept."""


class UnsupportedEventLoopError(SessionError, RuntimeError):
    """An async-only driver that needs asyncio was called on another event loop."""


class TaggingNotSupportedError(SessionError):
    """The driver cannot find sessions by tag (``session.tag()``, ``manager.sessions``)."""
