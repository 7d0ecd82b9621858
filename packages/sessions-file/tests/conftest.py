"""Shared fixtures of the file driver's tests: a private sessions directory,
a harness over it, and helpers to plant files, read records and age them."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sessions.codec import decode, encode
from sessions.testing import Harness
from sessions_file import FileDriver
from sessions_file.header import HEADER_SIZE, Header, parse, payload

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


def _expire_in(path: str | Path, seconds: float, age: int = AGE) -> None:
    """Make the session file at ``path`` expire ``seconds`` from now (negative: ago).

    A current record expires at its modification time; a file of the previous
    release (no header) ``age`` after it.
    """
    with open(path, "rb") as handle:
        legacy = parse(handle.read(HEADER_SIZE), age)
    when = time.time() + seconds - (age if legacy is not None and legacy.legacy else 0)
    os.utime(path, (when, when), follow_symlinks=False)


def _values_of(data: bytes) -> dict[str, Any]:
    """The values of a record's bytes (either format)."""
    found = parse(data, AGE)
    assert found is not None, f"not a session record: {data[:60]!r}"
    return decode(payload(data, found))


def _header_of(path: str | Path) -> Header:
    """The header of the session file at ``path``."""
    found = parse(Path(path).read_bytes()[:HEADER_SIZE], AGE)
    assert found is not None
    return found


def _plant(driver: FileDriver, session_id: str, content: bytes | dict[str, Any]) -> str:
    # A dict is planted as the previous release wrote it: the codec's JSON alone.
    data = content if isinstance(content, bytes) else encode(content)
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
def values_of() -> Callable[[bytes], dict[str, Any]]:
    """The values of a record's bytes (either format)."""
    return _values_of


@pytest.fixture
def header_of() -> Callable[[str | Path], Header]:
    """The header of the session file at a path."""
    return _header_of


@pytest.fixture
def expire_in() -> Callable[..., None]:
    """Make a session file expire ``seconds`` from now (negative: ago)."""
    return _expire_in


@pytest.fixture
def plant() -> Callable[..., str]:
    """Put a session file in place by hand (as the previous release wrote it); return its path."""
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
