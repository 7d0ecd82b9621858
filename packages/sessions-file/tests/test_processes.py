"""Real processes: concurrent writers and readers never see a torn session, and
a writer killed with SIGKILL leaves no corrupt session and only temporary files
that garbage collection removes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sessions.codec import decode
from sessions.testing import new_key
from sessions_file import STALE_TEMP_SECONDS, FileDriver
from sessions_file.header import parse, payload

# Each child builds its own FileDriver over the shared directory, as separate
# worker processes of one application would.
_CHILD_PRELUDE = r"""
import json, sys, time
from sessions import SessionConfig
from sessions.driver import DriverConfig, validate_options
from sessions_file import FileDriver

location, mode, seconds, index = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
keys = sys.argv[5:]
failures = []
driver = FileDriver(DriverConfig(
    name="file",
    options=validate_options(
        "file", FileDriver, {"location": location, "fsync": mode == "fsync"}
    ),
    age=3600,
    session=SessionConfig(secret="file-driver-tests-secret-0123456789abcdef", age=3600),
    notify_decode_failed=lambda source, reason: failures.append(reason),
))

def version(v, size):
    return {"version": v, "payload": str(v % 10) * (size + v % 997)}

def consistent(values, size):
    if type(values) is not dict or set(values) != {"version", "payload"}:
        return False
    v = values["version"]
    return values["payload"] == str(v % 10) * (size + v % 997)
"""

_RACE = (
    _CHILD_PRELUDE
    + r"""
key = keys[0]
reads = writes = 0
bad = []
deadline = time.monotonic() + seconds
v = index * 10_000_000
while time.monotonic() < deadline:
    v += 1
    driver.write(key, version(v, 20_000))
    writes += 1
    for _ in range(3):
        got = driver.read(key)
        reads += 1
        if not consistent(got, 20_000):
            bad.append(repr(got)[:120])
print(json.dumps({"reads": reads, "writes": writes, "bad": bad, "failures": failures}))
"""
)

# The child loops over the driver's own write primitive with pre-encoded sessions,
# so nearly all of its time is spent inside a write and a kill lands in one.
BIG = 4_000_000
_KILLED = (
    _CHILD_PRELUDE
    + f"BIG = {BIG}\n"
    + r"""
import os
from sessions.codec import encode
from sessions_file import files, header

use_swap = mode.startswith("swap")
driver.fsync = mode.endswith("fsync")
stop_mid_write = bool(os.environ.get("STOP_MID_WRITE"))
# Versions the random rounds never write, so the half-written one cannot
# coincide with what the spare already held.
head = header.first(3600, header.NO_TAG).pack()
payloads = [head + encode(version(v, BIG)) for v in ((4, 5, 6) if stop_mid_write else (1, 2, 3))]
v = 0
first_round = True
if stop_mid_write:
    # Where to die is left to chance only in the random rounds: here the write
    # stops half-way through the driver's own write loop, and the parent kills it.
    whole = files._write_all
    def half_then_wait(fd, data, offset=0):
        if first_round:
            return whole(fd, data, offset)
        whole(fd, data[: len(data) // 2], offset)
        print("mid-write", flush=True)
        time.sleep(600)
    files._write_all = half_then_wait
while True:
    for key in keys:
        v += 1
        directory = driver.layout.directory(key)
        path = driver.layout.path(key)
        data = payloads[v % 3]
        with files.write_lock(directory, path, driver.layout.spare(key), 3600) as held:
            expires = time.time_ns() + 3600 * 10**9
            held.replace(data, expires, swap=use_swap, fsync=driver.fsync)
    if first_round:
        print("ready", flush=True)
        first_round = False
"""
)


def _spawn(
    script: str,
    location: Path,
    mode: str,
    seconds: float,
    index: int,
    keys: list[str],
    env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, str(location), mode, str(seconds), str(index), *keys],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=None if env is None else {**os.environ, **env},
    )


def _consistent(values: Any, size: int) -> bool:
    if type(values) is not dict or set(values) != {"version", "payload"}:
        return False
    v = values["version"]
    return bool(values["payload"] == str(v % 10) * (size + v % 997))


def test_processes_writing_and_reading_one_session_never_tear(location: Path) -> None:
    key = new_key()
    children = [_spawn(_RACE, location, "race", 1.5, i, [key]) for i in range(4)]
    reports = []
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        reports.append(json.loads(out))
    for report in reports:
        assert report["bad"] == []
        assert report["failures"] == []
    # Enough overlap for the test to mean something: thousands of racing operations.
    assert sum(r["writes"] for r in reports) > 200
    assert sum(r["reads"] for r in reports) > 600
    assert list(location.rglob(".*.tmp")) == []


def _recorder_driver(location: Path) -> tuple[FileDriver, list[str]]:
    from sessions import SessionConfig
    from sessions.driver import DriverConfig, validate_options

    failures: list[str] = []
    driver = FileDriver(
        DriverConfig(
            name="file",
            options=validate_options("file", FileDriver, {"location": str(location)}),
            age=3600,
            session=SessionConfig(secret="file-driver-tests-secret-0123456789abcdef"),
            notify_decode_failed=lambda source, reason: failures.append(reason),
        )
    )
    return driver, failures


def _record(raw: bytes) -> dict[str, Any]:
    """The values of a record's bytes; DecodeError (a ValueError) when torn."""
    found = parse(raw, 3600)
    if found is None:
        raise ValueError("not a record")
    return decode(payload(raw, found))


def _torn_spares(driver: FileDriver, keys: list[str]) -> int:
    torn = 0
    for key in keys:
        try:
            raw = Path(driver.layout.spare(key)).read_bytes()
        except FileNotFoundError:
            continue
        try:
            torn += not _consistent(_record(raw), BIG)
        except ValueError:
            torn += 1
    return torn


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("mode", ["swap", "swap-fsync", "temp", "temp-fsync"])
def test_sigkill_mid_write_leaves_no_corrupt_session(location: Path, mode: str) -> None:
    from sessions_file import locks

    if mode.startswith("swap") and locks.exchange is None:
        pytest.skip("this system cannot swap files; the driver uses temporary files")
    keys = [new_key() for _ in range(2)]
    driver, failures = _recorder_driver(location)
    rng = random.Random(mode)
    # Kills at random moments: whatever the moment of death, every session file
    # is whole. The last round stops the writer half-way through a write, so at
    # least one kill is known to land mid-write whatever the machine's timing.
    for attempt in range(7):
        mid_write = attempt == 6
        child = _spawn(
            _KILLED,
            location,
            mode,
            0,
            attempt,
            keys,
            {"STOP_MID_WRITE": "1"} if mid_write else None,
        )
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == "ready", child.stderr.read() if child.stderr else ""
        if mid_write:
            assert child.stdout.readline().strip() == "mid-write"
        else:
            time.sleep(rng.uniform(0.005, 0.05))
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        child.stdout.close()
        assert child.stderr is not None
        child.stderr.close()
        assert child.returncode == -signal.SIGKILL
        for key in keys:
            assert _consistent(driver.read(key), BIG)
            assert _consistent(_record(Path(driver.layout.path(key)).read_bytes()), BIG)
    if mode.startswith("swap"):
        interrupted = _torn_spares(driver, keys)
    else:
        interrupted = len(list(location.rglob(".*.tmp")))
    assert failures == []
    # The kills did land in the middle of writes: something was left half-written...
    assert interrupted
    if mode.startswith("swap"):
        # ...a spare, which the next write refills completely (shorter than before).
        for key in keys:
            driver.write(key, {"version": 7, "payload": "7" * (BIG // 2 + 7)})
            assert _consistent(driver.read(key), BIG // 2)
        assert _torn_spares(driver, keys) == 0
        # Left alone, a spare is collected once it is past the session cutoff.
        past = time.time() - 3600 - 1
        for key in keys:
            os.utime(driver.layout.spare(key), (past, past))
        assert driver.gc().removed == len(keys)
        assert list(location.rglob(".*.spare")) == []
        for key in keys:
            assert _consistent(driver.read(key), BIG // 2)
        return
    # ...temporary files: a collection right now keeps them (writes in flight)...
    leftovers = list(location.rglob(".*.tmp"))
    assert driver.gc().removed == 0
    # ...and removes them once they are stale.
    past = time.time() - STALE_TEMP_SECONDS - 1
    for path in leftovers:
        os.utime(path, (past, past))
    result = driver.gc()
    assert result.removed == len(leftovers)
    assert list(location.rglob(".*.tmp")) == []
    for key in keys:
        assert _consistent(driver.read(key), BIG)
