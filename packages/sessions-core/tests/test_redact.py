"""Credentials never reach an error message or the CLI's output, and weak
secrets or broken cookie-prefix settings are refused at startup."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from click.testing import CliRunner
from sessions import ConfigError, SessionConfig, SessionManager
from sessions.cli import make_cli
from sessions.driver import Option
from sessions.errors import DriverError
from sessions.redact import redact, redact_text

SECRET = "redact-tests-secret-0123456789-abcdefghij"


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("redis://:hunter2@db/0", "redis://:***@db/0"),
        ("redis://user:hunter2@db:6379/0", "redis://user:***@db:6379/0"),
        ("redis://db/0?password=hunter2&db=1", "redis://db/0?password=***&db=1"),
        ("postgresql://u@db/x?sslpassword=hunter2", "postgresql://u@db/x?sslpassword=***"),
        ("host=db user=app password=hunter2 port=5432", "host=db user=app password=*** port=5432"),
        ("https://api.test/?api_key=hunter2&page=2", "https://api.test/?api_key=***&page=2"),
        ("rediss://db/0?ssl_certfile=/etc/c.pem", "rediss://db/0?ssl_certfile=/etc/c.pem"),
    ],
)
def test_redact_text_masks_credentials_only(text: str, safe: str) -> None:
    assert redact_text(text) == safe


def test_a_secret_named_value_is_hidden_whole() -> None:
    assert redact("hunter2", "drivers.x.password") == "<7 characters, hidden>"
    assert redact(1234, "token") == "<int, hidden>"
    assert redact("<7 characters, hidden>", "password") == "<7 characters, hidden>"
    assert redact({"url": "redis://:hunter2@h/0", "api_key": "k"}) == {
        "url": "redis://:***@h/0",
        "api_key": "<1 characters, hidden>",
    }


def test_an_unknown_option_does_not_echo_its_password() -> None:
    config = SessionConfig(
        secret=SECRET, driver="memory", drivers={"memory": {"urll": "redis://:hunter2@db/0"}}
    )
    with pytest.raises(ConfigError) as info:
        SessionManager(config, autoload_plugins=False).driver
    assert "hunter2" not in str(info.value)
    assert "drivers.memory.urll='redis://:***@db/0'" in str(info.value)
    assert "hunter2" not in repr(info.value.given)


def test_a_misspelt_password_option_does_not_echo_its_value() -> None:
    config = SessionConfig(
        secret=SECRET, driver="memory", drivers={"memory": {"passwrd": "hunter2"}}
    )
    with pytest.raises(ConfigError) as info:
        SessionManager(config, autoload_plugins=False).driver
    assert "hunter2" not in str(info.value)
    assert "drivers.memory.passwrd='<7 characters, hidden>'" in str(info.value)
    with pytest.raises(ConfigError) as cookie:
        SessionConfig(secret=SECRET, cookie={"secure": "maybe"})
    assert "'maybe'" in str(cookie.value)  # an ordinary field is still shown


def test_a_badly_typed_option_does_not_echo_its_password() -> None:
    option = Option("retries", int, 3, "attempts")
    with pytest.raises(ConfigError) as info:
        option.coerce("x", "redis://u:hunter2@db/0")
    assert "hunter2" not in str(info.value)
    secret_option = Option("password", str, None, "the password")
    with pytest.raises(ConfigError) as info:
        secret_option.coerce("x", 12345678)
    assert "12345678" not in str(info.value)


def test_driver_errors_mask_passwords_in_the_cause() -> None:
    cause = OSError("cannot reach redis://:hunter2@db:6379/0")
    error = DriverError("redis", "read", "redis://:hunter2@db:6379/0", cause)
    assert "hunter2" not in str(error)


# -- secrets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "weak",
    [
        "a" * 32,
        "ab" * 16,
        "abcd" * 10,
        "password" * 4,
        "0123456789abcdef" * 2,
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
    ],
)
def test_an_obviously_weak_secret_is_refused(weak: str) -> None:
    with pytest.raises(ConfigError) as info:
        SessionConfig(secret=weak)
    message = str(info.value)
    assert "too easy to guess" in message
    assert "sessions secret" in message
    assert weak not in message
    with pytest.raises(ConfigError, match=r"secret_fallbacks\[0\]"):
        SessionConfig(secret=SECRET, secret_fallbacks=(weak,))


@pytest.mark.parametrize(
    "make",
    [
        lambda: secrets.token_urlsafe(24),  # `sessions secret --bytes 24`, the minimum
        lambda: secrets.token_urlsafe(48),  # `sessions secret`
        lambda: secrets.token_hex(16),
        lambda: secrets.token_hex(32),
    ],
)
def test_random_secrets_pass(make: Any) -> None:
    for _ in range(2000):
        SessionConfig(secret=make())


def test_sessions_secret_output_passes() -> None:
    for _ in range(50):
        result = CliRunner().invoke(make_cli(), ["secret"])
        SessionConfig(secret=result.output.strip())


# -- cookie name prefixes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cookie", "field"),
    [
        ("__Secure-sid", {"secure": False}, "cookie.secure"),
        ("__Host-sid", {"secure": False}, "cookie.secure"),
        ("__Host-sid", {"domain": "example.test"}, "cookie.domain"),
        ("__Host-sid", {"path": "/app"}, "cookie.path"),
        ("__host-sid", {"path": "/app"}, "cookie.path"),
    ],
)
def test_cookie_prefix_rules_are_enforced(name: str, cookie: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        SessionConfig(secret=SECRET, cookie_name=name, cookie=cookie)
    assert info.value.field == field
    assert name in str(info.value)


@pytest.mark.parametrize(
    ("name", "cookie"),
    [
        ("__Host-session", {}),
        ("__Host-session", {"secure": True}),
        ("__Secure-sid", {"domain": "example.test", "path": "/app"}),
        ("session", {"secure": False, "domain": "example.test"}),
    ],
)
def test_cookie_prefix_rules_allow_valid_settings(name: str, cookie: dict[str, Any]) -> None:
    assert SessionConfig(secret=SECRET, cookie_name=name, cookie=cookie).cookie_name == name
