"""Real memcached servers for the tests, started on free loopback ports.

A local run without the memcached binary skips these tests; under CI=true it
fails (``require_binary``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pymemcache.client.base import Client
from sessions.testing.servers import ServerProcess, require_binary

#: Big enough for the conformance suite's one-megabyte session.
LARGE_ITEMS = "4m"
#: Counters from ``stats`` that the round-trip tests compare.
COUNTERS = ("cmd_get", "cmd_set", "cmd_touch", "delete_hits", "delete_misses", "total_connections")


def memcached_server(name: str, *extra: str, port: int | None = None) -> ServerProcess:
    """A memcached process on its own loopback port, or ``port`` (not started yet)."""
    binary = require_binary("memcached")

    def command(port: int, workdir: Path) -> list[str]:
        return [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-u", "root", *extra]

    return ServerProcess(name, command, port=port)


class Memcached:
    """A running test server, with a raw pymemcache client to look inside it."""

    def __init__(self, process: ServerProcess) -> None:
        self.process = process
        self.raw = Client(("127.0.0.1", process.port), default_noreply=False, timeout=5)

    @property
    def address(self) -> str:
        return self.process.address

    def counters(self) -> dict[str, int]:
        stats = self.raw.stats()
        return {name: int(stats[name.encode()]) for name in COUNTERS}

    def items(self) -> int:
        return int(self.raw.stats()[b"curr_items"])

    def ttl(self, key: str) -> int | None:
        """Seconds left for ``key`` (meta get ``t`` flag); None when missing."""
        line = self.raw.raw_command(f"mg {key} t".encode(), b"\r\n")
        if line.startswith(b"EN"):
            return None
        flag = next(f for f in line.split()[1:] if f.startswith(b"t"))
        return int(flag[1:])

    def stop(self) -> None:
        self.raw.close()
        self.process.stop()

    def start(self) -> None:
        self.process.start()


@pytest.fixture(scope="session")
def memcached() -> Iterator[Memcached]:
    """One memcached for the tests of this worker that do not stop their server."""
    with memcached_server("memcached", "-I", LARGE_ITEMS) as process:
        server = Memcached(process)
        yield server
        server.raw.close()


@pytest.fixture
def start_memcached() -> Iterator[Callable[..., Memcached]]:
    """Start private servers (``start_memcached("-I", "64k")``) that a test may stop;
    ``port=`` starts one where a stopped one was."""
    started: list[Memcached] = []

    def start(*extra: str, port: int | None = None) -> Memcached:
        process = memcached_server("memcached-private", *extra, port=port)
        process.start()
        server = Memcached(process)
        started.append(server)
        return server

    yield start
    for server in started:
        server.raw.close()
        server.process.cleanup()
