"""Faults: a dropped connection or a restarted server gives a clear error while the
database is down, and the next request works without restarting the application."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import psycopg
import pytest
from sessions.errors import DriverError
from sessions.testing import Harness, new_key
from sessions.testing.servers import ServerProcess
from sessions_sql.driver import SQLDriver
from sqlalchemy import create_engine, event
from sqlalchemy.pool import NullPool

from .conftest import Database, PostgresServer


@pytest.fixture
def restartable(own_postgres: PostgresServer) -> Iterator[Database]:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{own_postgres.port}/postgres"
    engine = create_engine(url, poolclass=NullPool)
    db = Database(url, engine)
    db.table()
    yield db
    own_postgres.start()
    engine.dispose()


def test_sync_restart_then_next_request_works(
    own_postgres: PostgresServer, restartable: Database
) -> None:
    h = Harness(SQLDriver, {"url": restartable.url}, age=600)
    key = new_key()
    h.call("write", key, {"a": 1})
    assert h.call("read", key) == {"a": 1}

    own_postgres.stop()
    with pytest.raises(DriverError) as caught:
        h.call("read", key)
    message = str(caught.value)
    assert "'under_test' failed to read" in message
    assert f"127.0.0.1:{own_postgres.port}" in message
    assert isinstance(caught.value.__cause__, Exception)

    own_postgres.start()
    assert h.call("read", key) == {"a": 1}

    # A restart between two requests: the pooled connections are dead, and
    # the request still works (the dead connection is replaced and retried).
    disconnects: list[bool] = []
    event.listen(h.driver.engine, "handle_error", lambda ctx: disconnects.append(ctx.is_disconnect))
    own_postgres.restart()
    h.call("write", key, {"a": 2})
    assert disconnects == [True]
    assert h.call("read", key) == {"a": 2}
    h.manager.close()


def test_async_restart_then_next_request_works(
    own_postgres: PostgresServer, restartable: Database
) -> None:
    async def main() -> None:
        h = Harness(SQLDriver, {"url": restartable.url}, age=600)
        try:
            key = new_key()
            await h.acall("write", key, {"a": 1})
            own_postgres.stop()
            with pytest.raises(DriverError, match="'under_test' failed to write"):
                await h.acall("write", key, {"a": 2})
            own_postgres.start()
            assert await h.acall("read", key) == {"a": 1}
            own_postgres.restart()
            assert await h.acall("read", key) == {"a": 1}
        finally:
            await h.manager.aclose()

    anyio.run(main)


@pytest.fixture
def restartable_mariadb(own_mariadb: ServerProcess) -> Iterator[Database]:
    import pymysql

    with pymysql.connect(host="127.0.0.1", port=own_mariadb.port, user="root") as admin:
        admin.cursor().execute("CREATE DATABASE IF NOT EXISTS sessions_test")
    url = f"mysql+pymysql://root@127.0.0.1:{own_mariadb.port}/sessions_test"
    engine = create_engine(url, poolclass=NullPool)
    db = Database(url, engine)
    db.table()
    yield db
    own_mariadb.start()
    engine.dispose()


def test_mariadb_restart_sync_and_async(
    own_mariadb: ServerProcess, restartable_mariadb: Database
) -> None:
    url = restartable_mariadb.url
    h = Harness(SQLDriver, {"url": url}, age=600)
    key = new_key()
    h.call("write", key, {"a": 1})
    own_mariadb.stop()
    with pytest.raises(DriverError, match="'under_test' failed to read at mysql"):
        h.call("read", key)
    own_mariadb.start()
    assert h.call("read", key) == {"a": 1}
    own_mariadb.restart()
    assert h.call("read", key) == {"a": 1}
    h.manager.close()

    async def main() -> None:
        h = Harness(SQLDriver, {"url": url}, age=600)
        try:
            assert await h.acall("read", key) == {"a": 1}
            own_mariadb.stop()
            with pytest.raises(DriverError, match="'under_test' failed to write"):
                await h.acall("write", key, {"a": 2})
            own_mariadb.start()
            await h.acall("write", key, {"a": 3})
            own_mariadb.restart()
            assert await h.acall("read", key) == {"a": 3}
        finally:
            await h.manager.aclose()

    anyio.run(main)


def test_dropped_connections_are_replaced(postgres_db: Database) -> None:
    postgres_db.table()
    h = Harness(SQLDriver, {"url": postgres_db.url}, age=600)
    key = new_key()
    h.call("write", key, {"a": 1})
    database = postgres_db.engine.url.database
    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
    ) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchone()[0]
    assert killed >= 1
    assert h.call("read", key) == {"a": 1}
    h.manager.close()


def test_database_down_at_the_first_request(own_postgres: PostgresServer) -> None:
    # Nothing listens there yet: table creation fails with a clear error, and
    # once the server is up the next request creates the table and works.
    url = f"postgresql+psycopg://postgres@127.0.0.1:{own_postgres.port}/postgres"
    h = Harness(SQLDriver, {"url": url, "create_table": True, "table": "late"}, age=600)
    own_postgres.stop()
    try:
        with pytest.raises(DriverError, match="failed to create the table"):
            h.call("read", new_key())
    finally:
        own_postgres.start()
    key = new_key()
    h.call("write", key, {"a": 1})
    assert h.call("read", key) == {"a": 1}
    h.manager.close()
