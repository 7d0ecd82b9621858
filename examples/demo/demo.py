"""The sessions demo: Starlette + Jinja, one page, every session feature in view.

    uvicorn --app-dir examples/demo demo:app            # memory driver
    SESSION_DRIVER=cookie uvicorn --app-dir examples/demo demo:app

* sign in: validation errors come back as flash messages, the form is
  re-filled from the flashed input (everything but the password), and a
  successful sign-in regenerates the session id;
* a cart counter that survives reloads;
* sign out: clear the session and regenerate its id;
* signed-in devices (drivers with tagging): a sign-in tags the session with the
  user name and remembers the browser; /devices lists the user's sessions and
  signs out the other devices;
* every form carries a CSRF token (``csrf_token()`` in the template); a POST
  without a valid one gets a 403 from :class:`sessions.csrf.CsrfMiddleware`;
* a panel with the driver in use and whether this request started a fresh session.

``SESSION_DRIVER`` picks any installed driver (``memory`` by default, which
needs no server), and ``SESSION_<DRIVER>_<OPTION>`` configures it, e.g.
``SESSION_FILE_LOCATION=/tmp/sessions``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import jinja2
from sessions import Session, SessionConfig, SessionManager
from sessions.asgi import SessionMiddleware
from sessions.csrf import CSRF_KEY, FORM_FIELD, CsrfMiddleware
from sessions.jinja import context_processor
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

#: For this demo only. A real application reads SESSION_SECRET (`sessions secret` makes one).
DEMO_SECRET = "demo-secret-do-not-use-in-production-0123456789"
USERNAME = re.compile(r"[A-Za-z0-9_.-]{3,32}")
MIN_PASSWORD = 8

config = SessionConfig.from_env(
    secret=os.environ.get("SESSION_SECRET") or DEMO_SECRET,
    driver=os.environ.get("SESSION_DRIVER") or "memory",
)
manager = SessionManager(config)
templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True
    ),
    context_processors=[context_processor],
)


def session_of(request: Request) -> Session:
    session: Session = request.scope["session"]
    return session


def back_home() -> Response:
    # 303: the browser follows a POST's redirect with a GET, so a reload
    # re-renders the page instead of re-submitting the form.
    return RedirectResponse("/", status_code=303)


async def home(request: Request) -> Response:
    # The panel shows the session's values, but not its CSRF secret.
    values = {k: v for k, v in session_of(request).all().items() if k != CSRF_KEY}
    return templates.TemplateResponse(
        request, "home.html", {"driver": config.driver, "values": values}
    )


def validate(username: str, password: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not username:
        errors["username"] = "Enter a username."
    elif not USERNAME.fullmatch(username):
        errors["username"] = "Use 3 to 32 letters, digits, dots, dashes or underscores."
    if len(password) < MIN_PASSWORD:
        errors["password"] = f"The password needs at least {MIN_PASSWORD} characters."
    return errors


async def sign_in(request: Request) -> Response:
    session = session_of(request)
    form = await request.form()
    username = str(form.get("username") or "").strip()
    errors = validate(username, str(form.get("password") or ""))
    if errors:
        session.flash("errors", errors)
        # flash_all minus the password (never stored) and the CSRF token.
        session.flash_except(["password", FORM_FIELD], form)
        return back_home()
    # A new id on sign-in: a session id planted before sign-in is now worthless.
    session.regenerate()
    session.put("user", {"name": username})
    if manager.sessions.supports_tagging:
        # Tagged with the user, so /devices can list and end this user's sessions.
        session.tag(username)
        session.put("device", describe_device(request.headers.get("user-agent", "")))
    session.flash("notice", f"Welcome, {username}!")
    return back_home()


async def sign_out(request: Request) -> Response:
    session = session_of(request)
    session.clear()
    session.regenerate()
    session.flash("notice", "Signed out. Your cart was emptied.")
    return back_home()


async def cart_add(request: Request) -> Response:
    session_of(request).increment("cart")
    return back_home()


async def cart_remove(request: Request) -> Response:
    session = session_of(request)
    if session.get("cart", 0) > 0:
        session.decrement("cart")
    return back_home()


def describe_device(user_agent: str) -> str:
    """A short name for a browser, from its User-Agent (good enough for a demo)."""
    browser = next(
        (name for name in ("Firefox", "Edg", "Chrome", "Safari") if name in user_agent), "Browser"
    )
    system = next(
        (
            name
            for name in ("Android", "iPhone", "iPad", "Windows", "Mac OS", "Linux")
            if name in user_agent
        ),
        "unknown system",
    )
    return f"{'Edge' if browser == 'Edg' else browser} on {system.replace('Mac OS', 'macOS')}"


async def devices(request: Request) -> Response:
    session = session_of(request)
    user = session.get("user.name")
    if user is None or not manager.sessions.supports_tagging:
        return back_home()
    listed = await manager.sessions.atagged(user)
    return templates.TemplateResponse(
        request,
        "devices.html",
        {"devices": listed, "current": session.session_id, "user": user},
    )


async def sign_out_others(request: Request) -> Response:
    session = session_of(request)
    user = session.get("user.name")
    if user is not None and manager.sessions.supports_tagging:
        ended = await manager.sessions.adestroy_tagged(user, keep=session.session_id)
        session.flash("notice", f"Signed out {ended} other device{'s' if ended != 1 else ''}.")
    return RedirectResponse("/devices", status_code=303)


routes = [
    Route("/", home),
    Route("/devices", devices),
    Route("/devices/sign-out-others", sign_out_others, methods=["POST"]),
    Route("/sign-in", sign_in, methods=["POST"]),
    Route("/sign-out", sign_out, methods=["POST"]),
    Route("/cart/add", cart_add, methods=["POST"]),
    Route("/cart/remove", cart_remove, methods=["POST"]),
]

# CSRF checks run inside the session middleware: they need the request's session.
app = SessionMiddleware(
    CsrfMiddleware(Starlette(routes=routes)),
    manager,
    exclude_paths=["/favicon.ico", "/static"],
)
