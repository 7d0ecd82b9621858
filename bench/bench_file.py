"""File sessions: sessions-file against Flask-Session's filesystem backend
(cachelib ``FileSystemCache``), Beaker's file backend and Django's file backend.

Every contender keeps its session files in its own fresh directory under the
system temporary directory (the same file system for all; its type is in the
header). Apps are driven in-process over WSGI (``bench.harness.time_wsgi``):
a read-only request reads an existing session, a read-write one changes a
counter in it. Rows per framework: the bare app, then with sessions; ``adds``
is the cost over that framework's bare app, which is what a session library is
responsible for. Semantics differ and are noted: on a read-only request
sessions-file refreshes the expiry with one ``futimens`` on the file it just
read, Flask-Session rewrites the whole file (to slide its expiry), Beaker
rewrites it to save the access time, Django does nothing (its expiry does not
slide on reads).

sessions-file runs at its documented default durability (``fsync=False``:
atomic rename, no flush to the device). The durability section measures what
``fsync=True`` costs, per write and per read-write request. None of the peers
flushes to the device either (cachelib and Django rename a temporary file,
Beaker writes in place).

The GC section creates N session files (half of them expired) and times one
``FileDriver.gc()``: 1,000,000 in a full run, 20,000 with ``--quick``. Run
just that part with ``python bench/bench_file.py --gc-files N``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from harness import Result, report, time_wsgi  # noqa: E402

SECRET = "bench-secret-0123456789abcdef0123456789"
AGE = 7200
_DIRS: list[str] = []


def _scratch(name: str) -> str:
    path = tempfile.mkdtemp(prefix=f"bench-file-{name}-")
    _DIRS.append(path)
    return path


def _cleanup() -> None:
    while _DIRS:
        shutil.rmtree(_DIRS.pop(), ignore_errors=True)


def _fs_type(path: str) -> str:
    try:
        out = subprocess.run(
            ["df", "--output=fstype", path], capture_output=True, text=True, check=True
        ).stdout.split()
        return out[-1]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "unknown"


# -- plain WSGI: ours, Beaker ------------------------------------------------------------


def _ok(start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def wsgi_bare(write: bool) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        return _ok(start_response)

    return app


def _manager(**options: Any) -> Any:
    from sessions import SessionConfig, SessionManager

    config = SessionConfig(
        secret=SECRET,
        driver="file",
        age=AGE,
        drivers={"file": {"location": _scratch("ours"), **options}},
    )
    return SessionManager(config)


def _ours_wsgi(write: bool, **options: Any) -> Any:
    from sessions.wsgi import SessionMiddleware

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = environ["sessions.session"]
        n = session.get("n")
        if n is None or write:
            session["n"] = (n or 0) + 1
        return _ok(start_response)

    return SessionMiddleware(app, _manager(**options))


def wsgi_ours(write: bool) -> Any:
    return _ours_wsgi(write)


def wsgi_ours_fsync(write: bool) -> Any:
    return _ours_wsgi(write, fsync=True)


def wsgi_beaker(write: bool) -> Any:
    from beaker.middleware import SessionMiddleware

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = environ["beaker.session"]
        n = session.get("n")
        if n is None or write:
            session["n"] = (n or 0) + 1
            session.save()
        return _ok(start_response)

    data = _scratch("beaker")
    return SessionMiddleware(
        app,
        {
            "session.type": "file",
            "session.data_dir": data,
            "session.lock_dir": os.path.join(data, "lock"),
            "session.timeout": AGE,
            "session.key": "beaker.session.id",
        },
    )


# -- Flask: ours, Flask-Session ---------------------------------------------------------


def _flask() -> Any:
    from flask import Flask

    return Flask("bench_file")


def _flask_view(app: Any, write: bool) -> Any:
    from flask import session

    @app.route("/")
    def view() -> str:
        n = session.get("n")
        if n is None or write:
            session["n"] = (n or 0) + 1
        return "ok"

    return app


def flask_bare(write: bool) -> Any:
    app = _flask()
    app.route("/")(lambda: "ok")
    return app


def flask_ours(write: bool) -> Any:
    from sessions.flask import FlaskSessions

    app = _flask()
    FlaskSessions(app, _manager(), templates=False)
    return _flask_view(app, write)


def flask_session(write: bool) -> Any:
    from cachelib.file import FileSystemCache
    from flask_session import Session

    app = _flask()
    app.config.update(
        SESSION_TYPE="cachelib",
        SESSION_CACHELIB=FileSystemCache(_scratch("cachelib"), threshold=500, mode=0o600),
        PERMANENT_SESSION_LIFETIME=AGE,
    )
    Session(app)
    return _flask_view(app, write)


# -- Django -----------------------------------------------------------------------------

_URLS = "bench_file_django_urls"


def _django_view(request: Any) -> Any:
    from django.http import HttpResponse

    n = request.session.get("n")
    if n is None or request.path.endswith("rw"):
        request.session["n"] = (n or 0) + 1
    return HttpResponse("ok", content_type="text/plain")


def _django_bare_view(request: Any) -> Any:
    from django.http import HttpResponse

    return HttpResponse("ok", content_type="text/plain")


@contextmanager
def django_settings() -> Iterator[None]:
    """Django configured for the file backend (other benchmarks may have configured it)."""
    import django
    from django.conf import settings
    from django.test.utils import override_settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY=SECRET,
            ALLOWED_HOSTS=["bench"],
            INSTALLED_APPS=["django.contrib.sessions"],
            DATABASES={},
            USE_TZ=True,
        )
        django.setup()
    if _URLS not in sys.modules:
        from django.urls import path

        module = types.ModuleType(_URLS)
        module.urlpatterns = [  # type: ignore[attr-defined]
            path("ro", _django_view),
            path("rw", _django_view),
            path("bare/ro", _django_bare_view),
            path("bare/rw", _django_bare_view),
        ]
        sys.modules[_URLS] = module
    with override_settings(
        ROOT_URLCONF=_URLS,
        ALLOWED_HOSTS=["bench"],
        SESSION_ENGINE="django.contrib.sessions.backends.file",
        SESSION_COOKIE_AGE=AGE,
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
    ):
        yield


def django_bare(write: bool) -> Any:
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings

    with override_settings(MIDDLEWARE=[]):
        return WSGIHandler()


def django_file(write: bool) -> Any:
    from django.contrib.sessions.backends.file import SessionStore
    from django.core.handlers.wsgi import WSGIHandler

    # The file backend caches its directory on the class at first use.
    SessionStore._storage_path = _scratch("django")  # type: ignore[attr-defined]
    return WSGIHandler()


# -- the request benchmark --------------------------------------------------------------

Factory = Callable[[bool], Any]
#: (row, bare row it adds to, factory, path prefix)
CONTENDERS: list[tuple[str, str, Factory, str]] = [
    ("WSGI bare", "", wsgi_bare, ""),
    ("sessions-file (sessions.wsgi)", "WSGI bare", wsgi_ours, ""),
    ("Beaker file", "WSGI bare", wsgi_beaker, ""),
    ("Flask bare", "", flask_bare, ""),
    ("sessions-file (sessions.flask)", "Flask bare", flask_ours, ""),
    ("Flask-Session cachelib FileSystemCache", "Flask bare", flask_session, ""),
    ("Django bare", "", django_bare, "bare/"),
    ("Django file backend", "Django bare", django_file, ""),
    ("sessions-file fsync=True (sessions.wsgi)", "WSGI bare", wsgi_ours_fsync, ""),
]


def _requests(rounds: int, batch: int, repeats: int) -> list[Result]:
    results: list[Result] = []
    with django_settings():
        for write in (False, True):
            kind = "read-write" if write else "read-only"
            best: dict[str, float] = {}
            for _ in range(rounds):
                for name, _bare, factory, prefix in CONTENDERS:
                    if not write and "fsync" in name:
                        continue  # fsync only changes writes
                    app = factory(write)
                    path = "/" + prefix + ("rw" if write else "ro") if "Django" in name else "/"
                    us = time_wsgi(app, path, batch=batch, repeats=repeats)
                    best[name] = min(us, best.get(name, us))
                    _cleanup()
            for name, bare, _factory, _prefix in CONTENDERS:
                if name in best:
                    notes = {"adds": f"{best[name] - best[bare]:.1f} µs"} if bare else {}
                    results.append(Result(f"WSGI {kind}", name, best[name], notes))
            added = [
                Result(f"WSGI {kind}: µs added over the bare app", name, best[name] - best[bare])
                for name, bare, _f, _p in CONTENDERS
                if bare and name in best
            ]
            results += added
    return results


# -- durability: the cost of fsync --------------------------------------------------------


def _driver(location: str, **options: Any) -> Any:
    from sessions import SessionConfig
    from sessions.driver import DriverConfig, validate_options
    from sessions_file import FileDriver

    return FileDriver(
        DriverConfig(
            name="file",
            options=validate_options("file", FileDriver, {"location": location, **options}),
            age=AGE,
            session=SessionConfig(secret=SECRET, age=AGE),
        )
    )


def _write_cost(fsync: bool, swap: bool, n: int, repeats: int) -> float:
    from sessions.keys import new_token, storage_key

    driver = _driver(_scratch("durability"), fsync=fsync)
    driver._swap = swap and driver._swap
    keys = [storage_key(new_token()) for _ in range(32)]
    values = {"user": {"id": 12345, "name": "ada"}, "cart": [1, 2, 3], "n": 0}
    for key in keys:
        driver.write(key, values)
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        for i in range(n):
            driver.write(keys[i % 32], values)
        samples.append((time.perf_counter() - started) / n * 1e6)
    _cleanup()
    samples.sort()
    return samples[len(samples) // 2]


def _durability(quick: bool) -> str:
    from sessions_file import locks

    n, repeats = (200, 3) if quick else (1000, 5)
    rows = []
    modes = [("swap", True), ("temporary file", False)] if locks.exchange else []
    modes = modes or [("temporary file", False)]
    for label, swap in modes:
        plain = _write_cost(False, swap, n, repeats)
        flushed = _write_cost(True, swap, n, repeats)
        rows.append(f"  {label:<15} fsync=False {plain:9.1f} µs/write")
        rows.append(f"  {label:<15} fsync=True  {flushed:9.1f} µs/write  x{flushed / plain:5.1f}")
    return (
        "\n\n## durability: one driver.write() of a small session, rewritten (median µs)\n"
        + "\n".join(rows)
    )


# -- the versioned write: compare-and-set against the previous release's plain write --------

#: The last commit whose file driver wrote without versions (the previous release).
PREVIOUS_RELEASE = "e71a427"
_PREVIOUS_FILES = "packages/sessions-file/src/sessions_file/files.py"


def _previous_release_write(driver: Any) -> Callable[[str, dict[str, Any]], None] | None:
    """The previous release's ``FileDriver.write`` (unconditional, no version), its file module
    loaded from git history; None outside a git checkout."""
    from sessions.codec import encode

    try:
        source = subprocess.run(
            ["git", "-C", str(HERE), "show", f"{PREVIOUS_RELEASE}:{_PREVIOUS_FILES}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("sessions_file._previous_files")
    module.__package__ = "sessions_file"  # its relative imports: today's locks and layout
    exec(compile(source, f"{PREVIOUS_RELEASE}:{_PREVIOUS_FILES}", "exec"), module.__dict__)

    def write(key: str, values: dict[str, Any]) -> None:
        directory = driver.layout.directory(key)
        path = os.path.join(directory, key)
        data = encode(values)
        if driver._swap:
            module.write_swapped(directory, path, driver.layout.spare(key), data, False)
        else:
            module.write_atomic(directory, path, key, data, False)

    return write


def _write_contenders(swap: bool) -> dict[str, Callable[[int], None]]:
    """One write of a small session per call, round-robin over 32 sessions."""
    from sessions.keys import new_token, storage_key

    values = {"user": {"id": 12345, "name": "ada"}, "cart": [1, 2, 3], "n": 0}
    tagged_values = {**values, "__tag__": "user-12345"}
    contenders: dict[str, Callable[[int], None]] = {}

    def keys_of(driver: Any, stored: dict[str, Any]) -> list[str]:
        driver._swap = swap and driver._swap
        keys = [storage_key(new_token()) for _ in range(32)]
        for key in keys:
            driver.write(key, stored)
            driver.write(key, stored)  # a spare too, as for any session written twice
        return keys

    old_driver = _driver(_scratch("writes"))
    old_driver._swap = swap and old_driver._swap
    previous = _previous_release_write(old_driver)
    if previous is not None:
        old_keys = [storage_key(new_token()) for _ in range(32)]
        for key in old_keys:
            previous(key, values)
            previous(key, values)
        contenders["previous release write() (unconditional)"] = lambda i: previous(
            old_keys[i % 32], values
        )

    plain = _driver(_scratch("writes"))
    plain_keys = keys_of(plain, values)
    contenders["write() (last write wins, version bumped)"] = lambda i: plain.write(
        plain_keys[i % 32], values
    )

    def versioned(stored: dict[str, Any]) -> Callable[[int], None]:
        driver = _driver(_scratch("writes"))
        keys = keys_of(driver, stored)
        versions = {key: driver.read_versioned(key).version for key in keys}

        def write(i: int) -> None:
            key = keys[i % 32]
            if not driver.write_versioned(key, stored, versions[key]):
                raise AssertionError("a compare-and-set failed with no concurrent writer")
            versions[key] += 1

        return write

    contenders[_UNTAGGED] = versioned(values)
    contenders[_TAGGED] = versioned(tagged_values)
    return contenders


_UNTAGGED = "write_versioned() (compare-and-set)"
_TAGGED = "write_versioned(), tagged session"


def _paired(samples: list[float], bases: list[float]) -> float:
    """Median of the per-round ratios ``samples[i] / bases[i]``."""
    return statistics.median(us / base for us, base in zip(samples, bases, strict=True))


def _writes(quick: bool) -> str:
    """µs per write of each contender, in rounds: each round runs one batch of
    every contender back to back, so load on the machine hits them alike.
    Both wall-clock and CPU time (user + system, this process: what the write
    itself costs, without the time a busy machine keeps it waiting) are
    medians over the rounds; ratios are medians of the per-round CPU-time
    ratios against the round's first row, robust to load drifting between rounds."""
    from sessions_file import locks

    n, rounds = (200, 9) if quick else (200, 121)
    rows = []
    modes = [("swap", True), ("temporary file", False)] if locks.exchange else []
    for label, swap in modes or [("temporary file", False)]:
        contenders = _write_contenders(swap)
        wall: dict[str, list[float]] = {name: [] for name in contenders}
        cpu: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(rounds):
            for name, write in contenders.items():
                started, used = time.perf_counter(), time.process_time()
                for i in range(n):
                    write(i)
                cpu[name].append((time.process_time() - used) / n * 1e6)
                wall[name].append((time.perf_counter() - started) / n * 1e6)
        _cleanup()
        first = next(iter(cpu.values()))
        for name in contenders:
            rows.append(
                f"  {label:<15} {name:<45} {statistics.median(wall[name]):8.1f} µs wall "
                f"{statistics.median(cpu[name]):8.1f} µs CPU  x{_paired(cpu[name], first):4.2f}"
            )
        tagged = _paired(cpu[_TAGGED], cpu[_UNTAGGED])
        rows.append(
            f"  {label:<15} {'tagged / untagged write_versioned()':<45} {'':>35}x{tagged:5.3f}"
        )
    return (
        "\n\n## versioned writes: one driver write of a small session, rewritten "
        f"(medians of {rounds} rounds of {n} writes each; ratio: median per-round "
        "CPU-time ratio to the first row)\n" + "\n".join(rows)
    )


# -- garbage collection on many files ----------------------------------------------------


def create_session_files(root: str, count: int, expired_share: float = 0.5) -> float:
    """Create ``count`` session files under ``root`` (2 shard levels) as the driver
    writes them (header, values; expiry in the modification time), the first
    ``expired_share`` of them expired an hour ago. Returns seconds."""
    from sessions_file.header import NO_TAG, first

    started = time.perf_counter()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for a in alphabet:
        os.mkdir(os.path.join(root, a), 0o700)
        for b in alphabet:
            os.mkdir(os.path.join(root, a, b), 0o700)
    payload = first(AGE, NO_TAG).pack() + b'{"user":{"id":12345,"name":"ada"},"cart":[1,2,3]}'
    past, future = time.time() - 3600, time.time() + AGE
    expired = int(count * expired_share)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for i in range(count):
        key = secrets.token_urlsafe(32)  # 43 base64url characters, like a storage key
        path = f"{root}/{key[0]}/{key[1]}/{key}"
        fd = os.open(path, flags, 0o600)
        os.write(fd, payload)
        os.close(fd)
        when = past if i < expired else future
        os.utime(path, (when, when))
    return time.perf_counter() - started


def gc_benchmark(count: int) -> str:
    """Create ``count`` files (half expired), time ``FileDriver.gc()`` on them."""
    root = _scratch("gc")
    try:
        created = create_session_files(root, count)
        driver = _driver(root)
        calls = [0]

        def progress(scanned: int, total: int | None) -> None:
            calls[0] += 1

        first = driver.gc(progress=progress)
        again = driver.gc()
    finally:
        _cleanup()
    rate = first.scanned / first.seconds if first.seconds else 0.0
    return (
        f"\n\n## gc on {count:,} session files, half expired ({_fs_type(tempfile.gettempdir())})\n"
        f"  creating the files             {created:8.1f} s\n"
        f"  gc: scanned {first.scanned:,}, removed {first.removed:,}, "
        f"freed {first.bytes_freed or 0:,} bytes in {first.seconds:.1f} s "
        f"({rate:,.0f} files/s, {calls[0]} progress calls)\n"
        f"  gc again (nothing expired): scanned {again.scanned:,}, removed {again.removed}, "
        f"{again.seconds:.1f} s"
    )


def main(quick: bool) -> str:
    """Run every section and return the report."""
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", ResourceWarning)
    rounds, batch, repeats = (1, 300, 3) if quick else (3, 1000, 5)
    started = time.perf_counter()
    try:
        results = _requests(rounds, batch, repeats)
        durability = _durability(quick)
        writes = _writes(quick)
        gc = gc_benchmark(20_000 if quick else 1_000_000)
    finally:
        _cleanup()
    import beaker
    import cachelib
    import django
    import flask_session

    header = (
        f"session files under {tempfile.gettempdir()} ({_fs_type(tempfile.gettempdir())}); "
        f"Flask-Session {flask_session.__version__}, cachelib {cachelib.__version__}, "
        f"Beaker {beaker.__version__}, Django {django.__version__}; best of {rounds} "
        f"interleaved rounds of {repeats}x{batch} requests; "
        f"{time.perf_counter() - started:.0f} s"
    )
    body = report(results, baseline="sessions-file (sessions.wsgi)")
    return header + body + durability + writes + gc


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="GC and write timing of the file driver")
    parser.add_argument("--gc-files", type=int, default=1_000_000, help="files to create")
    parser.add_argument(
        "--writes", action="store_true", help="only the versioned-write section (no gc)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    args = parser.parse_args()
    try:
        print(_writes(args.quick) if args.writes else gc_benchmark(args.gc_files))
    finally:
        _cleanup()
