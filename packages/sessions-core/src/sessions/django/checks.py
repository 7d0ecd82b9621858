"""System checks: ``manage.py check`` (and every ``runserver``) reports a bad
``SESSIONS`` setting, a missing or unusable driver, before the first request."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from ..errors import ConfigError, SessionError
from .config import COOKIE_FIELDS, ENGINE, get_manager

__all__ = ["check_sessions"]

_HINT = (
    "SESSIONS = {'driver': ..., 'drivers': {...}} in settings, or the SESSION_* "
    "environment variables; see the sessions.django documentation"
)


@register("sessions")
def check_sessions(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Build the engine's manager and driver and report what stops them."""
    if getattr(settings, "SESSION_ENGINE", None) != ENGINE:
        return [
            Warning(
                f"'sessions.django' is in INSTALLED_APPS but SESSION_ENGINE is "
                f"{settings.SESSION_ENGINE!r}, so sessions are not stored through it",
                hint=f"set SESSION_ENGINE = {ENGINE!r}",
                id="sessions.W002",
            )
        ]
    messages: list[CheckMessage] = []
    given = getattr(settings, "SESSIONS", None)
    if isinstance(given, dict):
        ignored = [name for name in COOKIE_FIELDS if name in given]
        if ignored:
            messages.append(
                Warning(
                    f"SESSIONS sets {', '.join(ignored)}, which the Django engine ignores: "
                    "Django's own SESSION_COOKIE_* and SESSION_EXPIRE_AT_BROWSER_CLOSE "
                    "settings shape its cookie",
                    hint=f"remove {', '.join(ignored)} from SESSIONS",
                    id="sessions.W001",
                )
            )
    try:
        get_manager()
    except ConfigError as exc:
        messages.append(Error(str(exc), hint=_HINT, id="sessions.E001"))
    except SessionError as exc:
        messages.append(Error(str(exc), hint=_HINT, id="sessions.E002"))
    return messages
