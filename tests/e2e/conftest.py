"""Fixtures of the browser tests: the demo served by a real uvicorn process,
and Debian's chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sessions.testing.servers import ServerProcess, require_binary

ROOT = Path(__file__).resolve().parents[2]
DEMO_DIR = ROOT / "examples" / "demo"
#: The distribution's browser (scripts/test.sh installs it), never one Playwright downloads.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium (skips locally, fails under CI=true, when missing)."""
    return require_binary(CHROMIUM)


@pytest.fixture
def serve_demo() -> Iterator[Callable[..., ServerProcess]]:
    """Start the demo with ``uvicorn`` on a free 127.0.0.1 port, with the given driver."""
    servers: list[ServerProcess] = []

    def start(driver: str, **env: str) -> ServerProcess:
        def command(port: int, workdir: Path) -> list[str]:
            settings = {"SESSION_DRIVER": driver, **env}
            if driver == "file":
                settings.setdefault("SESSION_FILE_LOCATION", str(workdir / "sessions"))
            return [
                "env",
                # Core's test conftest empties the plugin allow-list for its own
                # process; the demo must find installed drivers as a user's app would.
                "-u",
                "SESSIONS_PLUGINS",
                *(f"{name}={value}" for name, value in settings.items()),
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                str(DEMO_DIR),
                "demo:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
            ]

        server = ServerProcess(f"demo-{driver}", command)
        servers.append(server)
        return server.start(timeout=30)

    yield start
    for server in servers:
        server.cleanup()


@pytest.fixture
def browser_context(chromium: str, tmp_path: Path) -> Iterator[object]:
    """A chromium context with a fresh profile directory."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
        )
        context.set_default_timeout(10_000)
        try:
            yield context
        finally:
            context.close()
