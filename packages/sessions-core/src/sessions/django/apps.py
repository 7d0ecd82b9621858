"""The Django app: add ``"sessions.django"`` to ``INSTALLED_APPS`` so ``manage.py
check`` validates the session settings at startup."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["SessionsConfig"]


class SessionsConfig(AppConfig):
    """Registers the system checks of the ``sessions.django`` engine."""

    name = "sessions.django"
    # Not "django" (the module's last name) or "sessions" (django.contrib.sessions).
    label = "sessions_django"
    verbose_name = "Sessions (storage drivers)"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the checks
