"""Deadlines for many short awaits with one timer, instead of one timer each.

``asyncio.timeout`` schedules a timer per use and cancels it on exit. For a
command that takes a fraction of a millisecond against a deadline of seconds,
the loop's timer heap then fills with cancelled timers that are swept in bulk:
a cost per command comparable to the command's own client-side work. Here each
guarded await registers its task and deadline in a dict, and one watchdog
timer, armed only while something is registered, cancels the tasks whose
deadline has passed; :meth:`Deadlines.guard` turns that cancellation into
:class:`DeadlineExceeded`. A deadline fires at most a quarter of the timeout late.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["DeadlineExceeded", "Deadlines"]

T = TypeVar("T")


class DeadlineExceeded(Exception):
    """A guarded await ran past its deadline and was cancelled."""


class Deadlines:
    """Guards awaits in one event loop, each with the same ``timeout`` in seconds."""

    def __init__(self, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.timeout = timeout
        self._interval = timeout / 4
        self._pending: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._watchdog: asyncio.TimerHandle | None = None

    async def guard(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable``; raise DeadlineExceeded if it runs past the deadline."""
        task = asyncio.current_task()
        if task is None:  # not in a task (cannot be cancelled): no deadline
            return await awaitable
        loop = asyncio.get_running_loop()
        self._pending[task] = loop.time() + self.timeout
        if self._watchdog is None:
            self._watchdog = loop.call_later(self._interval, self._check, loop)
        try:
            return await awaitable
        except asyncio.CancelledError:
            if task not in self._expired:
                raise
            self._expired.discard(task)
            task.uncancel()
            raise DeadlineExceeded(f"no result within {self.timeout}s") from None
        finally:
            self._pending.pop(task, None)

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for task, deadline in list(self._pending.items()):
            if deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        # Forget expiries whose task finished before it saw the cancellation.
        self._expired.intersection_update(self._pending)
        self._watchdog = (
            loop.call_later(self._interval, self._check, loop) if self._pending else None
        )
