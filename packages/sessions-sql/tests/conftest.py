"""Real databases for the sql driver's tests.

* ``sqlite_db``: a fresh SQLite file per test;
* ``postgres_db`` / ``mariadb_db``: a fresh database with a random name on the
  machine's PostgreSQL (127.0.0.1:5432) and MariaDB (127.0.0.1:3306) services,
  one per test process, dropped at the end;
* ``own_postgres``: a private PostgreSQL server on a free port, started by the
  tests (initdb + postgres as the ``postgres`` OS user), which a test may stop
  and restart.

Where a database is missing, a local run skips; a run with ``CI=true`` fails.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sessions.testing.servers import ServerProcess
from sessions_sql.schema import make_table
from sqlalchemy import Engine, MetaData, Table, create_engine, event
from sqlalchemy.pool import NullPool

SECRET = "sql-driver-tests-secret-0123456789abcdef"


def unavailable(reason: str) -> None:
    """Skip locally, fail under CI: CI may never pass by skipping."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class Database:
    """One test database: its URL and a sync engine to look inside it."""

    url: str
    engine: Engine
    tables: dict[str, Table] = field(default_factory=dict)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def table(self, name: str = "sessions") -> Table:
        """The sessions table ``name``, created if missing."""
        if name not in self.tables:
            table = make_table(MetaData(), name)
            table.create(self.engine, checkfirst=True)
            self.tables[name] = table
        return self.tables[name]

    def put_raw(
        self,
        key: str,
        data: bytes,
        expires_in: float = 600.0,
        table: str = "sessions",
    ) -> None:
        """Store a row as-is, bypassing the driver."""
        t = self.table(table)
        expires = datetime.now(UTC) + timedelta(seconds=expires_in)
        with self.engine.begin() as conn:
            conn.execute(t.delete().where(t.c.key == key))
            conn.execute(t.insert().values(key=key, data=data, expires_at=expires))

    def row(self, key: str, table: str = "sessions") -> Any:
        """The stored row for ``key`` (or None)."""
        t = self.table(table)
        with self.engine.connect() as conn:
            return conn.execute(t.select().where(t.c.key == key)).first()

    def count(self, table: str = "sessions") -> int:
        t = self.table(table)
        with self.engine.connect() as conn:
            return len(conn.execute(t.select()).all())


class StatementLog:
    """The SQL statements an engine sent, captured with ``before_cursor_execute``."""

    def __init__(self, engine: Engine) -> None:
        self.statements: list[str] = []
        self._engine = engine
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(" ".join(statement.split()))

    def take(self) -> list[str]:
        """Statements since the last call, first word upper-cased for matching."""
        taken, self.statements = self.statements, []
        return taken

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._record)


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    engine = create_engine(url, poolclass=NullPool)
    yield Database(url, engine)
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_db() -> Iterator[Database]:
    import psycopg

    name = f"sessions_sql_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres",
            autocommit=True,
            connect_timeout=3,
        )
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL is not reachable on 127.0.0.1:5432: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        engine = create_engine(url, poolclass=NullPool)
        try:
            yield Database(url, engine)
        finally:
            engine.dispose()
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def mariadb_db() -> Iterator[Database]:
    import pymysql

    name = f"sessions_sql_{secrets.token_hex(6)}"
    try:
        admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", connect_timeout=3)
    except pymysql.err.OperationalError as exc:
        unavailable(f"MariaDB is not reachable on 127.0.0.1:3306: {exc}")
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}`")
        url = f"mysql+pymysql://root@127.0.0.1:3306/{name}"
        engine = create_engine(url, poolclass=NullPool)
        try:
            yield Database(url, engine)
        finally:
            engine.dispose()
            with admin.cursor() as cursor:
                cursor.execute(f"DROP DATABASE `{name}`")
    finally:
        admin.close()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def any_db(request: pytest.FixtureRequest) -> Database:
    """Each real database in turn."""
    fixture = {"sqlite": "sqlite_db", "postgresql": "postgres_db", "mariadb": "mariadb_db"}
    db: Database = request.getfixturevalue(fixture[request.param])
    return db


class PostgresServer(ServerProcess):
    """A private postgres; stopped with a fast shutdown (SIGINT), as an operator
    restarting it would, so open client connections are cut, not waited for."""

    def stop(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        super().stop()


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        unavailable(f"PostgreSQL's {name} is not installed under /usr/lib/postgresql/*/bin")
    return found[-1]


@pytest.fixture(scope="session")
def own_postgres() -> Iterator[PostgresServer]:
    initdb, postgres = _postgres_bin("initdb"), _postgres_bin("postgres")
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        unavailable("there is no 'postgres' OS user to run a private PostgreSQL server as")
    datadir = Path(tempfile.mkdtemp(prefix="sessions-sql-pgdata-"))
    os.chown(datadir, user.pw_uid, user.pw_gid)
    as_postgres = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
    subprocess.run(
        [*as_postgres, initdb, "-D", str(datadir), "-A", "trust", "-U", "postgres", "--no-sync"],
        check=True,
        capture_output=True,
    )

    def argv(port: int, workdir: Path) -> list[str]:
        return [
            *as_postgres,
            postgres,
            "-D",
            str(datadir),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "-k",
            str(datadir),
            "-c",
            "fsync=off",
        ]

    server = PostgresServer("postgres", argv, ready=_wait_accepting)
    try:
        server.start(timeout=30)
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(datadir, ignore_errors=True)


def _until_connected(connect: Callable[[], Any], refused: type[BaseException]) -> None:
    """Call ``connect`` until it stops raising ``refused`` (the server is up), for 20 s."""
    deadline = time.monotonic() + 20
    while True:
        try:
            connect().close()
            return
        except refused:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _wait_accepting(server: ServerProcess) -> None:
    import psycopg

    _until_connected(
        lambda: psycopg.connect(
            f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres",
            connect_timeout=2,
        ),
        psycopg.OperationalError,
    )


@pytest.fixture(scope="session")
def own_mariadb() -> Iterator[ServerProcess]:
    import shutil as _shutil

    install = _shutil.which("mariadb-install-db")
    server_bin = _shutil.which("mariadbd") or (
        "/usr/sbin/mariadbd" if Path("/usr/sbin/mariadbd").exists() else None
    )
    if install is None or server_bin is None:
        unavailable("MariaDB's mariadb-install-db and mariadbd are not installed")
    datadir = Path(tempfile.mkdtemp(prefix="sessions-sql-mariadb-"))
    subprocess.run(
        [install, "--no-defaults", f"--datadir={datadir}", "--user=root", "--skip-test-db"],
        check=True,
        capture_output=True,
    )

    def argv(port: int, workdir: Path) -> list[str]:
        return [
            str(server_bin),
            "--no-defaults",
            f"--datadir={datadir}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={datadir / 'mariadb.sock'}",
            "--user=root",
            # A throw-away server on loopback for this test run only.
            "--skip-grant-tables",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=32M",
            "--innodb-flush-log-at-trx-commit=0",
        ]

    server = ServerProcess("mariadb", argv, ready=_mariadb_accepting)
    try:
        server.start(timeout=30)
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(datadir, ignore_errors=True)


def _mariadb_accepting(server: ServerProcess) -> None:
    import pymysql

    _until_connected(
        lambda: pymysql.connect(host="127.0.0.1", port=server.port, user="root"),
        pymysql.err.OperationalError,
    )
