"""Issue 12: what conflict-free commits cost, per driver, with no conflict.

A changed session's commit was ``read`` then an unconditional ``write``; it is
now ``read_versioned`` then a compare-and-set ``write_versioned``. Both cycles
run against the same store, interleaved, directly on the driver (no HTTP), so
the ratio is the price of the versioned record alone. Redis and memcached are
private servers on loopback ports; PostgreSQL is the machine's service when it
answers on 127.0.0.1:5432, and is skipped otherwise.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from harness import Result, report
from sessions import SessionConfig, SessionManager
from sessions.testing import new_key
from stores import private_stores

SECRET = "bench-versioned-secret-0123456789abcdefghi"
VALUES = {"user": {"id": 42, "name": "ada"}, "cart": [1, 2, 3], "n": 0}


@contextmanager
def stores() -> Iterator[dict[str, dict[str, Any]]]:
    with private_stores() as found:
        labelled = {
            "memory": found["memory"],
            "file": found["file"],
            "sql (SQLite)": found["sql"],
            "redis": found["redis"],
            "memcached": found["memcached"],
        }
        if _postgres():
            labelled["sql (PostgreSQL)"] = {
                "url": "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                "table": "bench_versioned_sessions",
                "create_table": True,
            }
        yield labelled


def _postgres() -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        return False
    return True


def driver_for(label: str, options: dict[str, Any]) -> Any | None:
    name = label.split(" ")[0]
    manager = SessionManager(SessionConfig(secret=SECRET, driver=name, drivers={name: options}))
    return manager.driver if manager.flavours.versioned else None


def cycles(driver: Any) -> dict[str, Callable[[int], float]]:
    key = new_key()
    driver.write(key, VALUES)

    def plain(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            driver.read(key)
            driver.write(key, VALUES)
        return time.perf_counter() - started

    def versioned(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            record = driver.read_versioned(key)
            if not driver.write_versioned(key, VALUES, record.version):
                raise RuntimeError("a compare-and-set failed with no other writer")
        return time.perf_counter() - started

    return {"read + write (unconditional)": plain, "read_versioned + write_versioned": versioned}


def main(quick: bool) -> str:
    batch, repeats = (50, 3) if quick else (500, 7)
    results: list[Result] = []
    with stores() as found:
        for label, options in found.items():
            driver = driver_for(label, options)
            if driver is None:
                results.append(Result(f"{label}: not versioned", "skipped", 0.0))
                continue
            runners = cycles(driver)
            for run in runners.values():
                run(max(batch // 5, 10))
            samples: dict[str, list[float]] = {name: [] for name in runners}
            for _ in range(repeats):
                for name, run in runners.items():
                    samples[name].append(run(batch) / batch * 1e6)
            medians = {name: statistics.median(values) for name, values in samples.items()}
            base = medians["read + write (unconditional)"]
            group = f"a changed session's commit, no conflict: {label}"
            for name, us in medians.items():
                notes = {} if us == base else {"ratio": f"{us / base:.2f}"}
                results.append(Result(group, name, us, notes))
            close = getattr(driver, "close", None)
            if close is not None:
                close()
    return report(results)


if __name__ == "__main__":
    print(main(quick=False))
