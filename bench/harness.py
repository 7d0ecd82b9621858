"""In-process request timing shared by every benchmark in bench/.

Each benchmark drives an application directly (no server, no sockets), with a
tiny cookie jar so sessions persist across requests as in a browser, and
reports the median microseconds per request over several batches. Figures are
meant to be read as ratios between rows of the same run.
"""

from __future__ import annotations

import asyncio
import io
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


@dataclass
class Result:
    """One row: a named contender and its median cost per request."""

    group: str
    name: str
    us: float
    notes: dict[str, Any] = field(default_factory=dict)


class Jar:
    """Keeps the cookies a response sets, sends them back on the next request.

    The ``Cookie`` header is built once per change of the jar, so the harness
    costs every contender the same whether or not it carries cookies.
    """

    def __init__(self, cookies: dict[str, str] | None = None) -> None:
        self.cookies: dict[str, str] = dict(cookies or {})
        self._header: str | None = None

    def header(self) -> str:
        if self._header is None:
            self._header = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return self._header

    def store(self, set_cookie: str) -> None:
        self._header = None
        pair = set_cookie.split(";", 1)[0]
        name, _, value = pair.partition("=")
        lowered = set_cookie.lower()
        if "max-age=0" in lowered or "expires=thu, 01 jan 1970" in lowered:
            self.cookies.pop(name.strip(), None)
        else:
            self.cookies[name.strip()] = value.strip()


def _median_us(run_batch: Callable[[int], float], batch: int, repeats: int) -> float:
    run_batch(max(batch // 5, 20))  # warm-up: caches, pools, first session write
    samples = [run_batch(batch) / batch * 1e6 for _ in range(repeats)]
    return statistics.median(samples)


def time_asgi(
    app: ASGIApp, path: str = "/", *, batch: int = 2000, repeats: int = 7, method: str = "GET"
) -> float:
    """Median µs per request of ``app`` served in-process, cookies carried over."""
    run_batch, close = asgi_runner(app, path, method=method)
    try:
        return _median_us(run_batch, batch, repeats)
    finally:
        close()


def sample(
    runners: dict[str, Callable[[int], float]], *, batch: int = 2000, repeats: int = 7
) -> dict[str, list[float]]:
    """µs per request of every batch of each runner, batches interleaved round-robin.

    Interleaving spreads any background load evenly over the contenders, so
    their ratios stay meaningful on a busy machine.
    """
    for run_batch in runners.values():
        run_batch(max(batch // 5, 20))
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run_batch in runners.items():
            samples[name].append(run_batch(batch) / batch * 1e6)
    return samples


def compare(
    runners: dict[str, Callable[[int], float]], *, batch: int = 2000, repeats: int = 7
) -> dict[str, float]:
    """Median µs per request of each runner (see :func:`sample`)."""
    samples = sample(runners, batch=batch, repeats=repeats)
    return {name: statistics.median(values) for name, values in samples.items()}


def asgi_scope(path: str, jar: Jar, method: str = "GET") -> dict[str, Any]:
    """An HTTP scope for ``path`` carrying the jar's cookies."""
    headers = [(b"host", b"bench")]
    if jar.cookies:
        headers.append((b"cookie", jar.header().encode("latin-1")))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }


def asgi_runner(
    app: ASGIApp, path: str = "/", *, method: str = "GET", jar: Jar | None = None
) -> tuple[Callable[[int], float], Callable[[], None]]:
    """``(run_batch, close)``: run_batch(n) serves n requests, returns seconds taken.

    ``jar``: cookies to start from (a session made by an earlier request).
    """
    jar = jar if jar is not None else Jar()
    loop = asyncio.new_event_loop()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def one() -> None:
        scope = asgi_scope(path, jar, method)

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                if status >= 500:
                    raise RuntimeError(f"benchmark request failed with {status}")
                for key, value in message.get("headers", ()):
                    if key.lower() == b"set-cookie":
                        jar.store(value.decode("latin-1"))

        await app(scope, receive, send)

    async def batch_coro(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            await one()
        return time.perf_counter() - start

    return (lambda n: loop.run_until_complete(batch_coro(n))), loop.close


def time_wsgi(app: WSGIApp, path: str = "/", *, batch: int = 2000, repeats: int = 7) -> float:
    """Median µs per request of a WSGI ``app`` called in-process, cookies carried over."""
    return _median_us(wsgi_runner(app, path), batch, repeats)


def wsgi_environ(path: str = "/") -> dict[str, Any]:
    """A minimal, valid WSGI environ for a GET of ``path``."""
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "bench",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "bench",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


def wsgi_runner(app: WSGIApp, path: str = "/", *, jar: Jar | None = None) -> Callable[[int], float]:
    """run_batch(n): serve n requests to a WSGI ``app``, return seconds taken."""
    jar = jar if jar is not None else Jar()

    def one() -> None:
        environ = wsgi_environ(path)
        if jar.cookies:
            environ["HTTP_COOKIE"] = jar.header()

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            if status.startswith("5"):
                raise RuntimeError(f"benchmark request failed with {status}")
            for key, value in headers:
                if key.lower() == "set-cookie":
                    jar.store(value)
            return lambda data: None

        body = app(environ, start_response)
        for _ in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()

    def batch_run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            one()
        return time.perf_counter() - start

    return batch_run


def report(results: list[Result], baseline: str | None = None) -> str:
    """A plain-text table per group: µs/request, overhead and ratios."""
    lines: list[str] = []
    groups: dict[str, list[Result]] = {}
    for r in results:
        groups.setdefault(r.group, []).append(r)
    for group, rows in groups.items():
        lines.append(f"\n## {group}")
        base = next((r for r in rows if baseline and r.name == baseline), None)
        width = max(len(r.name) for r in rows)
        for r in rows:
            extra = ""
            if base is not None and r is not base:
                extra = f"  x{r.us / base.us:5.2f} of {base.name}"
            notes = "  " + ", ".join(f"{k}={v}" for k, v in r.notes.items()) if r.notes else ""
            lines.append(f"  {r.name:<{width}}  {r.us:9.1f} µs/request{extra}{notes}")
    return "\n".join(lines)
