"""Concurrent HTTP clients over raw asyncio streams, and what their requests show.

Each client keeps one keep-alive connection and its own cookie jar (or, in the
shared mode, one jar shared by a group of clients), requests ``/inc`` in a loop
and records every request: when it started and ended, and whether it got a 200.
A client tracks the counter values the server acknowledged, so the run can tell
acknowledged increments that were later lost (the counter went back) from
failed requests whose write was applied anyway (the counter skipped ahead).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from dataclasses import dataclass, field

#: A request the server has not answered after this long counts as a hang.
CLIENT_TIMEOUT = 30.0


@dataclass
class Sample:
    start: float
    end: float
    ok: bool
    client: int


@dataclass
class Jar:
    cookies: dict[str, str] = field(default_factory=dict)
    frozen: bool = False  # shared mode: keep the first session, whatever comes back

    def header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def store(self, set_cookie: str) -> None:
        if self.frozen:
            return
        pair = set_cookie.split(";", 1)[0]
        name, _, value = pair.partition("=")
        lowered = set_cookie.lower()
        if "max-age=0" in lowered or "expires=thu, 01 jan 1970" in lowered:
            self.cookies.pop(name.strip(), None)
        else:
            self.cookies[name.strip()] = value.strip()


class Connection:
    """One HTTP/1.1 keep-alive connection to the app."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, path: str, jar: Jar) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        cookie = jar.header()
        head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if cookie:
            head += f"Cookie: {cookie}\r\n"
        self.writer.write((head + "\r\n").encode())
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            lowered = name.strip().lower()
            if lowered == "content-length":
                length = int(value)
            elif lowered == "set-cookie":
                jar.store(value.strip())
            elif lowered == "connection" and value.strip().lower() == "close":
                close = True
        body = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        writer, self.writer, self.reader = self.writer, None, None
        if writer is not None:
            writer.close()


@dataclass
class ClientState:
    index: int
    jar: Jar
    samples: list[Sample] = field(default_factory=list)
    last_acked: int | None = None
    acked: int = 0  # increments acknowledged with a 200
    lost: int = 0  # acknowledged increments the counter later went back on
    phantom: int = 0  # increments applied by requests that failed


async def run_client(
    state: ClientState, port: int, stop: asyncio.Event, shared: bool, budget: list[int]
) -> None:
    conn = Connection(port)
    try:
        while not stop.is_set() and budget[0] > 0:
            budget[0] -= 1
            started = time.monotonic()
            ok = False
            try:
                status, body = await asyncio.wait_for(
                    conn.request("/inc", state.jar), CLIENT_TIMEOUT
                )
                ok = status == 200
                if ok:
                    state.acked += 1
                    if not shared:
                        observe(state, int(body))
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                conn.close()
            except ValueError:
                conn.close()
            state.samples.append(Sample(started, time.monotonic(), ok, state.index))
            if not ok:
                await asyncio.sleep(0.01)  # as a browser would not hammer a failing site
    finally:
        conn.close()


def observe(state: ClientState, n: int) -> None:
    """Account for the counter value ``n`` the server acknowledged."""
    last = state.last_acked
    if last is not None:
        if n <= last:
            state.lost += last - n + 1
        elif n > last + 1:
            state.phantom += n - last - 1
    state.last_acked = n


async def fetch(port: int, path: str, jar: Jar, attempts: int = 50) -> int:
    """The counter through ``path``, retried while the app is not answering."""
    for _ in range(attempts):
        conn = Connection(port)
        try:
            status, body = await asyncio.wait_for(conn.request(path, jar), CLIENT_TIMEOUT)
            if status == 200:
                return int(body)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            pass
        finally:
            conn.close()
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{path} never answered 200")


@dataclass
class Summary:
    requests: int
    ok: int
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors_before: int
    errors_during: int
    errors_after: int
    max_fault_ms: float  # longest request that overlapped the fault window
    recovery_s: float | None  # until every client had a 200 after the store's return
    answered_s: float | None  # until the store answered a fresh client after its return
    lost: int
    phantom: int
    acked: int


def summarize(
    states: list[ClientState],
    started: float,
    ended: float,
    fault: tuple[float, float] | None,
    lost: int,
    phantom: int,
    answered: float | None = None,
) -> Summary:
    samples = [s for st in states for s in st.samples]
    latencies = sorted((s.end - s.start) * 1000 for s in samples) or [0.0]
    ok = sum(s.ok for s in samples)
    before = during = after = 0
    max_fault = 0.0
    recovery: float | None = None
    if fault is None:
        before = sum(not s.ok for s in samples)
    else:
        f_start, f_end = fault
        for s in samples:
            overlaps = s.start < f_end and s.end >= f_start
            if overlaps:
                max_fault = max(max_fault, (s.end - s.start) * 1000)
            if s.ok:
                continue
            if s.end < f_start:
                before += 1
            elif s.start >= f_end:
                after += 1
            else:
                during += 1
        waits = []
        for st in states:
            first = next((s.end for s in st.samples if s.ok and s.end >= f_end), None)
            if first is not None:
                waits.append(first - f_end)
        if len(waits) == len(states):
            recovery = max(waits)
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return Summary(
        requests=len(samples),
        ok=ok,
        rps=ok / (ended - started),
        p50_ms=statistics.median(latencies),
        p99_ms=quantiles[98],
        max_ms=latencies[-1],
        errors_before=before,
        errors_during=during,
        errors_after=after,
        max_fault_ms=max_fault,
        recovery_s=recovery,
        answered_s=None if answered is None or fault is None else answered - fault[1],
        lost=lost,
        phantom=phantom,
        acked=sum(st.acked for st in states),
    )


async def drain(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        with contextlib.suppress(Exception):
            await task
