"""The ``redis`` driver: one Redis string per session, expiring with the session.

Every operation is one command, so round trips are the whole cost:

* read is ``GETEX key EX age``: it returns the session and restarts its expiry,
  so an unchanged session costs exactly one command per request
  (``touches_on_read``);
* a changed session is written with one ``EVALSHA`` of a small Lua script, a
  compare-and-set against the version read (the ``versioned`` capability: see
  :mod:`sessions_redis.records` for the record format and
  :mod:`sessions_redis.scripts` for the script); so is a plain ``write``
  (unconditionally), which gives the record a fresh version too;
* destroy is ``DEL key``; touch is ``EXPIRE key age``;
* tagging (``tagged``, ``peek``, ``destroy_tagged``) keeps a set per tag, see
  :mod:`sessions_redis.tags`.

The sync flavour talks through ``redis.Redis`` (or ``RedisCluster``), the async
flavour through ``redis.asyncio`` on the running loop, never via a thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Generator
from typing import Any, ClassVar, TypeVar

import anyio.to_thread
from redis.exceptions import RedisError, ResponseError
from sessions.codec import decode, encode
from sessions.driver import Driver, DriverConfig, Option, Record, StoredSession
from sessions.errors import ConfigError, DecodeError, DriverError
from sessions.record import store_age, tag_of

from .clients import (
    adopt,
    build_async,
    build_sync,
    check_options,
    describe_client,
    is_async_client,
    mask_url,
)
from .records import UnreadableRecord, new_version, pack, parse
from .scripts import CAS
from .tags import (
    Step,
    apipeline,
    destroy_tagged_plan,
    peek_plan,
    pipeline,
    run_scripts_async,
    run_scripts_sync,
    tagged_plan,
)

__all__ = ["RedisDriver"]

T = TypeVar("T")
R = TypeVar("R")

#: redis-py's errors and the socket errors beneath them: the server is unreachable,
#: dropped the connection, timed out or refused the command.
_FAILURES = (RedisError, OSError)


def _wrong_type(exc: BaseException) -> bool:
    # Some other program stored a non-string under a session key.
    return isinstance(exc, ResponseError) and str(exc).startswith("WRONGTYPE")


def _is_cluster(client: Any) -> bool:
    # redis-py's RedisCluster (sync and asyncio) routes by slot through a nodes manager.
    return client is not None and getattr(client, "nodes_manager", None) is not None


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
        self._cluster = bool(options.get("cluster")) or _is_cluster(given)
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

    def _record(self, session_id: str, data: bytes | None) -> Record | None:
        if data is None:
            return None
        try:
            parsed = parse(data)
            return Record(decode(parsed.payload), parsed.version)
        except (UnreadableRecord, DecodeError) as exc:
            self._unreadable(session_id, str(exc))
            return None

    def _decoded(self, session_id: str, data: bytes) -> dict[str, Any] | None:
        record = self._record(session_id, data)
        return None if record is None else record.values

    def tag_key(self, tag: str) -> str:
        """The Redis set indexing the sessions tagged ``tag``."""
        return f"{self._prefix}tag:{tag}"

    def _cas_call(
        self, session_id: str, values: dict[str, Any], expected: str
    ) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        # KEYS and ARGV of the CAS script (see scripts.CAS).
        key = self._prefix + session_id
        if not values and expected != "*":
            # A compare-and-set of {} deletes (a plain write stores the empty dict).
            return (key,), (expected, "", b"", 0, "", session_id)
        tag = tag_of(values)
        version = new_version()
        record = pack(version, tag, encode(values))
        args = (expected, str(version), record, store_age(values, self._age), tag or "", session_id)
        if tag is None or self._cluster:
            return (key,), args
        # Off Cluster the tag set is updated inside the script.
        return (key, self.tag_key(tag)), args

    def _unreadable(self, session_id: str, reason: str) -> None:
        self.config.notify_decode_failed(
            "store", f"unreadable entry {self.key(session_id)!r} at {self._address}: {reason}"
        )

    def _failed(self, operation: str, exc: BaseException) -> DriverError:
        if isinstance(exc, ResponseError) and "unknown command" in str(exc).lower():
            # GETEX arrived in Redis 6.2; older servers answer "unknown command".
            exc = RuntimeError(
                f"{exc} (the redis driver needs Redis >= 6.2 for GETEX, and Lua scripting)"
            )
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

    def _command(self, session_id: str, touch: bool) -> tuple[Any, ...]:
        # GETEX restarts the expiry as it reads; GET leaves it (touch_interval not due).
        if touch:
            return ("GETEX", self._prefix + session_id, "EX", self._age)
        return ("GET", self._prefix + session_id)

    def _getex(self, session_id: str, touch: bool = True) -> bytes | None:
        client = self._client("read")
        try:
            data: bytes | None = client.execute_command(*self._command(session_id, touch))
        except _FAILURES as exc:
            if _wrong_type(exc):
                self._unreadable(session_id, str(exc))
                return None
            raise self._failed("read", exc) from exc
        return data

    def read(self, session_id: str, touch: bool = True) -> dict[str, Any] | None:
        """The session's values, restarting its expiry (GETEX; with ``touch=False``,
        GET); None if missing."""
        record = self._record(session_id, self._getex(session_id, touch))
        return None if record is None else record.values

    def read_versioned(self, session_id: str, touch: bool = True) -> Record | None:
        """The session's values and version, restarting its expiry (one GETEX;
        with ``touch=False``, one GET)."""
        return self._record(session_id, self._getex(session_id, touch))

    def _cas(self, operation: str, session_id: str, values: dict[str, Any], expected: str) -> bool:
        keys, args = self._cas_call(session_id, values, expected)
        client = self._client(operation)
        try:
            result = CAS.run(client, keys, args)
            if result == 2 and self._cluster:
                # The tag set lives on another slot: index the new tag now (only
                # when the tag changed, so an ordinary write costs nothing more).
                client.execute_command("SADD", self.tag_key(args[4]), session_id)
        except _FAILURES as exc:
            raise self._failed(operation, exc) from exc
        return bool(result)

    def write(self, session_id: str, values: dict[str, Any]) -> None:
        """Store the whole session, whatever is stored (one EVALSHA), with a fresh
        version and the record's TTL (``store_age``)."""
        self._cas("write", session_id, values, "*")

    def write_versioned(self, session_id: str, values: dict[str, Any], version: int | None) -> bool:
        """Compare-and-set (one EVALSHA): store ``values`` (or, with ``{}``, delete)
        only if the stored version is still ``version`` (None: only if absent)."""
        return self._cas("write", session_id, values, "" if version is None else str(version))

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

    # -- tagging (sync) -------------------------------------------------------------

    def _steps(self, operation: str, plan: Generator[Step, Any, R]) -> R:
        client = self._client(operation)
        try:
            step = next(plan)
            while True:
                kind = step[0]
                if kind == "script":
                    reply = step[1].run(client, step[2], step[3])
                elif kind == "command":
                    reply = client.execute_command(*step[1])
                elif kind == "pipeline":
                    reply = pipeline(client, step[1])
                else:
                    reply = run_scripts_sync(client, step[1], step[2])
                step = plan.send(reply)
        except StopIteration as done:
            result: R = done.value
            return result
        except _FAILURES as exc:
            raise self._failed(operation, exc) from exc

    def peek(self, session_id: str) -> StoredSession | None:
        """The session and its expiry, read without refreshing it (one script: GET, PTTL)."""
        plan = peek_plan(self._prefix + session_id, session_id, self._decoded, self._age)
        return self._steps("peek", plan)

    def tagged(self, tag: str) -> list[StoredSession]:
        """Every live session tagged ``tag``: one script off Cluster; on Cluster,
        SMEMBERS then one pipeline per node (sent at once). Stale members are pruned."""
        plan = tagged_plan(
            self._prefix, self.tag_key(tag), tag, self._cluster, self._decoded, self._age
        )
        return self._steps("tagged", plan)

    def destroy_tagged(self, tag: str, keep: str | None = None) -> int:
        """Destroy every live session tagged ``tag`` except ``keep``; return how many."""
        plan = destroy_tagged_plan(self._prefix, self.tag_key(tag), tag, keep, self._cluster)
        return self._steps("destroy_tagged", plan)

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

    async def _agetex(self, client: Any, session_id: str, touch: bool = True) -> bytes | None:
        try:
            data: bytes | None = await client.execute_command(*self._command(session_id, touch))
        except _FAILURES as exc:
            if _wrong_type(exc):
                self._unreadable(session_id, str(exc))
                return None
            raise self._failed("read", exc) from exc
        return data

    async def aread(self, session_id: str, touch: bool = True) -> dict[str, Any] | None:
        """Async :meth:`read`."""
        client = self._aclient()
        if client is None:
            return await self._offload(self.read, session_id, touch)
        record = self._record(session_id, await self._agetex(client, session_id, touch))
        return None if record is None else record.values

    async def aread_versioned(self, session_id: str, touch: bool = True) -> Record | None:
        """Async :meth:`read_versioned`."""
        client = self._aclient()
        if client is None:
            return await self._offload(self.read_versioned, session_id, touch)
        return self._record(session_id, await self._agetex(client, session_id, touch))

    async def _acas(
        self, operation: str, session_id: str, values: dict[str, Any], expected: str
    ) -> bool:
        keys, args = self._cas_call(session_id, values, expected)
        client = self._aclient()
        try:
            result = await CAS.arun(client, keys, args)
            if result == 2 and self._cluster:
                await client.execute_command("SADD", self.tag_key(args[4]), session_id)
        except _FAILURES as exc:
            raise self._failed(operation, exc) from exc
        return bool(result)

    async def awrite(self, session_id: str, values: dict[str, Any]) -> None:
        """Async :meth:`write`."""
        if self._aclient() is None:
            return await self._offload(self.write, session_id, values)
        await self._acas("write", session_id, values, "*")
        return None

    async def awrite_versioned(
        self, session_id: str, values: dict[str, Any], version: int | None
    ) -> bool:
        """Async :meth:`write_versioned`."""
        if self._aclient() is None:
            return await self._offload(self.write_versioned, session_id, values, version)
        return await self._acas(
            "write", session_id, values, "" if version is None else str(version)
        )

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

    # -- tagging (async) ------------------------------------------------------------

    async def _asteps(self, operation: str, plan: Generator[Step, Any, R]) -> R:
        client = self._aclient()
        try:
            step = next(plan)
            while True:
                kind = step[0]
                if kind == "script":
                    reply = await step[1].arun(client, step[2], step[3])
                elif kind == "command":
                    reply = await client.execute_command(*step[1])
                elif kind == "pipeline":
                    reply = await apipeline(client, step[1])
                else:
                    reply = await run_scripts_async(client, step[1], step[2])
                step = plan.send(reply)
        except StopIteration as done:
            result: R = done.value
            return result
        except _FAILURES as exc:
            raise self._failed(operation, exc) from exc

    async def apeek(self, session_id: str) -> StoredSession | None:
        """Async :meth:`peek`."""
        if self._aclient() is None:
            return await self._offload(self.peek, session_id)
        plan = peek_plan(self._prefix + session_id, session_id, self._decoded, self._age)
        return await self._asteps("peek", plan)

    async def atagged(self, tag: str) -> list[StoredSession]:
        """Async :meth:`tagged`."""
        if self._aclient() is None:
            return await self._offload(self.tagged, tag)
        plan = tagged_plan(
            self._prefix, self.tag_key(tag), tag, self._cluster, self._decoded, self._age
        )
        return await self._asteps("tagged", plan)

    async def adestroy_tagged(self, tag: str, keep: str | None = None) -> int:
        """Async :meth:`destroy_tagged`."""
        if self._aclient() is None:
            return await self._offload(self.destroy_tagged, tag, keep)
        plan = destroy_tagged_plan(self._prefix, self.tag_key(tag), tag, keep, self._cluster)
        return await self._asteps("destroy_tagged", plan)

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
