"""Quart: quart.session is ours, async drivers are awaited on the event loop,
Quart's flash() maps onto flash messages, websockets are read-only."""

from __future__ import annotations

import logging
import threading
from typing import Any, ClassVar

import pytest
import quart
from sessions import Driver, DriverConfig, DriverNotFoundError, SessionConfig, SessionManager
from sessions.codec import decode, encode
from sessions.flask import FlaskSession
from sessions.quart import QuartSessions, csrf_protect, session

SECRET = "quart-tests-secret-0123456789-abcdefghij"
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Quart runs on asyncio only


class AsyncDictDriver(Driver):
    """An async-only store in a dict that records the thread of every call."""

    threads: ClassVar[list[int]] = []

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        self.data: dict[str, bytes] = {}

    async def read(self, session_id: str) -> dict[str, Any] | None:
        self.threads.append(threading.get_ident())
        raw = self.data.get(session_id)
        return None if raw is None else decode(raw)

    async def write(self, session_id: str, values: dict[str, Any]) -> None:
        self.threads.append(threading.get_ident())
        self.data[session_id] = encode(values)

    async def destroy(self, session_id: str) -> None:
        self.threads.append(threading.get_ident())
        self.data.pop(session_id, None)

    async def touch(self, session_id: str) -> None:
        self.threads.append(threading.get_ident())


def make_app(driver: str = "memory", **options: Any) -> quart.Quart:
    manager = SessionManager(
        SessionConfig(secret=SECRET, driver=driver),
        autoload_plugins=False,
        drivers={"asyncdict": AsyncDictDriver},
    )
    app = quart.Quart(__name__)
    QuartSessions(app, manager, exclude_paths=["/health"], **options)
    app.config["loop_threads"] = []

    @app.get("/")
    async def home() -> dict[str, Any]:
        app.config["loop_threads"].append(threading.get_ident())
        ours = session()
        return {
            "same": ours is quart.session._get_current_object(),  # type: ignore[attr-defined]
            "type": type(ours).__name__,
            "n": ours.increment("n"),
        }

    @app.post("/flash")
    async def flash() -> str:
        await quart.flash("saved", "success")
        session().flash("notice", "hello")
        return "ok"

    @app.get("/messages")
    async def messages() -> dict[str, Any]:
        return {
            "quart": quart.get_flashed_messages(with_categories=True),
            "ours": session().flash_messages.all(),
        }

    @app.get("/page")
    async def page() -> str:
        return await quart.render_template_string(
            "n={{ session.get('n') }} notice={{ flash_messages.get('notice', '-') }} "
            "put={{ session.put is defined }}"
        )

    @app.get("/health")
    async def health() -> str:
        try:
            session()
        except LookupError as exc:
            return str(exc)
        return "unreachable"

    @app.websocket("/ws")
    async def ws() -> None:
        current = session()
        try:
            current.put("x", 1)
            refused = "no"
        except Exception as exc:
            refused = type(exc).__name__
        await quart.websocket.send_json(
            {"n": current.get("n"), "readonly": current.readonly, "put": refused}
        )

    return app


async def test_quart_session_is_ours_and_persists() -> None:
    client = make_app().test_client()
    assert await (await client.get("/")).get_json() == {
        "same": True,
        "type": "FlaskSession",
        "n": 1,
    }
    assert (await (await client.get("/")).get_json())["n"] == 2


async def test_async_only_driver_is_awaited_on_the_event_loop() -> None:
    AsyncDictDriver.threads.clear()
    app = make_app(driver="asyncdict")
    client = app.test_client()
    await client.get("/")
    assert (await (await client.get("/")).get_json())["n"] == 2
    loop_threads = set(app.config["loop_threads"])
    assert len(loop_threads) == 1
    # read + write on both requests, all on the loop's thread (no worker threads).
    assert len(AsyncDictDriver.threads) >= 3
    assert set(AsyncDictDriver.threads) == loop_threads


async def test_quart_flash_and_ours_show_once_on_the_next_request() -> None:
    client = make_app().test_client()
    await client.post("/flash")
    assert await (await client.get("/messages")).get_json() == {
        "quart": [["success", "saved"]],
        # Quart's list travels as our flash message "_flashes", as Flask's does.
        "ours": {"notice": "hello", "_flashes": [["success", "saved"]]},
    }
    assert await (await client.get("/messages")).get_json() == {"quart": [], "ours": {}}


async def test_templates_get_read_only_session_and_flash_messages() -> None:
    client = make_app().test_client()
    await client.get("/")
    await client.post("/flash")
    assert await (await client.get("/page")).get_data(as_text=True) == (
        "n=1 notice=hello put=False"
    )


async def test_websocket_session_is_read_only() -> None:
    client = make_app().test_client()
    await client.get("/")
    async with client.websocket("/ws") as ws:
        data = await ws.receive_json()
    assert data == {"n": 1, "readonly": True, "put": "ReadOnlySessionError"}


async def test_excluded_path_has_no_session_and_no_cookie() -> None:
    client = make_app().test_client()
    response = await client.get("/health")
    assert "exclude_paths" in await response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers


def test_accessor_outside_a_request_says_so() -> None:
    with pytest.raises(RuntimeError, match="outside a request"):
        session()


def test_bad_driver_fails_at_startup() -> None:
    with pytest.raises(DriverNotFoundError, match="'nope'"):
        QuartSessions(quart.Quart(__name__), config=SessionConfig(secret=SECRET, driver="nope"))


def test_session_class_is_the_flask_compatible_one() -> None:
    assert issubclass(FlaskSession, quart.sessions.SessionMixin)


@pytest.mark.parametrize("commit_on_error", [False, True])
async def test_server_errors_commit_nothing_unless_configured(commit_on_error: bool) -> None:
    manager = SessionManager(
        SessionConfig(secret=SECRET, driver="memory", commit_on_error=commit_on_error),
        autoload_plugins=False,
    )
    app = quart.Quart(__name__)
    QuartSessions(app, manager)

    @app.get("/start")
    async def start() -> str:
        session().put("started", True)
        return "ok"

    @app.get("/boom")
    async def boom() -> str:
        session().put("saw_raise", True)
        raise RuntimeError("boom")

    @app.get("/unavailable")
    async def unavailable() -> tuple[str, int]:
        session().put("saw_503", True)
        return "later", 503

    @app.get("/seen")
    async def seen() -> dict[str, Any]:
        return session().all()

    client = app.test_client()
    assert (await client.get("/start")).status_code == 200
    assert (await client.get("/boom")).status_code == 500
    assert (await client.get("/unavailable")).status_code == 503
    expected = {"started": True}
    if commit_on_error:
        expected |= {"saw_raise": True, "saw_503": True}
    assert await (await client.get("/seen")).get_json() == expected


async def test_warns_once_about_a_forwarded_https_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = make_app().test_client()
    with caplog.at_level(logging.WARNING, logger="sessions"):
        await client.get("/")
        for _ in range(3):
            await client.get("/", headers={"X-Forwarded-Proto": "https"})
    warned = [r for r in caplog.records if "WITHOUT the Secure flag" in r.getMessage()]
    assert len(warned) == 1


async def test_csrf_hook_and_template_global() -> None:
    app = make_app()
    csrf_protect(app, exempt_paths=["/hooks"])

    @app.get("/form")
    async def form() -> str:
        return await quart.render_template_string("{{ csrf_token() }}")

    @app.post("/change")
    async def change() -> str:
        session().put("changed", True)
        return "changed"

    @app.post("/hooks/in")
    async def hook_in() -> str:
        return "in"

    client = app.test_client()
    token = await (await client.get("/form")).get_data(as_text=True)
    assert (await client.post("/change", form={"csrf_token": token})).status_code == 200
    assert (await client.post("/change", headers={"X-CSRF-Token": token})).status_code == 200
    refused = await client.post("/change", form={"note": "x"})
    assert refused.status_code == 403
    assert "CSRF check failed" in await refused.get_data(as_text=True)
    assert (await client.post("/hooks/in")).status_code == 200
    with pytest.raises(RuntimeError, match="install QuartSessions"):
        csrf_protect(quart.Quart(__name__))


async def test_vary_and_cache_control_and_a_lazy_anonymous_request_costs_nothing() -> None:
    app = quart.Quart(__name__)
    manager = SessionManager(
        SessionConfig(secret=SECRET, driver="memory", lazy=True), autoload_plugins=False
    )
    QuartSessions(app, manager)

    @app.get("/put")
    async def put() -> str:
        session().increment("n")
        return "ok"

    @app.get("/nothing")
    async def nothing() -> quart.Response:
        response = await quart.make_response("ok")
        response.headers["Vary"] = "Accept"
        return response

    client = app.test_client()
    anonymous = await client.get("/nothing")
    assert "set-cookie" not in anonymous.headers
    assert anonymous.headers["vary"] == "Accept"
    stored = await client.get("/put")
    assert stored.headers["vary"] == "Cookie"
    assert stored.headers["cache-control"] == "private"


def test_config_from_app_config() -> None:
    app = quart.Quart(__name__)
    app.config["SESSIONS"] = {"secret": SECRET, "driver": "memory", "cookie_name": "sid"}
    extension = QuartSessions(app)
    assert extension.manager is not None
    assert extension.manager.config.cookie_name == "sid"

    broken = quart.Quart(__name__)
    broken.config["SESSIONS"] = "memory"
    with pytest.raises(TypeError, match=r"SESSIONS.*SessionConfig.*str"):
        QuartSessions(broken)
