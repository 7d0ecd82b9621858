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
    assert flavours.versioned  # read_versioned and write_versioned, used from threads too
    assert flavours.tagging  # tagged, peek and destroy_tagged


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


def test_records_of_the_previous_release_read_as_version_0(tmp_path: Path) -> None:
    # The previous release stored the expiry and the values, no version.
    import struct

    from sessions.codec import encode
    from sessions.driver import Record

    h = Harness(DbmDriver, {"path": tmp_path / "db"}, age=60)
    live, old = new_key(), new_key()
    h.driver.store_raw(live, struct.pack(">d", time.time() + 30) + encode({"user": 42}))
    h.driver.store_raw(old, struct.pack(">d", time.time() - 1) + encode({"user": 7}))
    assert h.call("read_versioned", live) == Record({"user": 42}, 0)
    assert h.call("read", old) is None
    assert h.call("write_versioned", live, {"user": 42, "n": 1}, None) is False
    assert h.call("write_versioned", live, {"user": 42, "n": 1}, 0) is True
    assert h.call("read_versioned", live) == Record({"user": 42, "n": 1}, 1)
    h.manager.close()


def test_plain_write_moves_the_version_on(tmp_path: Path) -> None:
    h = Harness(DbmDriver, {"path": tmp_path / "db"}, age=60)
    key = new_key()
    h.call("write", key, {"a": 1})
    first = h.call("read_versioned", key).version
    h.call("write", key, {"a": 2})
    assert h.call("write_versioned", key, {"a": 3}, first) is False
    assert h.call("read", key) == {"a": 2}
    h.manager.close()


def test_own_age_sets_the_record_expiry(tmp_path: Path) -> None:
    # session.set_expiry() puts "__age__" in the values: the record lives that long.
    h = Harness(DbmDriver, {"path": tmp_path / "db"}, age=60)
    short, long = new_key(), new_key()
    h.call("write", short, {"__age__": 1})
    h.call("write_versioned", long, {"__age__": 3600}, None)
    time.sleep(1.1)
    assert h.call("read", short) is None
    assert h.call("read", long) == {"__age__": 3600}
    h.manager.close()


def _index(h: Harness, tag: str) -> set[str]:
    """The ids the driver's index record for ``tag`` holds."""
    raw = h.driver._db.get(b"tag:" + tag.encode())
    return set(raw.decode().split("\n")) if raw else set()


def test_tag_index_is_pruned_when_listed(tmp_path: Path) -> None:
    h = Harness(DbmDriver, {"path": tmp_path / "db"}, age=60)
    kept, destroyed, retagged, expired = (new_key() for _ in range(4))
    for key in (kept, destroyed, retagged):
        h.call("write", key, {"__tag__": "ada"})
    h.call("write", expired, {"__tag__": "ada", "__age__": 1})
    assert _index(h, "ada") == {kept, destroyed, retagged, expired}
    h.call("destroy", destroyed)
    h.call("write", retagged, {"__tag__": "bob"})
    time.sleep(1.1)
    listed = h.driver.tagged("ada")
    assert [s.session_id for s in listed] == [kept]
    assert listed[0].values == {"__tag__": "ada"}
    assert time.time() + 55 < listed[0].expires_at <= time.time() + 60
    assert _index(h, "ada") == {kept}
    assert [s.session_id for s in h.driver.tagged("bob")] == [retagged]
    h.call("destroy", kept)
    assert h.driver.tagged("ada") == []
    assert _index(h, "ada") == set()  # the empty index record is gone
    h.manager.close()


def test_gc_prunes_tag_indexes_and_counts_only_sessions(tmp_path: Path) -> None:
    h = Harness(DbmDriver, {"path": tmp_path / "db"}, age=60)
    live, old = new_key(), new_key()
    h.call("write", live, {"__tag__": "ada"})
    h.call("write", old, {"__tag__": "ada", "__age__": 1})
    time.sleep(1.1)
    result = h.driver.gc()
    assert (result.scanned, result.removed) == (2, 1)
    assert _index(h, "ada") == {live}
    assert h.driver.peek(live) is not None
    h.manager.close()


def test_peek_does_not_refresh_and_misses_read_none(tmp_path: Path) -> None:
    h = Harness(DbmDriver, {"path": tmp_path / "db"}, age=60)
    key = new_key()
    h.call("write", key, {"a": 1})
    first = h.driver.peek(key)
    time.sleep(0.05)
    assert h.driver.peek(key) == first
    assert h.driver.peek(new_key()) is None
    h.manager.close()
