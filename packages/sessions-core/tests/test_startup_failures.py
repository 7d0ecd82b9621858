"""A bad driver or option stops a real uvicorn at startup, instead of serving 500s.

Starlette builds its middleware stack lazily, inside the lifespan, where
uvicorn's default ``--lifespan auto`` swallows the error. Because the manager
resolves its driver when it is built (at import, in the style the docs teach),
the error stops the server before it listens.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

APP = """
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sessions import SessionConfig, SessionManager
from sessions.asgi import SessionMiddleware


async def home(request):
    return PlainTextResponse("ok")


manager = SessionManager(SessionConfig(secret="{secret}", driver="{driver}",
                                       drivers={drivers}))
app = Starlette(
    routes=[Route("/", home)],
    middleware=[Middleware(SessionMiddleware, manager=manager)],
)
"""
SECRET = "startup-tests-secret-0123456789abcdefghij"


@pytest.mark.parametrize(
    ("driver", "drivers", "expected"),
    [
        ("nope", {}, "no session driver named 'nope'"),
        ("memory", {"memory": {"max_sesions": 5}}, "drivers.memory.max_sesions"),
    ],
)
def test_uvicorn_refuses_to_start(
    tmp_path: Path, driver: str, drivers: dict, expected: str
) -> None:
    (tmp_path / "badapp.py").write_text(
        textwrap.dedent(APP).format(secret=SECRET, driver=driver, drivers=drivers)
    )
    done = subprocess.run(
        [sys.executable, "-m", "uvicorn", "badapp:app", "--host", "127.0.0.1", "--port", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert expected in done.stderr
    assert "Uvicorn running" not in done.stderr
