"""Flask specifics: flask.session is ours, Flask's flash() maps onto flash messages,
and the SessionMixin attributes (new, modified, permanent, accessed) behave.

The shared lifecycle scenarios (test_lifecycle.py) already run through this
interface; these cover what only Flask has. Requests go over real HTTP to
Werkzeug's server on a loopback port.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import flask
import httpx
import pytest
from flask.sessions import SecureCookieSessionInterface
from markupsafe import Markup
from sessions import ConfigError, Session, SessionConfig, SessionManager
from sessions.flask import FlaskSession, FlaskSessions
from werkzeug.serving import make_server

SECRET = "flask-tests-secret-0123456789-abcdefghij"


def manager(drivers: dict[str, Any] | None = None, **config: Any) -> SessionManager:
    return SessionManager(
        SessionConfig(secret=SECRET, driver=config.pop("driver", "memory"), **config),
        autoload_plugins=False,
        drivers=drivers,
    )


@pytest.fixture
def serve() -> Iterator[Callable[[flask.Flask], httpx.Client]]:
    """Serve a Flask app with Werkzeug on a free loopback port; yield an httpx client."""
    running: list[tuple[Any, threading.Thread, httpx.Client]] = []

    def start(app: flask.Flask) -> httpx.Client:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        thread.start()
        client = httpx.Client(base_url=f"http://127.0.0.1:{server.server_address[1]}")
        running.append((server, thread, client))
        return client

    yield start
    for server, thread, client in running:
        client.close()
        server.shutdown()
        server.server_close()
        thread.join()


def make_app(sessions: SessionManager | None = None, **options: Any) -> flask.Flask:
    app = flask.Flask(__name__)

    @app.get("/count")
    def count() -> dict[str, Any]:
        session = flask.session
        session["n"] = session.get("n", 0) + 1
        return {
            "n": session["n"],
            "new": session.new,
            "class": type(session._get_current_object()).__name__,  # type: ignore[attr-defined]
            "is_ours": isinstance(session, Session),
        }

    @app.get("/nothing")
    def nothing() -> str:
        return "no session touched"

    @app.post("/flash")
    def flash_view() -> flask.Response:
        for item in flask.request.form.getlist("message"):
            category, _, message = item.partition(":")
            flask.flash(message, category)
        return flask.redirect("/show")

    @app.get("/show")
    def show() -> dict[str, Any]:
        return {
            "flashed": flask.get_flashed_messages(with_categories=True),
            "ours": flask.session.flash_messages.all(),  # type: ignore[attr-defined]
        }

    @app.get("/peek")
    def peek() -> dict[str, Any]:
        return {"ours": flask.session.flash_messages.all()}  # type: ignore[attr-defined]

    FlaskSessions(app, sessions or manager(), **options)
    return app


def test_flask_session_is_our_session(serve: Callable[[flask.Flask], httpx.Client]) -> None:
    client = serve(make_app())
    first = client.get("/count").json()
    assert first["class"] == "FlaskSession"
    assert first["is_ours"] is True
    assert first["new"] is True
    second = client.get("/count").json()
    assert second["new"] is False
    assert second["n"] == 2


def test_flash_then_get_flashed_messages_on_the_next_request(
    serve: Callable[[flask.Flask], httpx.Client],
) -> None:
    client = serve(make_app())
    response = client.post(
        "/flash", data={"message": ["error:Title is required", "message:Try again"]}
    )
    assert response.status_code == 302
    shown = client.get("/show").json()
    assert shown["flashed"] == [["error", "Title is required"], ["message", "Try again"]]
    # The same messages, as our flash messages, under Flask's key.
    assert shown["ours"] == {"_flashes": shown["flashed"]}
    assert client.get("/show").json() == {"flashed": [], "ours": {}}


def test_flash_and_read_in_the_same_request_are_not_shown_again(
    serve: Callable[[flask.Flask], httpx.Client],
) -> None:
    app = make_app()

    @app.get("/flash-and-render")
    def flash_and_render() -> dict[str, Any]:
        flask.flash("now")
        return {"flashed": flask.get_flashed_messages()}

    client = serve(app)
    assert client.get("/flash-and-render").json() == {"flashed": ["now"]}
    assert client.get("/show").json()["flashed"] == []


def test_unread_flask_flashes_last_one_request_like_all_flash_messages(
    serve: Callable[[flask.Flask], httpx.Client],
) -> None:
    """The documented difference from Flask's cookie sessions: no carrying until read."""
    client = serve(make_app())
    client.post("/flash", data={"message": "message:hello"})
    assert client.get("/peek").json() == {"ours": {"_flashes": [["message", "hello"]]}}
    assert client.get("/show").json()["flashed"] == []


def test_reflash_keeps_flask_flashes_for_one_more_request(
    serve: Callable[[flask.Flask], httpx.Client],
) -> None:
    app = make_app()

    @app.get("/keep")
    def keep() -> str:
        flask.session.reflash()  # type: ignore[attr-defined]
        return "kept"

    client = serve(app)
    client.post("/flash", data={"message": "message:again"})
    client.get("/keep")
    assert client.get("/show").json()["flashed"] == [["message", "again"]]


def test_flash_in_the_next_request_does_not_carry_unread_ones_along(
    serve: Callable[[flask.Flask], httpx.Client],
) -> None:
    app = make_app()

    @app.post("/flash-more")
    def flash_more() -> str:
        flask.flash("second")
        return "ok"

    client = serve(app)
    client.post("/flash", data={"message": "message:first"})
    client.post("/flash-more")
    # flash() sees the unread "first" (it reads the pending list, as in Flask) but
    # writes back only its own message: "first" was for the request just served.
    assert client.get("/show").json()["flashed"] == [["message", "second"]]


def test_markup_is_flashed_as_its_text(serve: Callable[[flask.Flask], httpx.Client]) -> None:
    app = make_app()

    @app.post("/markup")
    def markup() -> str:
        flask.flash(Markup("<b>bold</b>"), "info")
        return "ok"

    client = serve(app)
    client.post("/markup")
    assert client.get("/show").json()["flashed"] == [["info", "<b>bold</b>"]]


def test_our_flash_and_flash_all_read_request_form(
    serve: Callable[[flask.Flask], httpx.Client],
) -> None:
    app = make_app()

    @app.post("/sign-in")
    def sign_in() -> flask.Response:
        session: FlaskSession = flask.session  # type: ignore[assignment]
        session.flash("errors.password", "too short")
        session.flash_except(["password"])
        return flask.redirect("/peek")

    client = serve(app)
    client.post("/sign-in", data={"email": "ada@example.test", "password": "x", "tags": ["a", "b"]})
    assert client.get("/peek").json() == {
        "ours": {
            "errors": {"password": "too short"},
            "email": "ada@example.test",
            "tags": ["a", "b"],
        }
    }


def test_modified_marks_in_place_changes_for_writing(
    serve: Callable[[flask.Flask], httpx.Client],
) -> None:
    app = make_app()

    @app.post("/add/<item>")
    def add(item: str) -> dict[str, Any]:
        session = flask.session
        if "cart" not in session:
            session["cart"] = []
        session["cart"].append(item)
        if flask.request.args.get("mark"):
            session.modified = True
        return {"modified": session.modified}

    @app.get("/cart")
    def cart() -> dict[str, Any]:
        return {"cart": flask.session.get("cart"), "modified": flask.session.modified}

    client = serve(app)
    assert client.post("/add/apple").json() == {"modified": True}
    assert client.get("/cart").json() == {"cart": ["apple"], "modified": False}
    # An in-place append alone is invisible, exactly as with Flask's own sessions.
    assert client.post("/add/pear").json() == {"modified": False}
    assert client.get("/cart").json()["cart"] == ["apple"]
    assert client.post("/add/plum?mark=1").json() == {"modified": True}
    assert client.get("/cart").json()["cart"] == ["apple", "plum"]


def _session_cookie(response: httpx.Response) -> str:
    return next(c for c in response.headers.get_list("set-cookie") if c.startswith("session="))


@pytest.mark.parametrize("clear_with_browser", [False, True])
def test_permanent_controls_max_age_and_persists(
    serve: Callable[[flask.Flask], httpx.Client], clear_with_browser: bool
) -> None:
    sessions = manager(clear_with_browser=clear_with_browser)
    app = make_app(sessions)

    @app.post("/permanent/<int:value>")
    def set_permanent(value: int) -> dict[str, Any]:
        flask.session["user"] = "ada"
        flask.session.permanent = bool(value)
        return {"permanent": flask.session.permanent}

    @app.get("/permanent")
    def get_permanent() -> dict[str, Any]:
        return {"permanent": flask.session.permanent, "all": dict(flask.session.items())}

    client = serve(app)
    default = not clear_with_browser
    assert client.get("/permanent").json()["permanent"] is default
    flipped = int(not default)
    response = client.post(f"/permanent/{flipped}")
    assert response.json() == {"permanent": not default}
    assert ("Max-Age=7200" in _session_cookie(response)) is (not default)
    # Stored as Flask stores it, so the next request's cookie keeps the choice.
    again = client.get("/permanent")
    assert again.json() == {
        "permanent": not default,
        "all": {"user": "ada", "_permanent": not default},
    }
    assert ("Max-Age=" in _session_cookie(again)) is (not default)
    # Back to the config's default: the flag leaves the session.
    client.post(f"/permanent/{int(default)}")
    assert client.get("/permanent").json() == {"permanent": default, "all": {"user": "ada"}}


def test_vary_cookie_only_when_the_session_was_accessed_or_a_cookie_is_set(
    serve: Callable[[flask.Flask], httpx.Client],
) -> None:
    app = make_app(manager(lazy=True))

    @app.route("/vary/<existing>")
    def vary(existing: str) -> flask.Response:
        response = flask.make_response(str(flask.session.get("n", 0)))
        response.headers["Vary"] = existing
        return response

    client = serve(app)
    counted = client.get("/count")
    assert "Cookie" in counted.headers.get("vary", "")
    assert counted.headers["cache-control"] == "private"
    untouched = client.get("/nothing")  # lazy: no store I/O, no cookie, nothing to vary on
    assert "vary" not in untouched.headers
    assert "set-cookie" not in untouched.headers
    # An existing Vary is extended, never duplicated.
    assert client.get("/vary/Accept-Encoding").headers["vary"] == "Accept-Encoding, Cookie"
    assert client.get("/vary/accept, cookie").headers["vary"] == "accept, cookie"


def test_excluded_paths_get_a_read_only_empty_session_and_no_cookie(
    serve: Callable[[flask.Flask], httpx.Client],
) -> None:
    app = make_app(exclude_paths=["/health"])

    @app.get("/health")
    def health() -> dict[str, Any]:
        try:
            flask.session["x"] = 1
        except RuntimeError as exc:
            return {"len": len(flask.session), "error": str(exc)}
        return {"error": None}

    client = serve(app)
    response = client.get("/health")
    assert response.json()["len"] == 0
    assert "exclude_paths" in response.json()["error"]
    assert "set-cookie" not in response.headers


def test_async_only_driver_fails_at_init(async_only_driver: type[Any]) -> None:
    sessions = manager(driver="asyncstore", drivers={"asyncstore": async_only_driver})
    with pytest.raises(ConfigError, match=r"async-only"):
        FlaskSessions(flask.Flask(__name__), sessions)


def test_disabled_config_keeps_flasks_own_sessions() -> None:
    app = flask.Flask(__name__)
    FlaskSessions(app, manager(enabled=False))
    assert type(app.session_interface) is SecureCookieSessionInterface
    assert isinstance(app.extensions["sessions"], FlaskSessions)


def test_config_from_app_config(serve: Callable[[flask.Flask], httpx.Client]) -> None:
    app = flask.Flask(__name__)
    app.config["SESSIONS"] = {"secret": SECRET, "driver": "memory", "cookie_name": "sid"}

    @app.get("/")
    def index() -> str:
        flask.session["a"] = 1
        return "ok"

    extension = FlaskSessions(app)
    assert extension.manager is not None
    assert extension.manager.config.cookie_name == "sid"
    assert serve(app).get("/").headers["set-cookie"].startswith("sid=")

    broken = flask.Flask(__name__)
    broken.config["SESSIONS"] = "memory"
    with pytest.raises(TypeError, match=r"SESSIONS.*SessionConfig.*str"):
        FlaskSessions(broken)


def test_config_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_SECRET", SECRET)
    monkeypatch.setenv("SESSION_DRIVER", "memory")
    extension = FlaskSessions(flask.Flask(__name__))
    assert extension.manager is not None
    assert extension.manager.config.driver == "memory"


def test_messages_read_in_a_request_include_the_previous_ones_first(
    serve: Callable[[flask.Flask], httpx.Client],
) -> None:
    app = make_app()

    @app.get("/flash-and-render")
    def flash_and_render() -> dict[str, Any]:
        flask.flash("now")
        return {"flashed": flask.get_flashed_messages()}

    client = serve(app)
    client.post("/flash", data={"message": "message:before"})
    assert client.get("/flash-and-render").json() == {"flashed": ["before", "now"]}
    assert client.get("/show").json()["flashed"] == []


@pytest.mark.parametrize("commit_on_error", [False, True])
def test_server_errors_commit_nothing_unless_configured(
    serve: Callable[[flask.Flask], httpx.Client], commit_on_error: bool
) -> None:
    app = make_app(manager(commit_on_error=commit_on_error))

    @app.get("/start")
    def start() -> str:
        flask.session["started"] = True
        return "ok"

    @app.get("/missing")
    def missing() -> str:
        flask.session["saw_404"] = True
        flask.abort(404)

    @app.get("/boom")
    def boom() -> str:
        flask.session["saw_500"] = True
        raise RuntimeError("boom")

    @app.get("/unavailable")
    def unavailable() -> tuple[str, int]:
        flask.session["saw_503"] = True
        return "try later", 503

    @app.get("/seen")
    def seen() -> dict[str, Any]:
        return flask.session.all()  # type: ignore[attr-defined, no-any-return]

    client = serve(app)
    assert client.get("/start").status_code == 200
    assert client.get("/missing").status_code == 404
    failed = client.get("/boom")
    assert failed.status_code == 500
    assert ("set-cookie" in failed.headers) is commit_on_error
    assert client.get("/unavailable").status_code == 503
    expected = {"started": True, "saw_404": True}
    if commit_on_error:
        expected |= {"saw_500": True, "saw_503": True}
    assert client.get("/seen").json() == expected


def test_secure_follows_the_scheme() -> None:
    client = make_app().test_client()
    assert "Secure" not in client.get("/count").headers["Set-Cookie"]
    secure = make_app().test_client()
    assert "; Secure" in secure.get("/count", base_url="https://localhost").headers["Set-Cookie"]


def test_bad_driver_and_bad_exclude_path_fail_at_init() -> None:
    with pytest.raises(Exception, match="'nope'"):
        FlaskSessions(flask.Flask(__name__), manager(driver="nope"))
    with pytest.raises(ValueError, match="start with '/'"):
        FlaskSessions(flask.Flask(__name__), manager(), exclude_paths=["static"])


def test_reflash_with_new_flashes_keeps_both_and_consumed_ones_stay_consumed(
    serve: Callable[[flask.Flask], httpx.Client],
) -> None:
    app = make_app()

    @app.post("/keep-and-add")
    def keep_and_add() -> str:
        flask.flash("added")
        flask.session.reflash()  # type: ignore[attr-defined]
        return "ok"

    @app.post("/read-then-reflash")
    def read_then_reflash() -> dict[str, Any]:
        read = flask.get_flashed_messages()
        flask.session.reflash()  # type: ignore[attr-defined]
        return {"read": read}

    client = serve(app)
    client.post("/flash", data={"message": "message:kept"})
    client.post("/keep-and-add")
    assert client.get("/show").json()["flashed"] == [["message", "kept"], ["message", "added"]]
    client.post("/flash", data={"message": "message:once"})
    assert client.post("/read-then-reflash").json() == {"read": ["once"]}
    assert client.get("/show").json()["flashed"] == []


def test_typed_accessor_is_flask_session() -> None:
    from sessions.flask import session as typed_session

    app = make_app(manager())

    @app.get("/typed")
    def typed() -> str:
        ours = typed_session()
        ours.increment("n")
        return f"{type(ours).__name__} {ours is flask.session._get_current_object()} {ours['n']}"  # type: ignore[attr-defined]

    client = app.test_client()
    assert client.get("/typed").text == "FlaskSession True 1"
    assert client.get("/typed").text == "FlaskSession True 2"
    with pytest.raises(RuntimeError, match="outside a request"):
        typed_session()
    plain = flask.Flask(__name__)
    plain.secret_key = SECRET
    with plain.test_request_context("/"), pytest.raises(LookupError, match="FlaskSessions"):
        typed_session()
