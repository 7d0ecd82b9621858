"""The file driver passes the driver conformance suite, sync and async."""

from __future__ import annotations

from pathlib import Path

import pytest
from sessions.driver import DriverConfig
from sessions.testing import AsyncDriverConformance, DriverConformance, Harness
from sessions_file import FileDriver


def _corrupt(harness: Harness, session_id: str) -> None:
    driver: FileDriver = harness.driver
    path = Path(driver.layout.path(session_id))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x80\x00 not a session payload {")


class TestFileSync(DriverConformance):
    driver_factory = FileDriver

    @pytest.fixture(autouse=True)
    def _location(self, tmp_path: Path) -> None:
        self.driver_options = {"location": str(tmp_path / "sessions")}

    def corrupt(self, harness: Harness, session_id: str) -> None:
        _corrupt(harness, session_id)


class TestFileAsync(AsyncDriverConformance):
    driver_factory = FileDriver

    @pytest.fixture(autouse=True)
    def _location(self, tmp_path: Path) -> None:
        self.driver_options = {"location": str(tmp_path / "sessions")}

    def corrupt(self, harness: Harness, session_id: str) -> None:
        _corrupt(harness, session_id)


class TestFileTrio(TestFileAsync):
    backend = "trio"


class TestFileSyncFsync(DriverConformance):
    """The same contract with ``fsync`` on (a different write path)."""

    driver_factory = FileDriver

    @pytest.fixture(autouse=True)
    def _location(self, tmp_path: Path) -> None:
        self.driver_options = {"location": str(tmp_path / "sessions"), "fsync": True}

    def corrupt(self, harness: Harness, session_id: str) -> None:
        _corrupt(harness, session_id)


class TempFileDriver(FileDriver):
    """The driver as it runs where files cannot be swapped (temporary files)."""

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        self._swap = False


class TestFileSyncTemporaryFiles(DriverConformance):
    """The contract through the temporary-file write path."""

    driver_factory = TempFileDriver

    @pytest.fixture(autouse=True)
    def _location(self, tmp_path: Path) -> None:
        self.driver_options = {"location": str(tmp_path / "sessions")}

    def corrupt(self, harness: Harness, session_id: str) -> None:
        _corrupt(harness, session_id)
