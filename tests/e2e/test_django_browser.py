"""The Django demo (examples/django-demo) in a real browser: Debian's chromium,
driven by Playwright, against the demo under uvicorn on a loopback port, its
sessions stored through the file driver by ``SESSION_ENGINE = "sessions.django"``.
Sign in, see the welcome message once, sign out."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sessions.testing.servers import ServerProcess

from .conftest import ROOT

DEMO = ROOT / "examples" / "django-demo"


def submit(page: Page, selector: str) -> None:
    """Click a form's button and wait for the redirected page to load."""
    with page.expect_navigation():
        page.click(selector)


def session_cookie(context: BrowserContext, base: str) -> str:
    values = [c["value"] for c in context.cookies(base) if c["name"] == "sessionid"]
    assert len(values) == 1, context.cookies(base)
    return values[0]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("django-demo")


@pytest.fixture(scope="module")
def django_demo(demo_dir: Path) -> Iterator[ServerProcess]:
    """One demo server for the module (users migrated into a fresh SQLite file)."""
    tmp_path = demo_dir
    env = {
        "DJANGO_SETTINGS_MODULE": "demo_site.settings",
        "DJANGO_DEMO_DB": str(tmp_path / "users.sqlite3"),
        "DJANGO_DEMO_FAST_HASHER": "1",
        "SESSION_DRIVER": "file",
        "SESSION_FILE_LOCATION": str(tmp_path / "sessions"),
    }
    environ = ["env", "-u", "SESSIONS_PLUGINS", *(f"{k}={v}" for k, v in env.items())]
    subprocess.run(
        [*environ, sys.executable, str(DEMO / "manage.py"), "migrate", "-v0"], check=True
    )

    def command(port: int, workdir: Path) -> list[str]:
        return [
            *environ,
            *(sys.executable, "-m", "uvicorn", "--app-dir", str(DEMO)),
            *("demo_site.asgi:application", "--host", "127.0.0.1", "--port", str(port)),
            "--no-access-log",
        ]

    with ServerProcess("django-demo", command).start(timeout=30) as server:
        yield server


@pytest.mark.slow
@pytest.mark.parametrize("pages", ["/", "/async/"])
def test_sign_in_see_a_message_and_sign_out(
    pages: str, django_demo: ServerProcess, browser_context: Any, demo_dir: Path
) -> None:
    context: BrowserContext = browser_context
    base = f"http://127.0.0.1:{django_demo.port}"
    page = context.new_page()
    page.goto(base + pages)
    expect(page.locator("#user")).to_have_text("nobody")
    anonymous = session_cookie(context, base)

    page.fill("#username", "demo")
    page.fill("#password", "demo-password")
    submit(page, "#login")
    expect(page.locator("#user")).to_have_text("demo")
    expect(page.locator(".message")).to_have_text(["Welcome, demo."])
    signed_in = session_cookie(context, base)
    assert signed_in != anonymous
    stored = {p.name for p in (demo_dir / "sessions").rglob("*") if p.is_file()}
    assert signed_in not in stored  # stored under its digest, never the cookie value
    page.reload()
    expect(page.locator("#user")).to_have_text("demo")
    expect(page.locator(".message")).to_have_count(0)

    submit(page, "#increment")
    expect(page.locator("#count")).to_have_text("1")

    submit(page, "#logout")
    expect(page.locator("#user")).to_have_text("nobody")
    expect(page.locator(".message")).to_have_text(["You are signed out."])
    expect(page.locator("#count")).to_have_text("0")
    assert session_cookie(context, base) not in (signed_in, anonymous)
