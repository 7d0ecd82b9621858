"""The worker threads behind the async flavour: bounded, results and errors
delivered, cancellation harmless, threads released on close."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from sessions_memcached.threads import WorkerThreads


def test_results_errors_and_thread_reuse() -> None:
    pool = WorkerThreads(4, "test")

    def boom() -> None:
        raise KeyError("from the worker")

    async def main() -> None:
        loop_thread = threading.get_ident()
        idents = {await pool.run(threading.get_ident) for _ in range(50)}
        assert loop_thread not in idents
        # Calls one after another keep using the one warm thread.
        assert len(idents) == 1
        assert await pool.run(divmod, 7, 2) == (3, 1)
        with pytest.raises(KeyError, match="from the worker"):
            await pool.run(boom)
        assert await pool.run(divmod, 9, 4) == (2, 1)

    asyncio.run(main())
    pool.close()


def test_at_most_size_threads_and_a_backlog() -> None:
    pool = WorkerThreads(2, "test")
    running = 0
    peak = 0
    lock = threading.Lock()

    def work(i: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return i * i

    async def main() -> None:
        results = await asyncio.gather(*(pool.run(work, i) for i in range(7)))
        assert results == [i * i for i in range(7)]

    asyncio.run(main())
    assert peak == 2
    assert pool.threads == 2
    pool.close()
    deadline = time.monotonic() + 5
    while pool.threads:
        assert time.monotonic() < deadline, "idle threads did not exit on close"
        time.sleep(0.01)


def test_cancelled_caller_does_not_break_the_pool() -> None:
    pool = WorkerThreads(1, "test")
    release = threading.Event()

    async def main() -> None:
        slow = asyncio.ensure_future(pool.run(release.wait, 5))
        await asyncio.sleep(0.05)
        slow.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await slow
        assert await pool.run(divmod, 5, 5) == (1, 0)

    asyncio.run(main())
    pool.close()


def test_usable_again_after_close_and_from_a_new_loop() -> None:
    pool = WorkerThreads(2, "test")
    assert asyncio.run(pool.run(divmod, 4, 3)) == (1, 1)
    pool.close()
    assert asyncio.run(pool.run(divmod, 8, 3)) == (2, 2)
    pool.close()


def test_on_trio_calls_go_to_anyio_worker_threads() -> None:
    import anyio

    pool = WorkerThreads(2, "test")

    def boom() -> None:
        raise KeyError("from the worker")

    async def main() -> None:
        assert await pool.run(threading.get_ident) != threading.get_ident()
        assert await pool.run(divmod, 7, 2) == (3, 1)
        with pytest.raises(KeyError, match="from the worker"):
            await pool.run(boom)

    anyio.run(main, backend="trio")
    # asyncio's future-and-callback hand-off has no trio equivalent: the pool's
    # own threads are never started there.
    assert pool.threads == 0
