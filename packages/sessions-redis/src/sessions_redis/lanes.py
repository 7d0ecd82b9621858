"""The short path from a session operation to one Redis command and its reply.

``client.execute_command`` wraps every command in redis-py's general machinery
(pool checkout with a readiness probe, retry closures, observability hooks and,
in asyncio, a task per send to enforce ``socket_timeout``). For one command per
request that machinery costs as much client CPU as the command itself, so for
the standalone servers it builds from ``url`` the driver keeps a small free list
of redis-py connections (checked out of the client's own pool) and talks over
them directly with redis-py's connection API: pack, send, read the reply. Cluster
clients and application-provided clients go through ``execute_command``.

A connection error is retried ``retries`` times on the same connection object,
which reconnects (a timeout is not retried); the four session commands are
idempotent, so a command the server did run before the connection broke does no
harm when repeated. Any other failure leaves the connection disconnected, never
half-read.

A reply that means "ask again shortly" (:data:`TRY_AGAIN`: ``LOADING`` while a
restarted server reads its dataset back, ``TRYAGAIN``/``CLUSTERDOWN``/``MASTERDOWN``
while a cluster moves a slot or fails over) is asked again on the same connection,
after a pause of 5 to 100 ms, for up to ``socket_timeout`` seconds from the first
such reply (in async code never past the command's own deadline): a restart that
completes within it costs the request that much time, not an error. Cluster
clients and application-provided clients get the same through
:class:`PatientClient` and :class:`AsyncPatientClient`.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import deque
from typing import Any

import hiredis
from redis import exceptions as rx
from redis.backoff import EqualJitterBackoff, ExponentialWithJitterBackoff

from .deadlines import DeadlineExceeded, Deadlines

__all__ = [
    "DEFAULT_PATIENCE",
    "TRY_AGAIN",
    "AsyncLane",
    "AsyncPatientClient",
    "PatientClient",
    "SyncLane",
    "backoff",
]

#: Replies meaning the server is up but cannot serve the command yet.
#: (MasterDownError is a ClusterDownError.)
TRY_AGAIN = (rx.BusyLoadingError, rx.TryAgainError, rx.ClusterDownError)

#: Seconds to keep asking after a try-again reply when no socket_timeout bounds it.
DEFAULT_PATIENCE = 2.0

# Connection errors are retried; a timeout is not: the server is slow or hung,
# and asking again would only double the wait. (The builtin TimeoutError, an
# OSError, is caught before OSError.)
_TIMEOUTS = (rx.TimeoutError, TimeoutError)
_RETRIED = (rx.ConnectionError, OSError)


def _pack(args: tuple[Any, ...]) -> list[bytes]:
    # hiredis' C packer: redis-py's asyncio connections pack in Python, ten
    # times slower for these short commands. A list, as both flavours of
    # send_packed_command accept (the sync one would iterate bare bytes).
    packed: bytes = hiredis.pack_command(args)
    return [packed]


def backoff() -> ExponentialWithJitterBackoff:
    """The pause before a retry: enough to ride over a pooled connection that
    died with a server restart, short enough that a request fails fast while
    Redis is really down (redis-py's default retries ten times, seconds in all)."""
    return ExponentialWithJitterBackoff(cap=0.1, base=0.005)


def _again() -> EqualJitterBackoff:
    # A restarted server loads a small dataset in about 0.1 s: ask again soon,
    # but never in a tight loop (at least 5 ms, at most 100 ms between tries).
    return EqualJitterBackoff(cap=0.1, base=0.005)


class _Patience:
    """How long to wait before asking again after a try-again reply.

    Made on the first such reply (never on the hot path), it gives up once the
    next pause would end past ``patience`` seconds from that reply.
    """

    __slots__ = ("_again", "_give_up", "_tries")

    def __init__(self, patience: float, again: EqualJitterBackoff) -> None:
        self._again = again
        self._give_up = time.monotonic() + patience
        self._tries = 0

    def pause(self) -> float | None:
        """Seconds to wait before the next try, or None: give up (re-raise)."""
        self._tries += 1
        pause = self._again.compute(self._tries)
        return pause if time.monotonic() + pause < self._give_up else None


class SyncLane:
    """Commands over a ``redis.Redis`` client's pool, for threads."""

    def __init__(self, client: Any, retries: int, patience: float | None = None) -> None:
        self.client = client
        self._pool = client.connection_pool
        self._retries = retries
        self._patience = DEFAULT_PATIENCE if patience is None else patience
        self._backoff = backoff()
        self._again = _again()
        self._free: deque[Any] = deque()
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def execute_command(self, *args: Any) -> Any:
        """Send one command and return its reply (redis-py exceptions on failure)."""
        if self._pid != os.getpid():
            self._forked()
        free = self._free
        try:
            conn = free.pop()
        except IndexError:
            conn = None
        if conn is None:
            # Outside the handler: a failure to connect is not "during handling
            # of IndexError: pop from an empty deque".
            conn = self._pool.get_connection()
        failures = 0
        waiting: _Patience | None = None
        try:
            while True:
                try:
                    conn.send_packed_command(_pack(args), check_health=False)
                    return conn.read_response()
                except TRY_AGAIN:
                    waiting = waiting or _Patience(self._patience, self._again)
                    pause = waiting.pause()
                    if pause is None:
                        raise
                    time.sleep(pause)
                except rx.ResponseError:
                    raise
                except _TIMEOUTS:
                    conn.disconnect()
                    raise
                except _RETRIED:
                    conn.disconnect()
                    failures += 1
                    if failures > self._retries:
                        raise
                    time.sleep(self._backoff.compute(failures))
                except BaseException:
                    conn.disconnect()
                    raise
        finally:
            free.append(conn)

    def _forked(self) -> None:
        # Connections inherited from the parent process belong to the parent;
        # redis-py's pool resets itself on its next checkout in this process.
        with self._lock:
            self._free = deque()
            self._pid = os.getpid()

    def close(self) -> None:
        """Hand the idle connections back to the pool and disconnect the pool."""
        free, self._free = self._free, deque()
        for conn in free:
            self._pool.release(conn)
        self.client.close()


class AsyncLane:
    """Commands over a ``redis.asyncio.Redis`` client's pool, in the loop that made it.

    ``timeout`` bounds a whole command (connecting, every attempt); the
    deadline is kept by :class:`~sessions_redis.deadlines.Deadlines` rather
    than redis-py's per-send task or a timer per command. A connection
    interrupted by it is left disconnected.
    """

    def __init__(self, client: Any, retries: int, timeout: float | None) -> None:
        self.client = client
        self._pool = client.connection_pool
        self._retries = retries
        self._deadlines = Deadlines(timeout) if timeout is not None else None
        self._patience = DEFAULT_PATIENCE if timeout is None else timeout
        self._backoff = backoff()
        self._again = _again()
        self._free: deque[Any] = deque()

    async def execute_command(self, *args: Any) -> Any:
        """Send one command and return its reply (redis-py exceptions on failure)."""
        deadlines = self._deadlines
        if deadlines is None:
            return await self._command(args)
        try:
            return await deadlines.guard(self._command(args))
        except DeadlineExceeded:
            raise rx.TimeoutError(
                f"no reply from Redis within socket_timeout={deadlines.timeout}s"
            ) from None

    async def _command(self, args: tuple[Any, ...]) -> Any:
        free = self._free
        if free:
            conn = free.pop()
        else:
            # Inside the deadline: a new connection's handshake waits for a reply too.
            conn = await self._pool.get_connection()
        try:
            return await self._attempts(conn, args)
        finally:
            free.append(conn)

    async def _attempts(self, conn: Any, args: tuple[Any, ...]) -> Any:
        failures = 0
        waiting: _Patience | None = None
        while True:
            try:
                await conn.send_packed_command(_pack(args), check_health=False)
                return await conn.read_response()
            except TRY_AGAIN:
                waiting = waiting or _Patience(self._patience, self._again)
                pause = waiting.pause()
                if pause is None:
                    raise
                await asyncio.sleep(pause)
            except rx.ResponseError:
                raise
            except _TIMEOUTS:
                await conn.disconnect(nowait=True)
                raise
            except _RETRIED:
                await conn.disconnect(nowait=True)
                failures += 1
                if failures > self._retries:
                    raise
                await asyncio.sleep(self._backoff.compute(failures))
            except BaseException:
                await conn.disconnect(nowait=True)
                raise

    async def aclose(self) -> None:
        """Hand the idle connections back to the pool and close the client."""
        free, self._free = self._free, deque()
        for conn in free:
            await self._pool.release(conn)
        await self.client.aclose()


class PatientClient:
    """A redis-py client (cluster, Sentinel, or the application's own) whose
    ``execute_command`` asks again after a :data:`TRY_AGAIN` reply, for up to
    ``patience`` seconds; anything else is the client's own."""

    def __init__(self, client: Any, patience: float | None) -> None:
        self.client = client
        self._patience = DEFAULT_PATIENCE if patience is None else patience
        self._again = _again()

    def execute_command(self, *args: Any) -> Any:
        """The client's ``execute_command``, asked again while the reply says so."""
        waiting: _Patience | None = None
        while True:
            try:
                return self.client.execute_command(*args)
            except TRY_AGAIN:
                waiting = waiting or _Patience(self._patience, self._again)
                pause = waiting.pause()
                if pause is None:
                    raise
                time.sleep(pause)

    def close(self) -> None:
        """Close the client (only called for clients the driver built)."""
        self.client.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


class AsyncPatientClient:
    """:class:`PatientClient` for a redis.asyncio client."""

    def __init__(self, client: Any, patience: float | None) -> None:
        self.client = client
        self._patience = DEFAULT_PATIENCE if patience is None else patience
        self._again = _again()

    async def execute_command(self, *args: Any) -> Any:
        """The client's ``execute_command``, asked again while the reply says so."""
        waiting: _Patience | None = None
        while True:
            try:
                return await self.client.execute_command(*args)
            except TRY_AGAIN:
                waiting = waiting or _Patience(self._patience, self._again)
                pause = waiting.pause()
                if pause is None:
                    raise
                await asyncio.sleep(pause)

    async def aclose(self) -> None:
        """Close the client (only called for clients the driver built)."""
        await self.client.aclose()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)
