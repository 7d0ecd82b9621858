"""Sync callers (WSGI) use the request's own thread; async callers never block
the event loop; a Unix socket server works like a TCP one."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sessions import Session, SessionConfig, SessionManager
from sessions.testing import Harness, new_key
from sessions.testing.servers import require_binary
from sessions.wsgi import SessionMiddleware, current_session
from sessions_memcached.driver import MemcachedDriver

SECRET = "memcached-tests-secret-0123456789abcdef"


class ThreadRecordingDriver(MemcachedDriver):
    """The real driver, noting which thread each read and write ran in."""

    threads: list[int]

    def read(self, session_id: str, touch: bool = True) -> dict[str, Any] | None:
        self.threads.append(threading.get_ident())
        return super().read(session_id, touch)

    def write(self, session_id: str, values: dict[str, Any]) -> None:
        self.threads.append(threading.get_ident())
        super().write(session_id, values)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_async_calls_run_off_the_event_loop(memcached: Any, backend: str) -> None:
    async def main() -> None:
        h = Harness(ThreadRecordingDriver, {"servers": [memcached.address]}, 60)
        h.driver.threads = []
        key = new_key()
        await h.acall("write", key, {"a": 1})
        assert await h.acall("read", key) == {"a": 1}
        loop_thread = threading.get_ident()
        assert len(h.driver.threads) == 2
        assert loop_thread not in h.driver.threads
        await h.manager.aclose()

    anyio.run(main, backend=backend)


def test_wsgi_round_trips(memcached: Any) -> None:
    manager = SessionManager(
        SessionConfig(
            secret=SECRET,
            driver="memcached",
            drivers={"memcached": {"servers": [memcached.address], "key_prefix": "wsgi:"}},
        ),
        autoload_plugins=False,
        drivers={"memcached": MemcachedDriver},
    )

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        session: Session = current_session(environ)
        if environ["PATH_INFO"] == "/put":
            session.put("n", session.get("n", 0) + 1)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(session.get("n")).encode()]

    http = httpx.Client(
        transport=httpx.WSGITransport(app=SessionMiddleware(app, manager)), base_url="http://t"
    )

    def delta(request: str) -> tuple[str, dict[str, int]]:
        before = memcached.counters()
        text = http.get(request).text
        after = memcached.counters()
        return text, {k: after[k] - before[k] for k in after if after[k] != before[k]}

    assert delta("/put") == ("1", {"cmd_set": 1, "total_connections": 1})
    assert delta("/") == ("1", {"cmd_touch": 1})
    assert delta("/put") == ("2", {"cmd_touch": 1, "cmd_set": 1})
    http.close()
    manager.close()


def test_unix_socket_server() -> None:
    binary = require_binary("memcached")
    workdir = Path(tempfile.mkdtemp(prefix="sessions-memcached-unix-"))
    path = workdir / "memcached.sock"
    process = subprocess.Popen(
        [binary, "-s", str(path), "-u", "root"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not path.exists():
            assert time.monotonic() < deadline, "memcached did not create its socket"
            time.sleep(0.02)
        h = Harness(MemcachedDriver, {"servers": str(path)}, 60)
        assert h.driver.describe() == f"memcached at {path}"
        key = new_key()
        h.call("write", key, {"over": "unix"})
        assert h.call("read", key) == {"over": "unix"}
        h.call("destroy", key)
        assert h.call("read", key) is None
        h.manager.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
