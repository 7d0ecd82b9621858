"""Django session engine storing sessions through any sessions driver.

    # settings.py
    INSTALLED_APPS = [..., "sessions.django"]   # system checks at startup
    SESSION_ENGINE = "sessions.django"
    SESSIONS = {"driver": "redis", "drivers": {"redis": {"url": "redis://127.0.0.1:6379/0"}}}

Django's ``request.session``, ``django.contrib.auth`` login and logout,
messages, ``CSRF_USE_SESSIONS``, ``cycle_key()`` and ``clearsessions`` keep
working. This package is the only part of ``sessions`` that imports Django
(the ``sessions-core[django]`` extra).
"""

from __future__ import annotations

from .store import SessionStore

__all__ = ["SessionStore"]
