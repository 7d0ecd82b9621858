"""Jinja globals: the same templates render the same way in Starlette and Flask,
and templates can read the session but never change it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import flask
import jinja2
import pytest
from sessions import Session, SessionConfig, SessionManager
from sessions.asgi import SessionMiddleware
from sessions.driver import RequestContext
from sessions.flask import FlaskSessions
from sessions.jinja import TemplateFlashMessages, TemplateSession, context_processor, install
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates
from starlette.testclient import TestClient

SECRET = "jinja-tests-secret-0123456789-abcdefghijk"

PAGE = (
    "cart={{ session.get('cart_total', 0) }}"
    "|title={{ flash_messages.get('errors.title') }}"
    "|has={{ flash_messages.has('errors.title') }}"
    "|all={{ flash_messages.all() | tojson }}"
    "|item={{ session['cart_total'] if 'cart_total' in session else '-' }}"
    "|empty={{ flash_messages.is_empty }}"
)
WRITES = (
    "{{ session.put('x', 1) }}",
    "{{ session.forget('cart_total') }}",
    "{{ session.clear() }}",
    "{{ session.flash('a', 1) }}",
    "{{ session.regenerate() }}",
)
TEMPLATES = {"page.html": PAGE, **{f"write{i}.html": t for i, t in enumerate(WRITES)}}


def manager() -> SessionManager:
    return SessionManager(SessionConfig(secret=SECRET, driver="memory"), autoload_plugins=False)


def starlette_client() -> TestClient:
    templates = Jinja2Templates(
        env=jinja2.Environment(loader=jinja2.DictLoader(TEMPLATES), autoescape=True),
        context_processors=[context_processor],
    )

    async def setup(request: Request) -> Response:
        session: Session = request.scope["session"]
        session.put("cart_total", 3)
        session.flash({"errors": {"title": "required"}})
        return RedirectResponse("/page/page.html", status_code=303)

    async def page(request: Request) -> Response:
        return templates.TemplateResponse(request, request.path_params["name"])

    app = Starlette(routes=[Route("/setup", setup, methods=["POST"]), Route("/page/{name}", page)])
    return TestClient(SessionMiddleware(app, manager()))


def flask_client() -> Any:
    app = flask.Flask(__name__)
    app.jinja_loader = jinja2.DictLoader(TEMPLATES)

    @app.post("/setup")
    def setup() -> Any:
        session: Session = flask.session  # type: ignore[assignment]
        session.put("cart_total", 3)
        session.flash({"errors": {"title": "required"}})
        return flask.redirect("/page/page.html", code=303)

    @app.get("/page/<name>")
    def page(name: str) -> str:
        return flask.render_template(name)

    FlaskSessions(app, manager())
    app.testing = True
    return app.test_client()


CLIENTS: dict[str, Callable[[], Any]] = {"starlette": starlette_client, "flask": flask_client}


@pytest.mark.parametrize("framework", sorted(CLIENTS))
def test_the_same_template_renders_alike(framework: str) -> None:
    client = CLIENTS[framework]()
    empty = client.get("/page/page.html")
    assert empty.text == "cart=0|title=None|has=False|all={}|item=-|empty=True"
    shown = client.post("/setup", follow_redirects=True)
    assert shown.text == (
        'cart=3|title=required|has=True|all={"errors": {"title": "required"}}|item=3|empty=False'
    )
    again = client.get("/page/page.html")
    assert again.text == "cart=3|title=None|has=False|all={}|item=3|empty=True"


@pytest.mark.parametrize("framework", sorted(CLIENTS))
@pytest.mark.parametrize("index", range(len(WRITES)))
def test_templates_cannot_change_the_session(framework: str, index: int) -> None:
    client = CLIENTS[framework]()
    client.post("/setup")
    with pytest.raises(jinja2.UndefinedError, match=r"has no attribute"):
        client.get(f"/page/write{index}.html")
    assert "cart=3" in client.get("/page/page.html").text


def test_flask_globals_reach_imported_macros() -> None:
    app = flask.Flask(__name__)
    app.jinja_loader = jinja2.DictLoader(
        {"macros.html": "{% macro cart() %}{{ session.get('n', 0) }}{% endmacro %}"}
    )

    @app.get("/")
    def index() -> str:
        flask.session["n"] = 7
        return flask.render_template_string("{% import 'macros.html' as m %}{{ m.cart() }}")

    FlaskSessions(app, manager())
    assert app.test_client().get("/").text == "7"


def test_flask_templates_get_the_read_only_view_not_flasks_session() -> None:
    app = flask.Flask(__name__)

    @app.get("/")
    def index() -> str:
        return flask.render_template_string("{{ session.__class__.__name__ }}")

    FlaskSessions(app, manager())
    assert app.test_client().get("/").text == "TemplateSession"


def test_flask_templates_can_be_left_alone() -> None:
    app = flask.Flask(__name__)

    @app.get("/")
    def index() -> str:
        return flask.render_template_string("{{ session.__class__.__name__ }}")

    FlaskSessions(app, manager(), templates=False)
    assert app.test_client().get("/").text == "FlaskSession"


def test_install_on_any_environment_follows_the_current_session() -> None:
    sessions = manager()
    current: list[Session | None] = [None]
    env = jinja2.Environment(autoescape=True)
    install(env, lambda: current[0])
    template = env.from_string(
        "{{ session.get('user', 'anon') }} {{ session.fresh }} {{ flash_messages.all() }} "
        "{{ session.all() }} {{ session | length }}"
    )
    # Outside a request: an empty, fresh session.
    assert template.render() == "anon True {} {} 0"
    session = sessions.session(RequestContext({}))
    session.initiate()
    session.put("user", "ada")
    current[0] = session
    assert template.render() == "ada True {} {&#39;user&#39;: &#39;ada&#39;} 1"


def test_views_expose_no_writers() -> None:
    sessions = manager()
    session = sessions.session(RequestContext({}))
    session.initiate()
    session.put("a", {"b": 1})
    view = TemplateSession(session)
    flash = TemplateFlashMessages(session)
    assert view.get("a.b") == 1
    assert view.has("a")
    assert view["a"] == {"b": 1}
    assert list(view) == ["a"]
    assert flash.is_empty
    assert len(flash) == 0
    for name in ("put", "forget", "pull", "clear", "flash", "increment", "regenerate", "commit"):
        assert not hasattr(view, name), name
    with pytest.raises(TypeError):
        view["a"] = 2  # type: ignore[index]
    view.all()["a"] = "changed"
    assert session.get("a") == {"b": 1}
    # An uninitiated session (a path the middleware skipped) reads as empty.
    blank = TemplateSession(sessions.session(RequestContext({})))
    assert blank.all() == {}
    assert blank.get("x", "d") == "d"


def test_context_processor_needs_a_request() -> None:
    with pytest.raises(TypeError, match=r"Starlette Request.*dict"):
        context_processor({})
    assert json.dumps(context_processor(type("R", (), {"scope": {}})())["session"].all()) == "{}"


def test_nested_values_handed_to_templates_are_copies() -> None:
    sessions = manager()
    session = sessions.session(RequestContext({}))
    session.initiate()
    session.put("cart", {"items": ["apple"]})
    session.put("n", 1)
    env = jinja2.Environment(autoescape=False)
    install(env, lambda: session)
    env.from_string(
        "{{ session.get('cart')['items'].append('x') }}{{ session.all()['cart'].clear() }}"
        "{{ session['cart'].update(items=[]) }}"
    ).render()
    assert session.get("cart") == {"items": ["apple"]}
    assert session.all() == {"cart": {"items": ["apple"]}, "n": 1}


def test_a_sandboxed_environment_also_closes_the_private_way_in() -> None:
    from jinja2.sandbox import SandboxedEnvironment, SecurityError

    sessions = manager()
    session = sessions.session(RequestContext({}))
    session.initiate()
    session.put("n", 1)
    env = SandboxedEnvironment(autoescape=True)
    install(env, lambda: session)
    assert env.from_string("{{ session.get('n') }}").render() == "1"
    with pytest.raises(SecurityError):
        env.from_string("{{ session._source().put('n', 2) }}").render()
    assert session.get("n") == 1
