"""The file driver passes the driver conformance suite, sync and async."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from sessions.driver import DriverConfig
from sessions.testing import AsyncDriverConformance, DriverConformance, Harness
from sessions_file import FileDriver


class _InTmpPath:
    """A fresh directory per test; ``extra_options`` for the variants."""

    driver_factory: Any = FileDriver
    extra_options: ClassVar[dict[str, Any]] = {}

    @pytest.fixture(autouse=True)
    def _location(self, tmp_path: Path) -> None:
        self.driver_options = {"location": str(tmp_path / "sessions"), **self.extra_options}

    def corrupt(self, harness: Harness, session_id: str) -> None:
        driver: FileDriver = harness.driver
        path = Path(driver.layout.path(session_id))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x80\x00 not a session payload {")


class TestFileSync(_InTmpPath, DriverConformance):
    pass


class TestFileAsync(_InTmpPath, AsyncDriverConformance):
    pass


class TestFileTrio(TestFileAsync):
    backend = "trio"


class TestFileSyncFsync(_InTmpPath, DriverConformance):
    """The same contract with ``fsync`` on (a different write path)."""

    extra_options: ClassVar[dict[str, Any]] = {"fsync": True}


class TempFileDriver(FileDriver):
    """The driver as it runs where files cannot be swapped (temporary files)."""

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        self._swap = False


class TestFileSyncTemporaryFiles(_InTmpPath, DriverConformance):
    """The contract through the temporary-file write path."""

    driver_factory = TempFileDriver
