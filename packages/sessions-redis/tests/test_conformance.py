"""The Redis driver passes the conformance suite in both flavours, against a
real redis-server started by the tests."""

from __future__ import annotations

from typing import Any

import pytest
from sessions.testing import (
    AsyncConcurrentCommits,
    AsyncDriverConformance,
    ConcurrentCommits,
    DriverConformance,
    Harness,
)
from sessions.testing.servers import ServerProcess
from sessions_redis.driver import RedisDriver


class _RedisBase:
    driver_factory = RedisDriver
    driver_options: dict[str, Any] = {}

    @pytest.fixture(autouse=True)
    def _server(self, redis_server: ServerProcess, tools: Any) -> None:
        self.admin = tools.admin(redis_server)
        self.driver_options = {"url": tools.url_of(redis_server), "key_prefix": "conf:"}

    def corrupt(self, harness: Harness, session_id: str) -> None:
        self.admin.set("conf:" + session_id, b"\x80\x81 not a session payload", ex=60)


class TestRedisSync(_RedisBase, DriverConformance):
    pass


class TestRedisAsync(_RedisBase, AsyncDriverConformance):
    pass


class TestRedisTrio(TestRedisAsync):
    """redis.asyncio needs asyncio: on trio, core uses the sync flavour in threads."""

    backend = "trio"


class TestRedisConcurrency(_RedisBase, ConcurrentCommits):
    """Overlapping requests on one cookie, merged through the compare-and-set script."""


class TestRedisConcurrencyAsync(_RedisBase, AsyncConcurrentCommits):
    pass
