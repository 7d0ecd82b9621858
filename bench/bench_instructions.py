"""Instructions per request, counted by valgrind's callgrind: a figure no other
process on the machine can disturb.

Wall-clock ratios on a shared 2-core virtual machine move by 10% and more between
runs (the same code's batches vary 2x from one to the next), which is wider than
the margins the targets of issues 12 and 15 leave. callgrind counts the
instructions the process executes, the same on every run of the same code, so a
ratio of counts says what the library itself costs the client process:

* no access, lazy (issue 15): a request carrying a session cookie to a handler
  that never uses its session, ``SessionConfig(lazy=True)``, against the same
  bare app sent the same cookie; ASGI (Starlette) and WSGI (Flask under
  ``sessions.wsgi``). The driver plays no part in such a request (it is never
  called), so the memory driver stands for all of them;
* a changed session on Redis (issue 12): ours (GETEX, then the compare-and-set
  EVALSHA) against the floor, the bare app sending GETEX and SET EX through
  redis-py's client API; ASGI, Flask's integration and the plain WSGI middleware;
* read-only with the touch not due on Redis (issue 15): ours (one GET) against
  the bare app plus a raw GET.

Counted in the client process only: Redis' own work (its script runs inside the
server) and the loopback round trips are not in these figures; bench_redis.py and
bench_lazy.py measure those in wall-clock time. Each workload runs in a process
of its own under ``valgrind --tool=callgrind``, counting only inside the measured
requests (``--toggle-collect`` on the C iterator that drives them), after a
warm-up. Needs valgrind (Debian package ``valgrind``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import types
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import starmap
from pathlib import Path
from typing import Any

from harness import Jar, Result, asgi_runner, report, wsgi_runner

HERE = Path(__file__).resolve().parent
LIMIT = 1.15
WARM_UP = 200
#: (group, baseline workload, our workloads)
GROUPS: list[tuple[str, str, tuple[str, ...]]] = [
    ("no access, lazy, ASGI (issue 15)", "asgi-bare", ("asgi-lazy",)),
    ("no access, lazy, WSGI (issue 15)", "wsgi-bare", ("wsgi-lazy",)),
    ("changed session on Redis, ASGI (issue 12)", "asgi-floor-rw", ("asgi-ours-rw",)),
    (
        "changed session on Redis, WSGI (issue 12)",
        "wsgi-floor-rw",
        ("wsgi-ours-rw-flask", "wsgi-ours-rw-wsgi"),
    ),
    ("read-only, touch not due, Redis, ASGI (issue 15)", "asgi-raw-get", ("asgi-ours-ro",)),
]


# -- the workloads, each run in a child process ------------------------------------------


def _with_session(run_put: Callable[[int], float]) -> None:
    run_put(1)


def _workload(name: str, redis_url: str) -> Callable[[int], float]:
    """A ``run_batch(n)`` for the named workload, its session already made."""
    import bench_lazy
    import bench_redis

    server = types.SimpleNamespace(url=redis_url)
    kind, _, what = name.partition("-")
    if what in ("bare", "lazy"):
        sessions = bench_lazy.manager("memory", {}, lazy=True)
        jar = Jar()
        if kind == "asgi":
            put, _close = asgi_runner(bench_lazy.starlette_app(sessions), "/put", jar=jar)
            _with_session(put)
            app = bench_lazy.starlette_app(sessions if what == "lazy" else None)
            return asgi_runner(app, "/", jar=Jar(jar.cookies))[0]
        _with_session(wsgi_runner(bench_lazy.wsgi_app(sessions), "/put", jar=jar))
        app = bench_lazy.wsgi_app(sessions if what == "lazy" else None)
        return wsgi_runner(app, "/", jar=Jar(jar.cookies))
    if what == "raw-get":
        return _raw_get(redis_url)
    if what == "ours-ro":
        redis_sessions = bench_lazy.manager(
            "redis", {"url": redis_url}, lazy=True, touch_interval="5m"
        )
        jar = Jar()
        put, _close = asgi_runner(bench_lazy.starlette_app(redis_sessions), "/put", jar=jar)
        _with_session(put)
        return asgi_runner(bench_lazy.starlette_app(redis_sessions), "/read", jar=jar)[0]
    builders: dict[str, Callable[[Any, bool], Any]] = {
        "asgi-floor-rw": bench_redis.async_floor,
        "asgi-ours-rw": bench_redis.async_ours,
        "wsgi-floor-rw": bench_redis.sync_floor,
        "wsgi-ours-rw-flask": bench_redis.sync_ours,
        "wsgi-ours-rw-wsgi": bench_redis.sync_ours_wsgi,
    }
    app = builders[name](server, True)
    if kind == "asgi":
        return asgi_runner(app, "/")[0]
    return wsgi_runner(app, "/")


def _raw_get(redis_url: str) -> Callable[[int], float]:
    import redis.asyncio
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    client = redis.asyncio.Redis.from_url(redis_url)

    async def read(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(await client.get("bench:raw")))

    redis.Redis.from_url(redis_url).set("bench:raw", b'{"user":42}')
    return asgi_runner(Starlette(routes=[Route("/read", read)]), "/read")[0]


def child(name: str, redis_url: str, requests: int) -> None:
    """Warm the workload up, then serve ``requests`` in one batch inside ``starmap``."""
    run_batch = _workload(name, redis_url)
    run_batch(WARM_UP)
    # callgrind collects only while inside starmap's C iterator: this one batch
    # (one event-loop entry for all of an ASGI batch's requests, as in a server).
    list(starmap(run_batch, [(requests,)]))


# -- the parent --------------------------------------------------------------------------


def _count(name: str, redis_url: str, requests: int) -> float:
    output = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--collect-atstart=no",
            "--toggle-collect=starmap_next",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--child",
            name,
            redis_url,
            str(requests),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=HERE,
    )
    for line in output.stderr.splitlines():
        if "refs:" in line:
            return int(line.rsplit(":", 1)[1].replace(",", "")) / requests
    raise RuntimeError(f"callgrind gave no count for {name}:\n{output.stderr[-2000:]}")


def main(quick: bool) -> str:
    if shutil.which("valgrind") is None:
        raise SystemExit("bench_instructions needs valgrind (apt-get install valgrind)")
    from stores import private_stores

    requests = 100 if quick else 1000
    names = [name for _, base, ours in GROUPS for name in (base, *ours)]
    with private_stores() as options:
        url = options["redis"]["url"]
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            counts = dict(zip(names, pool.map(lambda n: _count(n, url, requests), names)))
    results: list[Result] = []
    for group, base, ours in GROUPS:
        title = f"{group}: instructions per request, client process (target <= {LIMIT}x)"
        results.append(Result(title, base, counts[base] / 1000))
        for name in ours:
            ratio = counts[name] / counts[base]
            results.append(Result(title, name, counts[name] / 1000, {"ratio": f"{ratio:.3f}"}))
    text = report(results, baseline=None).replace("µs/request", "k instructions")
    return f"callgrind, {requests} requests per workload after {WARM_UP} warm-up requests" + text


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        sys.path.insert(0, str(HERE))
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.path.insert(0, str(HERE))
        print(main(quick="--quick" in sys.argv))
