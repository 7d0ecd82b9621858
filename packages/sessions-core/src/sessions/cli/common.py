"""What several commands share: the --env-file option, loading config, errors."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..config import SessionConfig
from ..errors import SessionError
from .envfile import EnvFileError, merged_environ

F = TypeVar("F", bound=Callable[..., Any])


def env_file_option(func: F) -> F:
    """``--env-file PATH`` (default ``.env``; a missing file is fine)."""
    option = click.option(
        "--env-file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=Path(".env"),
        show_default=True,
        help="Read SESSION_* settings from this file too; the environment wins.",
    )
    decorated: F = option(func)
    return decorated


def load_config(env_file: Path | None, *, needs_secret: bool = True) -> SessionConfig:
    """SessionConfig from the environment and ``env_file``, or a ClickException.

    A command that signs and decrypts nothing (``gc``) passes ``needs_secret=False``:
    without ``SESSION_SECRET`` it gets a random one it never uses for anything.
    """
    try:
        environ = merged_environ(env_file)
        overrides = {}
        if not needs_secret and "SESSION_SECRET" not in environ:
            overrides["secret"] = secrets.token_urlsafe(32)
        return SessionConfig.from_env(environ, **overrides)
    except (SessionError, EnvFileError) as exc:
        raise click.ClickException(str(exc)) from exc
