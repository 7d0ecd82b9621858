"""The file driver's tag index and per-session ages, on disk.

The kit (test_conformance.py) checks tagging through core; these check what it
cannot see: the markers under ``.tags``, their pruning and clean-up, the
races the write lock settles, and expiry that follows each record's own age.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from sessions.driver import StoredSession
from sessions.testing import new_key
from sessions_file import FileDriver, tags
from sessions_file.header import tag_digest

AGE = 60  # the recorder fixture's session age


def _marker(driver: FileDriver, tag: str, session_id: str) -> Path:
    return Path(tags.directory(str(driver.root / ".tags"), tag_digest(tag)), session_id)


def _ids(found: list[StoredSession]) -> set[str]:
    return {stored.session_id for stored in found}


def test_a_tagged_write_adds_a_marker_untag_and_retag_move_it(recorder: Any) -> None:
    driver: FileDriver = recorder.driver
    key = new_key()
    driver.write(key, {"__tag__": "ada", "a": 1})
    assert _marker(driver, "ada", key).exists()
    assert _marker(driver, "ada", key).stat().st_size == 0
    assert driver.tagged("ada") == [driver.peek(key)]
    driver.write(key, {"__tag__": "bob", "a": 1})
    assert not _marker(driver, "ada", key).exists()
    assert not _marker(driver, "ada", key).parent.exists()  # a tag's last member takes it along
    assert _ids(driver.tagged("bob")) == {key}
    driver.write_versioned(key, {"a": 1}, driver.read_versioned(key).version)  # untag
    assert not _marker(driver, "bob", key).exists()
    assert driver.tagged("bob") == []


def test_destroy_and_destroy_tagged_remove_markers(recorder: Any) -> None:
    driver: FileDriver = recorder.driver
    keys = [new_key() for _ in range(4)]
    for key in keys:
        driver.write(key, {"__tag__": "ada"})
    driver.destroy(keys[0])
    assert not _marker(driver, "ada", keys[0]).exists()
    assert driver.destroy_tagged("ada", keep=keys[1]) == 2
    assert [p.name for p in _marker(driver, "ada", keys[1]).parent.iterdir()] == [keys[1]]
    assert driver.read(keys[2]) is None
    assert driver.read(keys[1]) == {"__tag__": "ada"}
    assert driver.destroy_tagged("ada") == 1
    assert not _marker(driver, "ada", keys[1]).parent.exists()
    assert driver.destroy_tagged("nobody") == 0


def test_listing_prunes_stale_markers(recorder: Any, plant: Callable[..., str]) -> None:
    driver: FileDriver = recorder.driver
    live, gone, other, old = new_key(), new_key(), new_key(), new_key()
    driver.write(live, {"__tag__": "ada"})
    root = str(driver.root / ".tags")
    # A write that died between adding its marker and putting its record in place...
    tags.add(root, tag_digest("ada"), gone)
    # ...a session whose record carries another tag...
    driver.write(other, {"__tag__": "bob"})
    tags.add(root, tag_digest("ada"), other)
    # ...and a file of the previous release (never tagged).
    plant(driver, old, {"x": 1})
    tags.add(root, tag_digest("ada"), old)
    assert _ids(driver.tagged("ada")) == {live}
    assert sorted(p.name for p in _marker(driver, "ada", live).parent.iterdir()) == [live]
    assert _ids(driver.tagged("bob")) == {other}
    assert driver.read(old) == {"x": 1}
    # Pruning looked under the write lock without leaving lock files behind.
    assert not os.path.exists(driver.layout.spare(gone))
    assert not os.path.exists(driver.layout.path(gone))


def test_expired_sessions_are_not_listed_and_gc_removes_their_markers(
    recorder: Any, expire_in: Callable[[str, float], None]
) -> None:
    driver: FileDriver = recorder.driver
    live, expired = new_key(), new_key()
    driver.write(live, {"__tag__": "ada"})
    driver.write(expired, {"__tag__": "ada"})
    expire_in(driver.layout.path(expired), -1)
    assert _ids(driver.tagged("ada")) == {live}
    driver.write(expired, {"__tag__": "ada"})
    expire_in(driver.layout.path(expired), -1)
    assert driver.gc().removed == 1
    assert not _marker(driver, "ada", expired).exists()
    assert _marker(driver, "ada", live).exists()


def test_peek_reports_the_expiry_without_refreshing_it(
    recorder: Any, expire_in: Callable[[str, float], None]
) -> None:
    driver: FileDriver = recorder.driver
    key = new_key()
    driver.write(key, {"__tag__": "ada", "a": 1})
    path = driver.layout.path(key)
    expire_in(path, 5)
    mtime = os.stat(path).st_mtime
    stored = driver.peek(key)
    assert stored is not None
    assert stored.values == {"__tag__": "ada", "a": 1}
    assert abs(stored.expires_at - mtime) < 0.001
    assert os.stat(path).st_mtime == mtime
    assert driver.peek(new_key()) is None
    assert driver.peek("not a key") is None


def test_retagging_while_listing_never_loses_the_marker(recorder: Any) -> None:
    # Listers prune what they find stale while a request moves the session
    # between two tags: the write lock keeps a fresh marker from being pruned.
    driver: FileDriver = recorder.driver
    keys = [new_key() for _ in range(3)]
    for key in keys:
        driver.write(key, {"__tag__": "a"})
    done = threading.Event()
    errors: list[BaseException] = []

    def lister() -> None:
        try:
            while not done.is_set():
                driver.tagged("a")
                driver.tagged("b")
        except BaseException as exc:  # reported below
            errors.append(exc)

    listers = [threading.Thread(target=lister) for _ in range(2)]
    for thread in listers:
        thread.start()
    lost = []
    try:
        for round_ in range(150):
            for key in keys:
                tag = "ab"[round_ % 2]
                driver.write(key, {"__tag__": tag})
                # Once the write is done, nothing may take its marker away.
                time.sleep(0)
                if not _marker(driver, tag, key).exists():
                    lost.append((round_, key))
    finally:
        done.set()
        for thread in listers:
            thread.join()
    assert errors == []
    assert lost == []
    assert _ids(driver.tagged("b")) == set(keys)  # the last round tagged them "b"
    assert driver.tagged("a") == []


def test_each_record_lives_its_own_age(
    recorder: Any, expire_in: Callable[[str, float], None]
) -> None:
    # session.set_expiry() stores "__age__": the file's expiry follows it on
    # write and on every read, and gc honours it.
    driver: FileDriver = recorder.driver
    short, long, default = new_key(), new_key(), new_key()
    driver.write(short, {"__age__": 5})
    driver.write_versioned(long, {"__age__": 30 * 86400}, None)
    driver.write(default, {})
    now = time.time()
    assert abs(os.stat(driver.layout.path(short)).st_mtime - (now + 5)) < 2
    assert abs(os.stat(driver.layout.path(long)).st_mtime - (now + 30 * 86400)) < 2
    expire_in(driver.layout.path(long), 100)
    assert driver.read(long) is not None  # the read refreshes by its own 30 days
    assert os.stat(driver.layout.path(long)).st_mtime > time.time() + 30 * 86400 - 5
    expire_in(driver.layout.path(short), -0.5)
    assert driver.gc().removed == 1
    assert driver.read(short) is None
    assert driver.read(long) == {"__age__": 30 * 86400}
    assert driver.read(default) == {}
    # An age past what the header holds (about 136 years) is cut to it.
    forever = new_key()
    driver.write(forever, {"__age__": 2**40})
    assert driver.read(forever) == {"__age__": 2**40}
    assert os.stat(driver.layout.path(forever)).st_mtime > time.time() + 100 * 365 * 86400


def test_async_twins(recorder: Any) -> None:
    driver: FileDriver = recorder.driver
    keys = [new_key() for _ in range(3)]
    for key in keys:
        driver.write(key, {"__tag__": "ada"})

    async def main() -> None:
        assert _ids(await driver.atagged("ada")) == set(keys)
        peeked = await driver.apeek(keys[0])
        assert peeked is not None
        assert peeked.values == {"__tag__": "ada"}
        assert await driver.adestroy_tagged("ada", keys[0]) == 2
        assert _ids(await driver.atagged("ada")) == {keys[0]}

    anyio.run(main)
