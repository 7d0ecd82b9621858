"""Storage semantics: expiry by modification time, touch without rewrite,
unreadable entries read as missing, failures reported with their address."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sessions import DriverError
from sessions.testing import new_key
from sessions_file import FileDriver
from sessions_file.header import HEADER_SIZE

AGE = 60  # the recorder fixture's session age


def _temp_files(root: Path) -> list[Path]:
    return list(root.rglob(".*.tmp"))


def test_write_leaves_no_temporary_file(recorder: Any, location: Path) -> None:
    driver: FileDriver = recorder.driver
    key = new_key()
    for i in range(5):
        driver.write(key, {"i": i})
    assert _temp_files(location) == []
    names = sorted(p.name for p in location.rglob("*") if p.is_file())
    assert names == sorted([key, f".{key}.spare"])


def test_write_replaces_the_inode(recorder: Any, values_of: Callable[[bytes], Any]) -> None:
    # Atomic replace: an open reader of the old file keeps the old content.
    driver: FileDriver = recorder.driver
    key = new_key()
    driver.write(key, {"v": "old"})
    path = driver.layout.path(key)
    with open(path, "rb") as old:
        driver.write(key, {"v": "new"})
        assert values_of(old.read()) == {"v": "old"}
    assert driver.read(key) == {"v": "new"}


def test_expiry_is_the_modification_time(recorder: Any) -> None:
    # Set into the future by each write: gc judges files by lstat alone.
    driver: FileDriver = recorder.driver
    key = new_key()
    before = time.time()
    driver.write(key, {"a": 1})
    mtime = os.stat(driver.layout.path(key)).st_mtime
    assert before + AGE - 1 < mtime < time.time() + AGE + 1


def test_read_refreshes_expiry_without_rewriting(
    recorder: Any, expire_in: Callable[[str, float], None]
) -> None:
    driver: FileDriver = recorder.driver
    key = new_key()
    driver.write(key, {"a": 1})
    path = driver.layout.path(key)
    expire_in(path, 5)
    before = os.stat(path)
    content = Path(path).read_bytes()
    assert driver.read(key) == {"a": 1}
    after = os.stat(path)
    assert after.st_ino == before.st_ino
    assert after.st_mtime > time.time() + AGE - 5
    assert Path(path).read_bytes() == content
    assert FileDriver.touches_on_read is True


def test_read_without_touch_leaves_the_expiry(
    recorder: Any, expire_in: Callable[[str, float], None]
) -> None:
    # Core reads with touch=False when touch_interval says no refresh is due.
    driver: FileDriver = recorder.driver
    key = new_key()
    driver.write(key, {"a": 1})
    path = driver.layout.path(key)
    expire_in(path, 5)
    before = os.stat(path).st_mtime_ns
    assert driver.read(key, False) == {"a": 1}
    assert driver.read_versioned(key, False) is not None
    assert os.stat(path).st_mtime_ns == before
    assert driver.read(key) == {"a": 1}
    assert os.stat(path).st_mtime_ns > before


def test_touch_refreshes_expiry_without_rewriting(
    recorder: Any, expire_in: Callable[[str, float], None]
) -> None:
    driver: FileDriver = recorder.driver
    key = new_key()
    driver.write(key, {"a": 1})
    path = driver.layout.path(key)
    expire_in(path, 5)
    before = os.stat(path)
    content = Path(path).read_bytes()
    driver.touch(key)
    after = os.stat(path)
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)
    assert after.st_mtime > before.st_mtime + AGE - 10
    assert Path(path).read_bytes() == content


def test_expired_file_reads_as_missing_and_is_removed(
    recorder: Any, expire_in: Callable[[str, float], None]
) -> None:
    driver: FileDriver = recorder.driver
    key = new_key()
    driver.write(key, {"a": 1})
    path = driver.layout.path(key)
    expire_in(path, -1)
    assert driver.read(key) is None
    assert not os.path.exists(path)
    assert recorder.notices == []


def test_touch_does_not_revive_an_expired_session(
    recorder: Any, expire_in: Callable[[str, float], None]
) -> None:
    driver: FileDriver = recorder.driver
    key = new_key()
    driver.write(key, {"a": 1})
    path = driver.layout.path(key)
    expire_in(path, -0.5)
    driver.touch(key)
    assert os.stat(path).st_mtime < time.time()
    assert driver.read(key) is None


def _directory_at(path: str) -> None:
    os.mkdir(path)


def _symlink_to_session(path: str) -> None:
    # A link to a valid payload: the driver must not follow it.
    target = Path(path).parent / "elsewhere"
    target.write_bytes(b'{"admin":true}')
    os.symlink(target, path)


def _fifo_at(path: str) -> None:
    os.mkfifo(path)


def _garbage(path: str) -> None:
    Path(path).write_bytes(b"\xff\xfe not json")


def _json_not_a_dict(path: str) -> None:
    Path(path).write_bytes(b"[1, 2, 3]")


def _empty(path: str) -> None:
    Path(path).write_bytes(b"")


def _bad_tag(path: str) -> None:
    Path(path).write_bytes(b'{"x":{"\\u0000":["dt","not a date"]}}')


@pytest.mark.parametrize(
    "make",
    [_directory_at, _symlink_to_session, _fifo_at, _garbage, _json_not_a_dict, _empty, _bad_tag],
)
def test_unreadable_entry_reads_as_missing_and_is_reported(
    recorder: Any, make: Callable[[str], None]
) -> None:
    driver: FileDriver = recorder.driver
    key = new_key()
    directory = driver.layout.directory(key)
    os.makedirs(directory, exist_ok=True)
    make(driver.layout.path(key))
    started = time.monotonic()
    assert driver.read(key) is None
    assert time.monotonic() - started < 1  # a FIFO must not block the request
    assert len(recorder.notices) == 1
    source, reason = recorder.notices[0]
    assert source == "store"
    assert key in reason


def test_undecodable_session_gets_a_fresh_one_through_core(
    make_harness: Callable[..., Any],
) -> None:
    from sessions import Session

    h = make_harness()
    context = h.context()
    session = Session(h.manager, context)
    session.initiate()
    session.put("a", 1)
    session.commit()
    h.finish(context)
    Path(h.driver.layout.path(session.session_id)).write_bytes(b"garbage")
    again = Session(h.manager, h.context())
    again.initiate()
    assert again.fresh is True
    assert again.session_id != session.session_id


def test_write_failure_raises_driver_error_naming_the_path(recorder: Any) -> None:
    driver: FileDriver = recorder.driver
    key = new_key()
    # A plain file where the shard directory should be.
    blocker = Path(driver.root, key[0])
    blocker.write_bytes(b"")
    with pytest.raises(DriverError) as caught:
        driver.write(key, {"a": 1})
    message = str(caught.value)
    assert "'file' failed to write" in message
    assert driver.layout.path(key) in message
    assert isinstance(caught.value.__cause__, OSError)
    assert _temp_files(driver.root) == []


def test_rename_failure_removes_the_temporary_file(recorder: Any) -> None:
    driver: FileDriver = recorder.driver
    driver._swap = False  # the temporary-file path, used where files cannot be swapped
    key = new_key()
    # A non-empty directory where the session file should be: rename over it fails.
    target = Path(driver.layout.path(key))
    target.mkdir(parents=True)
    (target / "x").write_bytes(b"")
    with pytest.raises(DriverError, match="failed to write"):
        driver.write(key, {"a": 1})
    assert _temp_files(driver.root) == []


def test_destroy_removes_the_file(recorder: Any) -> None:
    driver: FileDriver = recorder.driver
    key = new_key()
    driver.write(key, {"a": 1})
    driver.destroy(key)
    assert not os.path.exists(driver.layout.path(key))
    driver.destroy(key)


def test_describe_is_the_location(recorder: Any, location: Path) -> None:
    assert recorder.driver.describe() == str(location)


def _swapping(driver: FileDriver) -> None:
    from sessions_file import locks

    if locks.exchange is None:
        pytest.skip("this system cannot swap files; the driver uses temporary files")


def test_rewrites_recycle_two_inodes(recorder: Any, values_of: Callable[[bytes], Any]) -> None:
    # After two writes a session owns two inodes (file and spare) and later
    # writes swap between them: no inode is created or freed per write.
    driver: FileDriver = recorder.driver
    _swapping(driver)
    key = new_key()
    driver.write(key, {"v": 1})
    driver.write(key, {"v": 2})
    path, spare = driver.layout.path(key), driver.layout.spare(key)
    inodes = {os.stat(path).st_ino, os.stat(spare).st_ino}
    for v in range(3, 10):
        driver.write(key, {"v": v})
        assert driver.read(key) == {"v": v}
        assert {os.stat(path).st_ino, os.stat(spare).st_ino} == inodes
    assert values_of(Path(spare).read_bytes()) == {"v": 8}  # the previous version, now the spare


def test_shorter_rewrite_truncates_the_spare(recorder: Any) -> None:
    driver: FileDriver = recorder.driver
    key = new_key()
    for values in ({"v": "x" * 5000}, {"v": "y" * 4000}, {"v": "z"}, {"v": "w" * 10}):
        driver.write(key, values)
        assert driver.read(key) == values
        assert os.path.getsize(driver.layout.path(key)) == HEADER_SIZE + len(json_of(values))


def json_of(values: dict[str, Any]) -> bytes:
    from sessions.codec import encode

    return encode(values)


def test_spare_file_is_private_and_destroyed_with_the_session(recorder: Any) -> None:
    driver: FileDriver = recorder.driver
    _swapping(driver)
    key = new_key()
    driver.write(key, {"v": 1})
    driver.write(key, {"v": 2})
    spare = driver.layout.spare(key)
    assert os.stat(spare).st_mode & 0o777 == 0o600
    driver.destroy(key)
    assert not os.path.exists(spare)
    assert not os.path.exists(driver.layout.path(key))


def test_falls_back_to_temporary_files_where_swapping_is_refused(
    recorder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Some file systems (NFS, some FUSE) refuse RENAME_EXCHANGE with EINVAL.
    import errno

    from sessions_file import locks

    def refuse(one: str, other: str) -> None:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), one, None, other)

    monkeypatch.setattr(locks, "exchange", refuse)
    driver: FileDriver = recorder.driver
    driver._swap = True
    key = new_key()
    driver.write(key, {"v": 1})  # first write renames the spare in: no swap needed
    driver.write(key, {"v": 2})  # the swap is refused: temporary file instead
    assert driver._swap is False
    driver.write(key, {"v": 3})
    assert driver.read(key) == {"v": 3}
    assert _temp_files(driver.root) == []


def test_a_stuck_lock_holder_fails_the_request_instead_of_hanging_it(
    recorder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A process stopped (SIGSTOP, debugger) while it holds a session's lock.
    import fcntl

    from sessions_file import locks

    monkeypatch.setattr(locks, "LOCK_TIMEOUT", 0.3)
    driver: FileDriver = recorder.driver
    _swapping(driver)
    key = new_key()
    driver.write(key, {"v": 1})
    driver.write(key, {"v": 2})
    attempts: list[tuple[str, str, Callable[[], object]]] = [
        (driver.layout.path(key), "read", lambda: driver.read(key)),
        (driver.layout.spare(key), "write", lambda: driver.write(key, {"v": 3})),
    ]
    for path, operation, attempt in attempts:
        with open(path, "rb") as held:
            fcntl.flock(held.fileno(), fcntl.LOCK_EX)
            started = time.monotonic()
            with pytest.raises(DriverError, match=f"failed to {operation}.*held the lock"):
                attempt()
            assert 0.3 <= time.monotonic() - started < 2
    assert driver.read(key) == {"v": 2}  # released: all is well again
