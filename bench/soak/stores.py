"""The stores a soak run talks to, started by the suite on free loopback ports,
and the faults it injects into them: kill and restart, pause and resume.

* Redis with AOF on and ``appendfsync always`` (every acknowledged write is on
  disk before the reply), restarted from the same directory;
* memcached (keeps nothing: a restart empties it);
* a private PostgreSQL cluster (``initdb`` into a temp dir, run as the
  ``postgres`` OS user, like the sql tests' server); "kill" is an immediate
  shutdown (SIGQUIT: no checkpoint, crash recovery on restart), "pause" stops
  the postmaster and every backend (each runs in a session of its own);
* SQLite and file stores need no server: their faults are none.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on 127.0.0.1:{port}") from None
            time.sleep(0.01)


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
    return found


class Store:
    """A server process the suite owns. Subclasses give the argv and readiness."""

    name = "store"
    kill_signal = signal.SIGKILL

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"soak-{self.name}-"))
        self.process: subprocess.Popen[bytes] | None = None
        self._stopped: list[int] = []

    def argv(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> None:
        wait_port(self.port)

    def start(self) -> None:
        log = (self.dir / "server.log").open("ab")
        self.process = subprocess.Popen(
            self.argv(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.ready()

    def kill(self) -> None:
        """Kill the server the hard way (no clean shutdown)."""
        assert self.process is not None
        self.process.send_signal(self.kill_signal)
        self.process.wait(timeout=30)

    def pause(self) -> None:
        """SIGSTOP the server and every child process (the kernel keeps accepting)."""
        assert self.process is not None
        pid = self.process.pid
        os.kill(pid, signal.SIGSTOP)
        self._stopped = [pid]
        for child in _children(pid):
            os.kill(child, signal.SIGSTOP)
            self._stopped.append(child)

    def resume(self) -> None:
        for pid in self._stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self._stopped = []

    def stop(self) -> None:
        self.resume()
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def describe(self) -> str:
        return self.name

    def probe(self) -> None:
        """One trivial request from a fresh client; returns once it is answered."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=30):
            pass


class Redis(Store):
    name = "redis"

    def argv(self) -> list[str]:
        return [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.dir),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ]

    def ready(self) -> None:
        import redis

        wait_port(self.port)
        client = redis.Redis(port=self.port, socket_timeout=5)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.ping()
                    return
                except redis.BusyLoadingError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)
        finally:
            client.close()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def probe(self) -> None:
        import redis

        client = redis.Redis(port=self.port, socket_timeout=30)
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.BusyLoadingError:
                    time.sleep(0.005)
        finally:
            client.close()

    def describe(self) -> str:
        return "Redis 7 (AOF, appendfsync always)"


class Memcached(Store):
    name = "memcached"

    def argv(self) -> list[str]:
        binary = shutil.which("memcached") or "/usr/bin/memcached"
        return [
            binary,
            "-l",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "0",
            "-m",
            "64",
            "-u",
            "root",
        ]

    def describe(self) -> str:
        return "memcached 1.6"

    def probe(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            sock.sendall(b"version\r\n")
            sock.recv(100)


class Postgres(Store):
    name = "postgresql"
    # Immediate shutdown: children killed at once, no checkpoint; recovery on start.
    kill_signal = signal.SIGQUIT

    def __init__(self) -> None:
        super().__init__()
        user = pwd.getpwnam("postgres")
        self.data = self.dir / "data"
        self.data.mkdir()
        os.chown(self.dir, user.pw_uid, user.pw_gid)
        os.chown(self.data, user.pw_uid, user.pw_gid)
        self._as = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
        subprocess.run(
            [*self._as, _pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"],
            check=True,
            capture_output=True,
        )

    def argv(self) -> list[str]:
        return [
            *self._as,
            _pg_bin("postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-h",
            "127.0.0.1",
            "-k",
            str(self.data),
            "-c",
            "max_connections=300",
        ]

    def start(self) -> None:
        log = self.dir / "server.log"
        log.touch()
        os.chown(log, *_ids())
        super().start()

    def ready(self) -> None:
        import psycopg

        wait_port(self.port)
        deadline = time.monotonic() + 60
        while True:
            try:
                psycopg.connect(self.dsn, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    @property
    def url(self) -> str:
        # Plain postgresql://: psycopg for sync apps, asyncpg for async ones (the
        # driver's defaults).
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def probe(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, connect_timeout=30) as conn:
            conn.execute("SELECT 1")

    def sessions_opened(self) -> int:
        """Connections (sessions) opened so far in the sessions database (PG 14+)."""
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            row: Any = conn.execute(
                "SELECT sessions FROM pg_stat_database WHERE datname = 'postgres'"
            ).fetchone()
            return int(row[0])

    def reset(self) -> None:
        """Empty the sessions table between runs."""
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS sessions")

    def describe(self) -> str:
        return "PostgreSQL 15 (private cluster, default durability)"


def _ids() -> tuple[int, int]:
    user = pwd.getpwnam("postgres")
    return user.pw_uid, user.pw_gid


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise SystemExit(f"PostgreSQL's {name} is not installed under /usr/lib/postgresql/*/bin")
    return found[-1]
