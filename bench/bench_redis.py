"""Redis sessions: sessions-redis against raw redis-py, starsessions and Flask-Session.

One redis-server is started on a free loopback port for the run. For each
flavour (async: Starlette apps over ASGI; sync: Flask apps over WSGI) and each
kind of request (read-only: the session exists and is only read; read-write:
a counter in the session changes on every request), the rows are:

* ``bare app``: the same application without sessions and without Redis;
* ``floor``: the bare application issuing, with the raw redis-py client
  (``client.getex``, ``client.set``), the minimal commands such a request needs
  (GETEX; GETEX then SET): the limit a session library built on redis-py's
  client API pays;
* ``floor, connection API``: the same commands sent the way sessions-redis
  sends them (redis-py connections checked out once, hiredis packing, no
  per-command retry/observability wrapper), so the gap between this row and
  ``sessions-redis`` is the whole cost of the session layer itself;
* ``sessions-redis``, ``starsessions RedisStore``, ``Flask-Session redis``;
  in the sync group sessions-redis runs twice: as ``flask.session`` through
  core's Flask integration, and through core's plain WSGI middleware (the same
  Flask app, the session taken from ``environ``).

Every row is measured in several interleaved rounds (the machine may be
shared); each row's figure is its best round's median wall-clock µs/request
(bench/harness.py). Ratios are against the floor. ``cpu`` is the best round's
process CPU µs/request of the same row and its ratio to the floor's: the
client-side work alone, which other processes on the machine disturb less.
``cmds/req`` is counted by the server (CONFIG RESETSTAT, then INFO
commandstats) over 100 steady-state requests of that row; the server also counts
the commands a Lua script runs inside it, so sessions-redis' read-write rows
show GETEX + EVALSHA as round trips, and the script's GET and SET apart.

Two more groups:

* ``one write of a 1 KB session``: client-side cost of the compare-and-set
  write (encode, header, EVALSHA of the script) against the previous release's
  unconditional ``SET ... EX``, over the same lane (connection API);
* ``400 increments of one counter, 8 concurrent clients on one cookie``: how many
  acknowledged increments survive with sessions-redis (conflict-free commits)
  and with starsessions, Flask-Session and Django's cache backend on Redis
  (last write wins).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import types
import warnings
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio
from harness import Jar, Result, asgi_scope, report, time_asgi, time_wsgi, wsgi_environ

AGE = 7200
PAYLOAD = b'{"n":0}'
COUNTED_REQUESTS = 100
_OBSERVER = {"info", "config|resetstat", "config", "ping", "hello", "client|setinfo"}


# -- the server ---------------------------------------------------------------------------


class Server:
    """A private redis-server for the run (no persistence, loopback only)."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("bench_redis needs redis-server (apt-get install redis-server)")
        from sessions.testing.servers import free_port, wait_for_port

        self.port = free_port()
        self.workdir = tempfile.mkdtemp(prefix="bench-redis-")
        self.process = subprocess.Popen(
            [
                *(binary, "--save", "", "--appendonly", "no", "--port", str(self.port)),
                *("--bind", "127.0.0.1", "--dir", self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.admin = redis.Redis(port=self.port)
        self.admin.ping()

    def commands_per_request(self, run: Callable[[int], None]) -> str:
        """Run 5 warm-up requests, then count what ``COUNTED_REQUESTS`` more cost."""
        run(5)
        self.admin.config_resetstat()
        run(COUNTED_REQUESTS)
        stats = self.admin.info("commandstats")
        counts = {
            k.removeprefix("cmdstat_"): int(v["calls"])
            for k, v in stats.items()
            if k.removeprefix("cmdstat_") not in _OBSERVER
        }
        scripts = counts.get("evalsha", 0) + counts.get("eval", 0)
        if scripts:
            # GET/SET run by our script inside the server (this library sends
            # no bare GET or SET): not round trips; shown apart.
            inside = {
                k: counts.pop(k) for k in ("getrange", "get", "set", "del", "sadd") if k in counts
            }
        total = sum(counts.values()) / COUNTED_REQUESTS
        detail = "+".join(f"{name.upper()}" for name in sorted(counts, key=counts.__getitem__))
        if scripts and inside:
            detail += "; " + "+".join(k.upper() for k in inside) + " inside the script"
        return f"{total:.2f} ({detail or 'none'})"

    def close(self) -> None:
        self.admin.close()
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


# -- driving requests for the command counts ----------------------------------------------


def asgi_runner(app: Any) -> Callable[[int], None]:
    """Send n requests to an ASGI app on one loop, carrying cookies."""
    jar = Jar()
    loop = asyncio.new_event_loop()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] < 500, message
            for key, value in message.get("headers", ()):
                if key.lower() == b"set-cookie":
                    jar.store(value.decode("latin-1"))

    async def many(n: int) -> None:
        for _ in range(n):
            await app(asgi_scope("/", jar), receive, send)

    return lambda n: loop.run_until_complete(many(n))


def wsgi_runner(app: Any) -> Callable[[int], None]:
    """Call a WSGI app n times, carrying cookies (as bench/harness.py's time_wsgi)."""
    jar = Jar()

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        assert not status.startswith("5"), status
        for key, value in headers:
            if key.lower() == "set-cookie":
                jar.store(value)
        return lambda data: None

    def many(n: int) -> None:
        for _ in range(n):
            environ = wsgi_environ("/")
            if jar.cookies:
                environ["HTTP_COOKIE"] = jar.header()
            body = app(environ, start_response)
            for _ in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()

    return many


# -- async contenders (Starlette) ---------------------------------------------------------


def _starlette(handler: Callable[..., Any]) -> Any:
    from starlette.applications import Starlette
    from starlette.routing import Route

    return Starlette(routes=[Route("/", handler)])


def _session_view(write: bool) -> Callable[..., Any]:
    from starlette.responses import PlainTextResponse

    # The same code for every library: dict-style access to request.session.
    # The first request creates the session; after that a read-only request
    # only reads it, a read-write one changes it.
    async def view(request: Any) -> Any:
        session = request.session
        n = session.get("n")
        if n is None or write:
            session["n"] = (n or 0) + 1
        return PlainTextResponse("ok")

    return view


def async_bare(server: Server, write: bool) -> Any:
    from starlette.responses import PlainTextResponse

    async def view(request: Any) -> Any:
        return PlainTextResponse("ok")

    return _starlette(view)


def async_floor(server: Server, write: bool) -> Any:
    from starlette.responses import PlainTextResponse

    client = redis.asyncio.Redis.from_url(server.url)

    async def view(request: Any) -> Any:
        await client.getex("floor:async", ex=AGE)
        if write:
            await client.set("floor:async", PAYLOAD, ex=AGE)
        return PlainTextResponse("ok")

    return _starlette(view)


def async_floor_lean(server: Server, write: bool) -> Any:
    from sessions_redis.lanes import AsyncLane
    from starlette.responses import PlainTextResponse

    lane = AsyncLane(redis.asyncio.Redis.from_url(server.url), retries=0, timeout=None)

    async def view(request: Any) -> Any:
        await lane.execute_command("GETEX", "floor:async", "EX", AGE)
        if write:
            await lane.execute_command("SET", "floor:async", PAYLOAD, "EX", AGE)
        return PlainTextResponse("ok")

    return _starlette(view)


def async_ours(server: Server, write: bool) -> Any:
    from sessions import SessionConfig, SessionManager
    from sessions.asgi import SessionMiddleware

    config = SessionConfig(
        secret="bench-secret-0123456789abcdef0123456789",
        driver="redis",
        age=AGE,
        drivers={"redis": {"url": server.url}},
    )
    return SessionMiddleware(_starlette(_session_view(write)), SessionManager(config))


def _tagged_view(write: bool) -> Callable[..., Any]:
    from starlette.responses import PlainTextResponse

    # As _session_view, for a signed-in user: the session carries a tag (set at
    # the first request, unchanged after), so every write maintains the index.
    async def view(request: Any) -> Any:
        session = request.session
        n = session.get("n")
        if n is None:
            session.tag("user:1234567")
        if n is None or write:
            session["n"] = (n or 0) + 1
        return PlainTextResponse("ok")

    return view


def async_ours_tagged(server: Server, write: bool) -> Any:
    from sessions import SessionManager
    from sessions.asgi import SessionMiddleware

    return SessionMiddleware(_starlette(_tagged_view(write)), SessionManager(_ours_config(server)))


def async_starsessions(server: Server, write: bool) -> Any:
    from starsessions import SessionAutoloadMiddleware, SessionMiddleware
    from starsessions.stores.redis import RedisStore

    store = RedisStore(connection=redis.asyncio.Redis.from_url(server.url))
    app = SessionAutoloadMiddleware(_starlette(_session_view(write)))
    return SessionMiddleware(app, store=store, lifetime=AGE, rolling=True, cookie_https_only=False)


# -- sync contenders (Flask) --------------------------------------------------------------


def _flask() -> Any:
    from flask import Flask

    return Flask("bench_redis")


def _flask_session_view(app: Any, write: bool) -> None:
    from flask import session

    @app.route("/")
    def view() -> str:
        n = session.get("n")
        if n is None or write:
            session["n"] = (n or 0) + 1
        return "ok"


def sync_bare(server: Server, write: bool) -> Any:
    app = _flask()
    app.route("/")(lambda: "ok")
    return app


def sync_floor(server: Server, write: bool) -> Any:
    app = _flask()
    client = redis.Redis.from_url(server.url)

    @app.route("/")
    def view() -> str:
        client.getex("floor:sync", ex=AGE)
        if write:
            client.set("floor:sync", PAYLOAD, ex=AGE)
        return "ok"

    return app


def sync_floor_lean(server: Server, write: bool) -> Any:
    from sessions_redis.lanes import SyncLane

    app = _flask()
    lane = SyncLane(redis.Redis.from_url(server.url), retries=0)

    @app.route("/")
    def view() -> str:
        lane.execute_command("GETEX", "floor:sync", "EX", AGE)
        if write:
            lane.execute_command("SET", "floor:sync", PAYLOAD, "EX", AGE)
        return "ok"

    return app


def sync_ours(server: Server, write: bool) -> Any:
    from sessions import SessionConfig, SessionManager
    from sessions.flask import FlaskSessions

    app = _flask()
    config = SessionConfig(
        secret="bench-secret-0123456789abcdef0123456789",
        driver="redis",
        age=AGE,
        drivers={"redis": {"url": server.url}},
    )
    FlaskSessions(app, SessionManager(config), templates=False)
    _flask_session_view(app, write)
    return app


def sync_ours_wsgi(server: Server, write: bool) -> Any:
    from flask import request
    from sessions import SessionConfig, SessionManager
    from sessions.wsgi import SessionMiddleware

    app = _flask()
    config = SessionConfig(
        secret="bench-secret-0123456789abcdef0123456789",
        driver="redis",
        age=AGE,
        drivers={"redis": {"url": server.url}},
    )

    @app.route("/")
    def view() -> str:
        session = request.environ["sessions.session"]
        n = session.get("n")
        if n is None or write:
            session["n"] = (n or 0) + 1
        return "ok"

    return SessionMiddleware(app, SessionManager(config))


def sync_ours_tagged(server: Server, write: bool) -> Any:
    from flask import session
    from sessions import SessionManager
    from sessions.flask import FlaskSessions

    app = _flask()
    FlaskSessions(app, SessionManager(_ours_config(server)), templates=False)

    @app.route("/")
    def view() -> str:
        n = session.get("n")
        if n is None:
            session.tag("user:1234567")  # type: ignore[attr-defined]
        if n is None or write:
            session["n"] = (n or 0) + 1
        return "ok"

    return app


def sync_flask_session(server: Server, write: bool) -> Any:
    from flask_session import Session

    app = _flask()
    app.config.update(
        SESSION_TYPE="redis",
        SESSION_REDIS=redis.Redis.from_url(server.url),
        PERMANENT_SESSION_LIFETIME=AGE,
    )
    Session(app)
    _flask_session_view(app, write)
    return app


# -- the versioned write against the unconditional one -------------------------------


def _ours_driver(server: Server, cluster: bool = False, url: str | None = None) -> Any:
    from sessions.config import SessionConfig
    from sessions.driver import DriverConfig
    from sessions_redis.driver import RedisDriver

    options = {opt.name: opt.default for opt in RedisDriver.options}
    options.update(url=url or server.url, cluster=cluster)
    config = SessionConfig(secret="bench-secret-0123456789abcdef0123456789", age=AGE)
    return RedisDriver(DriverConfig("redis", options, AGE, config))


def _write_paths(server: Server, rounds: int, n: int) -> list[Result]:
    """µs per write of a 1 KB session, client only, over the same lane: the
    previous release's ``SET key payload EX age`` against today's compare-and-set
    (the driver's own encode + header + EVALSHA, each write at the version the
    previous one set), untagged and tagged (the tag unchanged, as on every
    request after login)."""
    from sessions.codec import encode
    from sessions_redis.lanes import AsyncLane, SyncLane
    from sessions_redis.scripts import CAS

    plain = {"blob": "x" * 1000, "n": 1}
    tagged = {**plain, "__tag__": "user:1234567"}
    driver = _ours_driver(server)
    group = "one write of a 1 KB session, client only (no app), same lane"
    names = ("SET EX (previous release)", "compare-and-set EVALSHA", "compare-and-set, tagged")
    best: dict[str, float] = {}

    def keep(name: str, us: float) -> None:
        best[name] = min(us, best.get(name, us))

    lane = SyncLane(redis.Redis.from_url(server.url), retries=1)

    def cas_writer(session_id: str, values: dict[str, Any]) -> Callable[[], None]:
        expected = [""]
        server.admin.delete(driver.key(session_id))

        def cas() -> None:
            keys, args = driver._cas_call(session_id, values, expected[0])
            assert CAS.run(lane, keys, args) == (
                2 if expected[0] == "" and "__tag__" in values else 1
            )
            expected[0] = args[1]

        return cas

    sync_paths: dict[str, Callable[[], Any]] = {
        names[0]: lambda: lane.execute_command("SET", "paths:set", encode(plain), "EX", AGE),
        names[1]: cas_writer("paths-cas", plain),
        names[2]: cas_writer("paths-tagged", tagged),
    }
    for _ in range(rounds):
        for name, fn in sync_paths.items():
            for _ in range(100):
                fn()
            start = time.perf_counter()
            for _ in range(n):
                fn()
            keep("sync: " + name, (time.perf_counter() - start) / n * 1e6)
    lane.close()

    async def async_paths() -> None:
        alane = AsyncLane(redis.asyncio.Redis.from_url(server.url), retries=1, timeout=2.0)

        def acas_writer(session_id: str, values: dict[str, Any]) -> Callable[[], Any]:
            expected = [""]
            server.admin.delete(driver.key(session_id))

            async def cas() -> None:
                keys, args = driver._cas_call(session_id, values, expected[0])
                assert await CAS.arun(alane, keys, args) in (1, 2)
                expected[0] = args[1]

            return cas

        async def set_ex() -> None:
            await alane.execute_command("SET", "paths:set", encode(plain), "EX", AGE)

        paths = {
            names[0]: set_ex,
            names[1]: acas_writer("paths-cas", plain),
            names[2]: acas_writer("paths-tagged", tagged),
        }
        for _ in range(rounds):
            for name, fn in paths.items():
                for _ in range(100):
                    await fn()
                start = time.perf_counter()
                for _ in range(n):
                    await fn()
                keep("async: " + name, (time.perf_counter() - start) / n * 1e6)
        await alane.aclose()

    asyncio.run(async_paths())
    driver.close()
    results = []
    for flavour in ("sync", "async"):
        plain_us = best[f"{flavour}: {names[0]}"]
        untagged_us = best[f"{flavour}: {names[1]}"]
        for name in names:
            us = best[f"{flavour}: {name}"]
            notes = {}
            if name != names[0]:
                notes["vs SET"] = f"x{us / plain_us:.2f}"
            if name == names[2]:
                notes["vs untagged"] = f"x{us / untagged_us:.2f}"
            results.append(Result(group, f"{flavour}: {name}", us, notes))
    return results


# -- listing and destroying a tag's sessions ------------------------------------------------

TAG_SESSIONS = 1000


def _counting(plan: Any, steps: list[str]) -> Any:
    """Pass a driver plan's steps through, noting each one (one round trip each;
    a pipeline step reaches every node concerned at once)."""
    try:
        step = plan.send(None)
        while True:
            steps.append(step[0] if step[0] != "command" else step[1][0])
            step = plan.send((yield step))
    except StopIteration as done:
        return done.value


def _tag_queries(server: Server, rounds: int) -> list[Result]:
    """µs and round trips to list, then destroy, the 1,000 sessions of one tag:
    on the standalone server (one script each) and on a 3-master Cluster
    (SMEMBERS, then one pipeline split per node and sent to all at once)."""
    import sessions_redis.driver as module

    group = f"{TAG_SESSIONS:,} sessions of one tag: list (tagged) and destroy (destroy_tagged)"
    steps: list[str] = []
    originals = (module.tagged_plan, module.destroy_tagged_plan)
    module.tagged_plan = lambda *a: _counting(originals[0](*a), steps)  # type: ignore[assignment]
    module.destroy_tagged_plan = lambda *a: _counting(originals[1](*a), steps)  # type: ignore[assignment]
    results = []
    cluster = _start_cluster()
    try:
        targets = [("standalone", _ours_driver(server), [server.admin])]
        if cluster is not None:
            nodes, cleanup = cluster
            url = f"redis://127.0.0.1:{nodes[0].port}/0"
            admins = [redis.Redis(port=node.port) for node in nodes]
            targets.append(("3-master Cluster", _ours_driver(server, True, url), admins))
        # Commands the client sends (standalone: the scripts run the rest inside).
        sent = {
            "standalone": ("evalsha", "eval"),
            "3-master Cluster": ("evalsha", "eval", "smembers", "get", "pttl", "srem", "sadd"),
        }
        for name, driver, admins in targets:
            best: dict[str, float] = {}
            counts: dict[str, str] = {}
            for _ in range(rounds):
                ids = [f"bench-tag-{i:04d}-{time.time_ns()}" for i in range(TAG_SESSIONS)]
                for session_id in ids:
                    driver.write(session_id, {"__tag__": "user:1", "n": 1})
                for label, run in (
                    ("list", lambda: driver.tagged("user:1")),
                    ("destroy", lambda: driver.destroy_tagged("user:1")),
                ):
                    for admin in admins:
                        admin.config_resetstat()
                    steps.clear()
                    start = time.perf_counter()
                    found = run()
                    us = (time.perf_counter() - start) * 1e6
                    assert (len(found) if label == "list" else found) == TAG_SESSIONS
                    best[label] = min(us, best.get(label, us))
                    commands = 0
                    for admin in admins:
                        stats = admin.info("commandstats")
                        commands += sum(
                            int(v["calls"])
                            for k, v in stats.items()
                            if k.removeprefix("cmdstat_") in sent[name]
                        )
                    counts[label] = f"{len(steps)} ({'+'.join(steps)}), {commands} commands sent"
            for label in ("list", "destroy"):
                notes = {"round trips": counts[label]}
                results.append(Result(group, f"{name}: {label}", best[label], notes))
            driver.close()
        if cluster is not None:
            for admin in admins:
                admin.close()
            cleanup()
    finally:
        module.tagged_plan, module.destroy_tagged_plan = originals
    return results


def _start_cluster() -> tuple[list[Any], Callable[[], None]] | None:
    """A 3-master cluster from the redis tests' own builder (None if it cannot start)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "packages/sessions-redis/tests/conftest.py"
    spec = importlib.util.spec_from_file_location("bench_redis_cluster_builder", path)
    if spec is None or spec.loader is None:
        return None
    builder = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = builder  # its dataclasses look their module up
    try:
        spec.loader.exec_module(builder)
        nodes = builder.start_cluster("bench-cluster", 3, 0)
    except Exception as exc:  # no redis-cli, no cluster support: report standalone only
        print(f"(no cluster for the tag queries: {exc})", file=sys.stderr)
        return None

    def cleanup() -> None:
        for node in nodes:
            node.cleanup()

    return nodes, cleanup


# -- concurrent increments on one cookie ---------------------------------------------------

CLIENTS = 8
PER_CLIENT = 50


def _counter_starlette(ours: bool) -> Any:
    from starlette.responses import PlainTextResponse

    # Ours says what the request does (increment, so a merge adds it); the
    # peers' sessions are plain dicts: read, add one, write back.
    async def increment(request: Any) -> Any:
        if ours:
            request.session.increment("n")
        else:
            request.session["n"] = request.session.get("n", 0) + 1
        return PlainTextResponse("ok")

    async def value(request: Any) -> Any:
        return PlainTextResponse(str(request.session.get("n", 0)))

    from starlette.applications import Starlette
    from starlette.routing import Route

    return Starlette(routes=[Route("/", increment), Route("/n", value)])


def _ours_config(server: Server) -> Any:
    from sessions import SessionConfig

    return SessionConfig(
        secret="bench-secret-0123456789abcdef0123456789",
        driver="redis",
        age=AGE,
        drivers={"redis": {"url": server.url}},
    )


def concurrent_ours_async(server: Server) -> Any:
    from sessions import SessionManager
    from sessions.asgi import SessionMiddleware

    return SessionMiddleware(_counter_starlette(True), SessionManager(_ours_config(server)))


def concurrent_starsessions(server: Server) -> Any:
    from starsessions import SessionAutoloadMiddleware, SessionMiddleware
    from starsessions.stores.redis import RedisStore

    store = RedisStore(connection=redis.asyncio.Redis.from_url(server.url))
    app = SessionAutoloadMiddleware(_counter_starlette(False))
    return SessionMiddleware(app, store=store, lifetime=AGE, rolling=True, cookie_https_only=False)


def _counter_flask(app: Any, session: Callable[[], Any], ours: bool) -> Any:
    # A request that fails (ours, when core's bounded retry gives up) is not
    # acknowledged; its traceback is not the benchmark's output.
    app.logger.disabled = True

    @app.route("/")
    def increment() -> str:
        current = session()
        if ours:
            current.increment("n")
        else:
            current["n"] = current.get("n", 0) + 1
        return "ok"

    @app.route("/n")
    def value() -> str:
        return str(session().get("n", 0))

    return app


def concurrent_ours_flask(server: Server) -> Any:
    from flask import session
    from sessions import SessionManager
    from sessions.flask import FlaskSessions

    app = _flask()
    FlaskSessions(app, SessionManager(_ours_config(server)), templates=False)
    return _counter_flask(app, lambda: session, True)


def concurrent_flask_session(server: Server) -> Any:
    from flask import session
    from flask_session import Session

    app = _flask()
    app.config.update(
        SESSION_TYPE="redis",
        SESSION_REDIS=redis.Redis.from_url(server.url),
        PERMANENT_SESSION_LIFETIME=AGE,
    )
    Session(app)
    return _counter_flask(app, lambda: session, False)


_DJANGO_URLS = "bench_redis_django_urls"


def concurrent_django(server: Server) -> Any:
    """Django's cache session backend on Django's Redis cache, through its middleware."""
    import django
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.http import HttpResponse
    from django.urls import path

    def increment(request: Any) -> Any:
        request.session["n"] = request.session.get("n", 0) + 1
        return HttpResponse("ok", content_type="text/plain")

    def value(request: Any) -> Any:
        return HttpResponse(str(request.session.get("n", 0)), content_type="text/plain")

    if _DJANGO_URLS not in sys.modules:
        module = types.ModuleType(_DJANGO_URLS)
        module.urlpatterns = [path("", increment), path("n", value)]  # type: ignore[attr-defined]
        sys.modules[_DJANGO_URLS] = module
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="bench-secret-0123456789abcdef0123456789",
            ALLOWED_HOSTS=["bench"],
            INSTALLED_APPS=["django.contrib.sessions"],
            DATABASES={},
            USE_TZ=True,
            ROOT_URLCONF=_DJANGO_URLS,
            CACHES={
                "default": {
                    "BACKEND": "django.core.cache.backends.redis.RedisCache",
                    "LOCATION": server.url,
                }
            },
            SESSION_ENGINE="django.contrib.sessions.backends.cache",
            SESSION_COOKIE_AGE=AGE,
            MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
        )
        django.setup()
    return WSGIHandler()


async def _asgi_call(app: Any, path: str, jar: Jar) -> tuple[int, bytes]:
    status = [500]
    body: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]
            for key, value in message.get("headers", ()):
                if key.lower() == b"set-cookie":
                    jar.store(value.decode("latin-1"))
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))

    try:
        await app(asgi_scope(path, jar), receive, send)
    except Exception:  # a request that failed is not acknowledged
        return 500, b""
    return status[0], b"".join(body)


def _wsgi_call(app: Any, path: str, jar: Jar) -> tuple[int, bytes]:
    environ = wsgi_environ(path)
    if jar.cookies:
        environ["HTTP_COOKIE"] = jar.header()
    status = [500]

    def start_response(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        status[0] = int(code.split()[0])
        for key, value in headers:
            if key.lower() == "set-cookie":
                jar.store(value)
        return lambda data: None

    try:
        result = app(environ, start_response)
        body = b"".join(result)
        close = getattr(result, "close", None)
        if close is not None:
            close()
    except Exception:
        return 500, b""
    return status[0], body


def _concurrent_async(app: Any) -> tuple[int, int]:
    async def run() -> tuple[int, int]:
        jar = Jar()
        await _asgi_call(app, "/", jar)  # creates the session: n = 1
        acknowledged = [0]

        async def client() -> None:
            own = Jar()
            own.cookies = dict(jar.cookies)
            for _ in range(PER_CLIENT):
                status, _ = await _asgi_call(app, "/", own)
                acknowledged[0] += status == 200

        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        _, body = await _asgi_call(app, "/n", jar)
        return acknowledged[0], int(body) - 1

    return asyncio.run(run())


def _concurrent_sync(app: Any) -> tuple[int, int]:
    jar = Jar()
    _wsgi_call(app, "/", jar)
    acknowledged = [0] * CLIENTS
    start = threading.Barrier(CLIENTS)

    def client(index: int) -> None:
        own = Jar()
        own.cookies = dict(jar.cookies)
        start.wait()
        for _ in range(PER_CLIENT):
            status, _ = _wsgi_call(app, "/", own)
            acknowledged[index] += status == 200

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _, body = _wsgi_call(app, "/n", jar)
    return sum(acknowledged), int(body) - 1


CONCURRENT: list[tuple[str, Callable[[Server], Any], bool]] = [
    ("sessions-redis (ASGI, asyncio tasks)", concurrent_ours_async, True),
    ("starsessions RedisStore (asyncio tasks)", concurrent_starsessions, True),
    ("sessions-redis (Flask, threads)", concurrent_ours_flask, False),
    ("Flask-Session redis (threads)", concurrent_flask_session, False),
    ("Django cache backend on RedisCache (threads)", concurrent_django, False),
]


def _concurrent(server: Server) -> list[Result]:
    group = (
        f"{CLIENTS * PER_CLIENT} increments of one counter, "
        f"{CLIENTS} concurrent clients on one cookie"
    )
    results = []
    for name, factory, is_async in CONCURRENT:
        started = time.perf_counter()
        app = factory(server)
        acknowledged, survived = (_concurrent_async if is_async else _concurrent_sync)(app)
        seconds = time.perf_counter() - started
        notes = {
            "acknowledged": acknowledged,
            "survived": f"{survived} ({survived / (CLIENTS * PER_CLIENT):.0%})",
            "lost acknowledged": max(acknowledged - survived, 0),
        }
        results.append(Result(group, name, seconds / (CLIENTS * PER_CLIENT) * 1e6, notes))
    return results


# -- the run ------------------------------------------------------------------------------

Factory = Callable[[Server, bool], Any]

ASYNC: list[tuple[str, Factory]] = [
    ("bare app", async_bare),
    ("floor", async_floor),
    ("floor, connection API", async_floor_lean),
    ("sessions-redis", async_ours),
    ("sessions-redis, tagged session", async_ours_tagged),
    ("starsessions RedisStore", async_starsessions),
]
SYNC: list[tuple[str, Factory]] = [
    ("bare app", sync_bare),
    ("floor", sync_floor),
    ("floor, connection API", sync_floor_lean),
    ("sessions-redis", sync_ours),
    ("sessions-redis, tagged session", sync_ours_tagged),
    ("sessions-redis, WSGI middleware", sync_ours_wsgi),
    ("Flask-Session redis", sync_flask_session),
]


def _client_paths(server: Server, rounds: int, n: int) -> list[Result]:
    """µs per GETEX of a 1 KB session, client only, for the client paths one
    could build on: which parser, and redis-py's command API or its connections."""
    from redis._parsers import _AsyncRESP2Parser, _RESP2Parser
    from sessions_redis.lanes import AsyncLane, SyncLane

    key = "paths:session"
    server.admin.set(key, b'{"blob":"' + b"x" * 1000 + b'"}')
    group = "one GETEX of a 1 KB session, client only (no app)"
    sync_paths: dict[str, Callable[[], Any]] = {}
    python_client = redis.Redis.from_url(server.url, parser_class=_RESP2Parser)
    hiredis_client = redis.Redis.from_url(server.url)
    lane = SyncLane(redis.Redis.from_url(server.url), retries=1)
    sync_paths["sync: client.getex, Python parser"] = lambda: python_client.getex(key, ex=AGE)
    sync_paths["sync: client.getex, hiredis parser"] = lambda: hiredis_client.getex(key, ex=AGE)
    sync_paths["sync: sessions-redis lane (hiredis)"] = lambda: lane.execute_command(
        "GETEX", key, "EX", AGE
    )

    def time_sync(fn: Callable[[], Any]) -> float:
        for _ in range(100):
            fn()
        start = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - start) / n * 1e6

    async def async_paths() -> dict[str, float]:
        python_client = redis.asyncio.Redis.from_url(server.url, parser_class=_AsyncRESP2Parser)
        hiredis_client = redis.asyncio.Redis.from_url(server.url)
        lane = AsyncLane(redis.asyncio.Redis.from_url(server.url), retries=1, timeout=2.0)
        paths: dict[str, Callable[[], Any]] = {
            "async: client.getex, Python parser": lambda: python_client.getex(key, ex=AGE),
            "async: client.getex, hiredis parser": lambda: hiredis_client.getex(key, ex=AGE),
            "async: sessions-redis lane (hiredis)": lambda: lane.execute_command(
                "GETEX", key, "EX", AGE
            ),
        }
        best: dict[str, float] = {}
        for _ in range(rounds):
            for name, fn in paths.items():
                for _ in range(100):
                    await fn()
                start = time.perf_counter()
                for _ in range(n):
                    await fn()
                us = (time.perf_counter() - start) / n * 1e6
                best[name] = min(us, best.get(name, us))
        await python_client.aclose()
        await hiredis_client.aclose()
        await lane.aclose()
        return best

    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, fn in sync_paths.items():
            us = time_sync(fn)
            best[name] = min(us, best.get(name, us))
    best.update(asyncio.run(async_paths()))
    python_client.close()
    hiredis_client.close()
    lane.close()
    return [Result(group, name, us) for name, us in best.items()]


def _cpu_us(run: Callable[[int], None], n: int) -> float:
    """Process CPU µs per request over n requests: the client-side work alone,
    less sensitive than wall time to other processes on a shared machine."""
    run(20)
    start = time.process_time()
    run(n)
    return (time.process_time() - start) / n * 1e6


def _measure(
    server: Server,
    group: str,
    contenders: list[tuple[str, Factory]],
    write: bool,
    is_async: bool,
    rounds: int,
    batch: int,
    repeats: int,
) -> list[Result]:
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    runner = asgi_runner if is_async else wsgi_runner
    timer = time_asgi if is_async else time_wsgi
    for _ in range(rounds):
        for name, factory in contenders:
            us = timer(factory(server, write), batch=batch, repeats=repeats)
            wall[name] = min(us, wall.get(name, us))
            us = _cpu_us(runner(factory(server, write)), batch)
            cpu[name] = min(us, cpu.get(name, us))
    results = []
    for name, factory in contenders:
        cmds = server.commands_per_request(runner(factory(server, write)))
        notes = {"cmds/req": cmds, "cpu": f"{cpu[name]:.1f} µs x{cpu[name] / cpu['floor']:.2f}"}
        results.append(Result(group, name, wall[name], notes))
    return results


def main(quick: bool) -> str:
    """Run every group and return the report."""
    warnings.simplefilter("ignore", ResourceWarning)
    rounds, batch, repeats = (1, 300, 3) if quick else (11, 400, 5)
    server = Server()
    started = time.perf_counter()
    results: list[Result] = []
    try:
        results += _client_paths(server, rounds, batch * repeats)
        results += _write_paths(server, rounds, batch * repeats)
        results += _tag_queries(server, 3 if quick else 7)
        results += _concurrent(server)
        for write in (False, True):
            kind = "read-write" if write else "read-only"
            results += _measure(
                server, f"async (Starlette) {kind}", ASYNC, write, True, rounds, batch, repeats
            )
            results += _measure(
                server, f"sync (Flask) {kind}", SYNC, write, False, rounds, batch, repeats
            )
    finally:
        server.close()
    header = (
        f"redis-server on 127.0.0.1:{server.port}, redis-py {redis.__version__} "
        f"(hiredis parser: {redis.utils.HIREDIS_AVAILABLE}); best of {rounds} interleaved "
        f"rounds of {repeats}x{batch} requests; {time.perf_counter() - started:.0f} s"
    )
    return header + report(results, baseline="floor")  # the client-path group has no floor
