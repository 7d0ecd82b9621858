"""Web sessions for Python.

from sessions import SessionConfig, SessionManager

manager = SessionManager(SessionConfig(secret="...", driver="memory"))
"""

from .collection import SessionInfo
from .config import CookieOptions, SessionConfig
from .driver import Driver, DriverConfig, Option, RequestContext
from .errors import (
    ConfigError,
    CookieTooLargeError,
    DecodeError,
    DriverConflictError,
    DriverError,
    DriverNotFoundError,
    NotANumberError,
    ReadOnlySessionError,
    SessionError,
    SessionNotInitiatedError,
    TaggingNotSupportedError,
    UnsupportedEventLoopError,
    UnsupportedValueError,
)
from .flash import FlashMessages
from .hookspecs import hookimpl
from .manager import SessionManager
from .session import Session

__all__ = [
    "ConfigError",
    "CookieOptions",
    "CookieTooLargeError",
    "DecodeError",
    "Driver",
    "DriverConfig",
    "DriverConflictError",
    "DriverError",
    "DriverNotFoundError",
    "FlashMessages",
    "NotANumberError",
    "Option",
    "ReadOnlySessionError",
    "RequestContext",
    "Session",
    "SessionConfig",
    "SessionError",
    "SessionInfo",
    "SessionManager",
    "SessionNotInitiatedError",
    "TaggingNotSupportedError",
    "UnsupportedEventLoopError",
    "UnsupportedValueError",
    "hookimpl",
]
