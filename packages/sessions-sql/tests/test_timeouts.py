"""Timeouts: a database that stops answering costs a request the driver's
``timeout`` and a DriverError naming it, never a hang; and the pool defaults."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from sessions.errors import ConfigError, DriverError
from sessions.testing import Harness, new_key
from sessions_sql.driver import SQLDriver
from sessions_sql.limits import OperationTimeout
from sqlalchemy import create_engine, event
from sqlalchemy.pool import NullPool

from .conftest import Database, PostgresServer


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = open(f"/proc/{entry}/stat").read()  # noqa: SIM115
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
    return found


@contextlib.contextmanager
def paused(server: PostgresServer) -> Iterator[None]:
    """Stop every process of the server (the postmaster first, so it forks no
    more, then its backends, each in a session of its own), as a hung machine or
    a stopped container would; the kernel still accepts and acknowledges bytes."""
    process = server._process
    assert process is not None
    stopped = [process.pid]
    os.kill(process.pid, signal.SIGSTOP)
    try:
        for child in _children(process.pid):
            os.kill(child, signal.SIGSTOP)
            stopped.append(child)
        yield
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)


@pytest.fixture
def pg_url(own_postgres: PostgresServer) -> Iterator[str]:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{own_postgres.port}/postgres"
    engine = create_engine(url, poolclass=NullPool)
    Database(url, engine).table()
    yield url
    engine.dispose()


def timed_out(exc: DriverError, operation: str, timeout: str) -> bool:
    message = str(exc)
    return (
        exc.operation == operation
        and isinstance(exc.__cause__, OperationTimeout)
        and f"OperationTimeout: no answer from the database within timeout={timeout}s" in message
    )


def test_sync_requests_fail_within_the_timeout_while_postgres_is_paused(
    own_postgres: PostgresServer, pg_url: str
) -> None:
    h = Harness(SQLDriver, {"url": pg_url, "timeout": 1}, age=600)
    key = new_key()
    h.call("write", key, {"a": 1})
    try:
        with paused(own_postgres):
            # On the pooled connection: the watchdog cuts it at the deadline.
            started = time.monotonic()
            with pytest.raises(DriverError) as caught:
                h.call("read", key)
            assert time.monotonic() - started < 1 + 1
            assert timed_out(caught.value, "read", "1")
            # On a new connection: libpq's connect timeout, never under 2 s.
            started = time.monotonic()
            with pytest.raises(DriverError) as caught:
                h.call("touch", key)
            assert time.monotonic() - started < 2 + 1
            assert timed_out(caught.value, "touch", "1")
        for _ in range(5):  # as above: what queued up during the stop comes first
            with contextlib.suppress(DriverError):
                assert h.call("read", key) == {"a": 1}
                break
        assert h.call("read", key) == {"a": 1}
    finally:
        h.manager.close()


def test_a_request_that_waited_for_the_pool_gets_no_new_timeout_to_connect(
    own_postgres: PostgresServer, pg_url: str
) -> None:
    # One connection, two requests, PostgreSQL stopped: the second waits for the
    # pool until the first is cut, then must not start a fresh connect timeout.
    options = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 10}
    h = Harness(SQLDriver, {"url": pg_url, "timeout": 1, "engine_options": options}, age=600)
    key = new_key()
    h.call("write", key, {"a": 1})
    took: dict[str, float] = {}
    failures: dict[str, BaseException] = {}

    def request(name: str) -> None:
        started = time.monotonic()
        try:
            h.call("read", key)
        except DriverError as exc:
            failures[name] = exc
        took[name] = time.monotonic() - started

    try:
        with paused(own_postgres):
            first = threading.Thread(target=request, args=("first",))
            first.start()
            time.sleep(0.1)
            second = threading.Thread(target=request, args=("second",))
            second.start()
            first.join()
            second.join()
        assert set(failures) == {"first", "second"}
        assert all(timed_out(exc, "read", "1") for exc in failures.values())  # type: ignore[arg-type]
        assert took["second"] < 1 + 1, took
    finally:
        h.manager.close()


@pytest.mark.parametrize("dbapi", ["psycopg", "asyncpg"])
def test_async_requests_fail_within_the_timeout_while_postgres_is_paused(
    own_postgres: PostgresServer, pg_url: str, dbapi: str
) -> None:
    url = pg_url.replace("+psycopg", f"+{dbapi}")

    async def main() -> None:
        h = Harness(SQLDriver, {"url": url, "timeout": 1}, age=600)
        key = new_key()
        try:
            await h.acall("write", key, {"a": 1})
            with paused(own_postgres):
                for operation, args in (("write", (key, {"a": 2})), ("read", (key,))):
                    started = time.monotonic()
                    with pytest.raises(DriverError) as caught:
                        await h.acall(operation, *args)
                    assert time.monotonic() - started < 1 + 1
                    assert timed_out(caught.value, operation, "1")
            # The server works through what queued up while it was stopped; on a
            # busy machine that can outlast the 1 s timeout once.
            for _ in range(5):
                with contextlib.suppress(DriverError):
                    assert await h.acall("read", key) in ({"a": 1}, {"a": 2})
                    break
            await h.acall("write", key, {"a": 3})
            assert await h.acall("read", key) == {"a": 3}
        finally:
            await h.manager.aclose()

    anyio.run(main)


def test_a_slow_statement_is_cancelled_by_postgres(pg_url: str) -> None:
    # statement_timeout travels in the connection options: the server itself
    # cancels a statement that runs too long, and the connection stays usable.
    h = Harness(SQLDriver, {"url": pg_url, "timeout": 0.5}, age=600)
    try:
        with h.driver.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "500ms"
    finally:
        h.manager.close()


def test_sqlite_lock_wait_is_bounded(sqlite_db: Database) -> None:
    h = Harness(SQLDriver, {"url": sqlite_db.url, "timeout": 0.5}, age=600)
    key = new_key()
    h.call("write", key, {"a": 1})
    path = sqlite_db.url.removeprefix("sqlite:///")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        started = time.monotonic()
        with pytest.raises(DriverError) as caught:
            h.call("write", key, {"a": 2})
        assert 0.4 < time.monotonic() - started < 0.5 + 1
        assert timed_out(caught.value, "write", "0.5")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    h.call("write", key, {"a": 3})
    assert h.call("read", key) == {"a": 3}
    h.manager.close()


def test_mariadb_read_timeout_is_set(mariadb_db: Database) -> None:
    h = Harness(SQLDriver, {"url": mariadb_db.url, "timeout": 2}, age=600)
    try:
        with h.driver.engine.connect() as conn:
            raw: Any = conn.connection.dbapi_connection
            assert (raw._read_timeout, raw._write_timeout, raw.connect_timeout) == (2, 2, 2)
    finally:
        h.manager.close()


def test_watchdog_cuts_a_hung_mariadb_call(mariadb_db: Database) -> None:
    # SLEEP stands in for a server that does not answer: the sync call is cut
    # at the deadline, whatever the DBAPI's own timeouts.
    mariadb_db.table()
    h = Harness(SQLDriver, {"url": mariadb_db.url, "timeout": 0.5}, age=600)
    try:
        started = time.monotonic()
        with pytest.raises(DriverError) as caught:
            h.driver._run("read", lambda conn, s: conn.exec_driver_sql("SELECT SLEEP(5)"))
        assert time.monotonic() - started < 0.5 + 1
        assert timed_out(caught.value, "read", "0.5")
        assert h.call("read", new_key()) is None  # a new connection serves the next call
    finally:
        h.manager.close()


def test_pool_defaults_keep_connections_for_concurrent_requests(pg_url: str) -> None:
    h = Harness(SQLDriver, {"url": pg_url}, age=600)
    engine = h.driver.engine
    pool: Any = engine.pool
    assert (pool.size(), pool._max_overflow, pool._timeout, pool._recycle) == (20, 0, 3.0, 1800)
    assert h.call("read", new_key()) is None  # the engine is up (its table checked)
    warm = pool.checkedin()
    opened: list[object] = []
    event.listen(engine, "connect", lambda conn, record: opened.append(conn))
    keys = [new_key() for _ in range(40)]  # more than the pool: they wait, none churns
    barrier = threading.Barrier(len(keys))

    def request(key: str) -> None:
        barrier.wait()
        for _ in range(5):
            h.call("write", key, {"k": key})

    for _ in range(3):
        threads = [threading.Thread(target=request, args=(key,)) for key in keys]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    # The connections opened for the first burst served all the others (SQLAlchemy's
    # own default, 5 kept and overflow closed on return, reopens them every burst).
    assert 1 <= warm + len(opened) <= 20
    assert pool.checkedin() == warm + len(opened)
    h.manager.close()


def test_engine_options_override_the_defaults(pg_url: str) -> None:
    h = Harness(SQLDriver, {"url": pg_url, "engine_options": {"poolclass": NullPool}}, age=600)
    assert isinstance(h.driver.engine.pool, NullPool)
    assert h.call("read", new_key()) is None
    h.manager.close()
    h = Harness(SQLDriver, {"url": pg_url, "engine_options": {"pool_size": 3}}, age=600)
    assert h.driver.engine.pool.size() == 3  # type: ignore[attr-defined]
    h.manager.close()


def test_sqlite_pool_is_small(sqlite_db: Database) -> None:
    h = Harness(SQLDriver, {"url": sqlite_db.url}, age=600)
    pool: Any = h.driver.engine.pool
    assert (pool.size(), pool._max_overflow) == (4, 0)
    h.manager.close()


@pytest.mark.parametrize("bad", [0, -1])
def test_timeout_must_be_positive(sqlite_db: Database, bad: float) -> None:
    h = Harness(SQLDriver, {"url": sqlite_db.url, "timeout": bad}, age=600)
    with pytest.raises(ConfigError, match=r"drivers\.under_test\.timeout"):
        assert h.driver
