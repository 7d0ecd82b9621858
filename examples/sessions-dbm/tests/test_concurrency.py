"""Overlapping requests on one session through the dbm driver: a request held
between its read and its commit while another one on the same cookie commits
loses nothing and revives nothing; eight clients hammering one cookie keep
every acknowledged increment.

A third-party driver with the versioned capability can copy these: they drive
real ``Session`` objects through core, so they check the driver's
compare-and-set the way applications use it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from sessions import Session
from sessions.commits import CommitConflictError
from sessions.driver import RequestContext
from sessions.testing import Harness
from sessions_dbm.driver import DbmDriver


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    """A harness over the dbm driver; its jar holds the cookie of a stored session."""
    harness = Harness(DbmDriver, {"path": tmp_path / "sessions.dbm"}, 3600)
    context = harness.context()
    session = Session(harness.manager, context)
    session.initiate()
    session.put("user", 42)
    session.put("n", 0)
    session.commit()
    harness.finish(context)
    return harness


def _open(h: Harness, context: RequestContext | None = None) -> Session:
    """A request with the jar's cookie (or ``context``), not yet initiated."""
    return Session(h.manager, h.context() if context is None else context)


def _next_request(h: Harness, cookie: str | None = None) -> Session:
    """The following request's session: the jar's cookie, or ``cookie``."""
    context = h.context()
    if cookie is not None:
        context.cookies = {h.manager.config.cookie_name: cookie}
    session = _open(h, context)
    session.initiate()
    return session


# Each check gets the harness and the fast request's context (its cookies).
def _both_keys(h: Harness, fast: RequestContext) -> None:
    assert _next_request(h).all() == {"user": 42, "n": 0, "slow": 1, "fast": 2}


def _both_increments(h: Harness, fast: RequestContext) -> None:
    assert _next_request(h).get("n") == 11


def _still_logged_out(h: Harness, fast: RequestContext) -> None:
    assert _next_request(h).fresh is True, "a logged-out session came back"


def _regenerate(session: Session) -> None:
    session.regenerate()
    session.put("user", 43)


def _old_id_stays_dead(h: Harness, fast: RequestContext) -> None:
    assert _next_request(h).fresh is True, "the old cookie opens the session again"
    moved = _next_request(h, fast.outgoing[h.manager.config.cookie_name].value)
    assert moved.all() == {"user": 43, "n": 0}


def _both_flashes(h: Harness, fast: RequestContext) -> None:
    assert _next_request(h).flash_messages.all() == {"slow": "saved", "fast": "sent"}


Change = Callable[[Session], object]
Check = Callable[[Harness, RequestContext], None]
#: name: (the held request's change, the fast request's change, the check after both)
SCENARIOS: dict[str, tuple[Change, Change, Check]] = {
    "different keys": (lambda s: s.put("slow", 1), lambda s: s.put("fast", 2), _both_keys),
    "increments": (lambda s: s.increment("n"), lambda s: s.increment("n", 10), _both_increments),
    "clear": (lambda s: s.put("cart", 3), lambda s: s.clear(), _still_logged_out),
    "regenerate": (lambda s: s.put("cart", 3), _regenerate, _old_id_stays_dead),
    "flash": (lambda s: s.flash("slow", "saved"), lambda s: s.flash("fast", "sent"), _both_flashes),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_held_request(h: Harness, scenario: str) -> None:
    slow_change, fast_change, check = SCENARIOS[scenario]
    fast_context = h.context()
    slow, fast = _open(h), _open(h, fast_context)
    slow.initiate()
    fast.initiate()
    fast_change(fast)
    fast.commit()  # while the slow one is between its read and its commit
    slow_change(slow)
    slow.commit()
    check(h, fast_context)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_held_request_async(h: Harness, scenario: str) -> None:
    slow_change, fast_change, check = SCENARIOS[scenario]
    fast_context = h.context()

    async def main() -> None:
        slow, fast = _open(h), _open(h, fast_context)
        await slow.ainitiate()
        await fast.ainitiate()
        fast_change(fast)
        await fast.acommit()
        slow_change(slow)
        await slow.acommit()

    anyio.run(main)
    check(h, fast_context)


CLIENTS, INCREMENTS = 8, 50


def _acknowledged_all_count(h: Harness, acknowledged: list[int]) -> None:
    """Client i had ``acknowledged[i]`` commits return; its key rode on each
    until one did. A commit that gives up after many conflicts raises (the
    request fails), so it is not acknowledged and not counted."""
    after = _next_request(h)
    assert after.get("n") == sum(acknowledged)
    mine = {k: v for k, v in after.all().items() if k.startswith("client")}
    assert mine == {f"client{i}": i for i, count in enumerate(acknowledged) if count}
    assert sum(acknowledged) >= CLIENTS * INCREMENTS // 2


def test_eight_threads_on_one_cookie(h: Harness) -> None:
    acknowledged = [0] * CLIENTS

    def client(index: int) -> None:
        for _ in range(INCREMENTS):
            session = _open(h)
            session.initiate()
            session.increment("n")
            if not acknowledged[index]:
                session.put(f"client{index}", index)
            try:
                session.commit()
            except CommitConflictError:
                continue
            acknowledged[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _acknowledged_all_count(h, acknowledged)


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
    _acknowledged_all_count(h, acknowledged)
