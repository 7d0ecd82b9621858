"""The demo's pages, as sync views and as async views (Django 5.1+ session API).

Every page keeps its state in ``request.session``: the signed-in user
(``django.contrib.auth``), flash messages (``django.contrib.messages``), the
CSRF token (``CSRF_USE_SESSIONS``) and a counter.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import aauthenticate, alogin, alogout, authenticate, login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

TEMPLATE = "demo_site/home.html"


def _expiry(request: HttpRequest) -> int | None:
    """Seconds of idle life given in the form (``0``: until the browser closes)."""
    try:
        seconds = int(request.POST.get("seconds", ""))
    except ValueError:
        return None
    return seconds if 0 <= seconds <= 366 * 86400 else None


# -- sync views ---------------------------------------------------------------------------


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    context = {"flavour": "sync", "base": "/", "count": request.session.get("count", 0)}
    return render(request, TEMPLATE, context)


@require_POST
def login_view(request: HttpRequest) -> HttpResponse:
    user = authenticate(
        request, username=request.POST.get("username"), password=request.POST.get("password")
    )
    if user is None:
        messages.error(request, "Wrong username or password.")
    else:
        login(request, user)  # cycles the session key
        messages.success(request, f"Welcome, {user.get_username()}.")
    return redirect("sync:home")


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)  # flushes the session: its record is deleted
    messages.info(request, "You are signed out.")
    return redirect("sync:home")


@require_POST
def count(request: HttpRequest) -> HttpResponse:
    request.session["count"] = request.session.get("count", 0) + 1
    return redirect("sync:home")


@require_POST
def cycle(request: HttpRequest) -> HttpResponse:
    request.session.cycle_key()
    return redirect("sync:home")


@require_POST
def expiry(request: HttpRequest) -> HttpResponse:
    seconds = _expiry(request)
    if seconds is None:
        return HttpResponseBadRequest("seconds: a whole number from 0 to 31622400")
    request.session.set_expiry(seconds)
    return redirect("sync:home")


@require_GET
def state(request: HttpRequest) -> JsonResponse:
    session = request.session
    data: dict[str, Any] = {
        "flavour": "sync",
        "user": request.user.get_username() if request.user.is_authenticated else None,
        "count": session.get("count", 0),
        "expiry_age": session.get_expiry_age(),
        "browser_close": session.get_expire_at_browser_close(),
        "messages": [str(m) for m in messages.get_messages(request)],
    }
    return JsonResponse(data)


# -- async views --------------------------------------------------------------------------
# The session is loaded with an awaited call before anything reads it synchronously
# (templates, messages), so no storage I/O blocks the event loop.


async def ahome(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return HttpResponse(status=405)
    count = await request.session.aget("count", 0)
    user = await request.auser()
    context = {"flavour": "async", "base": "/async/", "count": count, "user": user}
    return render(request, TEMPLATE, context)


async def alogin_view(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponse(status=405)
    user = await aauthenticate(
        request, username=request.POST.get("username"), password=request.POST.get("password")
    )
    if user is None:
        messages.error(request, "Wrong username or password.")
    else:
        await alogin(request, user)
        messages.success(request, f"Welcome, {user.get_username()}.")
    return redirect("async:home")


async def alogout_view(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponse(status=405)
    await alogout(request)
    messages.info(request, "You are signed out.")
    return redirect("async:home")


async def acount(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponse(status=405)
    await request.session.aset("count", await request.session.aget("count", 0) + 1)
    return redirect("async:home")


async def acycle(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponse(status=405)
    await request.session.acycle_key()
    return redirect("async:home")


async def aexpiry(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponse(status=405)
    seconds = _expiry(request)
    if seconds is None:
        return HttpResponseBadRequest("seconds: a whole number from 0 to 31622400")
    await request.session.aset_expiry(seconds)
    return redirect("async:home")


async def astate(request: HttpRequest) -> JsonResponse:
    session = request.session
    user = await request.auser()
    data: dict[str, Any] = {
        "flavour": "async",
        "user": user.get_username() if user.is_authenticated else None,
        "count": await session.aget("count", 0),
        "expiry_age": await session.aget_expiry_age(),
        "browser_close": await session.aget_expire_at_browser_close(),
        "messages": [str(m) for m in messages.get_messages(request)],
    }
    return JsonResponse(data)
