"""The dbm driver passes sessions-core's conformance suite and its
concurrent-commit checks, sync and async.

This is how any driver package runs them: subclass the kit's classes, point
them at the driver, and say how to plant an unreadable record. The kit checks
each capability the driver declares (versioned, tagging) and skips the others.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sessions.testing import (
    AsyncConcurrentCommits,
    AsyncDriverConformance,
    ConcurrentCommits,
    DriverConformance,
    Harness,
)
from sessions_dbm.driver import DbmDriver


class _DbmSetup:
    driver_factory = DbmDriver

    @pytest.fixture(autouse=True)
    def _database(self, tmp_path: Path) -> None:
        self.driver_options = {"path": tmp_path / "sessions.dbm"}

    def corrupt(self, harness: Harness, session_id: str) -> None:
        harness.driver.store_raw(session_id, b"\x00\x00\x00\x00\x00\x00\x00\x00not a payload")


class TestDbmSync(_DbmSetup, DriverConformance):
    """Through the driver's own (sync) methods."""


class TestDbmAsync(_DbmSetup, AsyncDriverConformance):
    """Through core's async path, which runs this sync-only driver in a worker thread."""


class TestDbmTrio(TestDbmAsync):
    backend = "trio"


class TestDbmConcurrentCommits(_DbmSetup, ConcurrentCommits):
    """A request held between its read and its commit while another commits
    (keys, increments, clear, regenerate, flash...), and 8 clients x 50
    increments on one cookie, in threads."""


class TestDbmAsyncConcurrentCommits(_DbmSetup, AsyncConcurrentCommits):
    """The same as tasks on one event loop (each call in a worker thread)."""
