"""The engine's configuration: the SESSIONS setting, the environment fallback,
the defaults taken from Django, and the system checks that report errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sessions import ConfigError, Driver
from sessions.keys import derive_keys


@pytest.fixture
def settings_(django_ready: Path) -> Any:
    """Override settings for one test: ``settings_(SESSIONS=...)`` returns a context."""
    from django.test import override_settings

    return override_settings


def build(environ: dict[str, str] | None = None) -> Any:
    from sessions.django.config import build_config

    return build_config({} if environ is None else environ)


def test_sessions_setting_selects_the_driver_and_its_options(settings_: Any) -> None:
    with settings_(SESSIONS={"driver": "file", "drivers": {"file": {"location": "/tmp/x"}}}):
        config = build()
    assert config.driver == "file"
    assert config.drivers == {"file": {"location": "/tmp/x"}}


def test_environment_fills_in_what_the_setting_leaves_out(settings_: Any) -> None:
    env = {
        "SESSION_DRIVER": "redis",
        "SESSION_REDIS_URL": "redis://127.0.0.1:1/0",
        "SESSION_REDIS_KEY_PREFIX": "env:",
        "SESSION_AGE": "1h",
    }
    with settings_(SESSIONS={}):
        config = build(env)
    assert config.driver == "redis"
    assert config.age_seconds == 3600
    assert config.drivers["redis"] == {"url": "redis://127.0.0.1:1/0", "key_prefix": "env:"}
    # The setting wins, option by option.
    with settings_(SESSIONS={"age": "2h", "drivers": {"redis": {"key_prefix": "set:"}}}):
        config = build(env)
    assert config.age_seconds == 7200
    assert config.drivers["redis"] == {"url": "redis://127.0.0.1:1/0", "key_prefix": "set:"}


def test_secret_is_derived_from_secret_key_never_secret_key_itself(settings_: Any) -> None:
    import base64

    key = "a-django-secret-key-0123456789-abcdefghijklmnop"
    with settings_(
        SECRET_KEY=key, SECRET_KEY_FALLBACKS=["old-key-0123456789"], SESSIONS={"driver": "memory"}
    ):
        config = build()
    assert config.secret != key
    assert key not in config.secret
    (derived,) = derive_keys([key], b"sessions/v1/django-secret")
    assert config.secret == base64.urlsafe_b64encode(derived).rstrip(b"=").decode()
    assert len(config.secret_fallbacks) == 1
    assert config.secret_fallbacks[0] != "old-key-0123456789"
    given, from_env = (
        "9K2vwd-tPxkl_LidHlDEiXggsQmfX0idtQ9C0HAh",
        "5aK2FQpoPUuEFrSvOEwL0sG2_fFxP7c0d2PUIeZs",
    )
    with settings_(SESSIONS={"driver": "memory", "secret": given}):
        assert build().secret == given
    with settings_(SESSIONS={"driver": "memory"}):
        assert build({"SESSION_SECRET": from_env}).secret == from_env


def test_age_defaults_to_session_cookie_age(settings_: Any) -> None:
    with settings_(SESSION_COOKIE_AGE=1234, SESSIONS={"driver": "memory"}):
        assert build().age_seconds == 1234
        assert build({"SESSION_AGE": "10m"}).age_seconds == 600


@pytest.mark.parametrize(
    ("sessions", "field"),
    [
        ({"driver": "memory", "colour": "red"}, "SESSIONS['colour']"),
        ({}, "SESSIONS['driver']"),
        ({"driver": "memory", "age": "soon"}, "age"),
        ({"driver": "memory", "drivers": {"memory": 3}}, "SESSIONS['drivers']"),
        (["driver", "memory"], "SESSIONS"),
    ],
)
def test_bad_settings_name_the_field(settings_: Any, sessions: Any, field: str) -> None:
    with settings_(SESSIONS=sessions), pytest.raises(ConfigError) as caught:
        build()
    assert caught.value.field == field


def check_messages() -> list[Any]:
    from django.core import checks

    return [m for m in checks.run_checks() if m.id.startswith("sessions.")]


def test_system_check_reports_errors_at_startup(settings_: Any) -> None:
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    with settings_(SESSIONS={"driver": "memory"}):
        assert check_messages() == []
    cases = {
        "sessions.E001": {"driver": "cookie"},
        "sessions.E002": {"driver": "nosuchdriver"},
    }
    for expected, sessions in cases.items():
        with settings_(SESSIONS=sessions):
            (message,) = check_messages()
            assert message.id == expected
            with pytest.raises(SystemCheckError, match=sessions["driver"]):
                call_command("check")
    with settings_(SESSIONS={"driver": "file", "drivers": {"file": {"colour": 1}}}):
        (message,) = check_messages()
        assert message.id == "sessions.E001"
        assert "drivers.file.colour" in message.msg
    with settings_(SESSIONS={"driver": "memory", "cookie_name": "x"}):
        (message,) = check_messages()
        assert message.id == "sessions.W001"
    with settings_(SESSION_ENGINE="django.contrib.sessions.backends.cache"):
        (message,) = check_messages()
        assert message.id == "sessions.W002"


def test_cookie_and_async_only_drivers_are_refused(settings_: Any) -> None:
    from sessions import SessionConfig, SessionManager
    from sessions.django.config import _check_driver, get_manager

    with (
        settings_(SESSIONS={"driver": "cookie"}),
        pytest.raises(ConfigError, match="signed_cookies"),
    ):
        get_manager()

    class AsyncOnly(Driver):
        async def read(self, session_id: str) -> dict[str, Any] | None:
            return None

        async def write(self, session_id: str, values: dict[str, Any]) -> None:
            return None

        async def destroy(self, session_id: str) -> None:
            return None

        async def touch(self, session_id: str) -> None:
            return None

    manager = SessionManager(
        SessionConfig(secret="UP615ZA7lEmJP_BpRJvcQL0icCj6gUJWjC1jLrnF", driver="asynconly"),
        drivers={"asynconly": AsyncOnly},
    )
    with pytest.raises(ConfigError, match="async-only"):
        _check_driver(manager)


def test_one_manager_per_process_rebuilt_when_settings_change(settings_: Any) -> None:
    from sessions.django.config import get_manager

    with settings_(SESSIONS={"driver": "memory"}):
        first = get_manager()
        assert get_manager() is first
        with settings_(SESSIONS={"driver": "memory", "age": "1h"}):
            second = get_manager()
            assert second is not first
            assert second.config.age_seconds == 3600


def test_tagged_serializer_keeps_richer_types(settings_: Any) -> None:
    import datetime as dt
    from decimal import Decimal
    from uuid import uuid4

    from sessions import UnsupportedValueError

    with settings_(
        SESSIONS={"driver": "memory"},
        SESSION_SERIALIZER="sessions.django.serializers.TaggedSerializer",
    ):
        from sessions.django import SessionStore

        values = {
            "when": dt.datetime.now(dt.UTC),
            "day": dt.date(2026, 1, 2),
            "id": uuid4(),
            "price": Decimal("1.10"),
            "raw": b"\x00\xff",
        }
        s = SessionStore()
        s.update(values)
        s.save()
        assert SessionStore(s.session_key).load() == values
        s["bad"] = {1, 2}
        with pytest.raises(UnsupportedValueError, match="'bad'"):
            s.save()
        # Django's signing (SessionBase.encode/decode) works with it too.
        assert s.decode(s.encode({"day": dt.date(2026, 1, 2)})) == {"day": dt.date(2026, 1, 2)}


def test_importing_sessions_does_not_import_django() -> None:
    import subprocess
    import sys

    code = "import sessions, sys; print(sorted(m for m in sys.modules if 'django' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
