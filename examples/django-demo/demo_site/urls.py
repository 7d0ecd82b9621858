"""The same pages twice: sync views at ``/``, async views at ``/async/``."""

from __future__ import annotations

from django.urls import include, path

from . import views

sync_pages = [
    path("", views.home, name="home"),
    path("login", views.login_view, name="login"),
    path("logout", views.logout_view, name="logout"),
    path("count", views.count, name="count"),
    path("cycle", views.cycle, name="cycle"),
    path("expiry", views.expiry, name="expiry"),
    path("state", views.state, name="state"),
]
async_pages = [
    path("", views.ahome, name="home"),
    path("login", views.alogin_view, name="login"),
    path("logout", views.alogout_view, name="logout"),
    path("count", views.acount, name="count"),
    path("cycle", views.acycle, name="cycle"),
    path("expiry", views.aexpiry, name="expiry"),
    path("state", views.astate, name="state"),
]
urlpatterns = [
    path("", include((sync_pages, "sync"))),
    path("async/", include((async_pages, "async"))),
]
