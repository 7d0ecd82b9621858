"""Garbage collection: removes exactly the expired files, never a live session."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sessions import SessionConfig, SessionManager
from sessions.testing import new_key
from sessions_file import STALE_TEMP_SECONDS, FileDriver, collect

AGE = 60
#: Seconds into the past that make any file of ours old enough to go.
EXPIRED = AGE + 5


def _files(root: Path) -> set[str]:
    """Names of the session files (not spares) under ``root``."""
    return {p.name for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")}


def test_removes_expired_keeps_live(
    recorder: Any, location: Path, expire_in: Callable[[str, float], None]
) -> None:
    driver: FileDriver = recorder.driver
    live, expired = [new_key() for _ in range(50)], [new_key() for _ in range(50)]
    for key in live + expired:
        driver.write(key, {"k": key})
    for key in live[:10]:
        expire_in(driver.layout.path(key), 2)  # about to expire, still live
    for key in expired:
        expire_in(driver.layout.path(key), -EXPIRED)
    size = os.path.getsize(driver.layout.path(expired[0]))
    result = driver.gc()
    assert (result.scanned, result.removed) == (100, 50)
    assert result.bytes_freed == 50 * size
    assert result.seconds > 0
    assert _files(location) == set(live)
    for key in live:
        assert driver.read(key) == {"k": key}


def test_a_just_expired_file_goes_one_about_to_expire_stays(
    recorder: Any, expire_in: Callable[[str, float], None]
) -> None:
    # No grace period: removal locks the file and checks it again, so a
    # request refreshing or rewriting it cannot lose it (see the keep-alive test).
    driver: FileDriver = recorder.driver
    key = new_key()
    driver.write(key, {"a": 1})
    expire_in(driver.layout.path(key), 1)
    assert driver.gc().removed == 0
    expire_in(driver.layout.path(key), -0.2)
    assert driver.gc().removed == 1
    assert driver.read(key) is None


def test_removal_checks_again_under_the_lock(
    recorder: Any, expire_in: Callable[[str, float], None]
) -> None:
    # The walk judges files by lstat; what it found expired may be rewritten, or
    # read by a request, before the batch's removals run.
    import fcntl

    from sessions_file import files

    driver: FileDriver = recorder.driver
    key = new_key()
    path = driver.layout.path(key)
    driver.write(key, {"v": 1})
    expire_in(path, -1)
    driver.write(key, {"v": 2})  # a request stores it afresh
    assert files.remove_expired(path, AGE) is None
    assert driver.read(key) == {"v": 2}
    expire_in(path, -1)
    size = os.path.getsize(path)
    with open(path, "rb") as reading:  # a request holds it (shared lock) right now
        fcntl.flock(reading.fileno(), fcntl.LOCK_SH)
        assert files.remove_expired(path, AGE) is None
    assert files.remove_expired(path, AGE) == size
    assert not os.path.exists(path)


def test_stale_temporary_files_are_removed_fresh_ones_kept(
    recorder: Any, location: Path, age_file: Callable[[str, float], None]
) -> None:
    driver: FileDriver = recorder.driver
    key = new_key()
    directory = Path(driver.layout.directory(key))
    directory.mkdir(parents=True)
    stale = directory / f".{key}.0123456789ab.tmp"
    fresh = directory / f".{key}.ba9876543210.tmp"
    stale.write_bytes(b'{"half":')
    fresh.write_bytes(b'{"in-flight":')
    age_file(stale, STALE_TEMP_SECONDS + 1)
    result = driver.gc()
    assert (result.scanned, result.removed, result.bytes_freed) == (2, 1, 8)
    assert not stale.exists()
    assert fresh.exists()


def test_files_that_are_not_ours_are_never_touched(
    recorder: Any, location: Path, age_file: Callable[[str, float], None]
) -> None:
    driver: FileDriver = recorder.driver
    strangers = [
        location / "README",
        location / ".gitignore",
        location / ("x" * 42),
        location / ("x" * 43 + ".bak"),
        location / "A" / "notes.txt",
        location / "A" / ".tmp",
        location / "A" / ("." + "x" * 43 + ".tmp"),  # no random part: not our name
    ]
    for path in strangers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"keep me")
        age_file(path, 10 * EXPIRED + STALE_TEMP_SECONDS)
    deep = location / "A" / "B" / "C" / "D"
    deep.mkdir(parents=True)
    (deep / new_key()).write_bytes(b"{}")  # deeper than any shard level
    age_file(deep / next(iter(os.listdir(deep))), EXPIRED)
    result = driver.gc()
    assert (result.scanned, result.removed) == (0, 0)
    assert all(path.read_bytes() == b"keep me" for path in strangers)
    assert len(os.listdir(deep)) == 1


def test_symlinked_directories_are_not_followed(
    recorder: Any, tmp_path: Path, location: Path, age_file: Callable[[str, float], None]
) -> None:
    driver: FileDriver = recorder.driver
    live = new_key()
    driver.write(live, {"a": 1})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / new_key()
    victim.write_bytes(b"{}")
    age_file(victim, EXPIRED)
    # Named like a shard directory, but not the live session's own one.
    shard = "Z" if live[0] != "Z" else "Y"
    os.symlink(elsewhere, location / shard, target_is_directory=True)
    assert driver.gc().removed == 0
    assert victim.exists()


def test_sessions_from_another_shard_depth_are_collected(
    make_harness: Callable[..., Any], location: Path, age_file: Callable[[str, float], None]
) -> None:
    flat, deep = make_harness(shard_levels=0), make_harness(shard_levels=3)
    keys = [new_key() for _ in range(4)]
    flat.call("write", keys[0], {"a": 1})
    deep.call("write", keys[1], {"a": 1})
    flat.call("write", keys[2], {"live": 1})
    deep.call("write", keys[3], {"live": 1})
    age_file(flat.driver.layout.path(keys[0]), EXPIRED)
    age_file(deep.driver.layout.path(keys[1]), EXPIRED)
    current = make_harness()  # two levels
    result = current.driver.gc()
    assert (result.scanned, result.removed) == (4, 2)
    assert _files(location) == {keys[2], keys[3]}


def test_progress_in_batches_with_an_estimate(
    recorder: Any, location: Path, age_file: Callable[[str, float], None]
) -> None:
    driver: FileDriver = recorder.driver
    for _ in range(2500):
        driver.write(new_key(), {})
    calls: list[tuple[int, int | None]] = []
    result = collect(
        str(location), AGE, progress=lambda n, total: calls.append((n, total)), batch=100
    )
    assert result.scanned == 2500
    scanned = [n for n, _ in calls]
    assert scanned[:-1] == list(range(100, 2501, 100))
    assert calls[-1] == (2500, 2500)
    estimates = [total for _, total in calls[:-1] if total is not None]
    # Keys are spread uniformly, so once a few shard directories are done the
    # estimate is within a modest margin of the real count.
    assert len(estimates) > 10
    assert all(1500 < total < 4000 for total in estimates[5:])


def test_stop_ends_the_walk_early(recorder: Any, location: Path) -> None:
    driver: FileDriver = recorder.driver
    for _ in range(500):
        driver.write(new_key(), {})
    stop = threading.Event()

    def progress(scanned: int, total: int | None) -> None:
        if scanned >= 100:
            stop.set()

    result = collect(str(location), AGE, progress=progress, stop=stop, batch=50)
    assert 100 <= result.scanned < 500


def test_never_removes_a_session_rewritten_during_collection(
    recorder: Any, location: Path, expire_in: Callable[[str, float], None]
) -> None:
    # Sessions found expired by the walk are written afresh by requests before
    # the batch's removals run: the removal must see the new record and keep it.
    driver: FileDriver = recorder.driver
    for _ in range(1500):
        key = new_key()
        driver.write(key, {})
        expire_in(driver.layout.path(key), -EXPIRED)
    live = [new_key() for _ in range(150)]
    for key in live:
        driver.write(key, {"k": key})
        expire_in(driver.layout.path(key), -1)
    done = threading.Event()
    failures: list[str] = []

    def keep_alive(keys: list[str]) -> None:
        while not done.is_set():
            for key in keys:
                driver.write(key, {"k": key})
                if driver.read(key) != {"k": key}:
                    failures.append(key)

    workers = [threading.Thread(target=keep_alive, args=(live[i::3],)) for i in range(3)]
    for worker in workers:
        worker.start()
    try:
        result = driver.gc()
    finally:
        done.set()
        for worker in workers:
            worker.join()
    assert failures == []
    assert result.removed >= 1500
    assert _files(location) == set(live)
    assert all(driver.read(key) == {"k": key} for key in live)


def test_manager_gc_through_the_installed_plugin(
    location: Path, monkeypatch: Any, age_file: Callable[[str, float], None]
) -> None:
    monkeypatch.setenv("SESSIONS_PLUGINS", "file")
    config = SessionConfig(
        secret="file-driver-tests-secret-0123456789abcdef",
        driver="file",
        age=AGE,
        drivers={"file": {"location": str(location)}},
    )
    manager = SessionManager(config)
    assert type(manager.driver).__name__ == "FileDriver"
    assert manager.has_gc
    key = new_key()
    manager.driver.write(key, {"a": 1})
    age_file(manager.driver.layout.path(key), EXPIRED)
    seen: list[tuple[int, int | None]] = []
    result = manager.gc(progress=lambda n, total: seen.append((n, total)))
    assert (result.scanned, result.removed) == (1, 1)
    assert seen == [(1, 1)]


def test_probabilistic_gc_runs_in_the_background(
    make_harness: Callable[..., Any], location: Path, age_file: Callable[[str, float], None]
) -> None:
    h = make_harness(gc_probability=1.0)
    driver: FileDriver = h.driver
    old = new_key()
    driver.write(old, {})
    driver.wait_for_background_gc(5)
    age_file(driver.layout.path(old), EXPIRED)
    driver.write(new_key(), {"a": 1})  # rolls the dice: always, at 1.0
    driver.wait_for_background_gc(5)
    assert not os.path.exists(driver.layout.path(old))
    assert driver.last_background_gc is not None
    assert driver.last_background_gc.removed >= 1
    driver.close()
    assert driver.start_background_gc() is False  # closed: no new collections


def test_probabilistic_gc_is_off_by_default(
    harness: Any, age_file: Callable[[str, float], None]
) -> None:
    driver: FileDriver = harness.driver
    old = new_key()
    driver.write(old, {})
    age_file(driver.layout.path(old), EXPIRED)
    for _ in range(200):
        key = new_key()
        driver.write(key, {"a": 1})
        driver.read(key)
    assert driver.last_background_gc is None
    assert os.path.exists(driver.layout.path(old))


_scans: list[tuple[str, str]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "os.scandir" and _recording.is_set():
        _scans.append((threading.current_thread().name, str(args[0])))


_recording = threading.Event()
sys.addaudithook(_audit)


def test_background_gc_does_not_hold_up_the_request(
    make_harness: Callable[..., Any], location: Path
) -> None:
    h = make_harness(gc_probability=1.0)
    driver: FileDriver = h.driver
    for _ in range(200):
        driver.write(new_key(), {})
    driver.wait_for_background_gc(30)
    driver.last_background_gc = None
    _scans.clear()
    _recording.set()
    try:
        driver.write(new_key(), {"a": 1})
        in_request = [name for name, _ in _scans]
        driver.wait_for_background_gc(30)
    finally:
        _recording.clear()
    # The request's own thread never scanned a directory: the sweep ran elsewhere.
    assert threading.current_thread().name not in in_request
    assert driver.last_background_gc is not None
    assert driver.last_background_gc.scanned >= 201
    assert {name for name, _ in _scans} == {"sessions-file-gc"}


def test_spares_go_with_their_expired_sessions(
    recorder: Any, location: Path, age_file: Callable[[str, float], None]
) -> None:
    driver: FileDriver = recorder.driver
    live, expired = new_key(), new_key()
    for key in (live, expired):
        driver.write(key, {"v": 1})
        driver.write(key, {"v": 2})  # the second write leaves a spare (where files swap)
    spares = {p.name for p in location.rglob(".*.spare")}
    for name in (driver.layout.path(expired), driver.layout.spare(expired)):
        if os.path.exists(name):
            age_file(name, EXPIRED)
    result = driver.gc()
    assert result.removed == 1 + len(spares) // 2
    assert {p.name for p in location.rglob("*") if p.is_file()} == {live} | {
        name for name in spares if live in name
    }
    assert driver.read(live) == {"v": 2}
