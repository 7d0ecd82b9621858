"""One watchdog timer keeps the deadlines of many awaits (used by the async lane)."""

from __future__ import annotations

import asyncio

import pytest
from sessions_redis.deadlines import DeadlineExceeded, Deadlines


def test_result_passes_through_and_watchdog_disarms() -> None:
    async def main() -> None:
        deadlines = Deadlines(0.2)
        assert await deadlines.guard(asyncio.sleep(0, result="done")) == "done"
        assert deadlines._watchdog is not None  # armed by the first guard
        await asyncio.sleep(0.1)  # the watchdog runs once, finds nothing pending
        assert deadlines._watchdog is None
        assert deadlines._pending == {}

    asyncio.run(main())


def test_slow_await_is_cancelled_and_the_task_lives_on() -> None:
    async def main() -> None:
        deadlines = Deadlines(0.1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(DeadlineExceeded):
            await deadlines.guard(asyncio.sleep(5))
        assert 0.1 <= loop.time() - started < 0.5
        task = asyncio.current_task()
        assert task is not None
        assert task.cancelling() == 0
        await asyncio.sleep(0.01)  # the task is not left cancelled
        assert await deadlines.guard(asyncio.sleep(0, result=1)) == 1

    asyncio.run(main())


def test_only_the_slow_ones_expire() -> None:
    async def one(deadlines: Deadlines, seconds: float) -> str:
        try:
            await deadlines.guard(asyncio.sleep(seconds))
        except DeadlineExceeded:
            return "expired"
        return "done"

    async def main() -> list[str]:
        deadlines = Deadlines(0.2)
        return await asyncio.gather(*(one(deadlines, s) for s in (0.01, 1.0, 0.05, 1.0)))

    assert asyncio.run(main()) == ["done", "expired", "done", "expired"]


def test_outside_cancellation_is_not_mistaken_for_a_deadline() -> None:
    async def main() -> None:
        deadlines = Deadlines(5)
        task = asyncio.create_task(deadlines.guard(asyncio.sleep(5)))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert deadlines._pending == {}

    asyncio.run(main())


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="> 0"):
        Deadlines(0)
