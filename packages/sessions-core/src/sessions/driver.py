"""The driver contract: what a storage backend implements and what core gives it.

A driver is a class. Core builds it once per :class:`~sessions.SessionManager`
with a :class:`DriverConfig` (so pools, clients and engines live as long as the
manager), and asks it for a per-request driver with :meth:`for_request`; most
drivers return ``self`` there, the cookie driver binds the request's cookies.

A driver offers the sync flavour, the async flavour, or both:

* sync: ``read``, ``write``, ``destroy``, ``touch`` as plain methods;
* async: ``aread``, ``awrite``, ``adestroy``, ``atouch`` as ``async def``
  methods, or ``read``/``write``/``destroy``/``touch`` themselves as
  ``async def`` (an async-only driver).

Core calls a sync-only driver from async code in a worker thread, never on the
event loop; a sync caller given an async-only driver fails at startup.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import anyio.to_thread

from .config import CookieOptions, SessionConfig
from .errors import ConfigError, UnsupportedEventLoopError

__all__ = [
    "AsyncDriver",
    "Driver",
    "DriverConfig",
    "Flavours",
    "Option",
    "OutgoingCookie",
    "RequestContext",
    "SyncDriver",
    "acall",
    "flavours_of",
    "on_asyncio",
]

_MISSING: Any = object()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Option:
    """One declared driver option: validated at startup, listed by ``sessions drivers``.

    ``type`` is one of ``str``, ``int``, ``float``, ``bool``, ``Path``, ``list``
    (a list of strings; a comma-separated string is split) or ``object``
    (anything, e.g. a ready-made client; not settable from the environment).
    A string value, as read from the environment, is converted to ``type``.
    """

    name: str
    type: type
    default: Any = None
    help: str = ""
    required: bool = False
    choices: tuple[Any, ...] | None = None

    @property
    def type_name(self) -> str:
        """Short, human name of the option's type."""
        if self.type is list:
            return "list[str]"
        return "any" if self.type is object else self.type.__name__

    def coerce(self, driver: str, value: Any) -> Any:
        """Return ``value`` converted to this option's type, or raise ConfigError."""
        where = f"drivers.{driver}.{self.name}"
        if value is None and not self.required:
            return None
        kind = self.type
        try:
            if kind is object:
                result = value
            elif kind is bool:
                if isinstance(value, bool):
                    result = value
                elif isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                    result = value.strip().lower() in _TRUE
                else:
                    raise ValueError
            elif kind is int:
                if isinstance(value, bool) or not isinstance(value, int | str):
                    raise ValueError
                result = int(value)
            elif kind is float:
                if isinstance(value, bool) or not isinstance(value, int | float | str):
                    raise ValueError
                result = float(value)
            elif kind is list:
                if isinstance(value, str):
                    result = [part.strip() for part in value.split(",") if part.strip()]
                elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
                    result = list(value)
                else:
                    raise ValueError
            elif kind is Path:
                if not isinstance(value, str | Path):
                    raise ValueError
                result = Path(value).expanduser()
            elif kind is str:
                if not isinstance(value, str):
                    raise ValueError
                result = value
            else:
                result = value if isinstance(value, kind) else kind(value)
        except (ValueError, TypeError):
            raise ConfigError(
                where, value, f"a value of type {self.type_name}: {self.help}"
            ) from None
        if self.choices is not None and result not in self.choices:
            raise ConfigError(where, value, f"one of {', '.join(map(repr, self.choices))}")
        return result


@dataclass(frozen=True)
class GcResult:
    """What a driver's bulk clean-up (the ``gc`` capability) did."""

    scanned: int
    removed: int
    bytes_freed: int | None = None
    seconds: float = 0.0


#: ``gc(progress=...)`` calls this with (entries scanned so far, total or None).
GcProgress = Callable[[int, int | None], None]


@dataclass(slots=True)
class OutgoingCookie:
    """A cookie a driver or the session wants set (or deleted) on the response."""

    name: str
    value: str
    max_age: int | None
    options: CookieOptions
    secure: bool

    def header(self) -> str:
        """The ``Set-Cookie`` header value."""
        return f"{self.name}={self.value}{_attributes(self.options, self.max_age, self.secure)}"


# Attribute strings are the same on nearly every response; rendering them
# once per (options, max_age, secure) keeps two cookies per request cheap.
_ATTRIBUTES: dict[tuple[int, int | None, bool], tuple[CookieOptions, str]] = {}


def _attributes(options: CookieOptions, max_age: int | None, secure: bool) -> str:
    key = (id(options), max_age, secure)
    cached = _ATTRIBUTES.get(key)
    if cached is not None and cached[0] is options:
        return cached[1]
    parts = ["", f"Path={options.path}"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
        if max_age == 0:
            parts.append("Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    if options.domain:
        parts.append(f"Domain={options.domain}")
    if secure:
        parts.append("Secure")
    if options.http_only:
        parts.append("HttpOnly")
    if options.same_site:
        parts.append(f"SameSite={options.same_site.capitalize()}")
    text = "; ".join(parts)
    if len(_ATTRIBUTES) < 256:
        _ATTRIBUTES[key] = (options, text)
    return text


class RequestContext:
    """What a per-request driver may know of the request: its cookies, and the
    cookies to send back. Integrations build one per request."""

    __slots__ = ("cookies", "https", "outgoing", "scope")

    def __init__(
        self, cookies: Mapping[str, str], *, https: bool = False, scope: Any = None
    ) -> None:
        self.cookies = cookies
        self.https = https
        self.scope = scope
        self.outgoing: dict[str, OutgoingCookie] = {}

    def set_cookie(
        self, name: str, value: str, *, max_age: int | None, options: CookieOptions
    ) -> None:
        """Queue a cookie; a later call for the same name replaces the earlier one."""
        secure = self.https if options.secure is None else options.secure
        self.outgoing[name] = OutgoingCookie(name, value, max_age, options, secure)

    def delete_cookie(self, name: str, options: CookieOptions) -> None:
        """Queue the deletion of cookie ``name`` (only if the browser sent it)."""
        if name in self.cookies or name in self.outgoing:
            self.set_cookie(name, "", max_age=0, options=options)

    def headers(self) -> list[str]:
        """``Set-Cookie`` header values for everything queued."""
        return [cookie.header() for cookie in self.outgoing.values()]


@dataclass(frozen=True)
class DriverConfig:
    """What core hands a driver when the manager builds it."""

    name: str
    options: Mapping[str, Any]
    age: int
    session: SessionConfig
    notify_decode_failed: Callable[[str, str], None] = field(default=lambda source, reason: None)

    @property
    def cookie_name(self) -> str:
        """The session id cookie's name."""
        return self.session.cookie_name


@runtime_checkable
class SyncDriver(Protocol):
    """The sync flavour of the contract."""

    def read(self, session_id: str) -> dict[str, Any] | None:
        """Values stored for ``session_id``; None if missing, expired or unreadable."""

    def write(self, session_id: str, values: dict[str, Any]) -> None:
        """Store the whole session dict, with expiry ``age`` from now."""

    def destroy(self, session_id: str) -> None:
        """Remove the session; a missing one is not an error."""

    def touch(self, session_id: str) -> None:
        """Reset the expiry; a missing session is not an error."""


@runtime_checkable
class AsyncDriver(Protocol):
    """The async flavour of the contract (alongside a sync flavour)."""

    async def aread(self, session_id: str) -> dict[str, Any] | None:
        """Async :meth:`SyncDriver.read`."""

    async def awrite(self, session_id: str, values: dict[str, Any]) -> None:
        """Async :meth:`SyncDriver.write`."""

    async def adestroy(self, session_id: str) -> None:
        """Async :meth:`SyncDriver.destroy`."""

    async def atouch(self, session_id: str) -> None:
        """Async :meth:`SyncDriver.touch`."""


class Driver:
    """Optional base class for drivers: stores the config, declares no options,
    returns itself per request and has nothing to close.

    Subclasses implement the sync methods, the async ones, or both.
    """

    options: ClassVar[Sequence[Option]] = ()
    #: ``read`` also refreshes the expiry, so core skips ``touch`` for unchanged sessions.
    touches_on_read: ClassVar[bool] = False
    #: ``"asyncio"`` when the async methods need asyncio's loop (they use an
    #: asyncio client library); ``None`` when they run on any loop anyio
    #: supports. On another loop (trio), core then calls the sync methods in a
    #: worker thread instead.
    async_library: ClassVar[str | None] = None
    #: False when the store keeps sessions only in memory, so a restart of the
    #: store (or of the process) logs every user out; ``sessions check`` warns.
    durable: ClassVar[bool] = True

    def __init__(self, config: DriverConfig) -> None:
        self.config = config

    def for_request(self, context: RequestContext) -> Any:
        """The driver to use for one request; ``self`` unless it needs the request."""
        return self

    def describe(self) -> str:
        """Where this driver stores sessions, for error messages and ``sessions check``."""
        return self.config.name


_SYNC = ("read", "write", "destroy", "touch")
_ASYNC = ("aread", "awrite", "adestroy", "atouch")


@dataclass(frozen=True)
class Flavours:
    """How core calls one driver class, worked out once at startup.

    ``async_names`` are the method names to await (``aread``... or, for an
    async-only driver, ``read``...); ``None`` when the async flavour is missing
    and sync methods run in a worker thread.
    """

    sync: bool
    async_names: tuple[str, str, str, str] | None
    #: The driver's ``async_library``: the loop its async methods need, if any.
    async_library: str | None = None

    @property
    def label(self) -> str:
        """``"sync"``, ``"async"`` or ``"sync+async"``."""
        if self.sync and self.async_names:
            return "sync+async"
        return "sync" if self.sync else "async"


def flavours_of(cls: type, name: str = "") -> Flavours:
    """Inspect a driver class and report which flavours it implements.

    Raises ConfigError when the class implements neither completely.
    """

    def kinds(names: Sequence[str]) -> list[bool | None]:
        found: list[bool | None] = []
        for attr in names:
            fn = getattr(cls, attr, None)
            found.append(None if fn is None else inspect.iscoroutinefunction(fn))
        return found

    plain = kinds(_SYNC)
    prefixed = kinds(_ASYNC)
    sync = all(k is False for k in plain)
    if all(k is True for k in prefixed):
        async_names: tuple[str, str, str, str] | None = _ASYNC
    elif all(k is True for k in plain):
        async_names = _SYNC
    else:
        async_names = None
    if not sync and async_names is None:
        raise ConfigError(
            "driver",
            name or cls.__qualname__,
            f"{cls.__module__}.{cls.__qualname__} must define read/write/destroy/touch "
            "(plain or async def) or aread/awrite/adestroy/atouch (async def)",
        )
    library = getattr(cls, "async_library", None)
    if library not in (None, "asyncio"):
        raise ConfigError(
            f"{cls.__module__}.{cls.__qualname__}.async_library",
            library,
            "'asyncio' (the async methods need asyncio's loop) or None (any loop)",
        )
    return Flavours(sync=sync, async_names=async_names, async_library=library)


def on_asyncio() -> bool:
    """True when called from a coroutine running on asyncio's event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


_OPS = ("read", "write", "destroy", "touch")


async def acall(flavours: Flavours, driver: Any, op: int, *args: Any) -> Any:
    """Await operation ``op`` (0 read, 1 write, 2 destroy, 3 touch) of ``driver``.

    A driver without the async flavour runs in a worker thread, never on the
    loop; so does one whose async flavour needs asyncio, on another loop (trio).
    """
    names = flavours.async_names
    if names is not None and (flavours.async_library is None or on_asyncio()):
        return await getattr(driver, names[op])(*args)
    if not flavours.sync:
        raise UnsupportedEventLoopError(
            f"this session driver has only an async flavour, and it needs asyncio's "
            f"event loop ({type(driver).__module__}.{type(driver).__qualname__}."
            f"async_library = 'asyncio'), but it was called on another loop (trio?). "
            "Run the application on asyncio, or use a driver with a sync flavour"
        )
    return await anyio.to_thread.run_sync(getattr(driver, _OPS[op]), *args)


def declared_options(cls: Any) -> Sequence[Option]:
    """The options a driver class declares (empty if it declares none)."""
    return tuple(getattr(cls, "options", ()))


def validate_options(name: str, cls: Any, given: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``given`` against the class's declared options; fill in defaults."""
    declared = {opt.name: opt for opt in declared_options(cls)}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        valid = ", ".join(sorted(declared)) or "none (this driver takes no options)"
        raise ConfigError(
            f"drivers.{name}.{unknown[0]}", given[unknown[0]], f"valid options: {valid}"
        )
    result: dict[str, Any] = {}
    for opt in declared.values():
        if opt.name in given:
            result[opt.name] = opt.coerce(name, given[opt.name])
        elif opt.required:
            raise ConfigError(f"drivers.{name}.{opt.name}", None, f"required: {opt.help}")
        else:
            result[opt.name] = opt.default
    return result
