"""Files written by the previous release keep working: an upgrade logs nobody out.

Its ``FileDriver.write`` stored ``sessions.codec.encode(values)`` and nothing
else (``files.write_swapped``/``write_atomic`` as of commit e71a427), and a file
expired ``age`` seconds after its modification time. Such a file reads as
version 0, expires as it always did, and its first write turns it into the
current format.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sessions import Session
from sessions.codec import encode
from sessions.driver import Record
from sessions.testing import Harness, new_key
from sessions_file import FileDriver
from sessions_file.header import MAGIC

AGE = 60  # the recorder fixture's session age
VALUES = {"user": 42, "cart": [1, 2]}
#: Byte for byte what the previous release wrote for VALUES.
PREVIOUS = b'{"user":42,"cart":[1,2]}'


def test_the_previous_release_wrote_the_codec_json_alone() -> None:
    assert encode(VALUES) == PREVIOUS


def test_previous_release_file_reads_as_version_0(
    recorder: Any, plant: Callable[..., str], age_file: Callable[[str, float], None]
) -> None:
    driver: FileDriver = recorder.driver
    key = new_key()
    path = plant(driver, key, PREVIOUS)
    age_file(path, 10)  # written ten seconds ago
    assert driver.read_versioned(key) == Record(VALUES, 0)
    assert driver.read(key) == VALUES
    # Reading refreshes it as the previous release did (mtime = now), never rewrites it.
    assert Path(path).read_bytes() == PREVIOUS
    assert abs(os.stat(path).st_mtime - time.time()) < 5
    assert recorder.notices == []


def test_previous_release_file_expires_age_after_its_mtime(
    recorder: Any, plant: Callable[..., str], age_file: Callable[[str, float], None]
) -> None:
    driver: FileDriver = recorder.driver
    live, old = new_key(), new_key()
    age_file(plant(driver, live, PREVIOUS), AGE - 5)
    old_path = plant(driver, old, PREVIOUS)
    age_file(old_path, AGE + 1)
    assert driver.read(live) == VALUES
    assert driver.read(old) is None
    assert not os.path.exists(old_path)
    # touch keeps the old rule too: it never revives, it refreshes a live one.
    age_file(old_path := plant(driver, old, PREVIOUS), AGE + 1)
    driver.touch(old)
    assert os.stat(old_path).st_mtime < time.time() - AGE
    age_file(driver.layout.path(live), AGE - 5)
    driver.touch(live)
    assert driver.read(live) == VALUES


def test_compare_and_set_against_version_0_upgrades_the_file(
    recorder: Any, plant: Callable[..., str], header_of: Callable[[str], Any]
) -> None:
    driver: FileDriver = recorder.driver
    key = new_key()
    path = plant(driver, key, PREVIOUS)
    assert driver.write_versioned(key, {"user": 42}, None) is False  # a live record exists
    assert driver.write_versioned(key, {"user": 42, "n": 1}, 0) is True
    assert Path(path).read_bytes().startswith(MAGIC)
    header = header_of(path)
    assert (header.version, header.legacy) == (1, False)
    assert driver.read_versioned(key) == Record({"user": 42, "n": 1}, 1)
    assert driver.write_versioned(key, {"user": 0}, 0) is False
    assert driver.read(key) == {"user": 42, "n": 1}


def test_a_plain_write_over_a_previous_release_file_moves_its_version_on(
    recorder: Any, plant: Callable[..., str]
) -> None:
    driver: FileDriver = recorder.driver
    key = new_key()
    plant(driver, key, PREVIOUS)
    driver.write(key, {"user": 7})
    assert driver.read_versioned(key) == Record({"user": 7}, 1)


def test_an_upgrade_logs_nobody_out(
    harness: Harness, plant: Callable[..., str], age_file: Callable[[str, float], None]
) -> None:
    driver: FileDriver = harness.driver
    # A user signed in before the upgrade: a session file and a spare as it left them.
    context = harness.context()
    session = Session(harness.manager, context)
    session.initiate()
    session.put("user", 42)
    session.commit()
    harness.finish(context)
    key = session.session_id
    path = plant(driver, key, encode({"user": 42}))
    age_file(path, 30)
    Path(driver.layout.spare(key)).write_bytes(encode({"user": 41, "older": True}))
    # After the upgrade, the same cookie opens the same session...
    request = Session(harness.manager, harness.context())
    request.initiate()
    assert request.fresh is False
    assert request.all() == {"user": 42}
    request.put("theme", "dark")
    request.commit()
    # ...and its first change stores it in the current format.
    assert Path(path).read_bytes().startswith(MAGIC)
    again = Session(harness.manager, harness.context())
    again.initiate()
    assert again.all() == {"user": 42, "theme": "dark"}


def test_gc_judges_previous_release_files_by_their_old_rule(
    recorder: Any, plant: Callable[..., str], age_file: Callable[[str, float], None]
) -> None:
    driver: FileDriver = recorder.driver
    live, old = new_key(), new_key()
    live_path = plant(driver, live, PREVIOUS)
    age_file(live_path, AGE - 5)  # its mtime has passed: gc must look inside to keep it
    old_path = plant(driver, old, PREVIOUS)
    age_file(old_path, AGE + 1)
    old_spare = driver.layout.spare(old)
    Path(old_spare).write_bytes(PREVIOUS)
    age_file(old_spare, AGE + 1)
    result = driver.gc()
    assert (result.scanned, result.removed) == (3, 2)
    assert result.bytes_freed == 2 * len(PREVIOUS)
    assert not os.path.exists(old_path)
    assert not os.path.exists(old_spare)
    assert driver.read(live) == VALUES
