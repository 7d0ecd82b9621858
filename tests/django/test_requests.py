"""The demo project through Django's test client, on every backend, for its sync
views (WSGI handler, ``Client``) and its async views (ASGI handler, ``AsyncClient``):
login and logout with django.contrib.auth, messages, CSRF_USE_SESSIONS,
cycle_key, expiry and ``manage.py clearsessions``."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest
from sessions.keys import storage_key

from .conftest import Backend

COOKIE = "sessionid"


class Browser:
    """One test client (sync or async pages) with Django's CSRF checks enforced."""

    def __init__(self, flavour: str) -> None:
        from django.test import AsyncClient, Client

        self.flavour = flavour
        self.base = "/" if flavour == "sync" else "/async/"
        self.client: Any = (
            Client(enforce_csrf_checks=True)
            if flavour == "sync"
            else AsyncClient(enforce_csrf_checks=True)
        )
        self.token = ""

    def _call(self, method: str, path: str, data: dict[str, Any] | None = None) -> Any:
        call = getattr(self.client, method)
        if self.flavour == "sync":
            return call(self.base + path, data)
        return asyncio.run(call(self.base + path, data))

    def page(self) -> str:
        response = self._call("get", "")
        assert response.status_code == 200
        text: str = response.content.decode()
        assert f'id="flavour">{self.flavour}<' in text
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', text)
        assert found is not None
        self.token = found.group(1)
        return text

    def post(self, path: str, **data: Any) -> Any:
        data.setdefault("csrfmiddlewaretoken", self.token)
        return self._call("post", path, data)

    def state(self) -> dict[str, Any]:
        response = self._call("get", "state")
        assert response.status_code == 200
        result: dict[str, Any] = response.json()
        return result

    @property
    def key(self) -> str | None:
        morsel = self.client.cookies.get(COOKIE)
        return None if morsel is None or not morsel.value else str(morsel.value)


def exists(key: str | None) -> bool:
    from sessions.django import SessionStore

    return key is not None and SessionStore().exists(key)


def user_of(page: str) -> str:
    found = re.search(r'id="user">([^<]*)<', page)
    assert found is not None
    return found.group(1)


def messages_of(page: str) -> list[str]:
    return re.findall(r'<li class="message[^"]*">([^<]*)</li>', page)


@pytest.fixture(params=["sync", "async"])
def browser(request: pytest.FixtureRequest, use_backend: Backend) -> Browser:
    return Browser(request.param)


def test_login_message_and_logout(browser: Browser) -> None:
    page = browser.page()
    assert user_of(page) == "nobody"
    anonymous = browser.key
    assert exists(anonymous)  # the CSRF token made the session

    response = browser.post("login", username="demo", password="wrong")
    assert response.status_code == 302
    page = browser.page()
    assert messages_of(page) == ["Wrong username or password."]
    assert user_of(page) == "nobody"

    response = browser.post("login", username="demo", password="demo-password")
    assert response.status_code == 302
    signed_in = browser.key
    assert signed_in != anonymous  # login() cycled the key...
    assert not exists(anonymous)  # ...and the old one stopped existing
    page = browser.page()
    assert user_of(page) == "demo"
    assert messages_of(page) == ["Welcome, demo."]
    page = browser.page()
    assert messages_of(page) == []  # shown once
    assert browser.state()["user"] == "demo"

    response = browser.post("logout")
    assert response.status_code == 302
    assert browser.key != signed_in
    assert not exists(signed_in)  # logout() deleted the record
    page = browser.page()
    assert user_of(page) == "nobody"
    assert messages_of(page) == ["You are signed out."]
    assert browser.state()["user"] is None


def test_csrf_token_lives_in_the_session(browser: Browser) -> None:
    browser.page()
    assert "csrftoken" not in browser.client.cookies  # CSRF_USE_SESSIONS: no CSRF cookie
    from sessions.django.config import get_manager

    record = get_manager().driver.read(storage_key(str(browser.key)))
    assert record is not None
    assert "_csrftoken" in record
    assert browser.post("count", csrfmiddlewaretoken="").status_code == 403
    assert browser.post("count", csrfmiddlewaretoken="x" * 64).status_code == 403
    assert browser.post("count").status_code == 302
    assert browser.state()["count"] == 1
    # Login rotates the token kept in the session: the old one stops working.
    old = browser.token
    browser.post("login", username="demo", password="demo-password")
    assert browser.post("count", csrfmiddlewaretoken=old).status_code == 403
    browser.page()
    assert browser.post("count").status_code == 302
    assert browser.state()["count"] == 2


def test_cycle_key_keeps_the_session(browser: Browser) -> None:
    browser.page()
    browser.post("count")
    browser.post("count")
    before = browser.key
    assert browser.post("cycle").status_code == 302
    after = browser.key
    assert after != before
    assert not exists(before)
    assert exists(after)
    assert browser.state()["count"] == 2


def test_expiry(browser: Browser) -> None:
    from sessions.django.config import get_manager

    browser.page()
    assert browser.post("expiry", seconds="600").status_code == 302
    assert browser.client.cookies[COOKIE]["max-age"] == 600
    state = browser.state()
    assert state["expiry_age"] == 600
    assert state["browser_close"] is False
    driver = get_manager().driver
    sid = storage_key(str(browser.key))
    record = driver.read(sid)
    assert abs(record["__expires_at__"] - (time.time() + 600)) < 5

    assert browser.post("expiry", seconds="0").status_code == 302
    assert browser.client.cookies[COOKIE]["max-age"] == ""  # until the browser closes
    assert browser.state()["browser_close"] is True

    # Once the session's own expiry has passed, the next request starts afresh.
    browser.page()
    browser.post("count")
    record = driver.read(sid)
    assert record["count"] == 1
    record["__expires_at__"] = time.time() - 1
    driver.write(sid, record)
    before = browser.key
    assert browser.state()["count"] == 0
    page = browser.page()
    assert user_of(page) == "nobody"
    assert browser.key != before


def test_clearsessions(browser: Browser, use_backend: Backend) -> None:
    from django.core.management import call_command

    browser.page()
    browser.post("count")
    stale = str(browser.key)
    other = Browser(browser.flavour)
    other.page()
    live = str(other.key)
    call_command("clearsessions")
    assert exists(stale)
    assert exists(live)
    if use_backend.age_out is None:
        return  # Redis and memcached expire sessions themselves: nothing to clear
    use_backend.age_out(storage_key(stale))
    call_command("clearsessions")
    keys = use_backend.keys()
    assert keys is not None
    assert storage_key(stale) not in keys
    assert storage_key(live) in keys


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_redis_commands_per_request(
    flavour: str, django_ready: Any, redis_url: str, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    """Commands the client sends: one for a new session, one for a read-only
    request, two for a read-write one (Django's cache engine sends one, one and
    three: read, existence check, write)."""
    import redis
    from django.test import override_settings
    from sessions.django.config import get_manager

    from .conftest import make_backend

    backend = make_backend("redis", request, tmp_path)
    admin = redis.Redis.from_url(redis_url)
    with override_settings(SESSIONS=backend.sessions):
        browser = Browser(flavour)
        browser.page()
        browser.post("count")

        def counted(run: Any) -> dict[str, int]:
            admin.config_resetstat()
            run()
            stats = admin.info("commandstats")
            return {
                k.removeprefix("cmdstat_"): int(v["calls"])
                for k, v in stats.items()
                if k.removeprefix("cmdstat_") not in {"info", "config|resetstat"}
            }

        assert get_manager().flavours.versioned
        # One EVALSHA: the compare-and-set script (its GETRANGE and SET run inside
        # the server, and INFO counts them too).
        script = {"evalsha": 1, "getrange": 1, "set": 1}
        # A new session is one write (create only if absent).
        assert counted(Browser(flavour).page) == script
        # A read leaves the expiry alone, as Django's engines do: GET, not GETEX.
        key = backend.sessions["drivers"]["redis"]["key_prefix"] + storage_key(str(browser.key))
        admin.expire(key, 100)
        assert counted(browser.state) == {"get": 1}
        assert 0 < admin.ttl(key) <= 100
        # A read-write request: the read, then the compare-and-set.
        assert counted(lambda: browser.post("count")) == {"get": 1, **script}
        assert browser.state()["count"] == 2
    admin.close()


def _interrupting_urls() -> str:
    """A URLconf whose view loses its session to a concurrent logout mid-request."""
    import sys
    import types

    from django.http import HttpResponse
    from django.urls import path
    from sessions.django import SessionStore

    name = "sessions_django_test_interrupt_urls"
    if name not in sys.modules:

        def start(request: Any) -> Any:
            request.session["n"] = 1
            return HttpResponse("started")

        def interrupted(request: Any) -> Any:
            n = request.session["n"]  # loaded
            SessionStore().delete(request.session.session_key)  # a logout elsewhere
            request.session["n"] = n + 1
            return HttpResponse("changed")

        module = types.ModuleType(name)
        module.urlpatterns = [path("start", start), path("interrupted", interrupted)]  # type: ignore[attr-defined]
        sys.modules[name] = module
    return name


def test_a_session_deleted_during_the_request_is_not_saved_back(use_backend: Backend) -> None:
    from django.test import Client, override_settings

    with override_settings(ROOT_URLCONF=_interrupting_urls()):
        client = Client()
        assert client.get("/start").status_code == 200
        key = client.cookies[COOKIE].value
        assert exists(key)
        # Django's middleware turns the engine's UpdateError into SessionInterrupted (400).
        response = client.get("/interrupted")
        assert response.status_code == 400
        assert not exists(key)
        keys = use_backend.keys()
        if keys is not None:
            assert storage_key(key) not in keys
