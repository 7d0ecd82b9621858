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

import functools
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

from .config import CookieOptions, SessionConfig
from .env import closest
from .errors import ConfigError, UnsupportedEventLoopError

__all__ = [
    "AsyncDriver",
    "Driver",
    "DriverConfig",
    "Flavours",
    "Option",
    "OutgoingCookie",
    "Record",
    "RequestContext",
    "StoredSession",
    "SyncDriver",
    "TaggingDriver",
    "VersionedDriver",
    "acall",
    "flavours_of",
    "in_worker_thread",
    "on_asyncio",
    "sleep",
]

_MISSING: Any = object()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_new = object.__new__


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

    def coerce(self, driver: str, value: Any, *, where: str | None = None) -> Any:
        """Return ``value`` converted to this option's type, or raise ConfigError.

        ``where`` names the setting in the error (default ``drivers.<driver>.<name>``;
        the environment variable it came from, when it came from one). The value
        is printed with credentials masked.
        """
        where = where or f"drivers.{driver}.{self.name}"
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
    cookies to send back. Integrations build one per request.

    ``cookie_headers`` (the raw ``Cookie`` header values) or ``header_pairs``
    (all of an ASGI request's headers) may be given instead of parsed
    ``cookies``: they are parsed on first use, so a request that never looks at
    its session never parses them.

    ``scope`` is the framework's request (the ASGI scope, the WSGI environ) for
    a per-request driver to look at while the session is read. The integrations
    set it back to None when they are done with the request (ASGI: once it is
    handled; WSGI: once the response starts, when the session is committed),
    because the request in turn holds the session, and that reference cycle
    would leave every request's objects to the cyclic garbage collector.
    """

    __slots__ = ("_cookies", "_pairs", "_raw", "https", "outgoing", "scope")

    def __init__(
        self,
        cookies: Mapping[str, str] | None = None,
        *,
        https: bool = False,
        scope: Any = None,
        cookie_headers: Iterable[str] | None = None,
        header_pairs: Iterable[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self._cookies = cookies
        self._raw = cookie_headers
        #: ASGI-style ``(name, value)`` byte pairs, whose ``cookie`` ones are parsed on use.
        self._pairs = header_pairs
        self.https = https
        self.scope = scope
        self.outgoing: dict[str, OutgoingCookie] = {}

    @classmethod
    def for_asgi(cls, scope: Any) -> RequestContext:
        """The context of an ASGI ``http`` or ``websocket`` scope.

        Equivalent to ``RequestContext(https=..., scope=scope,
        header_pairs=scope["headers"])``, built without the keyword-argument
        class call, which CPython makes a large share of a request that never
        uses its session.
        """
        context: RequestContext = _new(cls)
        context._cookies = None
        context._raw = None
        context._pairs = scope.get("headers")
        context.https = scope.get("scheme") in ("https", "wss")
        context.scope = scope
        context.outgoing = {}
        return context

    @property
    def cookies(self) -> Mapping[str, str]:
        """The request's cookies, by name."""
        cookies = self._cookies
        if cookies is None:
            from .cookies import parse_cookie_header

            raw = self._raw
            if raw is None and self._pairs is not None:
                raw = [v.decode("latin-1") for k, v in self._pairs if k == b"cookie"]
            cookies = self._cookies = parse_cookie_header(raw or ())
        return cookies

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
    #: Such a driver's reads may take a keyword ``touch=True``; with ``touch=False``
    #: they read without refreshing it (core does that when ``touch_interval`` says
    #: no refresh is due).
    touches_on_read: ClassVar[bool] = False
    #: The operations wait on I/O. ``False`` (memory, cookie) lets a lazy session
    #: be read on first use even inside an event loop.
    blocking: ClassVar[bool] = True
    #: ``"asyncio"`` when the async methods need asyncio's loop (they use an
    #: asyncio client library); ``None`` when they run on any loop (asyncio
    #: or trio). On another loop (trio), core then calls the sync methods in a
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


#: The four operations every driver implements.
CORE_OPS = ("read", "write", "destroy", "touch")
#: The optional ``versioned`` capability: a read that returns the record's
#: version and a compare-and-set write (conflict-free commits).
VERSIONED_OPS = ("read_versioned", "write_versioned")
#: The optional ``tagging`` capability: find, inspect and destroy sessions by tag.
TAGGING_OPS = ("tagged", "peek", "destroy_tagged")
#: Every operation core may call on a driver, by name.
OPS = (*CORE_OPS, *VERSIONED_OPS, *TAGGING_OPS)


class Record(NamedTuple):
    """What a versioned read returns: the values and the version they carry.

    The version is opaque to core: it only hands it back to ``write_versioned``.
    Records written before the driver stored versions read with version ``0``.
    """

    values: dict[str, Any]
    version: int


class StoredSession(NamedTuple):
    """One stored session as the tagging capability reports it."""

    #: The storage key.
    session_id: str
    #: The stored dict, reserved keys (``__tag__``, ``__created__``...) included.
    values: dict[str, Any]
    #: When it expires, in epoch seconds (``time.time()``'s clock).
    expires_at: float


@runtime_checkable
class TaggingDriver(Protocol):
    """The optional ``tagging`` capability (sync flavour): a user's sessions.

    The driver indexes each record by ``sessions.record.tag_of(values)`` when
    it writes it. Async twins are ``atagged``/``apeek``/``adestroy_tagged``.
    """

    def tagged(self, tag: str) -> list[StoredSession]:
        """Every live session whose current record has ``tag``.

        Never an expired, destroyed, re-tagged or untagged one; stale index
        entries are pruned here. One round trip per server slot or query.
        """

    def peek(self, session_id: str) -> StoredSession | None:
        """The stored session with its expiry, read without refreshing the expiry."""

    def destroy_tagged(self, tag: str, keep: str | None = None) -> int:
        """Destroy every live session with ``tag`` but ``keep``; return how many."""


@runtime_checkable
class VersionedDriver(Protocol):
    """The optional ``versioned`` capability (sync flavour), for conflict-free commits.

    A driver that offers it lets core commit a changed session with a
    compare-and-set against the version it read, and merge when another request
    committed in between, so overlapping requests never lose a change and a
    destroyed session is never written back. Async twins are
    ``aread_versioned``/``awrite_versioned`` (or these two as ``async def`` in an
    async-only driver). Without it a driver keeps last-write-wins.
    """

    def read_versioned(self, session_id: str) -> Record | None:
        """Like ``read``, with the record's version; None if missing, expired or unreadable.

        A driver with ``touches_on_read`` refreshes the expiry here too.
        """

    def write_versioned(self, session_id: str, values: dict[str, Any], version: int | None) -> bool:
        """Store ``values`` only if the stored record is still the one core read.

        * ``version is None``: create; store only if no live record exists.
        * ``version`` an int: replace; store only if a live record exists and
          its version is exactly ``version`` (a destroyed or expired record
          never comes back).
        * ``values == {}``: remove the record under the same condition.

        A successful write gives the record a new version and restarts its
        expiry. Return True when the condition held and the store changed,
        False when it did not (core re-reads and merges). The check and the
        write must be one atomic step for every thread, process and server.
        """


@dataclass(frozen=True)
class Flavours:
    """How core calls one driver class, worked out once at startup.

    ``sync_ops`` are the operations with a plain method; ``async_methods`` maps
    each operation with an ``async def`` method to that method's name
    (``aread``..., or ``read``... in an async-only driver). An operation with
    no async method runs its sync method in a worker thread.
    """

    sync_ops: frozenset[str]
    async_methods: Mapping[str, str]
    #: The driver's ``async_library``: the loop its async methods need, if any.
    async_library: str | None = None
    #: The driver offers the versioned capability in every flavour it has.
    versioned: bool = False
    #: The driver offers the tagging capability in every flavour it has.
    tagging: bool = False
    #: ``touches_on_read`` and its reads take ``touch=False`` to read without
    #: refreshing the expiry (for ``touch_interval``).
    read_touch_flag: bool = False

    @property
    def sync(self) -> bool:
        """True when the four operations have plain (sync) methods."""
        return all(op in self.sync_ops for op in CORE_OPS)

    @property
    def has_async(self) -> bool:
        """True when the four operations have async methods."""
        return all(op in self.async_methods for op in CORE_OPS)

    @property
    def label(self) -> str:
        """``"sync"``, ``"async"`` or ``"sync+async"``."""
        if self.sync and self.has_async:
            return "sync+async"
        return "sync" if self.sync else "async"


def flavours_of(cls: type, name: str = "") -> Flavours:
    """Inspect a driver class and report which flavours it implements.

    Raises ConfigError when the class implements neither completely, or only
    half of the versioned capability.
    """
    where = f"{cls.__module__}.{cls.__qualname__}"
    sync_ops: set[str] = set()
    async_methods: dict[str, str] = {}
    for op in OPS:
        plain = getattr(cls, op, None)
        prefixed = getattr(cls, "a" + op, None)
        if prefixed is not None and inspect.iscoroutinefunction(prefixed):
            async_methods[op] = "a" + op
        elif plain is not None and inspect.iscoroutinefunction(plain):
            async_methods[op] = op
        if plain is not None and not inspect.iscoroutinefunction(plain):
            sync_ops.add(op)
    sync = all(op in sync_ops for op in CORE_OPS)
    has_async = all(op in async_methods for op in CORE_OPS)
    if not sync and not has_async:
        raise ConfigError(
            "driver",
            name or cls.__qualname__,
            f"{where} must define read/write/destroy/touch "
            "(plain or async def) or aread/awrite/adestroy/atouch (async def)",
        )
    sync_pair = all(op in sync_ops for op in VERSIONED_OPS)
    async_pair = all(op in async_methods for op in VERSIONED_OPS)
    offered = [op for op in VERSIONED_OPS if op in sync_ops or op in async_methods]
    if offered and not (sync_pair or async_pair):
        raise ConfigError(
            "driver",
            name or cls.__qualname__,
            f"{where} defines {offered[0]} but not its partner: the versioned capability "
            "needs both read_versioned and write_versioned (or their a-prefixed async twins)",
        )
    # Sync callers need the sync pair; async callers can fall back to it in a thread.
    versioned = (sync_pair or (not sync and async_pair)) and (async_pair or sync_pair)
    sync_tags = all(op in sync_ops for op in TAGGING_OPS)
    async_tags = all(op in async_methods for op in TAGGING_OPS)
    tagging = sync_tags or (not sync and async_tags)
    library = getattr(cls, "async_library", None)
    if library not in (None, "asyncio"):
        raise ConfigError(
            f"{where}.async_library",
            library,
            "'asyncio' (the async methods need asyncio's loop) or None (any loop)",
        )
    # Core reads with read_versioned when the driver is versioned, else with read.
    reads = ("read_versioned", "aread_versioned") if versioned else ("read", "aread")
    read_touch_flag = bool(getattr(cls, "touches_on_read", False)) and all(
        "touch" in _parameters(getattr(cls, name))
        for name in reads
        if getattr(cls, name, None) is not None
    )
    return Flavours(
        read_touch_flag=read_touch_flag,
        sync_ops=frozenset(sync_ops),
        async_methods=async_methods,
        async_library=library,
        versioned=versioned,
        tagging=tagging,
    )


def _parameters(fn: Any) -> tuple[str, ...]:
    try:
        return tuple(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return ()


def in_async_context() -> bool:
    """True when called from a coroutine's thread of an event loop (asyncio or trio)."""
    if on_asyncio():
        return True
    trio: Any = sys.modules.get("trio")  # imported, if a trio loop runs
    return trio is not None and _on_trio(trio)


def on_asyncio() -> bool:
    """True when called from a coroutine running on asyncio's event loop."""
    # No asyncio loop runs before asyncio is imported, and core leaves importing it
    # to the application: a WSGI app never pays for it.
    asyncio: Any = sys.modules.get("asyncio")
    if asyncio is None:
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def acall(flavours: Flavours, driver: Any, op: str, *args: Any) -> Any:
    """Await operation ``op`` (``"read"``, ``"write_versioned"``...) of ``driver``.

    A driver without an async method for ``op`` runs the sync one in a worker
    thread, never on the loop; so does one whose async flavour needs asyncio,
    on another loop (trio).
    """
    name = flavours.async_methods.get(op)
    if name is not None and (flavours.async_library is None or on_asyncio()):
        return await getattr(driver, name)(*args)
    if op not in flavours.sync_ops:
        raise UnsupportedEventLoopError(
            f"this session driver has only an async flavour, and it needs asyncio's "
            f"event loop ({type(driver).__module__}.{type(driver).__qualname__}."
            f"async_library = 'asyncio'), but it was called on another loop (trio?). "
            "Run the application on asyncio, or use a driver with a sync flavour"
        )
    return await in_worker_thread(getattr(driver, op), *args)


async def in_worker_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Await ``fn(*args)`` run in a worker thread of the running event loop.

    Each loop's own thread API is used, so core needs no async library of its
    own: asyncio's default executor (context variables carried over), or
    trio's worker threads. Any other loop is refused with a clear error.
    """
    if on_asyncio():
        return await sys.modules["asyncio"].to_thread(fn, *args)
    # Trio is the only other loop core runs on; running on it means it is imported.
    trio: Any = sys.modules.get("trio")
    if trio is None or not _on_trio(trio):
        raise UnsupportedEventLoopError(
            "sessions runs sync drivers in worker threads on asyncio or trio only, "
            f"and {getattr(fn, '__qualname__', fn)!r} was awaited outside both"
        )
    return await trio.to_thread.run_sync(functools.partial(fn, *args))


async def sleep(seconds: float) -> None:
    """Sleep on the running event loop, asyncio's or trio's (no async library needed)."""
    if on_asyncio():
        await sys.modules["asyncio"].sleep(seconds)
        return
    trio: Any = sys.modules.get("trio")
    if trio is None or not _on_trio(trio):
        raise UnsupportedEventLoopError("sessions runs on asyncio or trio only")
    await trio.sleep(seconds)


def _on_trio(trio: Any) -> bool:
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True


def declared_options(cls: Any) -> Sequence[Option]:
    """The options a driver class declares (empty if it declares none)."""
    return tuple(getattr(cls, "options", ()))


def _where(name: str, option: str, given: Mapping[str, Any]) -> str:
    """How an option is named in errors: its variable too, when read from the environment."""
    path = f"drivers.{name}.{option}"
    variable = getattr(given, "env_names", {}).get(option)
    return f"{variable} ({path})" if variable else path


def validate_options(name: str, cls: Any, given: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``given`` against the class's declared options; fill in defaults.

    An unknown option names the closest declared one; options read by
    :meth:`SessionConfig.from_env` are named by their environment variable.
    """
    declared = {opt.name: opt for opt in declared_options(cls)}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        bad = unknown[0]
        valid = ", ".join(sorted(declared)) or "none (this driver takes no options)"
        env_names = getattr(given, "env_names", {})
        if bad in env_names:
            prefix = f"SESSION_{name.upper()}_"
            settable = [prefix + o.upper() for o, opt in declared.items() if opt.type is not object]
            near = closest(env_names[bad], [*settable, *getattr(given, "nearby", ())])
            valid = f"valid: {', '.join(settable) or 'none (this driver takes no options)'}"
        else:
            near = closest(bad, declared)
            valid = f"valid options: {valid}"
        hint = f"did you mean {near}? " if near else ""
        raise ConfigError(_where(name, bad, given), given[bad], f"unknown option; {hint}{valid}")
    result: dict[str, Any] = {}
    for opt in declared.values():
        if opt.name in given:
            result[opt.name] = opt.coerce(
                name, given[opt.name], where=_where(name, opt.name, given)
            )
        elif opt.required:
            raise ConfigError(f"drivers.{name}.{opt.name}", None, f"required: {opt.help}")
        else:
            result[opt.name] = opt.default
    return result
