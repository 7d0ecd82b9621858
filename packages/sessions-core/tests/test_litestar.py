"""Litestar: our ASGI middleware in its middleware list, request.session is ours,
provide_session injects it, and templates read it."""

from __future__ import annotations

from typing import Any

import pytest
from jinja2 import DictLoader, Environment
from litestar import Litestar, Request, WebSocket, get, websocket
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template.config import TemplateConfig
from litestar.testing import TestClient
from sessions import SessionConfig, SessionManager
from sessions.asgi import SessionMiddleware
from sessions.litestar import SessionDep, install_templates, provide_session

SECRET = "litestar-tests-secret-0123456789-abcdefg"
PAGE = (
    "n={{ session.get('n') }} notice={{ flash_messages.get('notice', '-') }} "
    "override={{ override | default('') }}"
)


def build(**middleware: Any) -> TestClient[Litestar]:
    manager = SessionManager(SessionConfig(secret=SECRET, driver="memory"), autoload_plugins=False)

    @get("/")
    async def home(session: SessionDep, request: Request[Any, Any, Any]) -> dict[str, Any]:
        return {
            "same": request.session is session,
            "type": type(session).__name__,
            "n": session.increment("n"),
        }

    @get("/flash")
    async def flash(session: SessionDep) -> str:
        session.flash("notice", "hello")
        return "ok"

    @get("/page")
    async def page() -> Template:
        return Template("page.html")

    @get("/health")
    async def health(session: SessionDep) -> str:
        return "unreachable"

    @websocket("/ws")
    async def ws(socket: WebSocket[Any, Any, Any], session: SessionDep) -> None:
        await socket.accept()
        await socket.send_json({"n": session.get("n"), "readonly": session.readonly})
        await socket.close()

    environment = Environment(loader=DictLoader({"page.html": PAGE}), autoescape=True)
    app = Litestar(
        route_handlers=[home, flash, page, health, ws],
        middleware=[
            DefineMiddleware(SessionMiddleware, manager=manager, exclude_paths=["/health"])
        ],
        dependencies={"session": Provide(provide_session, sync_to_thread=False)},
        template_config=TemplateConfig(
            engine=JinjaTemplateEngine.from_environment(environment),
            engine_callback=install_templates,
        ),
        on_shutdown=[manager.aclose],
        debug=False,
    )
    return TestClient(app)


def test_request_session_is_ours_and_injected() -> None:
    with build() as client:
        assert client.get("/").json() == {"same": True, "type": "Session", "n": 1}
        assert client.get("/").json() == {"same": True, "type": "Session", "n": 2}


def test_templates_see_the_session_and_flash_messages() -> None:
    with build() as client:
        client.get("/")
        assert client.get("/page").text == "n=1 notice=- override="
        client.get("/flash")
        assert client.get("/page").text == "n=1 notice=hello override="
        assert client.get("/page").text == "n=1 notice=- override="


def test_template_names_resolve_per_render_and_context_wins() -> None:
    environment = Environment(loader=DictLoader({"p": "{{ session.get('n', 'none') }}"}))
    install_templates(environment)
    template = environment.get_template("p")
    assert template.render() == "none"  # no request: an empty session
    assert template.render(session=_Fixed(5)) == "5"


class _Fixed:
    def __init__(self, n: int) -> None:
        self.n = n

    def get(self, key: str, default: Any = None) -> Any:
        return self.n


def test_websocket_gets_the_read_only_session() -> None:
    with build() as client:
        client.get("/")
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_json() == {"n": 1, "readonly": True}


def test_provide_session_on_an_excluded_path_says_what_to_fix() -> None:
    with pytest.raises(LookupError, match="exclude_paths"):
        provide_session({"type": "http"})  # type: ignore[typeddict-item]
    with build() as client:
        assert client.get("/health").status_code == 500
