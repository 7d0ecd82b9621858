"""SQL writes: what the compare-and-set commit and the tag column cost, per database.

At the driver level (sync flavour, one statement per operation, autocommit), on
a SQLite file, PostgreSQL (127.0.0.1:5432) and MariaDB (127.0.0.1:3306):

* ``earlier upsert``: the previous release's unconditional write
  (``INSERT ... ON CONFLICT DO UPDATE`` / ``ON DUPLICATE KEY UPDATE``) on a table
  made by its DDL (no ``tag`` column or index): the baseline;
* ``upsert``: this release's plain ``write`` (it also writes ``tag``);
* ``compare-and-set``: ``write_versioned`` of a changed session, the commit
  core now sends (``UPDATE ... WHERE key AND version AND expires_at > now``),
  untagged and tagged (``values["__tag__"]`` set, so the ``tag`` column and its
  index are written too).

Each row is the median µs of single writes, the rows taking turns write by
write (so each sees the same disk and load; a commit's fsync costs whatever
the shared disk allows at that moment). Writes are measured twice: at each
database's default durability (every commit flushed), and, on SQLite and
PostgreSQL, without the flush (``synchronous=OFF``, ``synchronous_commit=off``),
which leaves the statements' own cost, the difference between the rows, in
view. Then, for one tag of 1,000 sessions among 10,000 others: ``tagged()``
and ``destroy_tagged()``, in µs and statements (counted with
``before_cursor_execute``).
"""

from __future__ import annotations

import secrets
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import Result, report

SECRET = "bench-secret-0123456789abcdef0123456789"
AGE = 7200
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
VALUES = {"user": 42, "n": 0, "csrf": "x" * 43, "cart": [1, 2, 3]}


@contextmanager
def databases() -> Iterator[dict[str, str]]:
    """A SQLite file, a PostgreSQL database and a MariaDB database for the run."""
    import shutil

    import psycopg
    import pymysql

    name = f"bench_sqlw_{secrets.token_hex(4)}"
    tmp = Path(tempfile.mkdtemp(prefix="bench-sqlw-"))
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    maria = pymysql.connect(host="127.0.0.1", port=3306, user="root")
    with maria.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
    try:
        yield {
            "sqlite": f"sqlite:///{tmp / 'sessions.db'}",
            "postgresql": f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}",
            "mariadb": f"mysql+pymysql://root@127.0.0.1:3306/{name}",
        }
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        with maria.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        maria.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _driver(url: str, table: str = "sessions", durable: bool = True) -> Any:
    from sessions import SessionConfig, SessionManager
    from sessions_sql.driver import SQLDriver

    options: dict[str, Any] = {"url": url, "create_table": True, "table": table}
    if not durable and url.startswith("postgresql"):
        options["engine_options"] = {"connect_args": {"options": "-c synchronous_commit=off"}}
    config = SessionConfig(secret=SECRET, driver="sql", age=AGE, drivers={"sql": options})
    if not durable and url.startswith("sqlite"):
        from sqlalchemy import event

        manager = SessionManager(config, autoload_plugins=False, drivers={"sql": SQLDriver})
        engine = manager.driver.engine
        event.listen(engine, "connect", _sqlite_no_sync)
        engine.dispose()  # the next connections are made with the listener
        return manager
    return SessionManager(config, autoload_plugins=False, drivers={"sql": SQLDriver})


def _sqlite_no_sync(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA synchronous=OFF")


def _release_0_1(engine: Any) -> Callable[[str, dict[str, Any]], None]:
    """The earlier write: its table (made by its DDL) and its upsert, run as its driver ran it."""
    from sessions.codec import encode
    from sessions_sql.schema import UTCDateTime
    from sqlalchemy import BigInteger, Column, Index, LargeBinary, MetaData, String, Table
    from sqlalchemy import bindparam as p
    from sqlalchemy.dialects import mysql, postgresql, sqlite

    family = ("mysql", "mariadb")
    key_type = (
        String(43)
        .with_variant(String(43, collation="C"), "postgresql")
        .with_variant(mysql.CHAR(43, charset="ascii", collation="ascii_bin"), *family)
    )
    table = Table(
        "sessions_0_1",
        MetaData(),
        Column("key", key_type, primary_key=True),
        Column("data", LargeBinary().with_variant(mysql.LONGBLOB(), *family), nullable=False),
        Column("expires_at", UTCDateTime(), nullable=False),
        Column("version", BigInteger, nullable=False, server_default="1"),
        Column("owner", String(255), nullable=True),
        Index("ix_sessions_0_1_expires_at", "expires_at"),
    )
    table.create(engine, checkfirst=True)
    values = {"key": p("k"), "data": p("d"), "expires_at": p("exp")}
    version = table.c.version + 1
    name = engine.dialect.name
    statement: Any
    if name in family:
        my = mysql.insert(table).values(values)
        statement = my.on_duplicate_key_update(
            data=my.inserted.data, expires_at=my.inserted.expires_at, version=version
        )
    else:
        dialect_insert = postgresql.insert if name == "postgresql" else sqlite.insert
        ins = dialect_insert(table).values(values)
        statement = ins.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "data": ins.excluded.data,
                "expires_at": ins.excluded.expires_at,
                "version": version,
            },
        )

    def write(key: str, session: dict[str, Any]) -> None:
        params = {"k": key, "d": encode(session), "exp": datetime.now(UTC) + timedelta(seconds=AGE)}
        with engine.connect() as conn:
            conn.execute(statement, params)

    return write


def _writes(db: str, url: str, writes: int, durable: bool) -> list[Result]:
    from sessions.testing import new_key

    manager = _driver(url, durable=durable)
    driver = manager.driver
    old_write = _release_0_1(driver.engine)
    keys = {name: new_key() for name in ("old", "upsert", "cas", "tagged")}
    versions: dict[str, int] = {}
    for name in ("cas", "tagged"):
        driver.write_versioned(keys[name], VALUES, None)
        versions[name] = driver.read_versioned(keys[name]).version

    def run_old(i: int) -> None:
        old_write(keys["old"], {**VALUES, "n": i})

    def run_upsert(i: int) -> None:
        driver.write(keys["upsert"], {**VALUES, "n": i})

    def cas(name: str, extra: dict[str, Any]) -> Callable[[int], None]:
        def run(i: int) -> None:
            stored = driver.write_versioned(keys[name], {**VALUES, **extra, "n": i}, versions[name])
            assert stored, "a compare-and-set with the current version was refused"
            versions[name] += 1

        return run

    cases: dict[str, Callable[[int], None]] = {
        "earlier upsert (old table)": run_old,
        "upsert (this release)": run_upsert,
        "compare-and-set, untagged": cas("cas", {}),
        "compare-and-set, tagged": cas("tagged", {"__tag__": "user-42"}),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for run in cases.values():  # warm-up: pools, statement caches
        for i in range(50):
            run(i)
    clock = time.perf_counter
    for i in range(writes):
        for name, run in cases.items():
            started = clock()
            run(i)
            samples[name].append((clock() - started) * 1e6)
    manager.close()
    figures = {name: statistics.median(values) for name, values in samples.items()}
    base = figures["earlier upsert (old table)"]
    untagged = figures["compare-and-set, untagged"]
    results = []
    for name, values in samples.items():
        ordered = sorted(values)
        notes: dict[str, Any] = {
            "vs earlier": f"x{figures[name] / base:.3f}",
            "quartiles": f"{ordered[len(ordered) // 4]:.0f}-{ordered[(3 * len(ordered)) // 4]:.0f}",
        }
        if name == "compare-and-set, tagged":
            notes["vs untagged"] = f"x{figures[name] / untagged:.3f}"
        group = f"{db}: one write{'' if durable else ', no flush'}"
        results.append(Result(group, name, figures[name], notes))
    return results


def _tags(db: str, url: str, reps: int) -> list[Result]:
    from sessions.codec import encode
    from sessions.testing import new_key
    from sqlalchemy import event

    manager = _driver(url, "sessions_tags")
    driver = manager.driver
    table = driver.table
    expires = datetime.now(UTC) + timedelta(seconds=AGE)

    def insert(tag: str | None, count: int) -> None:
        rows = [
            {
                "key": new_key(),
                "data": encode({**VALUES, "__tag__": tag} if tag else VALUES),
                "expires_at": expires,
                "tag": tag,
            }
            for _ in range(count)
        ]
        with driver.engine.begin() as conn:
            conn.execute(table.insert(), rows)

    for i in range(10):  # 10,000 other sessions: 9 other tags and untagged ones
        insert(f"other-{i}" if i else None, 1000)
    statements = [0]

    def count(*_args: Any) -> None:
        statements[0] += 1

    event.listen(driver.engine, "before_cursor_execute", count)
    listing: list[float] = []
    destroying: list[float] = []
    listed_statements = destroyed_statements = 0
    for _ in range(reps):
        insert("user-7", 1000)
        statements[0] = 0
        started = time.perf_counter()
        found = driver.tagged("user-7")
        listing.append((time.perf_counter() - started) * 1e6)
        listed_statements = statements[0]
        assert len(found) == 1000, len(found)
        keep = found[0].session_id
        statements[0] = 0
        started = time.perf_counter()
        destroyed = driver.destroy_tagged("user-7", keep)
        destroying.append((time.perf_counter() - started) * 1e6)
        destroyed_statements = statements[0]
        assert destroyed == 999, destroyed
        driver.destroy(keep)
    manager.close()
    group = f"{db}: 1,000 sessions of one tag (among 10,000)"
    return [
        Result(
            group,
            "tagged(tag)",
            statistics.median(listing),
            {
                "statements": listed_statements,
                "per session": f"{statistics.median(listing) / 1000:.1f} µs",
            },
        ),
        Result(
            group,
            "destroy_tagged(tag, keep)",
            statistics.median(destroying),
            {
                "statements": destroyed_statements,
                "per session": f"{statistics.median(destroying) / 999:.1f} µs",
            },
        ),
    ]


def main(quick: bool) -> str:
    """Run every group and return the report."""
    import sqlalchemy

    warnings.simplefilter("ignore")
    writes, reps = (100, 3) if quick else (2000, 9)
    started = time.perf_counter()
    results: list[Result] = []
    with databases() as urls:
        for db, url in urls.items():
            results += _writes(db, url, writes, durable=True)
        for db in ("sqlite", "postgresql"):
            results += _writes(db, urls[db], writes, durable=False)
        for db, url in urls.items():
            results += _tags(db, url, reps)
    header = (
        f"SQLite {__import__('sqlite3').sqlite_version} file (WAL, synchronous=FULL); "
        "PostgreSQL 127.0.0.1:5432 (synchronous_commit=on); MariaDB 127.0.0.1:3306; "
        f"SQLAlchemy {sqlalchemy.__version__}; sync flavour; median of {writes} writes per "
        f"row, rows interleaved write by write; tags: median of {reps}; "
        f"{time.perf_counter() - started:.0f} s"
    )
    return header + report(results)
