"""What the conformance suite does not cover: persistence, gc, options, plugin."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sessions import ConfigError, SessionConfig, SessionManager
from sessions.driver import flavours_of
from sessions.plugins import load_plugins, reset_plugins
from sessions.testing import Harness, new_key
from sessions_dbm.driver import DbmDriver


def test_sessions_survive_a_restart(tmp_path: Path) -> None:
    key = new_key()
    first = Harness(DbmDriver, {"path": tmp_path / "db"}, age=60)
    first.call("write", key, {"user": "ada"})
    first.manager.close()
    second = Harness(DbmDriver, {"path": tmp_path / "db"}, age=60)
    assert second.call("read", key) == {"user": "ada"}
    second.manager.close()


def test_gc_removes_expired_and_malformed_only(tmp_path: Path) -> None:
    h = Harness(DbmDriver, {"path": tmp_path / "db"}, age=60)
    live, old, bad = new_key(), new_key(), new_key()
    h.call("write", live, {"x": 1})
    h.driver.store_raw(old, b"\x00" * 8 + b"{}")  # expired at the epoch
    h.driver.store_raw(bad, b"\x01")
    calls: list[tuple[int, int | None]] = []
    result = h.driver.gc(progress=lambda scanned, total: calls.append((scanned, total)))
    assert (result.scanned, result.removed) == (3, 2)
    assert result.bytes_freed == 11
    assert calls[-1] == (3, 3)
    assert h.call("read", live) == {"x": 1}
    assert h.manager.has_gc
    h.manager.close()


def test_expired_record_is_removed_on_read(tmp_path: Path) -> None:
    h = Harness(DbmDriver, {"path": tmp_path / "db"}, age=1)
    key = new_key()
    h.call("write", key, {"x": 1})
    time.sleep(1.1)
    assert h.call("read", key) is None
    assert h.driver.gc().scanned == 0
    h.manager.close()


def test_unknown_backend_is_a_config_error(tmp_path: Path) -> None:
    h = Harness(DbmDriver, {"path": tmp_path / "db", "backend": "bdb"}, age=60)
    with pytest.raises(ConfigError, match=r"drivers\.under_test\.backend.*one of"):
        h.driver


def test_unwritable_path_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    h = Harness(DbmDriver, {"path": blocker / "db"}, age=60)
    with pytest.raises(ConfigError, match=r"drivers\.under_test\.path.*writable"):
        h.driver


def test_sync_only_so_async_apps_use_a_worker_thread() -> None:
    flavours = flavours_of(DbmDriver)
    assert flavours.sync
    assert not flavours.has_async


@pytest.fixture
def only_dbm_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Load this distribution's entry point, and no other plugin, as an app would."""
    monkeypatch.setenv("SESSIONS_PLUGINS", "dbm")
    reset_plugins()
    yield
    reset_plugins()


@pytest.mark.usefixtures("only_dbm_plugin")
def test_entry_point_selects_the_driver_by_name(tmp_path: Path) -> None:
    entry = load_plugins().get("dbm")
    assert entry.load() is DbmDriver
    assert entry.distribution == "sessions-dbm"
    manager = SessionManager(
        SessionConfig(
            secret="dbm-tests-secret-0123456789-abcdefghijk",
            driver="dbm",
            drivers={"dbm": {"path": tmp_path / "db"}},
        )
    )
    try:
        assert isinstance(manager.driver, DbmDriver)
        assert manager.driver.describe().endswith(str(tmp_path / "db"))
    finally:
        manager.close()
