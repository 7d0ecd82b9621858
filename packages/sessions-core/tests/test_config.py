"""SessionConfig: defaults, age parsing, from_env, and errors that say what is valid."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sessions import ConfigError, CookieOptions, SessionConfig, SessionManager
from sessions.durations import parse_age
from sessions.errors import DriverNotFoundError

SECRET = "config-tests-secret-0123456789-abcdefghi"


def test_defaults() -> None:
    config = SessionConfig(secret=SECRET)
    assert config.enabled is True
    assert config.driver == "cookie"
    assert config.cookie_name == "session"
    assert config.age_seconds == 7200
    assert config.clear_with_browser is False
    assert config.cookie == CookieOptions(path="/", http_only=True, secure=None, same_site="lax")
    assert config.secrets == (SECRET,)


@pytest.mark.parametrize(
    ("given", "seconds"),
    [
        ("2h", 7200),
        ("30m", 1800),
        ("7d", 604800),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("90s", 90),
        ("1w", 604800),
        ("3600", 3600),
        (3600, 3600),
        (12.9, 12),
        (timedelta(minutes=5), 300),
    ],
)
def test_age_parsing(given: Any, seconds: int) -> None:
    assert parse_age(given) == seconds
    assert SessionConfig(secret=SECRET, age=given).age_seconds == seconds


@pytest.mark.parametrize("given", ["", "2 hours", "h", "-1h", "0", 0, -5, True, None, "1.5h", [1]])
def test_bad_age_names_field_value_and_valid_forms(given: Any) -> None:
    with pytest.raises(ConfigError) as info:
        SessionConfig(secret=SECRET, age=given)
    message = str(info.value)
    assert "age=" in message
    assert repr(given) in message
    assert '"2h"' in message


@pytest.mark.parametrize("secret", [None, "", "short", "x" * 31])
def test_missing_or_short_secret(secret: Any) -> None:
    with pytest.raises(ConfigError) as info:
        SessionConfig(secret=secret)
    message = str(info.value)
    assert "secret=" in message
    assert "at least 32 characters" in message
    assert "sessions secret" in message
    if secret:
        assert secret not in message  # never echo a secret


def test_short_fallback_secret() -> None:
    with pytest.raises(ConfigError, match=r"secret_fallbacks\[1\]"):
        SessionConfig(secret=SECRET, secret_fallbacks=(SECRET, "short"))


@pytest.mark.parametrize("same_site", ["lax", "Strict", "NONE", None])
def test_same_site_values(same_site: Any) -> None:
    cookie: dict[str, Any] = {"same_site": same_site, "secure": True}
    config = SessionConfig(secret=SECRET, cookie=cookie)
    assert config.cookie.same_site == (same_site.lower() if same_site else None)


def test_unknown_same_site() -> None:
    with pytest.raises(ConfigError) as info:
        SessionConfig(secret=SECRET, cookie={"same_site": "sometimes"})
    assert "cookie.same_site='sometimes'" in str(info.value)
    assert '"lax", "strict", "none"' in str(info.value)


def test_same_site_none_needs_secure() -> None:
    with pytest.raises(ConfigError, match="Secure"):
        SessionConfig(secret=SECRET, cookie={"same_site": "none", "secure": False})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cookie_name", "bad name"),
        ("cookie_name", "a;b"),
        ("driver", "Redis!"),
        ("clear_with_browser", "maybe"),
        ("cookie", {"colour": "blue"}),
        ("drivers", {"redis": "url"}),
    ],
)
def test_other_invalid_fields(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=field):
        SessionConfig(secret=SECRET, **{field: value})


def test_from_env_reads_everything() -> None:
    env = {
        "SESSION_DRIVER": "redis",
        "SESSION_SECRET": SECRET,
        "SESSION_SECRET_FALLBACKS": (
            "old-secret-0123456789-abcdefghijklmnopq, older-secret-0123456789-rstuvwxyzABCDEF"
        ),
        "SESSION_AGE": "1h30m",
        "SESSION_COOKIE_NAME": "sid",
        "SESSION_CLEAR_WITH_BROWSER": "true",
        "SESSION_COOKIE_SECURE": "1",
        "SESSION_COOKIE_SAME_SITE": "strict",
        "SESSION_COOKIE_DOMAIN": "example.test",
        "SESSION_COOKIE_PATH": "/app",
        "SESSION_COOKIE_HTTP_ONLY": "no",
        "SESSION_REDIS_URL": "redis://127.0.0.1:6379/2",
        "SESSION_REDIS_KEY_PREFIX": "app:",
        "SESSION_FILE_LOCATION": "/ignored/for/another/driver",
    }
    config = SessionConfig.from_env(env)
    assert config.driver == "redis"
    assert config.secret_fallbacks == (
        "old-secret-0123456789-abcdefghijklmnopq",
        "older-secret-0123456789-rstuvwxyzABCDEF",
    )
    assert config.age_seconds == 5400
    assert config.cookie_name == "sid"
    assert config.clear_with_browser is True
    assert config.cookie == CookieOptions(
        path="/app", domain="example.test", http_only=False, secure=True, same_site="strict"
    )
    assert config.drivers == {"redis": {"url": "redis://127.0.0.1:6379/2", "key_prefix": "app:"}}


def test_from_env_cookie_driver_does_not_take_cookie_flags_as_options() -> None:
    config = SessionConfig.from_env(
        {"SESSION_SECRET": SECRET, "SESSION_DRIVER": "cookie", "SESSION_COOKIE_SECURE": "true"}
    )
    assert config.drivers == {}
    assert config.cookie.secure is True


def test_from_env_without_secret_says_what_to_set() -> None:
    with pytest.raises(ConfigError, match="SESSION_SECRET"):
        SessionConfig.from_env({})


def test_from_env_overrides_win() -> None:
    config = SessionConfig.from_env({"SESSION_SECRET": SECRET, "SESSION_AGE": "1h"}, age="5m")
    assert config.age_seconds == 300


def test_driver_options_are_validated_at_startup() -> None:
    config = SessionConfig(secret=SECRET, driver="memory", drivers={"memory": {"max_sesions": 5}})
    with pytest.raises(ConfigError) as info:
        SessionManager(config, autoload_plugins=False).driver
    assert "drivers.memory.max_sesions" in str(info.value)
    assert "max_sessions" in str(info.value)
    config = SessionConfig(
        secret=SECRET, driver="memory", drivers={"memory": {"max_sessions": "x"}}
    )
    with pytest.raises(ConfigError, match="int"):
        SessionManager(config, autoload_plugins=False).driver
    config = SessionConfig(
        secret=SECRET, driver="memory", drivers={"memory": {"max_sessions": "7"}}
    )
    assert SessionManager(config, autoload_plugins=False).driver._max == 7


def test_unknown_driver_lists_installed_and_names_the_package() -> None:
    with pytest.raises(DriverNotFoundError) as info:
        SessionManager(SessionConfig(secret=SECRET, driver="redis"), autoload_plugins=False)
    message = str(info.value)
    assert "'redis'" in message
    assert "memory" in message
    assert "pip install sessions-redis" in message
