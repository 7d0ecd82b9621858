"""Every first-party driver's options for a benchmark run, with private servers.

Redis and memcached are started on free loopback ports for the run; the file
and SQLite stores live in a temporary directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from sessions.testing.servers import ServerProcess, require_binary


@contextmanager
def private_stores() -> Iterator[dict[str, dict[str, Any]]]:
    """``{driver: options}`` for memory, cookie, file, sql (SQLite), redis and memcached."""
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        redis_bin = require_binary(shutil.which("redis-server") or "redis-server")
        memcached_bin = require_binary(shutil.which("memcached") or "/usr/bin/memcached")
        as_root = ["-u", "root"] if os.geteuid() == 0 else []
        redis = stack.enter_context(
            ServerProcess(
                "bench-redis",
                lambda port, wd: (
                    [
                        redis_bin,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        str(wd),
                    ]
                ),
            ).start()
        )
        memcached = stack.enter_context(
            ServerProcess(
                "bench-memcached",
                lambda port, wd: (
                    [memcached_bin, "-l", "127.0.0.1", "-p", str(port), "-U", "0", *as_root]
                ),
            ).start()
        )
        yield {
            "memory": {},
            "cookie": {},
            "file": {"location": str(workdir / "files")},
            "sql": {"url": f"sqlite:///{workdir / 'sessions.db'}"},
            "redis": {"url": f"redis://127.0.0.1:{redis.port}/0"},
            "memcached": {"servers": [f"127.0.0.1:{memcached.port}"]},
        }
