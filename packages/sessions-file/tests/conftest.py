"""Shared fixtures of the file driver's tests: a private sessions directory,
a harness over it, and helpers to plant files and age them."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sessions.codec import encode
from sessions.testing import Harness
from sessions_file import FileDriver

AGE = 60


@pytest.fixture
def location(tmp_path: Path) -> Path:
    """Where the driver under test keeps its sessions (created by the driver)."""
    return tmp_path / "sessions"


@pytest.fixture
def make_harness(location: Path) -> Callable[..., Harness]:
    """Build a Harness over a FileDriver in ``location`` with option overrides."""

    def make(age: int = AGE, **options: Any) -> Harness:
        return Harness(FileDriver, {"location": str(location), **options}, age)

    return make


@pytest.fixture
def harness(make_harness: Callable[..., Harness]) -> Harness:
    """A harness with default options and a 60 s session age."""
    return make_harness()


def _age_file(path: str | Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past), follow_symlinks=False)


def _plant(driver: FileDriver, session_id: str, payload: bytes | dict[str, Any]) -> str:
    data = payload if isinstance(payload, bytes) else encode(payload)
    directory = driver.layout.directory(session_id)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = driver.layout.path(session_id)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


@pytest.fixture
def age_file() -> Callable[[str | Path, float], None]:
    """Set a file's modification time ``seconds`` into the past."""
    return _age_file


@pytest.fixture
def plant() -> Callable[..., str]:
    """Put a session file in place by hand (as a write would); return its path."""
    return _plant


class Recorder:
    """A FileDriver built directly, with the decode-failure notices it sent."""

    def __init__(self, location: Path, age: int, **options: Any) -> None:
        from sessions import SessionConfig
        from sessions.driver import DriverConfig, validate_options

        self.notices: list[tuple[str, str]] = []
        session = SessionConfig(secret="file-driver-tests-secret-0123456789abcdef", age=age)
        given = {"location": str(location), **options}
        self.driver = FileDriver(
            DriverConfig(
                name="file",
                options=validate_options("file", FileDriver, given),
                age=age,
                session=session,
                notify_decode_failed=lambda source, reason: self.notices.append((source, reason)),
            )
        )


@pytest.fixture
def recorder(location: Path) -> Recorder:
    """A FileDriver (60 s age) that records its decode-failure notices."""
    return Recorder(location, AGE)
