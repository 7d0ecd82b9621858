"""The Starlette bridge, fed real cookies made by Starlette's own SessionMiddleware."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sessions import SessionConfig, SessionManager
from sessions.asgi import SessionMiddleware
from sessions.bridges.starlette import StarletteCookieBridge
from starlette.applications import Starlette
from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

OLD_SECRET = "the-app-s-old-starlette-secret"
SECRET = "bridge-tests-secret-0123456789-abcdefghij"
OLD_VALUES = {"user": {"id": 7, "name": "ada"}, "cart": [1, 2], "theme": "dark"}


def starlette_cookie(
    values: dict[str, Any], *, secret: str = OLD_SECRET, name: str = "session"
) -> str:
    """A cookie exactly as Starlette's SessionMiddleware sets it for ``values``."""

    async def login(request: Request) -> Response:
        request.session.update(values)
        return Response("ok")

    app = Starlette(
        routes=[Route("/login", login)],
        middleware=[],
    )
    client = TestClient(StarletteSessionMiddleware(app, secret_key=secret, session_cookie=name))
    response = client.get("/login")
    assert name in response.cookies
    return str(response.cookies[name])


def ours(**bridge: Any) -> tuple[TestClient, SessionManager]:
    cookie_name = bridge.pop("our_cookie_name", "session")
    manager = SessionManager(
        SessionConfig(secret=SECRET, driver="memory", cookie_name=cookie_name),
        autoload_plugins=False,
    )

    async def show(request: Request) -> Response:
        session = request.session
        return JSONResponse({"values": dict(session), "fresh": session.fresh})

    app = Starlette(routes=[Route("/", show)])
    middleware = SessionMiddleware(
        app,
        manager,
        bridges=[StarletteCookieBridge(secret_key=bridge.pop("secret", OLD_SECRET), **bridge)],
    )
    return TestClient(middleware), manager


def get(client: TestClient, **cookies: str) -> Any:
    """GET / sending exactly ``cookies`` (the client keeps no jar between requests)."""
    client.cookies.clear()
    header = "; ".join(f"{name}={value}" for name, value in cookies.items())
    response = client.get("/", headers={"cookie": header} if header else {})
    client.cookies.clear()
    return response


def set_cookies(response: Any) -> dict[str, str]:
    found = {}
    for line in response.headers.get_list("set-cookie"):
        pair, _, attrs = line.partition(";")
        name, _, value = pair.partition("=")
        found[name] = attrs.lower() if "max-age=0" in attrs.lower() else value
    return found


@pytest.mark.parametrize("our_name", ["session", "sid"])
def test_starlette_session_moves_into_ours_once(our_name: str) -> None:
    old = starlette_cookie(OLD_VALUES)
    client, manager = ours(our_cookie_name=our_name)
    response = get(client, session=old)
    assert response.json() == {"values": OLD_VALUES, "fresh": True}
    cookies = set_cookies(response)
    our_cookie = cookies[our_name]
    assert manager.signer.open(our_cookie) is not None  # ours, signed by us
    if our_name != "session":
        assert "max-age=0" in cookies["session"]  # Starlette's cookie expired
    # The next request carries only our cookie: the data is ours now.
    again = get(client, **{our_name: our_cookie})
    assert again.json() == {"values": OLD_VALUES, "fresh": False}


def test_a_leftover_starlette_cookie_next_to_ours_is_expired_not_read() -> None:
    client, _ = ours(our_cookie_name="sid")
    first = get(client, session=starlette_cookie({"a": 1}))
    sid = set_cookies(first)["sid"]
    # Starlette's cookie comes back (say, from another tab) with different data.
    response = get(client, sid=sid, session=starlette_cookie({"a": 2}))
    assert response.json() == {"values": {"a": 1}, "fresh": False}
    assert "max-age=0" in set_cookies(response)["session"]


@pytest.mark.parametrize(
    ("cookie", "why"),
    [
        (lambda: starlette_cookie({"a": 1}, secret="another-apps-secret"), "wrong secret"),
        (lambda: starlette_cookie({"a": 1})[:-2] + "xx", "tampered signature"),
        (lambda: "eyJhIjogMX0=.Zz.bad", "garbage"),
        (lambda: "not a cookie at all", "no signature"),
    ],
)
def test_cookies_that_do_not_verify_are_never_adopted(cookie: Any, why: str) -> None:
    client, _ = ours(our_cookie_name="sid")
    response = get(client, session=cookie())
    assert response.json() == {"values": {}, "fresh": True}, why
    assert "max-age=0" in set_cookies(response)["session"], why


def test_expired_starlette_cookie_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time()
    with monkeypatch.context() as past:
        past.setattr(time, "time", lambda: now - 3600)  # Starlette signed it an hour ago
        old = starlette_cookie({"a": 1})
    client, _ = ours(max_age=60)
    assert get(client, session=old).json() == {"values": {}, "fresh": True}
    client, _ = ours(max_age=None)  # Starlette's max_age=None: any age is fine
    assert get(client, session=old).json() == {"values": {"a": 1}, "fresh": True}


def test_a_cookie_of_ours_under_the_shared_name_is_never_taken_for_starlettes() -> None:
    client, _manager = ours()
    first = get(client, session=starlette_cookie({"a": 1}))
    mine = set_cookies(first)["session"]
    response = get(client, session=mine)
    assert response.json() == {"values": {"a": 1}, "fresh": False}
    assert "max-age=0" not in response.headers.get("set-cookie", "").lower()


def test_non_default_cookie_name_and_path_are_expired_where_starlette_set_them() -> None:
    old = starlette_cookie({"a": 1}, name="legacy")
    client, _ = ours(our_cookie_name="sid", cookie_name="legacy", path="/app")
    response = get(client, legacy=old)
    assert response.json()["values"] == {"a": 1}
    expired = [c for c in response.headers.get_list("set-cookie") if c.startswith("legacy=")]
    assert len(expired) == 1
    assert "Path=/app" in expired[0]
    assert "Max-Age=0" in expired[0]


def test_bridge_needs_the_old_secret() -> None:
    with pytest.raises(TypeError, match="secret_key"):
        StarletteCookieBridge(secret_key="")
