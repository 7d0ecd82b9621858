"""The driver's own command path over redis-py connections (standalone servers):
timeouts, concurrency within a loop and across threads, and fork safety."""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from sessions import DriverError, SessionConfig
from sessions.driver import DriverConfig
from sessions.testing import new_key
from sessions.testing.servers import ServerProcess
from sessions_redis.driver import RedisDriver


def make(url: str, **options: Any) -> RedisDriver:
    values = {opt.name: opt.default for opt in RedisDriver.options}
    values.update(url=url, key_prefix=f"l{secrets.token_hex(3)}:", **options)
    config = SessionConfig(secret="lane-tests-secret-0123456789abcdef", age=600)
    return RedisDriver(DriverConfig("redis", values, 600, config))


@pytest.fixture
def driver(redis_server: ServerProcess, tools: Any) -> Iterator[RedisDriver]:
    built = make(tools.url_of(redis_server))
    yield built
    built.close()


def test_unanswered_command_times_out_in_both_flavours(
    own_redis: ServerProcess, tools: Any
) -> None:
    built = make(tools.url_of(own_redis), socket_timeout=0.3)
    key = new_key()
    built.write(key, {"a": 1})

    async def aread() -> Any:
        return await built.aread(key)

    # The server stops answering (but keeps the connections open) for a while.
    tools.admin(own_redis).execute_command("CLIENT", "PAUSE", 2500, "ALL")
    started = time.monotonic()
    with pytest.raises(DriverError) as failed:
        anyio.run(aread)
    assert "failed to read" in str(failed.value)
    assert "Timeout" in str(failed.value)
    with pytest.raises(DriverError):
        built.read(key)
    assert time.monotonic() - started < 2.4  # both gave up before the pause ended
    time.sleep(max(0.0, 2.6 - (time.monotonic() - started)))
    assert built.read(key) == {"a": 1}
    assert anyio.run(aread) == {"a": 1}
    built.close()


def test_concurrent_tasks_in_one_loop(driver: RedisDriver) -> None:
    keys = [new_key() for _ in range(40)]

    async def one(i: int) -> None:
        await driver.awrite(keys[i], {"i": i})
        await anyio.sleep(0)
        assert await driver.aread(keys[i]) == {"i": i}

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for i in range(len(keys)):
                tg.start_soon(one, i)
        lane = driver._aclient()
        assert 1 < len(lane._free) <= len(keys)  # connections were opened as needed, then kept
        await driver.aclose()

    anyio.run(main)


def test_concurrent_threads(driver: RedisDriver) -> None:
    errors: list[str] = []

    def worker(n: int) -> None:
        for i in range(30):
            key = new_key()
            driver.write(key, {"n": n, "i": i})
            got = driver.read(key)
            if got != {"n": n, "i": i}:
                errors.append(f"{n}/{i}: {got!r}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_opens_its_own_connections(driver: RedisDriver) -> None:
    key = new_key()
    driver.write(key, {"from": "parent"})
    pid = os.fork()
    if pid == 0:  # the child: must not share the parent's socket
        try:
            ok = driver.read(key) == {"from": "parent"}
            driver.write(key, {"from": "child"})
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert driver.read(key) == {"from": "child"}
    assert len(driver._client("read")._free) == 1
