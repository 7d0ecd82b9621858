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


def age_file(path: str | Path, seconds: float) -> None:
    """Set a file's modification time ``seconds`` into the past."""
    past = time.time() - seconds
    os.utime(path, (past, past), follow_symlinks=False)


def plant(driver: FileDriver, session_id: str, payload: bytes | dict[str, Any]) -> str:
    """Put a session file in place by hand (as a write would); return its path."""
    data = payload if isinstance(payload, bytes) else encode(payload)
    directory = driver.layout.directory(session_id)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = driver.layout.path(session_id)
    with open(path, "wb") as handle:
        handle.write(data)
    return path
