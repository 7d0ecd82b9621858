"""Django sessions: ``SESSION_ENGINE = "sessions.django"`` against Django's own
engines, each on the same store.

One Django (WSGI, in-process, ``bench.harness``), one view: a read-only request
reads a counter from an existing session, a read-write one changes it. For each
store and kind of request, the rows are:

* ``Django bare``: the same view without the session middleware;
* Django's own engine on that store: the cache engine on Redis
  (``RedisCache``) and on memcached (``PyMemcacheCache``), the file engine, the
  database engine on SQLite and on PostgreSQL (persistent connections, its best
  case);
* ``sessions.django``: our engine on the matching driver (sessions-redis,
  sessions-memcached, sessions-file, sessions-sql), Django's middleware and
  ``request.session`` unchanged.

A Redis server and a memcached are started on free loopback ports for the run;
the SQLite file and the PostgreSQL database (127.0.0.1:5432) are shared by both
engines, as in ``bench_sql``. A group's rows take turns, batch by batch (a
commit's fsync costs whatever the shared disk allows at that moment, so every
row must see every moment); each row's figure is the median µs/request of its
batches (read them as ratios within a group). ``cmds/req`` counts Redis
commands (CONFIG RESETSTAT, then INFO commandstats) over 100 steady-state
requests; ``per req`` memcached's commands and new connections (its ``stats``).

Semantics differ and are noted, not equalised: Django's engines never slide a
session's expiry on a read-only request; sessions-redis, -memcached and -sql
slide it with the read itself (GETEX, gat, a throttled UPDATE), which Django's
contract does not need but costs them nothing extra in round trips.
"""

from __future__ import annotations

import sys
import tempfile
import time
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import Result, compare, report, wsgi_runner

SECRET = "bench-secret-0123456789abcdef0123456789"
AGE = 7200
_URLS = "bench_django_urls"
# The database the Django db engine's contender uses ("default" = SQLite, "pg").
_DB = {"alias": "default"}


class Router:
    """Django database router: the session model goes to the database under test."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return _DB["alias"]

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return _DB["alias"]

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return True


# -- Django ---------------------------------------------------------------------------------


def _view(request: Any) -> Any:
    from django.http import HttpResponse

    n = request.session.get("n")
    if n is None or request.path.endswith("rw"):
        request.session["n"] = (n or 0) + 1
    return HttpResponse("ok", content_type="text/plain")


def _bare_view(request: Any) -> Any:
    from django.http import HttpResponse

    return HttpResponse("ok", content_type="text/plain")


class Stores:
    """The servers and files of the run."""

    def __init__(self) -> None:
        from bench_memcached import Memcached
        from bench_redis import Server
        from bench_sql import Databases

        self.redis = Server()
        self.memcached = Memcached()
        self.dbs = Databases()
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-django-"))

    def close(self) -> None:
        import shutil

        self.redis.close()
        self.memcached.stop()
        self.dbs.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _configure(stores: Stores) -> None:
    import django
    from django.conf import settings
    from django.urls import path

    urls = types.ModuleType(_URLS)
    urls.urlpatterns = [  # type: ignore[attr-defined]
        path("ro", _view),
        path("rw", _view),
        path("bare/ro", _bare_view),
        path("bare/rw", _bare_view),
    ]
    sys.modules[_URLS] = urls
    settings.configure(
        DEBUG=False,
        SECRET_KEY=SECRET,
        ALLOWED_HOSTS=["bench"],
        ROOT_URLCONF=_URLS,
        INSTALLED_APPS=["django.contrib.sessions"],
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
        SESSION_COOKIE_AGE=AGE,
        CACHES={
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            "redis": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": stores.redis.url,
            },
            "memcached": {
                "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
                "LOCATION": stores.memcached.address,
            },
        },
        DATABASES={
            # Persistent connections: Django's best case (the default reconnects per request).
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(stores.dbs.sqlite_path),
                "CONN_MAX_AGE": None,
            },
            "pg": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": stores.dbs.pg_name,
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


def _handler(store_class: type | None, name: str) -> Any:
    """A WSGI handler whose SessionMiddleware uses ``store_class`` (None: no middleware)."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings

    if store_class is None:
        with override_settings(MIDDLEWARE=[]):
            return _Prefixed(WSGIHandler())
    # SessionMiddleware imports SESSION_ENGINE when it is built: one module per contender.
    module = types.ModuleType(f"bench_django_engine_{name}")
    module.SessionStore = store_class  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    with override_settings(SESSION_ENGINE=module.__name__):
        return WSGIHandler()


class _Prefixed:
    """Serves the bare views under /bare/."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        environ = dict(environ, PATH_INFO="/bare" + environ["PATH_INFO"])
        return self.app(environ, start_response)


class _Using:
    """Points the database router at ``alias`` for each request of this app."""

    def __init__(self, app: Any, alias: str) -> None:
        self.app = app
        self.alias = alias

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        _DB["alias"] = self.alias
        return self.app(environ, start_response)


def django_cache(alias: str) -> Any:
    from django.contrib.sessions.backends.base import SessionBase
    from django.contrib.sessions.backends.cache import SessionStore
    from django.core.cache import caches

    class Store(SessionStore):  # type: ignore[misc]
        def __init__(self, session_key: str | None = None) -> None:
            self._cache = caches[alias]
            SessionBase.__init__(self, session_key)

    return _handler(Store, f"cache_{alias}")


def django_file(directory: Path) -> Any:
    from django.contrib.sessions.backends.file import SessionStore

    class Store(SessionStore):  # type: ignore[misc]
        _storage_path = str(directory)

    directory.mkdir(parents=True, exist_ok=True)
    return _handler(Store, "file")


def django_db(alias: str) -> Any:
    from django.contrib.sessions.backends.db import SessionStore

    return _Using(_handler(SessionStore, f"db_{alias}"), alias)


def ours(driver: str, options: dict[str, Any]) -> Any:
    from sessions import SessionConfig, SessionManager
    from sessions.django import SessionStore

    config = SessionConfig(secret=SECRET, driver=driver, age=AGE, drivers={driver: options})
    manager = SessionManager(config)

    class Store(SessionStore):
        @classmethod
        def get_manager(cls) -> SessionManager:
            return manager

    return _handler(Store, f"ours_{driver}")


# -- the run --------------------------------------------------------------------------------


def _groups(stores: Stores) -> list[tuple[str, list[tuple[str, Callable[[], Any]]]]]:
    sqlite_url = stores.dbs.url("sqlite")
    pg_url = stores.dbs.url("postgresql")
    return [
        (
            "Redis",
            [
                ("Django cache engine (RedisCache)", lambda: django_cache("redis")),
                (
                    "sessions.django + sessions-redis",
                    lambda: ours("redis", {"url": stores.redis.url}),
                ),
            ],
        ),
        (
            "memcached",
            [
                ("Django cache engine (PyMemcacheCache)", lambda: django_cache("memcached")),
                (
                    "sessions.django + sessions-memcached",
                    lambda: ours("memcached", {"servers": [stores.memcached.address]}),
                ),
            ],
        ),
        (
            "file",
            [
                ("Django file engine", lambda: django_file(stores.tmp / "django")),
                (
                    "sessions.django + sessions-file",
                    lambda: ours("file", {"location": str(stores.tmp / "ours")}),
                ),
            ],
        ),
        (
            "SQLite",
            [
                ("Django db engine", lambda: django_db("default")),
                ("sessions.django + sessions-sql", lambda: ours("sql", {"url": sqlite_url})),
            ],
        ),
        (
            "PostgreSQL",
            [
                ("Django db engine", lambda: django_db("pg")),
                (
                    "sessions.django + sessions-sql",
                    lambda: ours("sql", {"url": pg_url, "create_table": True}),
                ),
            ],
        ),
    ]


def _redis_commands(stores: Stores, app: Any, path: str) -> str:
    """Commands the client sent per request, as the server counted them.

    INFO commandstats also counts what a script runs inside the server: each
    compare-and-set EVALSHA of sessions-redis runs one GETRANGE and at most one
    SET or DEL, which are not round trips and are shown apart.
    """
    from bench_redis import _OBSERVER, COUNTED_REQUESTS

    run = wsgi_runner(app, path)
    run(5)
    admin = stores.redis.admin
    admin.config_resetstat()
    run(COUNTED_REQUESTS)
    counts = {
        k.removeprefix("cmdstat_"): int(v["calls"])
        for k, v in admin.info("commandstats").items()
        if k.removeprefix("cmdstat_") not in _OBSERVER
    }
    scripts = counts.get("evalsha", 0) + counts.get("eval", 0)
    inside: dict[str, int] = {}
    for name in ("getrange", "set", "del") if scripts else ():
        taken = min(counts.get(name, 0), scripts)
        if taken:
            inside[name] = taken
            counts[name] -= taken
            if not counts[name]:
                del counts[name]
    total = sum(counts.values()) / COUNTED_REQUESTS
    detail = "+".join(name.upper() for name in sorted(counts, key=counts.__getitem__))
    if inside:
        detail += "; " + "+".join(name.upper() for name in inside) + " inside the script"
    return f"{total:.2f} ({detail or 'none'})"


def _memcached_commands(stores: Stores, app: Any, path: str) -> str:
    from bench_memcached import _commands

    run = wsgi_runner(app, path)
    run(5)
    return _commands(stores.memcached, run, 100)


def main(quick: bool) -> str:
    """Run every group and return the report."""
    warnings.simplefilter("ignore")
    batch, repeats = (50, 3) if quick else (100, 25)
    started = time.perf_counter()
    stores = Stores()
    results: list[Result] = []
    try:
        _configure(stores)
        bare = _handler(None, "bare")
        for store, contenders in _groups(stores):
            apps = {name: factory() for name, factory in contenders}
            for write in (False, True):
                path = "/rw" if write else "/ro"
                group = f"{store} {'read-write' if write else 'read-only'}"
                runners = {"Django bare": wsgi_runner(bare, path)}
                runners.update({name: wsgi_runner(app, path) for name, app in apps.items()})
                best = compare(runners, batch=batch, repeats=repeats)
                theirs, mine = (name for name, _ in contenders)
                results.append(Result(group, "Django bare", best["Django bare"]))
                for name, app in apps.items():
                    notes: dict[str, Any] = {"adds": f"{best[name] - best['Django bare']:.0f} µs"}
                    if name == mine:
                        notes["ratio"] = f"x{best[mine] / best[theirs]:.2f} of Django's engine"
                    if store == "Redis":
                        notes["cmds/req"] = _redis_commands(stores, app, path)
                    if store == "memcached":
                        notes["per req"] = _memcached_commands(stores, app, path)
                    results.append(Result(group, name, best[name], notes))
    finally:
        stores.close()
    import django
    import redis

    header = (
        f"Django {django.__version__} (WSGI, in-process), redis-py {redis.__version__}; "
        f"median of {repeats} interleaved samples of {batch} requests; "
        f"{time.perf_counter() - started:.0f} s"
    )
    return header + report(results)
