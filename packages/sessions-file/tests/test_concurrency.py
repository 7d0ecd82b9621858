"""Overlapping requests on one session: nothing acknowledged is lost, nothing
destroyed comes back. The kit's checks (sessions.testing.ConcurrentCommits)
hold one request between its read and its commit while another one on the same
cookie commits, in threads and on the event loop, then run 8 clients x 50
increments on one cookie; here the same happens across real processes sharing
the directory, as an application's worker processes do."""

from __future__ import annotations

import multiprocessing
import queue
from pathlib import Path
from typing import Any

import pytest
from sessions import Session
from sessions.testing import AsyncConcurrentCommits, ConcurrentCommits, Harness
from sessions_file import FileDriver

AGE = 3600


@pytest.fixture
def h(location: Path) -> Harness:
    """A harness over the file driver; its jar holds the cookie of one stored session."""
    harness = Harness(FileDriver, {"location": str(location)}, AGE)
    context = harness.context()
    session = Session(harness.manager, context)
    session.initiate()
    session.put("user", 42)
    session.put("n", 0)
    session.commit()
    harness.finish(context)
    return harness


def _after(h: Harness) -> Session:
    """The next request's session, with the jar's cookie."""
    session = Session(h.manager, h.context())
    session.initiate()
    return session


class _InTmpPath:
    driver_factory: Any = FileDriver

    @pytest.fixture(autouse=True)
    def _location(self, tmp_path: Path) -> None:
        self.driver_options = {"location": str(tmp_path / "sessions")}


class TestFileConcurrentCommits(_InTmpPath, ConcurrentCommits):
    """The kit's overlap scenarios and 8x50 stress, in threads."""


class TestFileAsyncConcurrentCommits(_InTmpPath, AsyncConcurrentCommits):
    """The same as tasks on one event loop (file I/O in worker threads)."""


# -- real processes ----------------------------------------------------------------

# Children are forked from a server that imported the driver once, so eight of
# them start in milliseconds instead of an interpreter start-up each. Each runs
# a piece of code as a separate worker process of the application would.
_PROCESSES = multiprocessing.get_context("forkserver")
_PROCESSES.set_forkserver_preload(["sessions_file.driver", "sessions.testing"])

# A request: it reads the session, says so, waits for the word to go on, then
# changes and commits it.
_HELD = r"""
from sessions import Session
from sessions.testing import Harness
from sessions_file import FileDriver

h = Harness(FileDriver, {"location": location}, 3600)
h.jar = jar
session = Session(h.manager, h.context())
session.initiate()
said.put("read")
go.wait(30)
if action == "clear":
    session.clear()
else:
    verb, key, value = action.split()
    if verb == "put":
        session.put(key, int(value))
    else:
        session.increment(key, int(value))
session.commit()
said.put("committed")
"""


class _Child:
    """A process running ``code`` with ``names`` as its globals, plus ``go`` (an
    event it may wait for) and ``said`` (a queue it reports on)."""

    def __init__(self, code: str, **names: Any) -> None:
        self.go = _PROCESSES.Event()
        self.said = _PROCESSES.Queue()
        self.process = _PROCESSES.Process(
            target=exec, args=(code, {**names, "go": self.go, "said": self.said})
        )
        self.process.start()

    def next(self) -> Any:
        """What the child says next (fails if it dies or says nothing)."""
        try:
            return self.said.get(timeout=30)
        except queue.Empty:
            self.process.join(1)
            raise AssertionError(f"the child said nothing (exit code {self.process.exitcode})")

    def finish(self) -> None:
        self.process.join(30)
        assert self.process.exitcode == 0


def _held(location: Path, h: Harness, action: str) -> _Child:
    child = _Child(_HELD, location=str(location), jar=dict(h.jar), action=action)
    assert child.next() == "read"
    return child


def _release(child: _Child) -> None:
    child.go.set()
    assert child.next() == "committed"
    child.finish()


@pytest.mark.parametrize(
    ("slow", "fast", "expected"),
    [
        ("put slow 1", "put fast 2", {"user": 42, "n": 0, "slow": 1, "fast": 2}),
        ("incr n 1", "incr n 10", {"user": 42, "n": 11}),
        ("put cart 3", "clear", None),
    ],
)
def test_held_request_in_another_process(
    h: Harness, location: Path, slow: str, fast: str, expected: dict[str, Any] | None
) -> None:
    held = _held(location, h, slow)
    try:
        _release(_held(location, h, fast))
    finally:
        _release(held)
    after = _after(h)
    if expected is None:
        assert after.fresh is True
    else:
        assert after.all() == expected


# -- many clients on one cookie ------------------------------------------------------

CLIENTS = 8
INCREMENTS = 50

_CLIENT = r"""
from sessions import Session
from sessions.testing import Harness
from sessions_file import FileDriver

h = Harness(FileDriver, {"location": location}, 3600)
h.jar = jar
go.wait(30)
for i in range(count):
    session = Session(h.manager, h.context())
    session.initiate()
    session.increment("n")
    session.put(f"client{index}", i)
    session.commit()
said.put("done")
"""


def test_eight_processes_on_one_cookie(h: Harness, location: Path) -> None:
    children = [
        _Child(_CLIENT, location=str(location), jar=dict(h.jar), index=i, count=INCREMENTS)
        for i in range(CLIENTS)
    ]
    for child in children:
        child.go.set()
    assert [child.next() for child in children] == ["done"] * CLIENTS
    for child in children:
        child.finish()
    after = _after(h)
    assert after.get("n") == CLIENTS * INCREMENTS
    assert {k: v for k, v in after.all().items() if k.startswith("client")} == {
        f"client{i}": INCREMENTS - 1 for i in range(CLIENTS)
    }
