"""The ``sql`` driver: sessions in a table of SQLite, PostgreSQL or MariaDB/MySQL.

One configured URL (or engine) serves both flavours: WSGI apps call the sync
methods on a sync engine, ASGI apps await the async methods on an async engine
made from the same URL, one per event loop, so no request waits on a thread.
Each operation is one autocommit statement; a connection the server dropped is
replaced and the operation retried once, so a database restart costs at most
the requests made while it is down. A database that stops answering costs an
operation at most ``timeout`` seconds (see :mod:`sessions_sql.limits`).

Capabilities: ``touches_on_read``, ``gc``, versioned (a compare-and-set write
against the row's ``version``, so overlapping requests merge instead of
overwriting each other) and tagging (an indexed ``tag`` column: one query lists
or destroys the sessions of a tag).
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
import warnings
import weakref
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

import anyio
import anyio.to_thread
from sessions.codec import decode, encode
from sessions.driver import (
    Driver,
    DriverConfig,
    GcProgress,
    GcResult,
    Option,
    Record,
    StoredSession,
)
from sessions.errors import ConfigError, DecodeError, DriverError
from sessions.keys import is_storage_key
from sessions.record import store_age, tag_of
from sqlalchemy import Table, create_engine, event, inspect
from sqlalchemy.engine import URL, Connection, CursorResult, Dialect, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from . import urls
from .compat import repair_aiomysql
from .limits import (
    DEFAULT_TIMEOUT,
    OperationTimeout,
    Watchdog,
    bounded,
    connect_args,
    connect_within,
    pool_options,
    set_deadline,
    timed_out_connecting,
)
from .schema import DEFAULT_TABLE, TAG_LENGTH, make_table
from .statements import MYSQL_FAMILY, Statements
from .upgrade import TableOutdatedError, add_columns, missing_columns, outdated_message

__all__ = ["AsyncSQLDriver", "SQLDriver", "TableMissingError", "TableOutdatedError"]

log = logging.getLogger("sessions_sql")
T = TypeVar("T")

#: A session never loses more than this share of its idle lifetime to a skipped refresh.
MAX_TOUCH_SHARE = 0.1

OPTIONS: tuple[Option, ...] = (
    Option(
        "url",
        str,
        None,
        "SQLAlchemy database URL (required unless engine is given): sqlite:///sessions.db, "
        "postgresql+psycopg://app@host/db, "
        "mysql+pymysql://app@host/db (async apps get the async DBAPI of the same database)",
    ),
    Option("engine", object, None, "an existing sqlalchemy Engine or AsyncEngine, instead of url"),
    Option("table", str, DEFAULT_TABLE, "name of the sessions table"),
    Option("schema", str, None, "schema (PostgreSQL) or database (MariaDB/MySQL) of the table"),
    Option(
        "create_table",
        bool,
        None,
        "create the table (and index) if missing on first use; default: on for SQLite, "
        "off for server databases, whose schema belongs to your migrations",
    ),
    Option(
        "touch_interval",
        float,
        None,
        "deprecated: set SessionConfig(touch_interval=...) (SESSION_TOUCH_INTERVAL) instead. "
        "Seconds between expiry refreshes of an unchanged session (at most 10% of the age); "
        "unset: the session config's touch_interval, or 60 when that is 0",
    ),
    Option("gc_batch_size", int, 1000, "rows deleted per statement by gc"),
    Option(
        "gc_probability",
        float,
        0.0,
        "chance (0..1) that a write also deletes one batch of expired rows; 0 turns it off",
    ),
    Option(
        "sqlite_wal",
        bool,
        True,
        "switch a SQLite file to WAL journaling, so reads do not wait for writes "
        "(turn off on network filesystems)",
    ),
    Option(
        "timeout",
        float,
        DEFAULT_TIMEOUT,
        "seconds one operation may take: connecting, waiting for a pooled connection "
        "and the statement; past it the request fails with a DriverError",
    ),
    Option(
        "engine_options",
        object,
        None,
        "extra keyword arguments for create_engine (they override the driver's pool "
        "defaults: pool_size=20, max_overflow=0, pool_recycle=1800)",
    ),
)


class _Store(Driver):
    """What both flavours share: options, the table, statements, errors, decoding."""

    options: ClassVar[tuple[Option, ...]] = OPTIONS
    #: True in every configuration but MariaDB/MySQL with touch_interval=0 (set per instance).
    touches_on_read: ClassVar[bool] = True

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        opts = config.options
        self._engine_given: Engine | None = None
        self._aengine_given: AsyncEngine | None = None
        self._url: URL | None = None
        self._sync_dbapi = self._async_dbapi = True
        engine = opts.get("engine")
        if (opts.get("url") is None) == (engine is None):
            raise ConfigError(
                f"drivers.{config.name}.url",
                opts.get("url"),
                "exactly one of url (a database URL) or engine (an Engine or AsyncEngine)",
            )
        if engine is not None:
            if isinstance(engine, AsyncEngine):
                self._aengine_given = engine.execution_options(isolation_level="AUTOCOMMIT")
                dialect = engine.dialect
            elif isinstance(engine, Engine):
                self._engine_given = engine.execution_options(isolation_level="AUTOCOMMIT")
                dialect = engine.dialect
            else:
                raise ConfigError(
                    f"drivers.{config.name}.engine",
                    type(engine).__name__,
                    "a sqlalchemy.engine.Engine or sqlalchemy.ext.asyncio.AsyncEngine",
                )
            self._backend = dialect.name
            if self._backend not in urls.SUPPORTED:
                raise ConfigError(
                    f"drivers.{config.name}.engine",
                    dialect.name,
                    f"an engine for one of {', '.join(urls.SUPPORTED)}",
                )
            self._address = engine.url.render_as_string(hide_password=True)
        else:
            self._url = urls.parse(opts["url"], f"drivers.{config.name}.url")
            self._backend = urls.backend(self._url)
            if self._backend == "sqlite" and self._url.database in (None, "", ":memory:"):
                raise ConfigError(
                    f"drivers.{config.name}.url",
                    str(self._url),
                    "a SQLite database file (sqlite:///path/sessions.db); an in-memory SQLite "
                    "database is private to one connection: use the memory driver instead",
                )
            self._address = self._url.render_as_string(hide_password=True)
            self._check_dbapis(config.name, self._url)
        self.table: Table = make_table(
            name=opts.get("table") or DEFAULT_TABLE, schema=opts.get("schema")
        )
        create = opts.get("create_table")
        self._create = self._backend == "sqlite" if create is None else bool(create)
        self._age = timedelta(seconds=config.age)
        self._interval = timedelta(
            seconds=min(_touch_interval(config), config.age * MAX_TOUCH_SHARE)
        )
        batch = opts.get("gc_batch_size")
        self._gc_batch = 1000 if batch is None else int(batch)
        if self._gc_batch < 1:
            raise ConfigError(
                f"drivers.{config.name}.gc_batch_size", self._gc_batch, "an integer >= 1"
            )
        self._gc_probability = _non_negative(
            config.name, "gc_probability", opts.get("gc_probability", 0.0)
        )
        if self._gc_probability > 1:
            raise ConfigError(
                f"drivers.{config.name}.gc_probability",
                self._gc_probability,
                "a number from 0 to 1",
            )
        self._wal = bool(opts.get("sqlite_wal", True))
        timeout = opts.get("timeout", DEFAULT_TIMEOUT)
        self._timeout = _non_negative(
            config.name, "timeout", DEFAULT_TIMEOUT if timeout is None else timeout
        )
        if not self._timeout:
            raise ConfigError(f"drivers.{config.name}.timeout", timeout, "a number of seconds > 0")
        extra = opts.get("engine_options") or {}
        if not isinstance(extra, Mapping):
            raise ConfigError(
                f"drivers.{config.name}.engine_options",
                extra,
                "a mapping of create_engine arguments",
            )
        if extra and engine is not None:
            raise ConfigError(
                f"drivers.{config.name}.engine_options",
                dict(extra),
                "nothing when an engine is given (configure that engine instead); "
                "engine_options apply to the engines the driver makes from url",
            )
        self._engine_options: dict[str, Any] = dict(extra)
        # Without UPDATE ... RETURNING and with refreshes on every request, the
        # read cannot refresh for free: let core touch unchanged sessions instead.
        # Per instance: the capability depends on the dialect and touch_interval.
        touches = not (self._backend in MYSQL_FAMILY and not self._interval)
        self.touches_on_read = touches  # type: ignore[misc]
        self._statements: dict[str, Statements] = {}
        # The table's columns are checked once, by the first engine started.
        self._table_checked = False

    def _check_dbapis(self, name: str, url: URL) -> None:
        """Fail at startup when neither DBAPI of the URL's database is installed;
        note which flavour must make do without its own."""
        sync, async_ = urls.sync_url(url), urls.async_url(url)
        self._sync_dbapi = urls.dbapi_installed(sync)
        self._async_dbapi = urls.dbapi_installed(async_)
        if not (self._sync_dbapi or self._async_dbapi):
            modules = sorted({urls.dbapi_module(sync), urls.dbapi_module(async_)})
            raise ConfigError(
                f"drivers.{name}.url",
                self._address,
                f"a database whose DBAPI is installed: {' and '.join(modules)} are missing; "
                f"{urls.install_hint(url)} installs them",
            )

    def describe(self) -> str:
        """The database (password hidden) and table."""
        return f"{self._address} table {self.table.fullname}"

    # -- shared helpers --------------------------------------------------------

    def _engine_kwargs(self, url: URL) -> dict[str, Any]:
        # One statement per operation, so each commits on its own: no BEGIN,
        # COMMIT or reset-on-return round trips.
        options = self._engine_options
        return {
            "isolation_level": "AUTOCOMMIT",
            "pool_reset_on_return": None,
            "skip_autocommit_rollback": True,
            **pool_options(options, self._timeout, self._backend),
            **options,
            "connect_args": {
                **connect_args(url, self._timeout),
                **(options.get("connect_args") or {}),
            },
        }

    def _statements_for(self, dialect: Dialect) -> Statements:
        found = self._statements.get(dialect.name)
        if found is None:
            found = Statements.build(self.table, dialect, self._gc_batch)
            self._statements[dialect.name] = found
        return found

    def _error(self, operation: str, exc: BaseException) -> DriverError:
        cause = exc
        if _is_missing_table(exc):
            cause = TableMissingError(
                f"table {self.table.fullname!r} does not exist: create it with your migrations "
                "(`sessions sql ddl` prints the DDL) or set the sql driver's create_table=true"
            )
            cause.__cause__ = exc
        elif _is_missing_column(exc):
            cause = TableOutdatedError(
                f"table {self.table.fullname!r} lacks a column this release of sessions-sql "
                "writes: `sessions sql ddl --upgrade` prints the ALTER TABLE statements "
                "(the sql driver's docs show the Alembic migration)"
            )
            cause.__cause__ = exc
        return DriverError(self.config.name, operation, self.describe(), cause)

    def _timed_out(self, operation: str, exc: BaseException | None = None) -> DriverError:
        cause = OperationTimeout(
            f"no answer from the database within timeout={self._timeout:g}s "
            "(the sql driver's timeout option)"
        )
        cause.__cause__ = exc
        error = DriverError(self.config.name, operation, self.describe(), cause)
        error.__cause__ = cause  # raise it with ``from error.__cause__``
        return error

    @property
    def _preparing(self) -> str:
        return "create the table" if self._create else "check the table"

    def _prepare_table(self, conn: Connection) -> None:
        """Create the table if configured; add or report columns an older release lacked.

        Runs once per driver, on the first engine's first connection. A missing
        table is left for the operation to report (it names how to create it).
        """
        if self._create:
            _create_table(conn, self.table)
        if self._table_checked:
            return
        try:
            conn.execute(self._statements_for(conn.dialect).probe)
        except DBAPIError as exc:
            if _is_missing_table(exc):
                return  # each operation reports it, saying how to create the table
            if exc.connection_invalidated:
                raise
            missing = missing_columns(conn, self.table)
            if not missing:
                raise
            if not self._create:
                cause = TableOutdatedError(outdated_message(self.table, conn.dialect, missing))
                raise DriverError(
                    self.config.name, "check the table", self.describe(), cause
                ) from exc
            log.warning(
                "adding column(s) %s to table %s (create_table is on)",
                ", ".join(column.name for column in missing),
                self.table.fullname,
            )
            add_columns(conn, self.table, missing)
        self._table_checked = True

    def _decode(self, session_id: str, data: Any) -> dict[str, Any] | None:
        try:
            return decode(data if isinstance(data, bytes | str) else bytes(data))
        except (DecodeError, TypeError) as exc:
            self.config.notify_decode_failed(
                "store", f"row {session_id} of {self.table.fullname} is not a session: {exc}"
            )
            return None

    def _key(self, session_id: str, operation: str) -> str:
        if not is_storage_key(session_id):
            raise ValueError(
                f"sql driver cannot {operation} {session_id!r}: session ids are storage keys "
                "(43 base64url characters, see sessions.keys.storage_key)"
            )
        return session_id

    def _read_params(self, session_id: str) -> dict[str, Any]:
        now = datetime.now(UTC)
        expires = now + self._age
        return {"k": session_id, "now": now, "exp": expires, "stale": expires - self._interval}

    def _write_params(self, session_id: str, values: dict[str, Any]) -> dict[str, Any]:
        """Parameters of every write: the payload, this record's own expiry, its tag."""
        now = datetime.now(UTC)
        tag = tag_of(values)
        if tag is not None and len(tag) > TAG_LENGTH:
            raise ValueError(
                f"sql driver cannot store session {session_id[:12]}...: its tag is "
                f"{len(tag)} characters long, and the tag column holds up to {TAG_LENGTH}"
            )
        return {
            "k": session_id,
            "d": encode(values) if values else b"",
            "now": now,
            "exp": now + timedelta(seconds=store_age(values, self.config.age)),
            "tag": tag,
        }

    def _versioned_params(
        self, session_id: str, values: dict[str, Any], version: int | None
    ) -> dict[str, Any]:
        if version is not None and (type(version) is not int or version < 0):
            raise ValueError(
                f"sql driver cannot compare-and-set with version {version!r}: "
                "versions are the integers read_versioned returns (or None to create)"
            )
        params = self._write_params(self._key(session_id, "write"), values)
        params["v"] = version
        return params

    def _record(self, session_id: str, row: Any) -> Record | None:
        if row is None:
            return None
        values = self._decode(session_id, row[0])
        return None if values is None else Record(values, int(row[-1]))

    def _stored(self, session_id: str, data: Any, expires_at: datetime) -> StoredSession | None:
        values = self._decode(session_id, data)
        if values is None:
            return None
        return StoredSession(session_id, values, expires_at.timestamp())

    def _tag_params(self, tag: str, keep: str | None = None) -> dict[str, Any]:
        if type(tag) is not str or not tag:
            raise ValueError(f"sql driver: a tag is a non-empty string, got {tag!r}")
        # No storage key is empty, so "" keeps nothing.
        return {"tag": tag, "now": datetime.now(UTC), "keep": keep or ""}

    def _touch_params(self, session_id: str) -> dict[str, Any]:
        now = datetime.now(UTC)
        return {"k": session_id, "now": now, "exp": now + self._age}

    def _gc_due(self) -> bool:
        return self._gc_probability > 0 and random.random() < self._gc_probability


class _SyncOps(_Store):
    """The sync flavour, on a sync engine."""

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        self._engine: Engine | None = self._engine_given
        self._engine_ready = False
        self._sync_lock = threading.Lock()
        self._watchdog = Watchdog(self._timeout)

    @property
    def engine(self) -> Engine:
        """The sync engine (created on first use when the driver was given a URL)."""
        if not self._engine_ready:
            with self._sync_lock:
                if not self._engine_ready:
                    self._engine = self._start_sync()
                    self._engine_ready = True
        assert self._engine is not None
        return self._engine

    def _start_sync(self) -> Engine:
        engine = self._engine
        if engine is None:
            if self._url is None:
                raise ConfigError(
                    f"drivers.{self.config.name}.engine",
                    "AsyncEngine",
                    "a sync Engine or a url for a sync (WSGI) application",
                )
            url = urls.sync_url(self._url)
            engine = create_engine(url, **self._engine_kwargs(url))
            if self._backend == "sqlite" and self._wal:
                event.listen(engine, "connect", _sqlite_wal)
            event.listen(engine, "do_connect", connect_within)
        if self._create or not self._table_checked:
            try:
                with engine.connect() as conn:
                    self._prepare_table(conn)
            except (SQLAlchemyError, DriverError) as exc:
                # The next request starts over with a new engine: free this one's pool.
                if engine is not self._engine_given:
                    engine.dispose()
                if isinstance(exc, DriverError):
                    raise
                raise self._error(self._preparing, exc) from exc
        return engine

    def _run(self, operation: str, body: Callable[[Connection, Statements], T]) -> T:
        engine = self.engine
        statements = self._statements_for(engine.dialect)
        deadline = time.monotonic() + self._timeout
        set_deadline(deadline, self._timeout)  # for connections made on the way
        try:
            for attempt in (1, 2):
                try:
                    with (
                        engine.connect() as conn,
                        self._watchdog.guard(conn.connection.dbapi_connection, deadline) as guard,
                    ):
                        try:
                            return body(conn, statements)
                        finally:
                            if guard.fired:  # cut, even if the reply won the race
                                conn.invalidate()
                except DBAPIError as exc:
                    if _late(deadline, self._timeout) or timed_out_connecting(exc.orig):
                        timed_out = self._timed_out(operation, exc)
                        raise timed_out from timed_out.__cause__
                    # The pool has discarded the dead connection: one retry on a new one.
                    if exc.connection_invalidated and attempt == 1:
                        continue
                    raise self._error(operation, exc) from exc
                except SQLAlchemyError as exc:
                    if _late(deadline, self._timeout):
                        timed_out = self._timed_out(operation, exc)
                        raise timed_out from timed_out.__cause__
                    raise self._error(operation, exc) from exc
        finally:
            set_deadline(None)
        raise AssertionError("unreachable")  # pragma: no cover

    def _read_row(self, session_id: str, touch: bool) -> Any:
        # One statement (two when the expiry is due for a refresh): data first, version last.
        params = self._read_params(session_id)

        def body(conn: Connection, s: Statements) -> Any:
            if not touch:
                return conn.execute(s.select, params).first()
            if s.read_refresh is not None and not self._interval:
                return conn.execute(s.read_refresh, params).first()
            row = conn.execute(s.select, params).first()
            if row is not None and row[1] and self.touches_on_read:
                conn.execute(s.touch, params)
            return row

        return self._run("read", body)

    def read(self, session_id: str, touch: bool = True) -> dict[str, Any] | None:
        """Values of a live session (refreshing its expiry when due), else None.

        ``touch=False`` never refreshes (core's ``touch_interval`` says none is due).
        """
        if not is_storage_key(session_id):
            return None
        row = self._read_row(session_id, touch)
        return None if row is None else self._decode(session_id, row[0])

    def read_versioned(self, session_id: str, touch: bool = True) -> Record | None:
        """Values and version of a live session, in the same statement as :meth:`read`."""
        if not is_storage_key(session_id):
            return None
        return self._record(session_id, self._read_row(session_id, touch))

    def write(self, session_id: str, values: dict[str, Any]) -> None:
        """Insert or replace the session (a new version), expiring its age from now."""
        params = self._write_params(self._key(session_id, "write"), values)
        self._run("write", lambda conn, s: conn.execute(s.upsert, params))
        self._after_write()

    def write_versioned(self, session_id: str, values: dict[str, Any], version: int | None) -> bool:
        """Compare-and-set: store (``{}``: delete) only if the live row is still at ``version``.

        ``version=None`` creates, unless a live row exists (an expired one is replaced).
        """
        params = self._versioned_params(session_id, values, version)
        attempts = 0

        def body(conn: Connection, s: Statements) -> bool:
            nonlocal attempts
            attempts += 1
            stored = _compare_and_set(conn, s, params)
            if not stored and attempts > 1:
                return _landed(conn.execute(s.current, params).first(), params)
            return stored

        stored = self._run("write", body)
        if values:
            self._after_write()
        return stored

    def _after_write(self) -> None:
        if self._gc_due():
            try:
                self._gc_once()
            except DriverError as exc:
                log.warning("probabilistic gc after a write failed: %s", exc)

    def peek(self, session_id: str) -> StoredSession | None:
        """A live session's values and expiry, without refreshing it."""
        if not is_storage_key(session_id):
            return None
        params = {"k": session_id, "now": datetime.now(UTC)}
        row = self._run("peek", lambda conn, s: conn.execute(s.peek, params).first())
        return None if row is None else self._stored(session_id, row[0], row[1])

    def tagged(self, tag: str) -> list[StoredSession]:
        """Every live session tagged ``tag``: one indexed ``SELECT``."""
        params = self._tag_params(tag)
        rows = self._run("list tagged", lambda conn, s: conn.execute(s.tagged, params).all())
        found = (self._stored(row[0], row[1], row[2]) for row in rows)
        return [stored for stored in found if stored is not None]

    def destroy_tagged(self, tag: str, keep: str | None = None) -> int:
        """Delete every live session tagged ``tag`` but ``keep``: one ``DELETE``; the count."""
        params = self._tag_params(tag, keep)
        return self._run(
            "destroy tagged", lambda conn, s: int(conn.execute(s.destroy_tagged, params).rowcount)
        )

    def destroy(self, session_id: str) -> None:
        """Delete the session; a missing one is not an error."""
        params = {"k": self._key(session_id, "destroy")}
        self._run("destroy", lambda conn, s: conn.execute(s.destroy, params))

    def touch(self, session_id: str) -> None:
        """Restart a live session's expiry; missing or expired ones stay gone."""
        params = self._touch_params(self._key(session_id, "touch"))
        self._run("touch", lambda conn, s: conn.execute(s.touch, params))

    def _gc_once(self) -> int:
        params = {"now": datetime.now(UTC)}
        return self._run("gc", lambda conn, s: conn.execute(s.gc_batch, params).rowcount)

    def gc(self, progress: GcProgress | None = None) -> GcResult:
        """Delete expired rows, ``gc_batch_size`` per statement, until none are left.

        ``scanned`` counts the rows deleted: the expiry index finds them without
        reading live rows.
        """
        started = time.monotonic()
        removed = 0
        while True:
            count = self._gc_once()
            removed += count
            if progress is not None:
                progress(removed, None)
            if count < self._gc_batch:
                break
        return GcResult(removed, removed, None, time.monotonic() - started)

    def close(self) -> None:
        """Dispose of the engine this driver created (a given engine stays open)."""
        if self._engine_ready and self._engine is not None and self._engine_given is None:
            self._engine.dispose()
        self._engine_ready = False
        self._engine = self._engine_given


class _AsyncOps(_Store):
    """The async flavour, on an async engine per event loop."""

    # SQLAlchemy's asyncio extension: on trio, core uses the sync flavour in threads.
    async_library: ClassVar[str | None] = "asyncio"

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        self._aengines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncEngine] = (
            weakref.WeakKeyDictionary()
        )
        self._astarting: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        # Given only a sync engine, or a URL whose async DBAPI is not installed,
        # there is no async DBAPI to use: the sync methods run in worker threads.
        self._offload = (self._url is None and self._aengine_given is None) or not (
            self._async_dbapi
        )
        if self._url is not None and not self._async_dbapi:
            log.warning(
                "sessions-sql: %s (the async DBAPI for %s) is not installed, so async "
                "requests run the sync DBAPI %s in worker threads; %s for native async I/O",
                urls.dbapi_module(urls.async_url(self._url)),
                self._address,
                urls.dbapi_module(urls.sync_url(self._url)),
                urls.install_hint(self._url),
            )

    async def _in_thread(self, operation: str, *args: Any) -> Any:
        # Only SQLDriver, which has the sync methods, ever offloads.
        return await anyio.to_thread.run_sync(getattr(self, operation), *args)

    async def aengine(self) -> AsyncEngine:
        """The async engine for the running event loop (created there on first use)."""
        loop = asyncio.get_running_loop()
        engine = self._aengines.get(loop)
        if engine is not None:
            return engine
        lock = self._astarting.setdefault(loop, asyncio.Lock())
        async with lock:
            engine = self._aengines.get(loop)
            if engine is None:
                engine = await self._start_async()
                self._aengines[loop] = engine
        return engine

    async def _start_async(self) -> AsyncEngine:
        engine = self._aengine_given
        if engine is not None and engine.dialect.driver == "aiomysql":
            repair_aiomysql()
        if engine is None:
            assert self._url is not None
            url = urls.async_url(self._url)
            if url.get_driver_name() == "aiomysql":
                repair_aiomysql()
            engine = create_async_engine(url, **self._engine_kwargs(url))
            if self._backend == "sqlite" and self._wal:
                event.listen(engine.sync_engine, "connect", _sqlite_wal)
        if self._create or not self._table_checked:
            try:
                async with engine.connect() as conn:
                    await conn.run_sync(self._prepare_table)
            except (SQLAlchemyError, DriverError) as exc:
                if engine is not self._aengine_given:
                    await engine.dispose()
                if isinstance(exc, DriverError):
                    raise
                raise self._error(self._preparing, exc) from exc
        return engine

    async def _arun(
        self, operation: str, body: Callable[[AsyncConnection, Statements], Awaitable[T]]
    ) -> T:
        try:
            return await bounded(self._aattempts(operation, body), self._timeout)
        except TimeoutError:
            timed_out = self._timed_out(operation)
            raise timed_out from timed_out.__cause__

    async def _aattempts(
        self, operation: str, body: Callable[[AsyncConnection, Statements], Awaitable[T]]
    ) -> T:
        engine = await self.aengine()
        statements = self._statements_for(engine.dialect)
        for attempt in (1, 2):
            try:
                async with engine.connect() as conn:
                    return await body(conn, statements)
            except DBAPIError as exc:
                if exc.connection_invalidated and attempt == 1:
                    continue
                raise self._error(operation, exc) from exc
            except SQLAlchemyError as exc:
                raise self._error(operation, exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def aread(self, session_id: str, touch: bool = True) -> dict[str, Any] | None:
        """Async :meth:`SQLDriver.read`."""
        if self._offload:
            result: dict[str, Any] | None = await self._in_thread("read", session_id, touch)
            return result
        if not is_storage_key(session_id):
            return None
        row = await self._aread_row(session_id, touch)
        return None if row is None else self._decode(session_id, row[0])

    async def _aread_row(self, session_id: str, touch: bool) -> Any:
        params = self._read_params(session_id)

        async def body(conn: AsyncConnection, s: Statements) -> Any:
            if not touch:
                return (await conn.execute(s.select, params)).first()
            if s.read_refresh is not None and not self._interval:
                return (await conn.execute(s.read_refresh, params)).first()
            row = (await conn.execute(s.select, params)).first()
            if row is not None and row[1] and self.touches_on_read:
                await conn.execute(s.touch, params)
            return row

        return await self._arun("read", body)

    async def aread_versioned(self, session_id: str, touch: bool = True) -> Record | None:
        """Async :meth:`SQLDriver.read_versioned`."""
        if self._offload:
            result: Record | None = await self._in_thread("read_versioned", session_id, touch)
            return result
        if not is_storage_key(session_id):
            return None
        return self._record(session_id, await self._aread_row(session_id, touch))

    async def awrite(self, session_id: str, values: dict[str, Any]) -> None:
        """Async :meth:`SQLDriver.write`."""
        if self._offload:
            await self._in_thread("write", session_id, values)
            return
        params = self._write_params(self._key(session_id, "write"), values)

        async def body(conn: AsyncConnection, s: Statements) -> None:
            await conn.execute(s.upsert, params)

        await self._arun("write", body)
        await self._aafter_write()

    async def awrite_versioned(
        self, session_id: str, values: dict[str, Any], version: int | None
    ) -> bool:
        """Async :meth:`SQLDriver.write_versioned`."""
        if self._offload:
            done: bool = await self._in_thread("write_versioned", session_id, values, version)
            return done
        params = self._versioned_params(session_id, values, version)
        attempts = 0

        async def body(conn: AsyncConnection, s: Statements) -> bool:
            nonlocal attempts
            attempts += 1
            stored = await conn.run_sync(_compare_and_set, s, params)
            if not stored and attempts > 1:
                return _landed((await conn.execute(s.current, params)).first(), params)
            return stored

        stored = await self._arun("write", body)
        if values:
            await self._aafter_write()
        return stored

    async def _aafter_write(self) -> None:
        if self._gc_due():
            try:
                await self._agc_once()
            except DriverError as exc:
                log.warning("probabilistic gc after a write failed: %s", exc)

    async def apeek(self, session_id: str) -> StoredSession | None:
        """Async :meth:`SQLDriver.peek`."""
        if self._offload:
            result: StoredSession | None = await self._in_thread("peek", session_id)
            return result
        if not is_storage_key(session_id):
            return None
        params = {"k": session_id, "now": datetime.now(UTC)}

        async def body(conn: AsyncConnection, s: Statements) -> Any:
            return (await conn.execute(s.peek, params)).first()

        row = await self._arun("peek", body)
        return None if row is None else self._stored(session_id, row[0], row[1])

    async def atagged(self, tag: str) -> list[StoredSession]:
        """Async :meth:`SQLDriver.tagged`."""
        if self._offload:
            result: list[StoredSession] = await self._in_thread("tagged", tag)
            return result
        params = self._tag_params(tag)

        async def body(conn: AsyncConnection, s: Statements) -> Any:
            return (await conn.execute(s.tagged, params)).all()

        rows = await self._arun("list tagged", body)
        found = (self._stored(row[0], row[1], row[2]) for row in rows)
        return [stored for stored in found if stored is not None]

    async def adestroy_tagged(self, tag: str, keep: str | None = None) -> int:
        """Async :meth:`SQLDriver.destroy_tagged`."""
        if self._offload:
            count: int = await self._in_thread("destroy_tagged", tag, keep)
            return count
        params = self._tag_params(tag, keep)

        async def body(conn: AsyncConnection, s: Statements) -> int:
            return int((await conn.execute(s.destroy_tagged, params)).rowcount)

        return await self._arun("destroy tagged", body)

    async def adestroy(self, session_id: str) -> None:
        """Async :meth:`SQLDriver.destroy`."""
        if self._offload:
            await self._in_thread("destroy", session_id)
            return
        params = {"k": self._key(session_id, "destroy")}

        async def body(conn: AsyncConnection, s: Statements) -> None:
            await conn.execute(s.destroy, params)

        await self._arun("destroy", body)

    async def atouch(self, session_id: str) -> None:
        """Async :meth:`SQLDriver.touch`."""
        if self._offload:
            await self._in_thread("touch", session_id)
            return
        params = self._touch_params(self._key(session_id, "touch"))

        async def body(conn: AsyncConnection, s: Statements) -> None:
            await conn.execute(s.touch, params)

        await self._arun("touch", body)

    async def _agc_once(self) -> int:
        params = {"now": datetime.now(UTC)}

        async def body(conn: AsyncConnection, s: Statements) -> int:
            return (await conn.execute(s.gc_batch, params)).rowcount

        return await self._arun("gc", body)

    async def agc(self, progress: GcProgress | None = None) -> GcResult:
        """Async :meth:`SQLDriver.gc`."""
        if self._offload:
            done: GcResult = await self._in_thread("gc", progress)
            return done
        started = time.monotonic()
        removed = 0
        while True:
            count = await self._agc_once()
            removed += count
            if progress is not None:
                progress(removed, None)
            if count < self._gc_batch:
                break
        return GcResult(removed, removed, None, time.monotonic() - started)

    async def aclose(self) -> None:
        """Dispose of the engines this driver created (a given engine stays open)."""
        engine = self._aengines.pop(asyncio.get_running_loop(), None)
        if engine is not None and self._aengine_given is None:
            await engine.dispose()
        # Engines of other, finished loops cannot be awaited from here; their
        # connections close when the loop's transports are collected.
        self._aengines.clear()
        close = getattr(self, "close", None)
        if close is not None:
            close()


class SQLDriver(_SyncOps, _AsyncOps):
    """Sessions in a SQL table, for sync and async applications.

    Built by core from the ``sql`` driver options. Given an ``AsyncEngine``
    (and no URL) it becomes an :class:`AsyncSQLDriver`, so a WSGI application
    fails at startup instead of at the first request.
    """

    def __new__(cls, config: DriverConfig) -> Any:
        if cls is SQLDriver and (
            isinstance(config.options.get("engine"), AsyncEngine) or _sync_dbapi_missing(config)
        ):
            driver = object.__new__(AsyncSQLDriver)
            driver.__init__(config)  # type: ignore[misc]
            return driver
        return object.__new__(cls)


def _sync_dbapi_missing(config: DriverConfig) -> bool:
    """True when the URL's sync DBAPI is missing but its async one is installed."""
    value = config.options.get("url")
    if value is None or config.options.get("engine") is not None:
        return False
    try:
        url = urls.parse(value)
    except ConfigError:
        return False  # __init__ reports it, naming the option
    return not urls.dbapi_installed(urls.sync_url(url)) and urls.dbapi_installed(
        urls.async_url(url)
    )


class AsyncSQLDriver(_AsyncOps):
    """The async-only ``sql`` driver: on a given ``AsyncEngine``, or on a URL whose
    sync DBAPI is not installed (a WSGI application then fails at startup)."""

    def gc(self, progress: GcProgress | None = None) -> GcResult:
        """Run :meth:`agc` in an event loop of its own (for the ``sessions gc`` command)."""
        return anyio.run(self.agc, progress)


class TableMissingError(Exception):
    """The sessions table is not in the database (the cause inside a DriverError)."""


# SQLSTATE of PostgreSQL, MariaDB/MySQL's error number, SQLite's message.
_UNDEFINED_TABLE = "42P01"
_NO_SUCH_TABLE = 1146


def _is_missing_table(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", None)
    if orig is None:
        return False
    if _UNDEFINED_TABLE in (getattr(orig, "sqlstate", None), getattr(orig, "pgcode", None)):
        return True
    args = getattr(orig, "args", ())
    if args and args[0] == _NO_SUCH_TABLE:
        return True
    return "no such table" in str(orig)


# SQLSTATE of PostgreSQL, MariaDB/MySQL's error number, SQLite's message.
_UNDEFINED_COLUMN = "42703"
_BAD_FIELD = 1054


def _is_missing_column(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", None)
    if orig is None:
        return False
    if _UNDEFINED_COLUMN in (getattr(orig, "sqlstate", None), getattr(orig, "pgcode", None)):
        return True
    args = getattr(orig, "args", ())
    if args and args[0] == _BAD_FIELD:
        return True
    return "no such column" in str(orig) or "has no column named" in str(orig)


# MariaDB/MySQL's duplicate-key error number.
_DUPLICATE_KEY = 1062


def _is_duplicate_key(exc: IntegrityError) -> bool:
    args: tuple[Any, ...] = getattr(exc.orig, "args", ())
    return bool(args) and args[0] == _DUPLICATE_KEY


def _applied(result: CursorResult[Any]) -> bool:
    # The conditional statements touch one row by primary key, or none.
    return result.rowcount == 1


def _compare_and_set(conn: Connection, s: Statements, params: dict[str, Any]) -> bool:
    """The conditional write (or delete) of ``write_versioned``; True if it applied."""
    version = params["v"]
    if not params["d"]:
        if version is None:
            return conn.execute(s.peek, params).first() is None
        return _applied(conn.execute(s.cas_delete, params))
    if version is not None:
        return _applied(conn.execute(s.cas_update, params))
    if s.replace_expired is None:
        return _applied(conn.execute(s.create, params))
    try:
        conn.execute(s.create, params)
        return True
    except IntegrityError as exc:
        if not _is_duplicate_key(exc):
            raise
    return _applied(conn.execute(s.replace_expired, params))


def _landed(row: Any, params: dict[str, Any]) -> bool:
    """After a retry, whether the first attempt's write is what is stored.

    The first attempt's connection died after sending the statement, which may
    have committed: the retry then finds its own version gone and must not
    report a conflict, or core would replay this request's increments twice.
    The row holding exactly this payload (and, for an update, the next
    version) means it landed; a removal landed if the row is gone.
    """
    if not params["d"]:
        return row is None
    if row is None or bytes(row[0]) != params["d"]:
        return False
    return params["v"] is None or int(row[1]) == params["v"] + 1


def _sqlite_wal(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()


def _create_table(conn: Connection, table: Table) -> None:
    try:
        table.create(conn, checkfirst=True)
    except SQLAlchemyError:
        # Another process created it between the check and the CREATE.
        if not inspect(conn).has_table(table.name, schema=table.schema):
            raise


def _late(deadline: float, timeout: float) -> bool:
    # A failure this close to the deadline is the timeout's doing (SQLite's busy
    # wait may end a hair early; the watchdog and PyMySQL fire on time or later).
    return time.monotonic() >= deadline - timeout * 0.02


def _non_negative(driver: str, name: str, value: Any) -> float:
    number = float(value if value is not None else 0)
    if number < 0:
        raise ConfigError(f"drivers.{driver}.{name}", value, "a number >= 0")
    return number


#: What the driver throttled its own refreshes to before core had ``touch_interval``.
LEGACY_TOUCH_INTERVAL = 60.0


def _touch_interval(config: DriverConfig) -> float:
    """Seconds between the driver's own expiry refreshes of a session that is only read.

    ``SessionConfig(touch_interval=...)`` now decides when a refresh is due (the
    read is told with ``touch=False``), so the driver refreshes whenever core
    asks. The driver's own option still works, with a DeprecationWarning; and
    with neither set, the refreshes stay throttled to once a minute, as before.
    """
    given = config.options.get("touch_interval")
    if given is not None:
        warnings.warn(
            f"drivers.{config.name}.touch_interval is deprecated: set "
            "SessionConfig(touch_interval=...) (SESSION_TOUCH_INTERVAL) instead, which "
            "also spares the cookie and the read; the driver option is honoured for now",
            DeprecationWarning,
            stacklevel=2,
        )
        return _non_negative(config.name, "touch_interval", given)
    if config.session.touch_interval_seconds:
        return 0.0
    return LEGACY_TOUCH_INTERVAL
