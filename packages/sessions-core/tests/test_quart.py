"""Quart: quart.session is ours, async drivers are awaited on the event loop,
Quart's flash() maps onto flash messages, websockets are read-only."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import pytest
import quart
from sessions import Driver, DriverConfig, DriverNotFoundError, SessionConfig, SessionManager
from sessions.codec import decode, encode
from sessions.flask import FlaskSession
from sessions.quart import QuartSessions, session

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
