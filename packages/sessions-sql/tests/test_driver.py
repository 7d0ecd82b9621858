"""The sql driver's own behaviour: options, expiry, decoding, gc, engines, integrations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from sessions import (
    ConfigError,
    DriverError,
    SessionConfig,
    SessionManager,
    UnsupportedEventLoopError,
)
from sessions.codec import encode
from sessions.driver import DriverConfig, flavours_of
from sessions.testing import Harness, new_key
from sessions_sql.driver import AsyncSQLDriver, SQLDriver
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

from .conftest import SECRET, Database, StatementLog


def make_driver(options: dict[str, Any], age: int = 600, **extra: Any) -> Any:
    config = SessionConfig(secret=SECRET, driver="sql", age=age)
    return SQLDriver(DriverConfig("sql", {**_defaults(), **options}, age, config, **extra))


def _defaults() -> dict[str, Any]:
    return {opt.name: opt.default for opt in SQLDriver.options}


# -- configuration -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field", "hint"),
    [
        ({}, "drivers.sql.url", "exactly one of url"),
        ({"url": "sqlite:///x.db", "engine": object()}, "drivers.sql.url", "exactly one of url"),
        ({"url": "not a url"}, "drivers.sql.url", "SQLAlchemy database URL"),
        ({"url": "oracle://scott@127.0.0.1/db"}, "drivers.sql.url", "sqlite, postgresql, mysql"),
        ({"url": "sqlite://"}, "drivers.sql.url", "memory driver"),
        ({"url": "sqlite:///:memory:"}, "drivers.sql.url", "memory driver"),
        ({"engine": "sqlite:///x.db"}, "drivers.sql.engine", "Engine or"),
        ({"url": "sqlite:///x.db", "touch_interval": -1}, "drivers.sql.touch_interval", ">= 0"),
        ({"url": "sqlite:///x.db", "gc_probability": 2}, "drivers.sql.gc_probability", "0 to 1"),
        ({"url": "sqlite:///x.db", "gc_batch_size": 0}, "drivers.sql.gc_batch_size", ">= 1"),
        ({"url": "sqlite:///x.db", "engine_options": 3}, "drivers.sql.engine_options", "mapping"),
        (
            {"engine": create_engine("sqlite:///x.db"), "engine_options": {"echo": True}},
            "drivers.sql.engine_options",
            "configure that engine instead",
        ),
    ],
)
def test_bad_options_fail_at_startup_naming_the_option(
    options: dict[str, Any], field: str, hint: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        make_driver(options)
    assert caught.value.field == field
    assert hint in str(caught.value)


def test_options_from_the_environment_are_coerced(sqlite_db: Database) -> None:
    config = SessionConfig.from_env(
        {
            "SESSION_SECRET": SECRET,
            "SESSION_DRIVER": "sql",
            "SESSION_SQL_URL": sqlite_db.url,
            "SESSION_SQL_TOUCH_INTERVAL": "5",
            "SESSION_SQL_CREATE_TABLE": "yes",
            "SESSION_SQL_TABLE": "web_sessions",
        }
    )
    manager = SessionManager(config, drivers={"sql": SQLDriver})
    driver = manager.driver
    assert driver.table.name == "web_sessions"
    key = new_key()
    driver.write(key, {"a": 1})
    assert sqlite_db.row(key, table="web_sessions") is not None
    manager.close()


def test_unknown_option_lists_the_valid_ones() -> None:
    config = SessionConfig(secret=SECRET, driver="sql", drivers={"sql": {"uri": "x"}})
    manager = SessionManager(config, drivers={"sql": SQLDriver})
    with pytest.raises(ConfigError, match="valid options: create_table, engine, engine_options"):
        manager.driver


def test_describe_hides_the_password() -> None:
    driver = make_driver({"url": "postgresql+psycopg://app:hunter2@127.0.0.1:1/db"})
    assert "hunter2" not in driver.describe()
    assert "127.0.0.1:1/db" in driver.describe()
    assert "sessions" in driver.describe()


def test_create_table_defaults_on_for_sqlite_only(
    sqlite_db: Database, postgres_db: Database
) -> None:
    lite = make_driver({"url": sqlite_db.url, "table": "made_here"})
    lite.write(new_key(), {"a": 1})
    assert sqlite_db.count("made_here") == 1
    lite.close()
    pg = make_driver({"url": postgres_db.url, "table": "not_made_here"})
    with pytest.raises(DriverError, match="failed to write"):
        pg.write(new_key(), {"a": 1})
    pg.close()


def test_missing_table_error_says_how_to_create_it(any_db: Database) -> None:
    driver = make_driver({"url": any_db.url, "table": "absent", "create_table": False})
    for operation, call in (
        ("read", lambda: driver.read(new_key())),
        ("write", lambda: driver.write(new_key(), {"a": 1})),
    ):
        with pytest.raises(DriverError) as caught:
            call()
        message = str(caught.value)
        assert f"failed to {operation}" in message
        assert "TableMissingError: table 'absent' does not exist" in message
        assert "sessions sql ddl" in message
        assert "create_table=true" in message

    async def main() -> None:
        with pytest.raises(DriverError, match="table 'absent' does not exist"):
            await driver.aread(new_key())
        await driver.aclose()

    anyio.run(main)


def test_schema_option_places_the_table(postgres_db: Database) -> None:
    with postgres_db.engine.begin() as conn:
        conn.execute(text("CREATE SCHEMA IF NOT EXISTS web"))
    driver = make_driver({"url": postgres_db.url, "schema": "web", "create_table": True})
    key = new_key()
    driver.write(key, {"a": 1})
    with postgres_db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM web.sessions")).scalar() == 1
    assert "web.sessions" in driver.describe()
    driver.close()


def test_plugin_registers_the_sql_driver(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sessions.plugins import reset_plugins

    monkeypatch.delenv("SESSIONS_PLUGINS", raising=False)
    monkeypatch.delenv("SESSIONS_DISABLED_PLUGINS", raising=False)
    reset_plugins()
    try:
        config = SessionConfig(secret=SECRET, driver="sql", drivers={"sql": {"url": sqlite_db.url}})
        manager = SessionManager(config)
        assert type(manager.driver) is SQLDriver
        assert manager.flavours.label == "sync+async"
        assert manager.has_gc
        manager.close()
    finally:
        reset_plugins()


# -- expiry, decoding, keys --------------------------------------------------------------


def test_expired_rows_read_as_missing_and_are_not_revived(any_db: Database) -> None:
    any_db.table()
    driver = make_driver({"url": any_db.url})
    key = new_key()
    any_db.put_raw(key, encode({"a": 1}), expires_in=-1)
    assert driver.read(key) is None
    driver.touch(key)
    assert driver.read(key) is None
    driver.close()


def test_expiry_ignores_the_connection_time_zone(any_db: Database) -> None:
    any_db.table()
    setting = {
        "postgresql": "SET TIME ZONE 'Pacific/Kiritimati'",
        "mysql": "SET time_zone = '+13:00'",
        "sqlite": None,
    }[any_db.backend]
    options: dict[str, Any] = {"url": any_db.url}
    if setting is not None:
        engine = create_engine(any_db.url)

        from sqlalchemy import event

        @event.listens_for(engine, "connect")
        def _zone(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(setting)
            cursor.close()
            if any_db.backend == "postgresql":
                dbapi_connection.commit()

        options = {"engine": engine}
    driver = make_driver(options, age=3)
    key = new_key()
    driver.write(key, {"a": 1})
    # Read through a connection 13-14 hours off UTC: neither expired in the
    # past nor kept for half a day.
    assert driver.read(key) == {"a": 1}
    left = any_db.row(key).expires_at - datetime.now(UTC)
    assert timedelta(seconds=2) < left <= timedelta(seconds=3)
    driver.close()


def test_undecodable_row_reads_none_and_is_reported(any_db: Database) -> None:
    any_db.table()
    reports: list[tuple[str, str]] = []
    driver = make_driver(
        {"url": any_db.url},
        notify_decode_failed=lambda source, reason: reports.append((source, reason)),
    )
    key = new_key()
    any_db.put_raw(key, b"\xff\xfe garbage")
    assert driver.read(key) is None
    assert reports
    assert reports[0][0] == "store"
    assert key in reports[0][1]
    driver.close()


def test_keys_that_are_not_storage_keys_are_refused(sqlite_db: Database) -> None:
    driver = make_driver({"url": sqlite_db.url})
    assert driver.read("../../etc/passwd") is None
    with pytest.raises(ValueError, match="43 base64url characters"):
        driver.write("short", {"a": 1})
    with pytest.raises(ValueError, match="cannot destroy"):
        driver.destroy("x" * 44)
    driver.close()


def test_keys_differing_only_in_case_are_distinct(any_db: Database) -> None:
    any_db.table()
    driver = make_driver({"url": any_db.url})
    lower = "a" * 43
    upper = "A" * 43
    driver.write(lower, {"who": "lower"})
    driver.write(upper, {"who": "upper"})
    assert driver.read(lower) == {"who": "lower"}
    assert driver.read(upper) == {"who": "upper"}
    driver.destroy(lower)
    driver.destroy(upper)
    driver.close()


# -- gc ----------------------------------------------------------------------------------


def test_gc_deletes_expired_rows_in_batches(any_db: Database) -> None:
    table = f"gc_{any_db.backend}"
    any_db.table(table)
    driver = make_driver({"url": any_db.url, "table": table, "gc_batch_size": 10})
    expired = [new_key() for _ in range(25)]
    live = [new_key() for _ in range(3)]
    for key in expired:
        any_db.put_raw(key, b"{}", expires_in=-5, table=table)
    for key in live:
        any_db.put_raw(key, encode({"live": True}), table=table)
    log = StatementLog(driver.engine)
    seen: list[int] = []
    result = driver.gc(progress=lambda done, total: seen.append(done))
    assert result.removed == 25
    assert seen == [10, 20, 25]
    assert [s.split()[0].upper() for s in log.take()] == ["DELETE"] * 3
    assert any_db.count(table) == 3
    assert all(driver.read(key) == {"live": True} for key in live)
    assert driver.gc().removed == 0
    driver.close()


def test_manager_gc_runs_the_driver_gc(sqlite_db: Database) -> None:
    sqlite_db.table()
    h = Harness(SQLDriver, {"url": sqlite_db.url}, age=60)
    sqlite_db.put_raw(new_key(), b"{}", expires_in=-1)
    assert h.manager.gc().removed == 1


@pytest.mark.parametrize(("probability", "left"), [(1.0, 0), (0.0, 1)])
def test_probabilistic_gc_at_write(sqlite_db: Database, probability: float, left: int) -> None:
    sqlite_db.table()
    driver = make_driver({"url": sqlite_db.url, "gc_probability": probability})
    stale = new_key()
    sqlite_db.put_raw(stale, b"{}", expires_in=-1)
    driver.write(new_key(), {"a": 1})
    assert sqlite_db.count() == 1 + left
    driver.close()


def test_async_gc_and_probabilistic_gc(postgres_db: Database) -> None:
    table = "gc_async"
    postgres_db.table(table)
    for _ in range(7):
        postgres_db.put_raw(new_key(), b"{}", expires_in=-1, table=table)

    async def main() -> None:
        driver = make_driver(
            {"url": postgres_db.url, "table": table, "gc_batch_size": 3, "gc_probability": 1.0}
        )
        result = await driver.agc()
        assert result.removed == 7
        postgres_db.put_raw(new_key(), b"{}", expires_in=-1, table=table)
        await driver.awrite(new_key(), {"a": 1})
        assert postgres_db.count(table) == 1
        await driver.aclose()

    anyio.run(main)


# -- given engines ----------------------------------------------------------------------


def test_given_sync_engine_serves_both_flavours(postgres_db: Database) -> None:
    postgres_db.table()
    engine = create_engine(postgres_db.url)
    driver = make_driver({"engine": engine})
    key = new_key()
    driver.write(key, {"a": 1})
    assert driver.read(key) == {"a": 1}

    async def main() -> None:
        # No async DBAPI was given: the async flavour runs the sync one in a thread.
        assert await driver.aread(key) == {"a": 1}
        await driver.adestroy(key)

    anyio.run(main)
    assert driver.read(key) is None
    driver.close()
    with engine.connect() as conn:  # a given engine is left open
        assert conn.execute(text("SELECT 1")).scalar() == 1
    engine.dispose()


def test_given_async_engine_makes_an_async_only_driver(postgres_db: Database) -> None:
    postgres_db.table()
    url = postgres_db.url.replace("+psycopg", "+asyncpg")

    async def main() -> None:
        engine = create_async_engine(url)
        driver = make_driver({"engine": engine})
        assert type(driver) is AsyncSQLDriver
        assert flavours_of(type(driver)).label == "async"
        key = new_key()
        await driver.awrite(key, {"a": 1})
        assert await driver.aread(key) == {"a": 1}
        await driver.aclose()
        await engine.dispose()

    anyio.run(main)


def test_wsgi_app_with_an_async_engine_fails_at_startup(postgres_db: Database) -> None:
    from sessions.wsgi import SessionMiddleware

    engine = create_async_engine(postgres_db.url.replace("+psycopg", "+asyncpg"))
    config = SessionConfig(secret=SECRET, driver="sql", drivers={"sql": {"engine": engine}})
    manager = SessionManager(config, autoload_plugins=False, drivers={"sql": SQLDriver})
    with pytest.raises(ConfigError, match="async-only"):
        SessionMiddleware(lambda environ, start: [b""], manager)


# -- through the integrations -----------------------------------------------------------


def _counter_app(manager: SessionManager) -> Any:
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def count(request: Request) -> PlainTextResponse:
        session = request.session
        session["n"] = session.get("n", 0) + 1
        return PlainTextResponse(str(session["n"]))

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        yield
        # Async engines belong to the loop that made them: dispose of them there.
        await manager.aclose()

    return Starlette(routes=[Route("/", count)], lifespan=lifespan)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_asgi_app_end_to_end(any_db: Database, backend: str) -> None:
    """On trio, SQLAlchemy's asyncio engines cannot run: core uses the sync flavour
    in worker threads instead, with the same result."""
    from sessions.asgi import SessionMiddleware
    from starlette.testclient import TestClient

    any_db.table()
    config = SessionConfig(secret=SECRET, driver="sql", drivers={"sql": {"url": any_db.url}})
    manager = SessionManager(config, autoload_plugins=False, drivers={"sql": SQLDriver})
    app = SessionMiddleware(_counter_app(manager), manager)
    with TestClient(app, backend=backend) as client:
        assert [client.get("/").text for _ in range(3)] == ["1", "2", "3"]


def test_asgi_app_on_trio_with_an_async_engine_fails_clearly(postgres_db: Database) -> None:
    from sessions.asgi import SessionMiddleware
    from starlette.testclient import TestClient

    postgres_db.table()
    engine = create_async_engine(postgres_db.url.replace("+psycopg", "+asyncpg"))
    config = SessionConfig(secret=SECRET, driver="sql", drivers={"sql": {"engine": engine}})
    manager = SessionManager(config, autoload_plugins=False, drivers={"sql": SQLDriver})
    app = SessionMiddleware(_counter_app(manager), manager)
    with (
        TestClient(app, backend="trio") as client,
        pytest.raises(UnsupportedEventLoopError, match="needs asyncio's event loop"),
    ):
        client.get("/")


def test_wsgi_app_end_to_end(any_db: Database) -> None:
    from sessions.wsgi import ENVIRON_KEY, SessionMiddleware
    from werkzeug.test import Client

    any_db.table()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = environ[ENVIRON_KEY]
        session.put("n", session.get("n", 0) + 1)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(session.get("n")).encode()]

    config = SessionConfig(secret=SECRET, driver="sql", drivers={"sql": {"url": any_db.url}})
    manager = SessionManager(config, autoload_plugins=False, drivers={"sql": SQLDriver})
    client = Client(SessionMiddleware(app, manager))
    assert [client.get("/").get_data(as_text=True) for _ in range(3)] == ["1", "2", "3"]
    manager.close()


@pytest.mark.parametrize(
    ("given", "sync", "asynchronous"),
    [
        ("sqlite:///a.db", "sqlite+pysqlite:///a.db", "sqlite+aiosqlite:///a.db"),
        ("sqlite+aiosqlite:///a.db", "sqlite+pysqlite:///a.db", "sqlite+aiosqlite:///a.db"),
        ("postgresql://u@h/d", "postgresql+psycopg://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
        ("postgresql+asyncpg://u@h/d", "postgresql+psycopg://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("mysql://u@h/d", "mysql+pymysql://u@h/d", "mysql+aiomysql://u@h/d"),
        ("mariadb+pymysql://u@h/d", "mariadb+pymysql://u@h/d", "mariadb+aiomysql://u@h/d"),
        ("mysql+aiomysql://u@h/d", "mysql+pymysql://u@h/d", "mysql+aiomysql://u@h/d"),
    ],
)
def test_one_url_gives_both_flavours(given: str, sync: str, asynchronous: str) -> None:
    from sessions_sql import urls

    url = urls.parse(given)
    assert urls.sync_url(url).render_as_string() == sync
    assert urls.async_url(url).render_as_string() == asynchronous
