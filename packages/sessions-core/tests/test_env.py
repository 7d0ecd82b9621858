"""SessionConfig.from_env: errors name the variable typed, typos of settings fail at
startup with the nearest valid name, and a ``.env`` file (as ``sessions init``
writes it) is read with ``env_file=``."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sessions import ConfigError, SessionConfig, SessionManager

SECRET = "env-tests-secret-0123456789-abcdefghijkl"


def build(env: dict[str, str]) -> SessionManager:
    manager = SessionManager(SessionConfig.from_env(env), autoload_plugins=False)
    manager.driver  # builds the driver, validating its options
    return manager


def test_a_misspelt_driver_option_names_the_variable_and_the_nearest_one() -> None:
    env = {"SESSION_SECRET": SECRET, "SESSION_DRIVER": "memory", "SESSION_MEMORY_MAX_SESSION": "9"}
    with pytest.raises(ConfigError) as info:
        build(env)
    message = str(info.value)
    assert "SESSION_MEMORY_MAX_SESSION (drivers.memory.max_session)='9'" in message
    assert "did you mean SESSION_MEMORY_MAX_SESSIONS?" in message


def test_a_badly_typed_driver_option_names_the_variable() -> None:
    env = {"SESSION_SECRET": SECRET, "SESSION_DRIVER": "memory", "SESSION_MEMORY_MAX_SESSIONS": "x"}
    with pytest.raises(ConfigError, match=r"SESSION_MEMORY_MAX_SESSIONS \(drivers\.memory"):
        build(env)


def test_a_bad_core_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"SESSION_AGE \(age\)='2 hours'"):
        SessionConfig.from_env({"SESSION_SECRET": SECRET, "SESSION_AGE": "2 hours"})
    with pytest.raises(ConfigError, match=r"SESSION_COOKIE_SAME_SITE \(cookie\.same_site\)"):
        SessionConfig.from_env({"SESSION_SECRET": SECRET, "SESSION_COOKIE_SAME_SITE": "often"})


def test_an_override_is_not_blamed_on_the_environment() -> None:
    with pytest.raises(ConfigError) as info:
        SessionConfig.from_env({"SESSION_SECRET": SECRET, "SESSION_AGE": "2h"}, age="soon")
    assert info.value.field == "age"


@pytest.mark.parametrize(
    ("variable", "nearest"),
    [
        ("SESSION_SECRET_FALLBACK", "SESSION_SECRET_FALLBACKS"),
        ("SESSION_COOKIE_SECUR", "SESSION_COOKIE_SECURE"),
        ("SESSION_CLEAR_WITH_BROWSR", "SESSION_CLEAR_WITH_BROWSER"),
        ("SESSION_MEMROY_MAX_SESSIONS", "SESSION_MEMORY_MAX_SESSIONS"),
    ],
)
@pytest.mark.parametrize("driver", ["memory", "cookie"])
def test_a_typo_of_a_setting_fails_at_startup(variable: str, nearest: str, driver: str) -> None:
    env = {"SESSION_SECRET": SECRET, "SESSION_DRIVER": driver, variable: "true"}
    with pytest.raises(ConfigError) as info:
        build(env)
    message = str(info.value)
    assert variable in message
    assert f"did you mean {nearest}?" in message


def test_a_typo_never_echoes_a_secret() -> None:
    old = "old-secret-hunter2-0123456789-abcdefghijk"
    with pytest.raises(ConfigError) as info:
        SessionConfig.from_env({"SESSION_SECRET": SECRET, "SESSION_SECRET_FALLBACK": old})
    assert old not in str(info.value)
    assert "SESSION_SECRET_FALLBACKS" in str(info.value)


def test_unrelated_session_variables_are_logged_not_fatal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {
        "SESSION_SECRET": SECRET,
        "SESSION_MANAGER": "local/host:@/tmp/.ICE-unix/1234",  # X11 desktops set it
        "SESSION_COLOUR_SCHEME": "dark",
    }
    with caplog.at_level(logging.WARNING, logger="sessions"):
        config = SessionConfig.from_env(env)
    assert config.secret == SECRET
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "SESSION_COLOUR_SCHEME" in warned
    assert "SESSION_MANAGER" not in warned


def test_options_of_another_installed_driver_are_legitimate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {
        "SESSION_SECRET": SECRET,
        "SESSION_DRIVER": "memory",
        "SESSION_MEMORY_MAX_SESSIONS": "50",
        "SESSION_COOKIE_NAME": "sid",  # a core setting sharing the cookie driver's prefix
        "SESSION_COOKIE_SECURE": "true",
    }
    with caplog.at_level(logging.WARNING, logger="sessions"):
        manager = build(env)
    assert manager.config.cookie_name == "sid"
    assert manager.config.cookie.secure is True
    assert not caplog.records


def test_commit_on_error_is_read_from_the_environment() -> None:
    config = SessionConfig.from_env({"SESSION_SECRET": SECRET, "SESSION_COMMIT_ON_ERROR": "yes"})
    assert config.commit_on_error is True
    assert SessionConfig(secret=SECRET).commit_on_error is False
    with pytest.raises(ConfigError, match=r"SESSION_COMMIT_ON_ERROR \(commit_on_error\)"):
        SessionConfig.from_env({"SESSION_SECRET": SECRET, "SESSION_COMMIT_ON_ERROR": "perhaps"})


def test_env_file_written_by_sessions_init_is_read(tmp_path: Path) -> None:
    from click.testing import CliRunner
    from sessions.cli import make_cli

    env_file = tmp_path / "app.env"
    result = CliRunner().invoke(
        make_cli(),
        ["init", "--driver", "memory", "--env-file", str(env_file), "-o", "max_sessions=77"],
        env={"SESSIONS_PLUGINS": ""},
    )
    assert result.exit_code == 0, result.output
    config = SessionConfig.from_env({}, env_file=env_file)
    assert config.driver == "memory"
    assert len(config.secret) == 64
    assert config.driver_options()["max_sessions"] == "77"
    # The real environment wins over the file.
    assert SessionConfig.from_env({"SESSION_AGE": "5m"}, env_file=env_file).age_seconds == 300


def test_env_file_errors_name_the_file_and_line(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"SESSION_SECRET={SECRET}\nnot an assignment\n")
    with pytest.raises(ConfigError, match=r"line 2"):
        SessionConfig.from_env({}, env_file=env_file)
    missing = tmp_path / "absent.env"
    with pytest.raises(ConfigError, match=r"absent\.env does not set it either"):
        SessionConfig.from_env({}, env_file=missing)
