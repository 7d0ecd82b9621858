"""Soak runs: real multi-worker servers under concurrent clients, with the store
killed or paused in the middle. Not part of the CI suite.

    uv run python bench/soak/run.py                     # every scenario
    uv run python bench/soak/run.py --only redis pause  # scenarios whose name has every word
    uv run python bench/soak/run.py --list
    uv run python bench/soak/run.py --duration 12 --clients 32 --workers 2 --out soak.md

Each scenario starts a fresh app server (uvicorn for ASGI apps, with TCP_NODELAY
set on every connection; gunicorn gthread for Flask apps) on a free loopback
port, warms every client's session up, then runs the clients for ``--before``
seconds, injects the fault, and keeps going ``--after`` seconds past the store's
return (``--duration`` in all for runs without a fault). Then it reads every
counter back and prints one table row per run (Markdown).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from load import (  # noqa: E402
    ClientState,
    Jar,
    Summary,
    drain,
    fetch,
    run_client,
    summarize,
)
from stores import Memcached, Postgres, Redis, Store, free_port, wait_port  # noqa: E402

#: SQL pool variants: label -> engine_options ("" = the driver's defaults).
POOLS: dict[str, dict[str, Any] | None] = {
    "defaults": None,
    "sqlalchemy-5+10": {"pool_size": 5, "max_overflow": 10},
    "tuned-10+0": {"pool_size": 10, "max_overflow": 0},
    "tuned-32+0": {"pool_size": 32, "max_overflow": 0},
    "tuned-64+0": {"pool_size": 64, "max_overflow": 0},
    "tuned-20+20": {"pool_size": 20, "max_overflow": 20},
}
FAULTS = ("kill", "pause2", "pause10")


@dataclass(frozen=True)
class Scenario:
    stack: str  # ours-asgi | ours-flask | starsessions | flask-session
    store: str  # redis | postgresql | memcached | sqlite | file
    fault: str = "none"  # none | kill | pause2 | pause10
    mode: str = "own"  # own: a session per client; shared: 8 clients, one session
    pool: str | None = None  # a POOLS label (postgresql only)

    @property
    def name(self) -> str:
        parts = [self.stack, self.store, self.fault, self.mode]
        if self.pool:
            parts.append(f"pool-{self.pool}")
        return " ".join(parts)


def scenarios() -> list[Scenario]:
    found = [Scenario("ours-asgi", "postgresql", pool=label) for label in POOLS]
    for stack, stores in (
        ("ours-asgi", ("redis", "postgresql", "memcached")),
        ("ours-flask", ("redis", "postgresql")),
        ("starsessions", ("redis",)),
        ("flask-session", ("redis",)),
    ):
        found += [Scenario(stack, store, fault) for store in stores for fault in FAULTS]
    for stack in ("ours-asgi", "ours-flask"):
        found += [Scenario(stack, store) for store in ("sqlite", "file")]
    for stack, store in (
        ("ours-asgi", "redis"),
        ("ours-asgi", "postgresql"),
        ("ours-flask", "redis"),
        ("starsessions", "redis"),
        ("flask-session", "redis"),
    ):
        found.append(Scenario(stack, store, mode="shared"))
    return found


class Stores:
    """The servers of the whole suite, started once, on first use."""

    def __init__(self) -> None:
        self._started: dict[str, Store] = {}
        self.scratch = Path(tempfile.mkdtemp(prefix="soak-"))

    def get(self, name: str) -> Store:
        if name not in self._started:
            store: Store = {"redis": Redis, "memcached": Memcached, "postgresql": Postgres}[name]()
            store.start()
            self._started[name] = store
        return self._started[name]

    def driver(self, scenario: Scenario, run_dir: Path) -> tuple[str, dict[str, Any]]:
        """Our driver's name and options for ``scenario``."""
        kind = scenario.store
        if kind == "redis":
            return "redis", {"url": self.redis_url()}
        if kind == "memcached":
            return "memcached", {"servers": [f"127.0.0.1:{self.get('memcached').port}"]}
        if kind == "postgresql":
            pg = self.get("postgresql")
            assert isinstance(pg, Postgres)
            options: dict[str, Any] = {"url": pg.url, "create_table": True}
            extra = POOLS.get(scenario.pool or "defaults")
            if extra:
                options["engine_options"] = extra
            return "sql", options
        if kind == "sqlite":
            options = {"url": f"sqlite:///{run_dir / 'sessions.db'}"}
            if os.environ.get("SOAK_SQLITE_ENGINE"):  # experiments
                options["engine_options"] = json.loads(os.environ["SOAK_SQLITE_ENGINE"])
            return "sql", options
        if kind == "file":
            return "file", {"location": str(run_dir / "sessions")}
        raise ValueError(kind)

    def redis_url(self) -> str:
        store = self.get("redis")
        assert isinstance(store, Redis)
        return store.url

    def cleanup(self) -> None:
        for store in self._started.values():
            store.cleanup()
        shutil.rmtree(self.scratch, ignore_errors=True)


def server_argv(stack: str, port: int, workers: int, threads: int) -> list[str]:
    if stack in ("ours-asgi", "starsessions"):
        factory = "ours_asgi" if stack == "ours-asgi" else "starsessions_asgi"
        return [
            sys.executable,
            "-m",
            "uvicorn",
            f"apps:{factory}",
            "--factory",
            "--app-dir",
            str(HERE),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--http",
            "nodelay:NoDelayH11Protocol",
            "--log-level",
            "warning",
            "--no-access-log",
        ]
    factory = "ours_flask" if stack == "ours-flask" else "flask_session_wsgi"
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        # As many threads as clients: no connection waits for a thread, so a
        # slow request is the store's doing, never the server's queue.
        "--threads",
        str(threads),
        "--keep-alive",
        "30",
        "--timeout",
        "120",
        "--log-level",
        "warning",
        "--chdir",
        str(HERE),
        f"apps:{factory}()",
    ]


@dataclass
class Outcome:
    scenario: Scenario
    summary: Summary
    clients: int
    shared_final: int | None = None
    shared_initial: int | None = None
    connections_opened: int | None = None


def fault_actions(fault: str, store: Store | None) -> tuple[Callable[[], None], Callable[[], None]]:
    """(inject, end) for ``fault``; ``end`` returns once the store is back."""
    if fault == "none" or store is None:
        return (lambda: None), (lambda: None)
    if fault == "kill":

        def kill() -> None:
            store.kill()
            time.sleep(1.0)  # down for a second, then restarted (Redis replays its AOF)

        return kill, store.start
    seconds = float(fault.removeprefix("pause"))

    def pause() -> None:
        store.pause()
        time.sleep(seconds)

    return pause, store.resume


async def soak(scenario: Scenario, stores: Stores, args: argparse.Namespace, index: int) -> Outcome:
    run_dir = stores.scratch / f"run-{index}"
    run_dir.mkdir()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    fault_store: Store | None = None
    if scenario.stack.startswith("ours"):
        driver, options = stores.driver(scenario, run_dir)
        env["SOAK_DRIVER"] = driver
        env["SOAK_OPTIONS"] = json.dumps(options)
    else:
        env["SOAK_REDIS_URL"] = stores.redis_url()
    if scenario.store in ("redis", "memcached", "postgresql"):
        fault_store = stores.get(scenario.store)
    opened_before = None
    pg = stores.get("postgresql") if scenario.store == "postgresql" else None
    if isinstance(pg, Postgres):
        opened_before = pg.sessions_opened()
    port = free_port()
    log = (run_dir / "server.log").open("wb")
    server = subprocess.Popen(
        server_argv(scenario.stack, port, args.workers, max(args.clients, args.shared_clients)),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_port(port, timeout=60)
        shared = scenario.mode == "shared"
        count = args.shared_clients if shared else args.clients
        if shared:
            jar = Jar()
            initial = await fetch(port, "/inc", jar)  # creates the one session
            jar.frozen = True
            states = [ClientState(i, jar) for i in range(count)]
        else:
            states = [ClientState(i, Jar()) for i in range(count)]
            for state in states:  # warm up: every client has its session
                state.last_acked = await fetch(port, "/inc", state.jar)
            initial = 0
        stop = asyncio.Event()
        budget = [args.max_requests]
        tasks = [
            asyncio.create_task(run_client(state, port, stop, shared, budget)) for state in states
        ]
        started = time.monotonic()
        fault: tuple[float, float] | None = None
        answered: float | None = None
        if scenario.fault == "none":
            await asyncio.sleep(args.duration)
        else:
            inject, end = fault_actions(scenario.fault, fault_store)
            await asyncio.sleep(args.before)
            f_start = time.monotonic()
            await asyncio.to_thread(inject)
            await asyncio.to_thread(end)
            f_end = time.monotonic()
            fault = (f_start, f_end)
            if fault_store is not None:
                await asyncio.to_thread(fault_store.probe)
                answered = time.monotonic()
            await asyncio.sleep(args.after)
        stop.set()
        ended = time.monotonic()
        await drain(tasks)
        lost = phantom = 0
        shared_final = None
        if shared:
            shared_final = await fetch(port, "/get", states[0].jar)
        else:
            for state in states:
                final = await fetch(port, "/get", state.jar)
                lost += state.lost
                phantom += state.phantom
                if state.last_acked is not None and final < state.last_acked:
                    lost += state.last_acked - final
        summary = summarize(states, started, ended, fault, lost, phantom, answered)
        if os.environ.get("SOAK_DUMP"):  # every request, for a closer look
            Path(os.environ["SOAK_DUMP"]).write_text(
                json.dumps(
                    {
                        "fault": fault,
                        "started": started,
                        "samples": [
                            [x.client, x.start, x.end, x.ok] for st in states for x in st.samples
                        ],
                    }
                )
            )
        opened = None
        if isinstance(pg, Postgres) and opened_before is not None:
            opened = pg.sessions_opened() - opened_before
        return Outcome(scenario, summary, count, shared_final, initial, opened)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def _ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def report_fault(outcomes: list[Outcome]) -> str:
    rows = [
        "| stack | store | fault | req/s | p50 ms | p99 ms | max ms "
        "| errors before / during / after "
        "| longest request in fault window, ms "
        "| store answers a new client, s after return "
        "| all clients served again, s after return "
        "| all clients served again, s after the store answers "
        "| acked increments | lost acked | applied though failed |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        s = o.summary
        recovery = (
            "—"
            if o.scenario.fault == "none"
            else ("never" if s.recovery_s is None else f"{s.recovery_s:.2f}")
        )
        window = "—" if o.scenario.fault == "none" else _ms(s.max_fault_ms)
        answered = "—" if s.answered_s is None else f"{s.answered_s:.2f}"
        # The target: the clients follow the store within 0.5 s once it can answer
        # (PostgreSQL, after a pause, first works through its queued connections).
        after_answer = (
            "—"
            if s.recovery_s is None or s.answered_s is None
            else f"{max(0.0, s.recovery_s - s.answered_s):.2f}"
        )
        rows.append(
            f"| {o.scenario.stack} | {o.scenario.store} | {o.scenario.fault} | {s.rps:,.0f} "
            f"| {_ms(s.p50_ms)} | {_ms(s.p99_ms)} | {_ms(s.max_ms)} "
            f"| {s.errors_before} / {s.errors_during} / {s.errors_after} | {window} "
            f"| {answered} | {recovery} | {after_answer} "
            f"| {s.acked:,} | {s.lost:,} | {s.phantom:,} |"
        )
    return "\n".join(rows)


def report_pool(outcomes: list[Outcome]) -> str:
    """One row per pool variant: medians over its repeats (runs interleaved)."""
    by_label: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by_label.setdefault(o.scenario.pool or "defaults", []).append(o)

    def med(values: list[float]) -> float:
        return statistics.median(values)

    rows = [
        "| pool (engine_options) | req/s | p50 ms | p99 ms | max ms "
        "| PostgreSQL connections opened per run |",
        "|---|---|---|---|---|---|",
    ]
    best = max(
        (
            med([o.summary.rps for o in runs])
            for label, runs in by_label.items()
            if label != "defaults"
        ),
        default=0.0,
    )
    for label, runs in by_label.items():
        options = POOLS.get(label)
        shown = "driver defaults (20 + 0)" if options is None else json.dumps(options)
        rps = med([o.summary.rps for o in runs])
        ratio = f" ({rps / best:.2f} of the best tuned)" if label == "defaults" and best else ""
        rows.append(
            f"| {shown} | {rps:,.0f}{ratio} | {_ms(med([o.summary.p50_ms for o in runs]))} "
            f"| {_ms(med([o.summary.p99_ms for o in runs]))} "
            f"| {_ms(max(o.summary.max_ms for o in runs))} "
            f"| {med([float(o.connections_opened or 0) for o in runs]):,.0f} |"
        )
    rows.append("")
    rows.append(f"Medians of {max(len(r) for r in by_label.values())} runs per pool, interleaved.")
    return "\n".join(rows)


def report_shared(outcomes: list[Outcome]) -> str:
    rows = [
        "| stack | store | clients on one session | increments acknowledged | counter grew by "
        "| survived | req/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        s = o.summary
        grew = (o.shared_final or 0) - (o.shared_initial or 0)
        share = 100.0 * grew / s.acked if s.acked else 0.0
        rows.append(
            f"| {o.scenario.stack} | {o.scenario.store} | {o.clients} | {s.acked:,} | {grew:,} "
            f"| {share:.1f} % | {s.rps:,.0f} |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--only", nargs="*", default=[], help="words every selected name contains")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument(
        "--clients", type=int, default=32, help="clients, each with its own session"
    )
    parser.add_argument("--shared-clients", type=int, default=8, help="clients sharing one session")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument(
        "--duration", type=float, default=12.0, help="seconds of a run without fault"
    )
    parser.add_argument("--before", type=float, default=4.0, help="seconds before the fault")
    parser.add_argument("--after", type=float, default=5.0, help="seconds after the store is back")
    parser.add_argument(
        "--max-requests", type=int, default=2_000_000, help="stop a run after this many requests"
    )
    parser.add_argument(
        "--pool-repeat", type=int, default=3, help="runs of each SQL pool variant (interleaved)"
    )
    parser.add_argument("--out", type=Path, help="also write the tables to this file")
    args = parser.parse_args()
    chosen = [s for s in scenarios() if all(word in s.name for word in args.only)]
    pool_runs = [s for s in chosen if s.pool]
    chosen = pool_runs * args.pool_repeat + [s for s in chosen if not s.pool]
    if args.list or not chosen:
        print("\n".join(s.name for s in scenarios()))
        return 0 if args.list else 2
    if any(s.store == "postgresql" for s in chosen) and os.geteuid() != 0:
        print("note: the private PostgreSQL is run as the 'postgres' OS user, which needs root")
    stores = Stores()
    outcomes: list[Outcome] = []
    try:
        for index, scenario in enumerate(chosen):
            print(f"[{index + 1}/{len(chosen)}] {scenario.name} ...", flush=True)
            outcome = asyncio.run(soak(scenario, stores, args, index))
            s = outcome.summary
            print(
                f"    {s.rps:,.0f} req/s, p99 {s.p99_ms:.1f} ms, max {s.max_ms:.0f} ms, errors "
                f"{s.errors_before}/{s.errors_during}/{s.errors_after}, lost {s.lost}, "
                f"store answers {s.answered_s}, recovery {s.recovery_s}",
                flush=True,
            )
            outcomes.append(outcome)
    finally:
        stores.cleanup()
    pools = [o for o in outcomes if o.scenario.pool]
    shared = [o for o in outcomes if o.scenario.mode == "shared"]
    faults = [o for o in outcomes if o not in pools and o not in shared]
    host = socket.gethostname()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    parts = [
        f"Soak run on {host}, {os.cpu_count()} CPUs, {when}: "
        f"{args.workers} workers, {args.clients} clients (own sessions), "
        f"{args.shared_clients} clients (shared session); faults at {args.before:g} s, "
        f"{args.after:g} s kept after the store's return, {args.duration:g} s without fault.",
    ]
    if faults:
        parts += ["", "### Faults", "", report_fault(faults)]
    if pools:
        parts += ["", "### SQL pool (ours, ASGI, PostgreSQL, no fault)", "", report_pool(pools)]
    if shared:
        parts += ["", "### One session, many clients (no fault)", "", report_shared(shared)]
    text = "\n".join(parts)
    print()
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
