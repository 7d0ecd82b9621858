"""Bounds on every database operation, and the engines' pool defaults.

A database that stops answering (a paused or overloaded server, a lost
network path) must cost a request ``timeout`` seconds and a clear error, never
a hang. Each part of an operation gets the database's own bound where one
exists, and a client-side one where none does:

* connecting: the DBAPI's connect timeout (libpq's ``connect_timeout``, at
  least 2 s by libpq's rule; PyMySQL's and asyncpg's ``connect_timeout``/``timeout``);
* waiting for a pooled connection: the pool's ``pool_timeout``;
* the statement: PostgreSQL cancels it on the server after ``statement_timeout``;
  PyMySQL gives up after ``read_timeout``/``write_timeout``; SQLite waits at most
  ``timeout`` for a lock. None of these helps when the server process is stopped
  (its kernel still accepts and acknowledges the bytes), so in sync code a
  :class:`Watchdog` thread cuts the connection of a call that outlives its
  deadline (shuts its socket down, or interrupts SQLite), and in async code
  :func:`bounded` stops waiting for the operation at its deadline and cancels it.
  Either way SQLAlchemy discards the connection, and the caller sees
  :class:`OperationTimeout`.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import threading
import time
from collections.abc import Coroutine, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy.engine import URL

__all__ = [
    "DEFAULT_TIMEOUT",
    "POOL_DEFAULTS",
    "OperationTimeout",
    "Watchdog",
    "bounded",
    "connect_args",
    "connect_within",
    "pool_options",
    "set_deadline",
    "timed_out_connecting",
]

T = TypeVar("T")

#: Seconds an operation (connect, pool checkout, statement) may take by default.
DEFAULT_TIMEOUT = 3.0

#: Pool settings for the engines the driver makes (see docs/drivers/sql.md for
#: the reasoning): keep enough connections for the requests one process serves
#: at once, so none is opened and closed per request.
POOL_DEFAULTS: dict[str, Any] = {
    "pool_size": 20,
    # None beyond it: an overflow connection is closed when returned, so load
    # above pool_size would open and close a connection per request; waiting a
    # moment for one of pool_size busy connections costs far less.
    "max_overflow": 0,
    # Connections older than this are replaced when next checked out, before a
    # server's or firewall's idle limit (MariaDB's wait_timeout, often 8 h;
    # some proxies much less) closes them under a request.
    "pool_recycle": 1800,
    # LIFO: under light load the same few connections serve every request and
    # the rest age out, instead of every connection being kept warm.
    "pool_use_lifo": True,
}


class OperationTimeout(TimeoutError):
    """An operation did not finish within the sql driver's ``timeout`` (the cause
    inside the DriverError)."""


#: SQLite runs one writer at a time per file: more connections in one process
#: would only wait in SQLite's busy handler, which sleeps and retries in no
#: order (a writer can starve past the timeout); the pool's queue is first come,
#: first served.
SQLITE_POOL_SIZE = 4


def pool_options(
    engine_options: Mapping[str, Any], timeout: float, backend: str = ""
) -> dict[str, Any]:
    """The pool defaults that apply, given the application's ``engine_options``:
    :data:`POOL_DEFAULTS` (``pool_size`` :data:`SQLITE_POOL_SIZE` for SQLite) and
    ``pool_timeout=timeout``.

    An application that picks its own pool class or pool gets none of them
    (``NullPool`` and ``StaticPool`` refuse sizing arguments); otherwise its
    own values win one by one.
    """
    if "poolclass" in engine_options or "pool" in engine_options:
        return {}
    defaults = {**POOL_DEFAULTS, "pool_timeout": timeout}
    if backend == "sqlite":
        defaults["pool_size"] = SQLITE_POOL_SIZE
    return {name: value for name, value in defaults.items() if name not in engine_options}


def connect_args(url: URL, timeout: float) -> dict[str, Any]:
    """The DBAPI's own timeouts for ``url``'s driver, in its connect arguments.

    Values the URL's query string sets are left to the URL.
    """
    driver = url.get_driver_name()
    query = url.query
    millis = max(1, math.ceil(timeout * 1000))
    args: dict[str, Any] = {}
    if driver in ("psycopg", "psycopg_async", "psycopg2"):
        # libpq counts whole seconds and never less than 2.
        args["connect_timeout"] = max(2, math.ceil(timeout))
        if "options" not in query:
            args["options"] = f"-c statement_timeout={millis}"
    elif driver == "asyncpg":
        args["timeout"] = timeout
        args["server_settings"] = {"statement_timeout": str(millis)}
    elif driver == "pymysql":
        whole = max(1, math.ceil(timeout))
        args.update(connect_timeout=whole, read_timeout=whole, write_timeout=whole)
    elif driver in ("aiomysql", "asyncmy"):
        args["connect_timeout"] = max(1, math.ceil(timeout))
    elif driver in ("pysqlite", "aiosqlite"):
        # How long to wait for another connection's write lock.
        args["timeout"] = timeout
    return {name: value for name, value in args.items() if name not in query}


#: The deadline of the sync operation running in this thread, for connect_within.
_current = threading.local()

#: Below this many seconds left (or half the timeout, if less), a new connection
#: is not attempted: libpq waits at least 2 s, so the operation would end more
#: than 1 s past its deadline.
_CONNECT_FLOOR = 1.0


def set_deadline(deadline: float | None, timeout: float = 0.0) -> None:
    """Record the running sync operation's deadline (``time.monotonic()``) and timeout."""
    _current.deadline = deadline
    _current.timeout = timeout


def timed_out_connecting(exc: BaseException | None) -> bool:
    """True for the error :func:`connect_within` raises."""
    return bool(getattr(exc, "sessions_sql_timeout", False))


def connect_within(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
    """``do_connect`` listener: a connection made for a sync operation (after a
    wait for a pool slot, say) gets only the time left before its deadline."""
    deadline = getattr(_current, "deadline", None)
    if deadline is None:
        return
    left = deadline - time.monotonic()
    if left < min(_CONNECT_FLOOR, _current.timeout / 2):
        error = dialect.loaded_dbapi.OperationalError(
            f"no time left to connect ({max(left, 0):.2f}s of the timeout)"
        )
        error.sessions_sql_timeout = True
        raise error
    driver = dialect.driver
    if driver in ("psycopg", "psycopg2"):
        given = int(cparams.get("connect_timeout") or 0) or math.inf
        cparams["connect_timeout"] = int(min(given, max(2, math.ceil(left))))
    elif driver == "pymysql":
        given = float(cparams.get("connect_timeout") or 0) or math.inf
        cparams["connect_timeout"] = min(given, left)


class _Guard:
    """One armed call: its DBAPI connection and deadline."""

    __slots__ = ("connection", "deadline", "done", "fired", "lock")

    def __init__(self, connection: Any, deadline: float) -> None:
        self.connection = connection
        self.deadline = deadline
        self.fired = False
        self.done = False
        self.lock = threading.Lock()


class Watchdog:
    """Cuts the connections of sync calls that run past their deadline.

    One thread per watchdog wakes every ``min(timeout / 4, 0.25)`` seconds while
    calls are armed, so a deadline fires at most that late; arming a call is a
    dict insert, with no timer or thread per call.
    """

    def __init__(self, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.timeout = timeout
        self._interval = min(timeout / 4, 0.25)
        self._armed: dict[int, _Guard] = {}
        self._wake = threading.Event()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    @contextmanager
    def guard(self, dbapi_connection: Any, deadline: float) -> Iterator[_Guard]:
        """Arm ``deadline`` (a ``time.monotonic()`` value) over the block; on exit
        ``guard.fired`` tells whether the connection was cut."""
        guard = _Guard(dbapi_connection, deadline)
        key = id(guard)
        self._armed[key] = guard
        if self._pid != os.getpid() or self._thread is None:
            self._start()
        elif not self._wake.is_set():
            self._wake.set()
        try:
            yield guard
        finally:
            with guard.lock:  # never cut a connection already handed back
                guard.done = True
            self._armed.pop(key, None)

    def _start(self) -> None:
        # Lazily, and again in a forked child (threads do not survive fork).
        with self._start_lock:
            if self._pid == os.getpid() and self._thread is not None:
                return
            self._pid = os.getpid()
            self._wake = threading.Event()
            self._wake.set()
            self._thread = threading.Thread(
                target=self._watch, name="sessions-sql-watchdog", daemon=True
            )
            self._thread.start()

    def _watch(self) -> None:
        wake = self._wake
        while True:
            wake.wait()
            time.sleep(self._interval)
            now = time.monotonic()
            for guard in list(self._armed.values()):
                if guard.deadline <= now and not guard.fired:
                    with guard.lock:
                        if not guard.done:
                            guard.fired = True
                            interrupt(guard.connection)
            if not self._armed:
                wake.clear()
                if self._armed:  # armed between the check and the clear
                    wake.set()


def interrupt(dbapi_connection: Any) -> None:
    """Make a call blocked on ``dbapi_connection`` return with an error, now."""
    try:
        sqlite_interrupt = getattr(dbapi_connection, "interrupt", None)
        if callable(sqlite_interrupt):  # sqlite3: aborts the running statement
            sqlite_interrupt()
            return
        pgconn = getattr(dbapi_connection, "pgconn", None)
        if pgconn is not None:  # psycopg 3: the libpq socket
            _shutdown(pgconn.socket)
            return
        sock = getattr(dbapi_connection, "_sock", None)  # PyMySQL
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
            return
        fileno = getattr(dbapi_connection, "fileno", None)  # psycopg2
        if callable(fileno):
            _shutdown(fileno())
    except (OSError, ValueError, RuntimeError):
        pass  # already closed: the call has ended or is about to


def _shutdown(fd: int) -> None:
    # A duplicate of the descriptor: shutting it down ends the connection for
    # both, and closing it leaves the DBAPI's own descriptor to the DBAPI.
    dup = socket.socket(fileno=os.dup(fd))
    try:
        dup.shutdown(socket.SHUT_RDWR)
    finally:
        dup.close()


#: Cancelled operations still winding down; referenced so they are not collected.
_abandoned: set[asyncio.Task[Any]] = set()


async def bounded(operation: Coroutine[Any, Any, T], timeout: float) -> T:
    """Await ``operation`` for at most ``timeout`` seconds, then raise TimeoutError.

    The operation runs in a task of its own so the caller returns at the
    deadline even when the DBAPI does not: psycopg answers a cancellation by
    asking the server to cancel the query and waiting up to 10 s for it (which a
    stopped server never answers), and closes the connection at once only when
    cancelled a second time. A timed-out operation is cancelled twice and left
    to finish in the background; SQLAlchemy discards its connection.
    """
    task = asyncio.ensure_future(operation)
    try:
        done, _ = await asyncio.wait((task,), timeout=timeout)
    except BaseException:  # the request itself was cancelled
        _abandon(task)
        raise
    if done:
        return task.result()
    _abandon(task)
    raise TimeoutError(f"no result within {timeout}s")


def _abandon(task: asyncio.Task[Any]) -> None:
    task.cancel()
    _abandoned.add(task)
    task.add_done_callback(_forget)
    # The second cancellation, once the first has been delivered.
    asyncio.get_running_loop().call_later(0.01, _cancel_again, task)


def _cancel_again(task: asyncio.Task[Any]) -> None:
    if not task.done():
        task.cancel()


def _forget(task: asyncio.Task[Any]) -> None:
    _abandoned.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" noise
