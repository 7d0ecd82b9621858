"""The demo served by a real server (uvicorn, ASGI) in a subprocess on a loopback
port, its driver selected by SESSION_* environment variables alone, on every
backend: sign in on the sync pages, carry on on the async ones, sign out."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from sessions.keys import storage_key

from .conftest import Backend, demo_server


def token_of(page: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_sign_in_and_out_through_a_real_server(backend: Backend, django_ready: Path) -> None:
    with (
        demo_server(backend.env, django_ready) as server,
        httpx.Client(
            base_url=f"http://127.0.0.1:{server.port}", follow_redirects=True, timeout=10
        ) as client,
    ):
        # The first request builds Django's URL resolver, templates and the session
        # manager (plugins, engine, table check): give it room on a loaded CI machine.
        page = client.get("/", timeout=60).text
        assert 'id="user">nobody<' in page
        anonymous = client.cookies["sessionid"]
        login = {"username": "demo", "password": "demo-password"}
        page = client.post("/login", data={**login, "csrfmiddlewaretoken": token_of(page)}).text
        assert 'id="user">demo<' in page
        assert "Welcome, demo." in page
        signed_in = client.cookies["sessionid"]
        assert signed_in != anonymous
        keys = backend.keys()
        if keys is not None:
            assert storage_key(signed_in) in keys
            assert storage_key(anonymous) not in keys  # cycled on login
            assert signed_in not in keys

        # The async pages see the same session, and change it.
        page = client.get("/async/").text
        assert 'id="flavour">async<' in page
        assert 'id="user">demo<' in page
        page = client.post("/async/count", data={"csrfmiddlewaretoken": token_of(page)}).text
        assert 'id="count">1<' in page
        state = client.get("/state").json()
        assert state == {
            "flavour": "sync",
            "user": "demo",
            "count": 1,
            "expiry_age": 7200,
            "browser_close": False,
            "messages": [],
        }

        page = client.post("/async/logout", data={"csrfmiddlewaretoken": token_of(page)}).text
        assert 'id="user">nobody<' in page
        assert "You are signed out." in page
        assert client.cookies["sessionid"] != signed_in
        keys = backend.keys()
        if keys is not None:
            assert storage_key(signed_in) not in keys
        assert client.get("/state").json()["user"] is None
