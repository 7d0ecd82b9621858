"""The ``memcached`` driver: sessions as memcached items, over pymemcache.

* read is ``gat`` (get-and-touch): the values and a fresh expiry in one round
  trip, so an unchanged session costs exactly one command per request;
  core reads with ``gats``, which also returns the item's CAS unique;
* write is an acknowledged ``set`` with the expiry, destroy ``delete``, touch ``touch``;
* conflict-free commits (the versioned capability) use memcached's own
  compare-and-set: the version is the item's CAS unique, a changed session is
  stored with ``cas`` (a new one with ``add``), and a conditional removal is a
  ``cas`` that expires the item at once. Items written before need no upgrade:
  every item has a CAS unique;
* several servers share the sessions by rendezvous hashing (see :mod:`.ring`);
* each server has one pool of connections for the driver's lifetime, and
  blocking calls from async code run in worker threads (see :mod:`.threads`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import anyio
from pymemcache.exceptions import (
    MemcacheClientError,
    MemcacheError,
    MemcacheServerError,
    MemcacheUnexpectedCloseError,
    MemcacheUnknownError,
)
from sessions.codec import decode, encode
from sessions.driver import Driver, DriverConfig, Option, Record
from sessions.errors import ConfigError, DecodeError, DriverError
from sessions.keys import is_storage_key
from sessions.record import store_age

from .client import ServerPool, SessionClient
from .errors import SessionTooLargeError
from .expiry import MAX_RELATIVE, expiry
from .ring import Ring
from .servers import ServerAddress, label, parse_servers
from .threads import WorkerThreads

__all__ = ["MemcachedDriver"]

T = TypeVar("T")
#: memcached's longest key; a storage key is 43 characters.
MAX_KEY = 250
KEY_LENGTH = 43
#: memcached's item header, CAS value, flags suffix and the value's trailing
#: CRLF, rounded up: what an item costs beyond its key and value.
ITEM_OVERHEAD = 128
#: The smallest item size limit memcached accepts (``-I 1k``): smaller sessions
#: fit any server, so the limit is never looked at for them.
SMALLEST_LIMIT = 1024


class MemcachedDriver(Driver):
    """Sessions in one or several memcached servers.

    Options (``drivers={"memcached": {...}}`` or ``SESSION_MEMCACHED_<OPTION>``)
    are declared in :attr:`options`; see the driver's documentation page.
    """

    options: ClassVar[tuple[Option, ...]] = (
        Option(
            "servers",
            list,
            ["127.0.0.1:11211"],
            "memcached servers as host:port (comma-separated); several share the sessions "
            "by consistent hashing",
        ),
        Option("key_prefix", str, "session:", "prepended to every session's memcached key"),
        Option("connect_timeout", float, 1.0, "seconds to wait when connecting to a server"),
        Option("timeout", float, 2.0, "seconds to wait for each reply from a server"),
        Option(
            "pool_size",
            int,
            16,
            "idle connections kept per server, and worker threads for async apps",
        ),
        Option(
            "idle_timeout",
            float,
            0.0,
            "close connections idle longer than this (seconds, 0: never)",
        ),
    )
    touches_on_read: ClassVar[bool] = True
    # memcached keeps nothing on disk: a restart of a server loses its sessions.
    durable: ClassVar[bool] = False

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        options = config.options
        where = f"drivers.{config.name}"
        servers = parse_servers(f"{where}.servers", _given(options, "servers", ["127.0.0.1:11211"]))
        prefix = _given(options, "key_prefix", "session:")
        _check_prefix(f"{where}.key_prefix", prefix)
        self._prefix = prefix.encode("ascii")
        self._item_overhead = ITEM_OVERHEAD + len(self._prefix) + KEY_LENGTH
        #: item_size_max per server label (0: the server does not tell), asked
        #: when a session first needs it.
        self._limits: dict[str, int] = {}
        self._connect_timeout = _positive(
            f"{where}.connect_timeout", _given(options, "connect_timeout", 1.0)
        )
        self._timeout = _positive(f"{where}.timeout", _given(options, "timeout", 2.0))
        pool_size = _given(options, "pool_size", 16)
        if pool_size < 1:
            raise ConfigError(f"{where}.pool_size", pool_size, "a whole number of at least 1")
        idle_timeout = _given(options, "idle_timeout", 0.0)
        if idle_timeout < 0:
            raise ConfigError(f"{where}.idle_timeout", idle_timeout, "seconds >= 0 (0: never)")
        self._age = config.age
        self._ring: Ring[ServerPool] = Ring(
            {
                label(address): ServerPool(
                    address, self._new_client, keep=pool_size, idle_timeout=idle_timeout
                )
                for address in servers
            }
        )
        self._threads = WorkerThreads(pool_size, f"sessions-{config.name}")

    def describe(self) -> str:
        """The servers, as ``memcached at 127.0.0.1:11211, ...``."""
        return "memcached at " + ", ".join(pool.label for pool in self._ring)

    # -- the sync flavour ------------------------------------------------------

    def read(self, session_id: str, touch: bool = True) -> dict[str, Any] | None:
        """The session's values, refreshing its expiry in the same round trip (``gat``).

        ``touch=False`` reads without refreshing it (``get``), for ``touch_interval``.
        """
        if not is_storage_key(session_id):
            return None
        pool = self._ring.pick(session_id)
        exptime = self._exptime()
        data = self._run(
            pool,
            "read",
            lambda client: client.gat(session_id, exptime) if touch else client.get(session_id),
        )
        if data is None:
            return None
        try:
            return decode(data)
        except DecodeError as exc:
            self.config.notify_decode_failed(
                "store", f"undecodable session {session_id} on memcached {pool.label}: {exc}"
            )
            return None

    def read_versioned(self, session_id: str, touch: bool = True) -> Record | None:
        """Values and CAS unique (the version), refreshing the expiry (``gats``).

        ``touch=False`` reads without refreshing it (``gets``).
        """
        if not is_storage_key(session_id):
            return None
        pool = self._ring.pick(session_id)
        exptime = self._exptime(self._age)
        found = self._run(
            pool,
            "read",
            lambda client: client.gats(session_id, exptime) if touch else _gets(client, session_id),
        )
        if found is None:
            return None
        data, cas = found
        try:
            return Record(decode(data), cas)
        except DecodeError as exc:
            self.config.notify_decode_failed(
                "store", f"undecodable session {session_id} on memcached {pool.label}: {exc}"
            )
            return None

    def write(self, session_id: str, values: dict[str, Any]) -> None:
        """Store the whole session with an acknowledged ``set``."""
        stored = self._store("write", session_id, values, None, plain=True)
        if not stored:
            cause = RuntimeError("memcached answered NOT_STORED")
            raise DriverError(self.config.name, "write", self._ring.pick(session_id).label, cause)

    def write_versioned(self, session_id: str, values: dict[str, Any], version: int | None) -> bool:
        """Compare-and-set on the CAS unique: ``add`` when new, ``cas`` otherwise."""
        return self._store("write", session_id, values, version, plain=False)

    def _store(
        self,
        operation: str,
        session_id: str,
        values: dict[str, Any],
        version: int | None,
        *,
        plain: bool,
    ) -> bool:
        if not is_storage_key(session_id):
            raise ValueError(
                f"memcached driver: cannot write session id {session_id!r}: a storage key "
                "is 43 base64url characters (sessions.keys.storage_key)"
            )
        pool = self._ring.pick(session_id)
        if not values:
            if version is None:
                return True
            # memcached has no conditional delete: a cas that expires the item at once.
            return self._cas(pool, session_id, b"", version, -1)
        payload = encode(values)
        if len(payload) + self._item_overhead > SMALLEST_LIMIT:
            self._check_fits(pool, len(payload))
        exptime = self._exptime(store_age(values, self._age))
        try:
            if plain:
                return bool(
                    pool.run(
                        lambda client: client.set(
                            session_id, payload, expire=exptime, noreply=False
                        )
                    )
                )
            if version is None:
                return bool(
                    pool.run(
                        lambda client: client.add(
                            session_id, payload, expire=exptime, noreply=False
                        ),
                        retry=False,
                    )
                )
            return self._cas(pool, session_id, payload, version, exptime)
        except MemcacheServerError as exc:
            if "too large" in str(exc):
                limit = self._item_size_max(pool)
                if limit:
                    self._limits[pool.label] = limit
                raise SessionTooLargeError(
                    self.config.name, pool.label, len(payload), limit, exc, sent=True
                ) from exc
            raise self._error(operation, pool, exc) from exc
        except (MemcacheError, OSError) as exc:
            raise self._error(operation, pool, exc) from exc

    def _cas(
        self, pool: ServerPool, session_id: str, payload: bytes, cas: int, exptime: int
    ) -> bool:
        # pymemcache's cas answers True (STORED), False (EXISTS) or None (NOT_FOUND).
        stored = pool.run(
            lambda client: client.cas(session_id, payload, cas, expire=exptime, noreply=False),
            retry=False,
        )
        return stored is True

    def destroy(self, session_id: str) -> None:
        """Delete the session; a missing one is not an error."""
        if is_storage_key(session_id):
            pool = self._ring.pick(session_id)
            self._run(pool, "destroy", lambda client: client.delete(session_id, noreply=False))

    def touch(self, session_id: str) -> None:
        """Restart the session's expiry; a missing one is not an error."""
        if is_storage_key(session_id):
            pool = self._ring.pick(session_id)
            exptime = self._exptime()
            self._run(
                pool, "touch", lambda client: client.touch(session_id, exptime, noreply=False)
            )

    def close(self) -> None:
        """Close the pooled connections and stop the worker threads."""
        for pool in self._ring:
            pool.close()
        self._threads.close()

    # -- the async flavour: the same calls, in worker threads -------------------

    async def aread(self, session_id: str, touch: bool = True) -> dict[str, Any] | None:
        """Async :meth:`read`, run in a worker thread."""
        return await self._offload("read", self.read, session_id, touch)

    async def awrite(self, session_id: str, values: dict[str, Any]) -> None:
        """Async :meth:`write`, run in a worker thread."""
        await self._offload("write", self.write, session_id, values)

    async def aread_versioned(self, session_id: str, touch: bool = True) -> Record | None:
        """Async :meth:`read_versioned`, run in a worker thread."""
        return await self._offload("read", self.read_versioned, session_id, touch)

    async def awrite_versioned(
        self, session_id: str, values: dict[str, Any], version: int | None
    ) -> bool:
        """Async :meth:`write_versioned`, run in a worker thread."""
        return await self._offload("write", self.write_versioned, session_id, values, version)

    async def adestroy(self, session_id: str) -> None:
        """Async :meth:`destroy`, run in a worker thread."""
        await self._offload("destroy", self.destroy, session_id)

    async def atouch(self, session_id: str) -> None:
        """Async :meth:`touch`, run in a worker thread."""
        await self._offload("touch", self.touch, session_id)

    async def _offload(self, operation: str, fn: Callable[..., T], *args: Any) -> T:
        # A blocking call that runs out its socket timeouts holds a worker thread;
        # while every thread is held, calls wait in the backlog. The deadline
        # covers that wait too, so no request outlives the configured timeouts.
        deadline = self._timeout + self._connect_timeout
        try:
            with anyio.fail_after(deadline):
                return await self._threads.run(fn, *args)
        except TimeoutError as exc:
            cause = TimeoutError(
                f"no answer within {deadline:g}s (timeout + connect_timeout): the server "
                "does not answer, or every worker thread waits on it"
            )
            where = ", ".join(pool.label for pool in self._ring)
            raise DriverError(self.config.name, operation, where, cause) from exc

    async def aclose(self) -> None:
        """Async :meth:`close` (closing sockets does not block)."""
        self.close()

    # -- helpers -----------------------------------------------------------------

    def server_for(self, session_id: str) -> str:
        """The server (``host:port``) that holds ``session_id``."""
        return self._ring.pick(session_id).label

    def _exptime(self, age: int | None = None) -> int:
        age = self._age if age is None else age
        return age if age <= MAX_RELATIVE else expiry(age)

    def _new_client(self, address: ServerAddress) -> SessionClient:
        return SessionClient(
            address,
            connect_timeout=self._connect_timeout,
            timeout=self._timeout,
            # Without TCP_NODELAY a write waits on Nagle's algorithm (~40 ms).
            no_delay=True,
            key_prefix=self._prefix,
            default_noreply=False,
        )

    def _run(self, pool: ServerPool, operation: str, call: Callable[[SessionClient], T]) -> T:
        try:
            return pool.run(call)
        except (MemcacheError, OSError) as exc:
            raise self._error(operation, pool, exc) from exc

    def _error(self, operation: str, pool: ServerPool, exc: Exception) -> DriverError:
        cause: Exception = exc
        if isinstance(exc, MemcacheUnexpectedCloseError) and not str(exc):
            # pymemcache raises it without a message.
            cause = ConnectionError("memcached closed the connection")
        return DriverError(self.config.name, operation, pool.label, cause)

    def _check_fits(self, pool: ServerPool, size: int) -> None:
        """Refuse a session too large for the server before sending it.

        memcached deletes the stored item when it refuses a ``set`` as too large,
        which would lose the session the request started from; refused here, it
        stays as it was. The limit is asked once per server and asked again before
        refusing, in case the server was restarted with another ``-I``.
        """
        limit = self._limits.get(pool.label)
        if limit is None:
            limit = self._limits[pool.label] = self._ask_limit(pool)
        if not limit or size + self._item_overhead <= limit:
            return  # 0: the server does not say (a proxy, say); it decides itself
        limit = self._limits[pool.label] = self._ask_limit(pool)
        if limit and size + self._item_overhead > limit:
            cause = ValueError(
                f"{size} bytes of session plus {self._item_overhead} of key and item "
                f"header exceed item_size_max {limit}"
            )
            raise SessionTooLargeError(self.config.name, pool.label, size, limit, cause)

    def _ask_limit(self, pool: ServerPool) -> int:
        """The server's ``item_size_max``, or 0 if it does not tell.

        An unreachable server fails the write here, once, as the ``set`` would.
        """
        try:
            settings: dict[bytes, Any] = pool.run(lambda client: client.stats("settings"))
        except MemcacheUnexpectedCloseError as exc:
            raise self._error("write", pool, exc) from exc
        except (MemcacheClientError, MemcacheServerError, MemcacheUnknownError):
            return 0  # answered, but not with settings
        except (MemcacheError, OSError) as exc:
            raise self._error("write", pool, exc) from exc
        limit = settings.get(b"item_size_max")
        return limit if isinstance(limit, int) and limit > 0 else 0

    def _item_size_max(self, pool: ServerPool) -> int | None:
        """The server's item size limit for an error message (None if it cannot be asked)."""
        try:
            return self._ask_limit(pool) or None
        except DriverError:
            return None


def _gets(client: SessionClient, session_id: str) -> tuple[bytes, int] | None:
    value, cas = client.gets(session_id)
    return None if value is None else (bytes(value), int(cas))


def _given(options: Any, name: str, default: Any) -> Any:
    value = options.get(name)
    return default if value is None else value


def _positive(field: str, value: float) -> float:
    if not value > 0:
        raise ConfigError(field, value, "a number of seconds greater than 0")
    return float(value)


def _check_prefix(field: str, prefix: str) -> None:
    if len(prefix) + KEY_LENGTH > MAX_KEY:
        raise ConfigError(
            field, prefix, f"at most {MAX_KEY - KEY_LENGTH} characters (memcached keys are <= 250)"
        )
    if not all(33 <= ord(c) < 127 for c in prefix):
        raise ConfigError(
            field, prefix, "printable ASCII without spaces (memcached keys cannot hold others)"
        )
