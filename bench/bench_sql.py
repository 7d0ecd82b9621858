"""SQL sessions: sessions-sql against Flask-Session's SQLAlchemy backend and
Django's database session backend, on one SQLite file and on PostgreSQL.

Every contender stores its sessions in the same database: the same SQLite
file (each library in its own table) and the same PostgreSQL server
(127.0.0.1:5432, a database created for the run and dropped after it). All
run at the databases' default durability: every commit is synchronous
(SQLite ``synchronous=FULL``, PostgreSQL ``synchronous_commit=on``). The SQLite
file is in WAL mode, which sessions-sql switches it to and which the peers then
use too (the journal mode belongs to the file).

Apps are driven in-process over WSGI (``bench.harness.time_wsgi``): a
read-only request reads an existing session, a read-write one changes a
counter in it. Rows per framework: the bare app, then with sessions; ``adds``
is the cost over that framework's bare app, which is what a session library
is responsible for. ``sql/req`` counts the statements of a steady-state
request. Semantics differ and are noted: Flask-Session rewrites the session on
every request (to slide its expiry); Django never slides it on read-only
requests; sessions-sql slides it at most every ``touch_interval`` (60 s by
default), and the ``touch_interval=0`` row refreshes on every request.

Each row's figure is the median of many short samples, the rows of a group
taking turns (a commit's fsync costs whatever the shared disk allows at that
moment, so every row must be measured at every moment); ``quartiles`` shows the
spread of the samples. Compare rows within a group only.

``last-write-wins upsert`` is our driver with its versioned capability hidden,
so core commits a changed session with the unconditional upsert, as before
conflict-free commits: against the row above it, the cost of the
compare-and-set commit (``bench_sql_writes.py`` compares the writes alone, on
MariaDB too).

Our contenders go through ``sessions.wsgi.SessionMiddleware`` (plain WSGI) and
``sessions.flask`` (Flask). The async flavour (aiosqlite, asyncpg) is measured
over ASGI (``time_asgi``) against a bare Starlette app.
"""

from __future__ import annotations

import gc
import secrets
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness import Result, asgi_scope, report, time_asgi, time_wsgi

SECRET = "bench-secret-0123456789abcdef0123456789"
AGE = 7200
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
COUNTED = 50

# Where Django's router sends the session model ("default" = SQLite, "pg").
_DJANGO_DB = {"alias": "default"}


class Router:
    """Django database router: the session model goes to the database under test."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return _DJANGO_DB["alias"]

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return _DJANGO_DB["alias"]

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return True


class Databases:
    """The SQLite file and the PostgreSQL database of the run."""

    def __init__(self) -> None:
        import psycopg

        self.tmp = Path(tempfile.mkdtemp(prefix="bench-sql-"))
        self.sqlite_path = self.tmp / "sessions.db"
        self.pg_name = f"bench_sql_{secrets.token_hex(4)}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{self.pg_name}"')

    def url(self, db: str, flavour: str = "sync") -> str:
        if db == "sqlite":
            scheme = "sqlite+aiosqlite" if flavour == "async" else "sqlite"
            return f"{scheme}:///{self.sqlite_path}"
        scheme = "postgresql+asyncpg" if flavour == "async" else "postgresql+psycopg"
        return f"{scheme}://postgres@127.0.0.1:5432/{self.pg_name}"

    def close(self) -> None:
        import shutil

        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')
        shutil.rmtree(self.tmp, ignore_errors=True)


# -- statement counting ----------------------------------------------------------------


class Counter:
    """Counts SQL statements sent through SQLAlchemy engines or Django connections."""

    def __init__(self) -> None:
        self.count = 0
        self.active = False

    def sqlalchemy(self, engine: Any) -> None:
        from sqlalchemy import event

        def record(*args: Any) -> None:
            if self.active:
                self.count += 1

        event.listen(engine, "before_cursor_execute", record)

    def django_wrapper(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if self.active:
            self.count += 1
        return execute(sql, params, many, context)

    @contextmanager
    def counting(self) -> Iterator[None]:
        self.count = 0
        self.active = True
        try:
            yield
        finally:
            self.active = False


def per_request(app: Any, path: str, counter: Counter, is_async: bool = False) -> str:
    """Statements per steady-state request: 5 warm-up requests, then COUNTED more."""
    if is_async:
        run = _asgi_runner(app, path)
    else:
        from werkzeug.test import Client

        client = Client(app)

        def run(n: int) -> None:
            for _ in range(n):
                assert client.get(path).status_code == 200

    run(5)
    with counter.counting():
        run(COUNTED)
    return f"{counter.count / COUNTED:.2f}"


def _asgi_runner(app: Any, path: str) -> Callable[[int], None]:
    import asyncio

    from harness import Jar

    jar = Jar()
    loop = asyncio.new_event_loop()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message
            for key, value in message.get("headers", ()):
                if key.lower() == b"set-cookie":
                    jar.store(value.decode("latin-1"))

    async def many(n: int) -> None:
        for _ in range(n):
            scope = asgi_scope(path, jar)
            await app(scope, receive, send)

    return lambda n: loop.run_until_complete(many(n))


# -- contenders -------------------------------------------------------------------------
# Each factory returns (app, counter). Paths: "/ro" only reads an existing
# session (the first request creates it), "/rw" changes it every time.


def _manager(url: str, versioned: bool = True, **options: Any) -> Any:
    from sessions import SessionConfig, SessionManager
    from sessions_sql.driver import SQLDriver

    config = SessionConfig(
        secret=SECRET,
        driver="sql",
        age=AGE,
        drivers={"sql": {"url": url, "create_table": True, **options}},
    )
    factory = SQLDriver if versioned else _last_write_wins()
    manager = SessionManager(config, autoload_plugins=False, drivers={"sql": factory})
    _open.append(manager.close)
    return manager


# Resources of the apps measured so far, released between rows so the server's
# connection limit is never approached.
_open: list[Callable[[], None]] = []


def _release() -> None:
    while _open:
        _open.pop()()
    gc.collect()


def wsgi_bare(dbs: Databases, db: str) -> tuple[Any, Counter]:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    return app, Counter()


def _wsgi_ours(dbs: Databases, db: str, **options: Any) -> tuple[Any, Counter]:
    from sessions.wsgi import ENVIRON_KEY, SessionMiddleware

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = environ[ENVIRON_KEY]
        n = session.get("n")
        if n is None or environ["PATH_INFO"] == "/rw":
            session.put("n", (n or 0) + 1)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    manager = _manager(dbs.url(db), **options)
    counter = Counter()
    counter.sqlalchemy(manager.driver.engine)
    return SessionMiddleware(app, manager), counter


def wsgi_ours(dbs: Databases, db: str) -> tuple[Any, Counter]:
    return _wsgi_ours(dbs, db)


def _last_write_wins() -> Any:
    """The sql driver without its versioned capability: core commits with the plain
    upsert, as before conflict-free commits (the cost they are compared with)."""
    from sessions_sql.driver import SQLDriver

    class LastWriteWins(SQLDriver):
        read_versioned = None
        write_versioned = None
        aread_versioned = None
        awrite_versioned = None

    return LastWriteWins


def wsgi_ours_unversioned(dbs: Databases, db: str) -> tuple[Any, Counter]:
    return _wsgi_ours(dbs, db, versioned=False)


def wsgi_ours_every(dbs: Databases, db: str) -> tuple[Any, Counter]:
    return _wsgi_ours(dbs, db, touch_interval=0)


def _flask(name: str) -> Any:
    from flask import Flask

    return Flask(name)


def _flask_view(app: Any) -> None:
    from flask import request, session

    @app.route("/ro")
    @app.route("/rw")
    def view() -> str:
        n = session.get("n")
        if n is None or request.path == "/rw":
            session["n"] = (n or 0) + 1
        return "ok"


def flask_bare(dbs: Databases, db: str) -> tuple[Any, Counter]:
    app = _flask("bare")
    app.route("/ro")(lambda: "ok")
    app.route("/rw", endpoint="rw")(lambda: "ok")
    return app, Counter()


def flask_ours(dbs: Databases, db: str) -> tuple[Any, Counter]:
    from sessions.flask import FlaskSessions

    app = _flask("ours")
    manager = _manager(dbs.url(db))
    counter = Counter()
    counter.sqlalchemy(manager.driver.engine)
    FlaskSessions(app, manager, templates=False)
    _flask_view(app)
    return app, counter


def flask_session(dbs: Databases, db: str) -> tuple[Any, Counter]:
    from flask_session import Session
    from flask_sqlalchemy import SQLAlchemy

    app = _flask("flask_session")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=dbs.url(db),
        SESSION_TYPE="sqlalchemy",
        SESSION_SQLALCHEMY_TABLE="flask_sessions",
        PERMANENT_SESSION_LIFETIME=AGE,
    )
    client = SQLAlchemy(app)
    app.config["SESSION_SQLALCHEMY"] = client
    Session(app)
    _flask_view(app)
    counter = Counter()
    with app.app_context():
        engine = client.engine
    counter.sqlalchemy(engine)
    _open.append(engine.dispose)
    return app, counter


_django_ready: dict[str, bool] = {}


def _django(dbs: Databases) -> None:
    if _django_ready:
        return
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY=SECRET,
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["django.contrib.sessions"],
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
        SESSION_ENGINE="django.contrib.sessions.backends.db",
        SESSION_COOKIE_AGE=AGE,
        DATABASES={
            # Persistent connections: Django's best case (the default reconnects per request).
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(dbs.sqlite_path),
                "CONN_MAX_AGE": None,
            },
            "pg": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": dbs.pg_name,
                "USER": "postgres",
                "HOST": "127.0.0.1",
                "PORT": "5432",
                "CONN_MAX_AGE": None,
            },
        },
        DATABASE_ROUTERS=[f"{__name__}.Router"],
        USE_TZ=True,
    )
    django.setup()
    from django.core.management import call_command

    for alias in ("default", "pg"):
        call_command("migrate", "sessions", database=alias, verbosity=0)
    _django_ready["yes"] = True


def _django_view(request: Any) -> Any:
    from django.http import HttpResponse

    n = request.session.get("n")
    if n is None or request.path == "/rw":
        request.session["n"] = (n or 0) + 1
    return HttpResponse("ok")


def _django_bare_view(request: Any) -> Any:
    from django.http import HttpResponse

    return HttpResponse("ok")


def _urlpatterns() -> list[Any]:
    from django.urls import path

    return [
        path("ro", _django_view),
        path("rw", _django_view),
        path("bare/ro", _django_bare_view),
        path("bare/rw", _django_bare_view),
    ]


def __getattr__(name: str) -> Any:
    # Django imports ROOT_URLCONF (this module) lazily and reads urlpatterns.
    if name == "urlpatterns":
        return _urlpatterns()
    raise AttributeError(name)


class _Prefixed:
    """Serves the bare Django views under /bare/ without a session middleware."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        environ = dict(environ, PATH_INFO="/bare" + environ["PATH_INFO"])
        return self.app(environ, start_response)


def django_bare(dbs: Databases, db: str) -> tuple[Any, Counter]:
    _django(dbs)
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings

    with override_settings(MIDDLEWARE=[]):
        handler = WSGIHandler()
    return _Prefixed(handler), Counter()


def django_db(dbs: Databases, db: str) -> tuple[Any, Counter]:
    _django(dbs)
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connections

    _DJANGO_DB["alias"] = "default" if db == "sqlite" else "pg"
    counter = Counter()
    connection = connections[_DJANGO_DB["alias"]]
    if counter.django_wrapper not in connection.execute_wrappers:
        connection.execute_wrappers.append(counter.django_wrapper)
    return WSGIHandler(), counter


def asgi_bare(dbs: Databases, db: str) -> tuple[Any, Counter]:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def view(request: Any) -> Any:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/ro", view), Route("/rw", view)]), Counter()


def asgi_ours(dbs: Databases, db: str) -> tuple[Any, Counter]:
    from sessions.asgi import SessionMiddleware
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def view(request: Any) -> Any:
        session = request.session
        n = session.get("n")
        if n is None or request.url.path == "/rw":
            session["n"] = (n or 0) + 1
        return PlainTextResponse("ok")

    manager = _manager(dbs.url(db))
    counter = _AsyncCounter(manager)
    app = Starlette(routes=[Route("/ro", view), Route("/rw", view)])
    return SessionMiddleware(app, manager), counter


class _AsyncCounter(Counter):
    """Attaches to the async engine once the first request has made it."""

    def __init__(self, manager: Any) -> None:
        super().__init__()
        self.manager = manager
        self.attached = False

    @contextmanager
    def counting(self) -> Iterator[None]:
        if not self.attached:
            for engine in self.manager.driver._aengines.values():
                self.sqlalchemy(engine.sync_engine)
            self.attached = True
        with super().counting():
            yield


# -- the run ----------------------------------------------------------------------------

Factory = Callable[[Databases, str], tuple[Any, Counter]]
WSGI: list[tuple[str, str, Factory]] = [
    # (row name, bare row it is compared with, factory)
    ("WSGI bare", "", wsgi_bare),
    ("sessions-sql (WSGI)", "WSGI bare", wsgi_ours),
    ("sessions-sql (WSGI) touch_interval=0", "WSGI bare", wsgi_ours_every),
    ("sessions-sql (WSGI) last-write-wins upsert", "WSGI bare", wsgi_ours_unversioned),
    ("Flask bare", "", flask_bare),
    ("sessions-sql (Flask)", "Flask bare", flask_ours),
    ("Flask-Session sqlalchemy", "Flask bare", flask_session),
    ("Django bare", "", django_bare),
    ("Django db sessions", "Django bare", django_db),
]
ASGI: list[tuple[str, str, Factory]] = [
    ("Starlette bare", "", asgi_bare),
    ("sessions-sql (ASGI, async engine)", "Starlette bare", asgi_ours),
]


def _measure(
    dbs: Databases,
    db: str,
    write: bool,
    contenders: list[tuple[str, str, Factory]],
    is_async: bool,
    rounds: int,
    batch: int,
) -> list[Result]:
    path = "/rw" if write else "/ro"
    kind = "read-write" if write else "read-only"
    group = f"{db} {kind} ({'ASGI' if is_async else 'WSGI'})"
    timer = time_asgi if is_async else time_wsgi
    apps = {name: factory(dbs, db) for name, _bare, factory in contenders}
    samples: dict[str, list[float]] = {name: [] for name in apps}
    # Short samples, the contenders taking turns: a commit's fsync costs what
    # the shared disk allows at that moment, so every row must see every moment.
    for _ in range(rounds):
        for name, (app, _counter) in apps.items():
            samples[name].append(timer(app, path, batch=batch, repeats=1))
            if is_async:
                gc.collect()  # connections of the finished loop's engine
    figure = {name: statistics.median(values) for name, values in samples.items()}
    results = []
    for name, bare, _factory in contenders:
        app, counter = apps[name]
        values = sorted(samples[name])
        notes: dict[str, Any] = {}
        if bare:
            notes["adds"] = f"{figure[name] - figure[bare]:.0f} µs"
            notes["sql/req"] = per_request(app, path, counter, is_async)
        notes["quartiles"] = f"{values[len(values) // 4]:.0f}-{values[(3 * len(values)) // 4]:.0f}"
        results.append(Result(group, name, figure[name], notes))
    _release()
    return results


def _sqlite_settings(dbs: Databases) -> str:
    import sqlite3

    with sqlite3.connect(dbs.sqlite_path) as conn:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return f"journal_mode={mode}, synchronous={names.get(sync, sync)}"


def main(quick: bool) -> str:
    """Run every group and return the report."""
    warnings.simplefilter("ignore")
    rounds, batch = (3, 40) if quick else (15, 60)
    started = time.perf_counter()
    dbs = Databases()
    results: list[Result] = []
    try:
        # Ours first: it creates its table and switches the SQLite file to WAL.
        wsgi_ours(dbs, "sqlite")
        sqlite_settings = _sqlite_settings(dbs)
        for db in ("sqlite", "postgresql"):
            for write in (False, True):
                results += _measure(dbs, db, write, WSGI, False, rounds, batch)
                results += _measure(dbs, db, write, ASGI, True, rounds, batch)
    finally:
        dbs.close()
    import django
    import flask_session
    import sqlalchemy

    header = (
        f"SQLite {__import__('sqlite3').sqlite_version} file ({sqlite_settings}); "
        f"PostgreSQL on 127.0.0.1:5432 (synchronous_commit=on); SQLAlchemy "
        f"{sqlalchemy.__version__}, Flask-Session {flask_session.__version__}, Django "
        f"{django.__version__}; median of {rounds} interleaved samples of {batch} requests "
        f"(each after a warm-up of {max(batch // 5, 20)}); {time.perf_counter() - started:.0f} s"
    )
    return header + report(results)
