"""The ``redis`` driver: one Redis string per session, expiring with the session.

Every operation is one command, so round trips are the whole cost:

* read is ``GETEX key EX age``: it returns the session and restarts its expiry,
  so an unchanged session costs exactly one command per request
  (``touches_on_read``);
* write is ``SET key payload EX age`` (a changed session: GETEX, then SET);
* destroy is ``DEL key``; touch is ``EXPIRE key age``.

The sync flavour talks through ``redis.Redis`` (or ``RedisCluster``), the async
flavour through ``redis.asyncio`` on the running loop, never via a thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

import anyio.to_thread
from redis.exceptions import RedisError, ResponseError
from sessions.codec import decode, encode
from sessions.driver import Driver, DriverConfig, Option
from sessions.errors import ConfigError, DecodeError, DriverError

from .clients import (
    adopt,
    build_async,
    build_sync,
    check_options,
    describe_client,
    is_async_client,
    mask_url,
)

__all__ = ["RedisDriver"]

T = TypeVar("T")

#: redis-py's errors and the socket errors beneath them: the server is unreachable,
#: dropped the connection, timed out or refused the command.
_FAILURES = (RedisError, OSError)


def _wrong_type(exc: BaseException) -> bool:
    # Some other program stored a non-string under a session key.
    return isinstance(exc, ResponseError) and str(exc).startswith("WRONGTYPE")


class RedisDriver(Driver):
    """Sessions in Redis (standalone, Sentinel or Cluster), sync and async."""

    options: ClassVar[tuple[Option, ...]] = (
        Option(
            "url",
            str,
            "redis://127.0.0.1:6379/0",
            "server URL: redis://[user:password@]host:port/db, rediss:// (TLS) or "
            "unix:///path.sock?db=N; with cluster=true, any one node of the cluster",
        ),
        Option("key_prefix", str, "sessions:", "prepended to every session key"),
        Option(
            "cluster",
            bool,
            False,
            "url names a node of a Redis Cluster: use a cluster client (key routing by slot)",
        ),
        Option(
            "client",
            object,
            None,
            "a ready-made redis-py client (Redis, RedisCluster, Sentinel master_for(...), "
            "or their redis.asyncio versions), used instead of url; the app closes it",
        ),
        Option(
            "max_connections",
            int,
            None,
            "most connections one pool opens (one pool per manager, or per event loop); "
            "unset: no limit",
        ),
        Option(
            "socket_timeout",
            float,
            2.0,
            "seconds a command may wait for its reply (async: for connecting and "
            "replying) before the request fails",
        ),
        Option("socket_connect_timeout", float, 2.0, "seconds to wait for a connection"),
        Option(
            "retries",
            int,
            1,
            "times a command is retried on a new connection after a connection error "
            "(covers a pooled connection that died with a server restart); timeouts "
            "are not retried",
        ),
    )
    touches_on_read: ClassVar[bool] = True
    # redis.asyncio: on trio, core uses the sync flavour in worker threads.
    async_library: ClassVar[str | None] = "asyncio"

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        options = config.options
        check_options(config.name, options)
        self._options = dict(options)
        self._prefix: str = options["key_prefix"]
        self._age = config.age
        given = options.get("client")
        self._owned = given is None
        self._sync: Any = None
        self._async: Any = None
        self._loops: dict[asyncio.AbstractEventLoop, Any] = {}
        self._last: tuple[asyncio.AbstractEventLoop | None, Any] = (None, None)
        self._lock = threading.Lock()
        if given is None:
            self._address = mask_url(options["url"])
            if options.get("cluster"):
                self._address = "redis cluster " + self._address
        elif is_async_client(given):
            self._async = adopt(given, options)
            self._address = describe_client(given)
        else:
            self._sync = adopt(given, options)
            self._address = describe_client(given)

    def describe(self) -> str:
        """The server (or cluster, or Sentinel service) sessions are stored on."""
        return self._address

    def key(self, session_id: str) -> str:
        """The Redis key holding ``session_id``."""
        return self._prefix + session_id

    # -- payloads ---------------------------------------------------------------------

    def _values(self, session_id: str, data: bytes | str | None) -> dict[str, Any] | None:
        if data is None:
            return None
        try:
            return decode(data)
        except DecodeError as exc:
            self._unreadable(session_id, str(exc))
            return None

    def _unreadable(self, session_id: str, reason: str) -> None:
        self.config.notify_decode_failed(
            "store", f"unreadable entry {self.key(session_id)!r} at {self._address}: {reason}"
        )

    def _failed(self, operation: str, exc: BaseException) -> DriverError:
        if isinstance(exc, ResponseError) and "unknown command" in str(exc).lower():
            # GETEX arrived in Redis 6.2; older servers answer "unknown command".
            exc = RuntimeError(f"{exc} (the redis driver needs Redis >= 6.2 for GETEX)")
        return DriverError(self.config.name, operation, self._address, exc)

    # -- sync flavour ---------------------------------------------------------------

    def _client(self, operation: str) -> Any:
        client = self._sync
        if client is not None:
            return client
        if self._owned:
            # Built on first use: a cluster client asks a node for the slot map
            # as it is built, and that must fail as a request error naming the
            # driver, not as a bare traceback at startup.
            with self._lock:
                if self._sync is None:
                    try:
                        self._sync = build_sync(self._options)
                    except _FAILURES as exc:
                        raise self._failed(operation, exc) from exc
                return self._sync
        raise ConfigError(
            f"drivers.{self.config.name}.client",
            self._async,
            "a sync client (redis.Redis, redis.cluster.RedisCluster, Sentinel "
            "master_for(...)) for a sync (WSGI) application; this redis.asyncio "
            "client can only serve async applications",
        )

    def read(self, session_id: str) -> dict[str, Any] | None:
        """The session's values, restarting its expiry (GETEX); None if missing."""
        client = self._client("read")
        try:
            data = client.execute_command("GETEX", self._prefix + session_id, "EX", self._age)
        except _FAILURES as exc:
            if _wrong_type(exc):
                self._unreadable(session_id, str(exc))
                return None
            raise self._failed("read", exc) from exc
        return self._values(session_id, data)

    def write(self, session_id: str, values: dict[str, Any]) -> None:
        """Store the whole session for ``age`` seconds (SET with EX)."""
        payload = encode(values)
        client = self._client("write")
        try:
            client.execute_command("SET", self._prefix + session_id, payload, "EX", self._age)
        except _FAILURES as exc:
            raise self._failed("write", exc) from exc

    def destroy(self, session_id: str) -> None:
        """Delete the session (DEL); a missing one is not an error."""
        client = self._client("destroy")
        try:
            client.execute_command("DEL", self._prefix + session_id)
        except _FAILURES as exc:
            raise self._failed("destroy", exc) from exc

    def touch(self, session_id: str) -> None:
        """Restart the session's expiry (EXPIRE); a missing one is not an error."""
        client = self._client("touch")
        try:
            client.execute_command("EXPIRE", self._prefix + session_id, self._age)
        except _FAILURES as exc:
            raise self._failed("touch", exc) from exc

    # -- async flavour ----------------------------------------------------------------

    def _aclient(self) -> Any:
        if not self._owned:
            return self._async
        loop = asyncio.get_running_loop()
        last_loop, client = self._last
        if last_loop is loop:
            return client
        # An asyncio client belongs to the loop it first ran in, and the same
        # manager may serve several loops (tests, threads running their own).
        with self._lock:
            client = self._loops.get(loop)
            if client is None:
                for old in [old for old in self._loops if old.is_closed()]:
                    del self._loops[old]
                client = build_async(self._options)
                self._loops[loop] = client
            self._last = (loop, client)
        return client

    async def _offload(self, fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(fn, *args)

    async def _run(self, operation: str, command: Awaitable[T]) -> T:
        try:
            return await command
        except _FAILURES as exc:
            raise self._failed(operation, exc) from exc

    async def aread(self, session_id: str) -> dict[str, Any] | None:
        """Async :meth:`read`."""
        client = self._aclient()
        if client is None:
            return await self._offload(self.read, session_id)
        try:
            data = await client.execute_command("GETEX", self._prefix + session_id, "EX", self._age)
        except _FAILURES as exc:
            if _wrong_type(exc):
                self._unreadable(session_id, str(exc))
                return None
            raise self._failed("read", exc) from exc
        return self._values(session_id, data)

    async def awrite(self, session_id: str, values: dict[str, Any]) -> None:
        """Async :meth:`write`."""
        client = self._aclient()
        if client is None:
            return await self._offload(self.write, session_id, values)
        payload = encode(values)
        await self._run(
            "write",
            client.execute_command("SET", self._prefix + session_id, payload, "EX", self._age),
        )
        return None

    async def adestroy(self, session_id: str) -> None:
        """Async :meth:`destroy`."""
        client = self._aclient()
        if client is None:
            return await self._offload(self.destroy, session_id)
        await self._run("destroy", client.execute_command("DEL", self._prefix + session_id))
        return None

    async def atouch(self, session_id: str) -> None:
        """Async :meth:`touch`."""
        client = self._aclient()
        if client is None:
            return await self._offload(self.touch, session_id)
        await self._run(
            "touch", client.execute_command("EXPIRE", self._prefix + session_id, self._age)
        )
        return None

    # -- resources --------------------------------------------------------------------

    def close(self) -> None:
        """Close the connections this driver opened (never an application's client)."""
        if self._owned and self._sync is not None:
            self._sync.close()
        # Async clients of other loops cannot be awaited from here; dropping them
        # lets their loops' transports close with the loops.
        with self._lock:
            self._loops.clear()
            self._last = (None, None)

    async def aclose(self) -> None:
        """Close this loop's async client and the sync pool this driver opened."""
        if self._owned:
            try:
                loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            with self._lock:
                client = self._loops.pop(loop, None) if loop is not None else None
                if self._last[0] is loop:
                    self._last = (None, None)
            if client is not None:
                await client.aclose()
        self.close()
