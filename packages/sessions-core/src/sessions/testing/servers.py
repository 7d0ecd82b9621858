"""Start real servers for tests: a process on a free loopback port that a test
can stop and restart.

Drivers are tested against real Redis, memcached and databases, never fakes.
Where the server binary is missing, a local run skips with the reason; a run
with ``CI=true`` fails instead, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["ServerProcess", "free_port", "require_binary", "wait_for_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 15.0) -> None:
    """Block until something accepts TCP connections on ``host:port``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)


def require_binary(name: str) -> str:
    """Path of executable ``name``; skip the test when missing (fail under CI=true)."""
    import pytest

    path = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None
    )
    if path is None:
        message = f"{name} is not installed (the README's test command installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


class ServerProcess:
    """A server process bound to 127.0.0.1 on its own port.

    ``command`` receives the port and a private scratch directory and returns
    the argv. The port stays the same across :meth:`stop`/:meth:`start`, so a
    client configured once sees the server go away and come back.
    """

    def __init__(
        self,
        name: str,
        command: Callable[[int, Path], Sequence[str]],
        *,
        port: int | None = None,
        ready: Callable[[ServerProcess], None] | None = None,
    ) -> None:
        self.name = name
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.workdir = Path(tempfile.mkdtemp(prefix=f"sessions-{name}-"))
        self._command = command
        self._ready = ready
        self._process: subprocess.Popen[bytes] | None = None
        self.log = self.workdir / "server.log"

    @property
    def address(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> ServerProcess:
        """Start the server and wait until it accepts connections."""
        if self._process is not None and self._process.poll() is None:
            return self
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - argv from the test itself
                list(self._command(self.port, self.workdir)),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
            )
        try:
            wait_for_port(self.port, timeout=timeout)
            if self._ready is not None:
                self._ready(self)
        except Exception:
            self.stop()
            raise RuntimeError(
                f"{self.name} did not start on {self.address}; log:\n{self.log.read_text()[-2000:]}"
            ) from None
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and wait for the port to close."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def restart(self) -> None:
        """Stop, then start on the same port."""
        self.stop()
        self.start()

    def cleanup(self) -> None:
        """Stop the server and remove its scratch directory."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
