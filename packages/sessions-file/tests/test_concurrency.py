"""Overlapping requests on one session: nothing acknowledged is lost, nothing
destroyed comes back. One request is held between its read and its commit
while another one on the same cookie commits, in threads, on the event loop
and in real processes sharing the directory; then many clients hammer one
cookie at once."""

from __future__ import annotations

import multiprocessing
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from sessions import Session
from sessions.commits import CommitConflictError
from sessions.testing import Harness
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


def _open(h: Harness) -> Session:
    """A request carrying the jar's cookie (not yet initiated)."""
    return Session(h.manager, h.context())


def _after(h: Harness, jar: dict[str, str] | None = None) -> Session:
    """The next request's session (with ``jar``'s cookie, or the harness's)."""
    session = Session(h.manager, h.context() if jar is None else _context(h, jar))
    session.initiate()
    return session


def _context(h: Harness, jar: dict[str, str]) -> Any:
    saved, h.jar = h.jar, jar
    try:
        return h.context()
    finally:
        h.jar = saved


# Each scenario: what the held (slow) request does, what the fast one does
# while the slow one is held, and what the next request must see.
Act = Callable[[Session], None]


def _check_keys(h: Harness, slow: Session, fast: Session) -> None:
    assert _after(h).all() == {"user": 42, "n": 0, "slow": 1, "fast": 2}


def _check_increments(h: Harness, slow: Session, fast: Session) -> None:
    assert _after(h).get("n") == 11


def _check_clear(h: Harness, slow: Session, fast: Session) -> None:
    again = _after(h)
    assert again.fresh is True, "the slower request brought a logged-out session back"
    assert again.all() == {}


def _check_regenerate(h: Harness, slow: Session, fast: Session) -> None:
    old = _after(h)
    assert old.fresh is True, "the old cookie opens the session again after regenerate"
    moved = _after(h, {h.manager.config.cookie_name: fast._signed or ""})
    assert moved.fresh is False
    assert moved.all() == {"user": 43, "n": 0}


def _check_flash(h: Harness, slow: Session, fast: Session) -> None:
    again = _after(h)
    assert again.flash_messages.all() == {"slow": "saved", "fast": "sent"}
    assert again.get("n") == 1


def _regenerate(session: Session) -> None:
    session.regenerate()
    session.put("user", 43)


SCENARIOS: dict[str, tuple[Act, Act, Callable[[Harness, Session, Session], None]]] = {
    "different keys": (lambda s: s.put("slow", 1), lambda s: s.put("fast", 2), _check_keys),
    "increments": (lambda s: s.increment("n"), lambda s: s.increment("n", 10), _check_increments),
    "clear": (lambda s: s.put("cart", 3), lambda s: s.clear(), _check_clear),
    "regenerate": (lambda s: s.put("cart", 3), _regenerate, _check_regenerate),
    "flash": (
        lambda s: s.flash("slow", "saved"),
        lambda s: (s.flash("fast", "sent"), s.increment("n")),
        _check_flash,
    ),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_held_request_sync(h: Harness, scenario: str) -> None:
    slow_act, fast_act, check = SCENARIOS[scenario]
    slow, fast = _open(h), _open(h)
    slow.initiate()
    fast.initiate()
    fast_act(fast)
    fast.commit()
    slow_act(slow)
    slow.commit()
    check(h, slow, fast)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_held_request_async(h: Harness, scenario: str) -> None:
    slow_act, fast_act, check = SCENARIOS[scenario]

    async def main() -> None:
        slow, fast = _open(h), _open(h)
        await slow.ainitiate()
        await fast.ainitiate()
        fast_act(fast)
        await fast.acommit()
        slow_act(slow)
        await slow.acommit()
        check(h, slow, fast)

    anyio.run(main)


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


def _everything_acknowledged_counts(h: Harness, acknowledged: list[int]) -> None:
    """``acknowledged[i]``: client i's commits that returned (its key rode on
    each until one did). A commit may give up after many conflicts
    (CommitConflictError, the request fails): not acknowledged, so not counted."""
    after = _after(h)
    assert after.get("n") == sum(acknowledged)
    assert {k: v for k, v in after.all().items() if k.startswith("client")} == {
        f"client{i}": i for i, count in enumerate(acknowledged) if count
    }
    # Giving up is the exception, not the rule.
    assert sum(acknowledged) >= CLIENTS * INCREMENTS // 2


def _client(h: Harness, jar: dict[str, str], index: int) -> int:
    acknowledged = 0
    for _ in range(INCREMENTS):
        session = Session(h.manager, _context(h, jar))
        session.initiate()
        session.increment("n")
        if not acknowledged:
            session.put(f"client{index}", index)
        try:
            session.commit()
        except CommitConflictError:
            continue
        acknowledged += 1
    return acknowledged


def test_eight_threads_on_one_cookie(h: Harness) -> None:
    acknowledged = [0] * CLIENTS
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            acknowledged[index] = _client(h, dict(h.jar), index)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    _everything_acknowledged_counts(h, acknowledged)


def test_eight_tasks_on_one_cookie_async(h: Harness) -> None:
    acknowledged = [0] * CLIENTS

    async def client(index: int) -> None:
        for _ in range(INCREMENTS):
            session = _open(h)
            await session.ainitiate()
            session.increment("n")
            if not acknowledged[index]:
                session.put(f"client{index}", index)
            try:
                await session.acommit()
            except CommitConflictError:
                continue
            acknowledged[index] += 1

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for index in range(CLIENTS):
                tg.start_soon(client, index)

    anyio.run(main)
    _everything_acknowledged_counts(h, acknowledged)


_CLIENT = r"""
from sessions import Session
from sessions.commits import CommitConflictError
from sessions.testing import Harness
from sessions_file import FileDriver

h = Harness(FileDriver, {"location": location}, 3600)
h.jar = jar
go.wait(30)
acknowledged = 0
for _ in range(count):
    session = Session(h.manager, h.context())
    session.initiate()
    session.increment("n")
    if not acknowledged:
        session.put(f"client{index}", index)
    try:
        session.commit()
    except CommitConflictError:
        continue
    acknowledged += 1
said.put(acknowledged)
"""


def test_eight_processes_on_one_cookie(h: Harness, location: Path) -> None:
    children = [
        _Child(_CLIENT, location=str(location), jar=dict(h.jar), index=i, count=INCREMENTS)
        for i in range(CLIENTS)
    ]
    for child in children:
        child.go.set()
    acknowledged = [child.next() for child in children]
    for child in children:
        child.finish()
    _everything_acknowledged_counts(h, acknowledged)
