"""The manager and the driver contract: extend, flavours, threads, capabilities."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, ClassVar

import anyio
import pytest
from sessions import (
    ConfigError,
    Driver,
    Option,
    SessionConfig,
    SessionManager,
    UnsupportedEventLoopError,
)
from sessions.driver import DriverConfig, RequestContext

SECRET = "manager-tests-secret-0123456789-abcdefghi"


class Recording(Driver):
    """A dict store that records which thread ran each operation."""

    options: ClassVar[tuple[Option, ...]] = (Option("label", str, "x", "a label"),)

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        self.data: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, int]] = []

    def _log(self, op: str) -> None:
        self.calls.append((op, threading.get_ident()))

    def read(self, session_id: str) -> dict[str, Any] | None:
        self._log("read")
        value = self.data.get(session_id)
        return dict(value) if value is not None else None

    def write(self, session_id: str, values: dict[str, Any]) -> None:
        self._log("write")
        self.data[session_id] = dict(values)

    def destroy(self, session_id: str) -> None:
        self._log("destroy")
        self.data.pop(session_id, None)

    def touch(self, session_id: str) -> None:
        self._log("touch")


class TouchingOnRead(Recording):
    touches_on_read = True


class AsyncioBound(Recording):
    """Both flavours; the async one needs asyncio, like a driver over redis.asyncio."""

    async_library = "asyncio"

    async def aread(self, session_id: str) -> dict[str, Any] | None:
        asyncio.get_running_loop()  # fails anywhere but on asyncio
        self._log("aread")
        value = self.data.get(session_id)
        return dict(value) if value is not None else None

    async def awrite(self, session_id: str, values: dict[str, Any]) -> None:
        asyncio.get_running_loop()
        self._log("awrite")
        self.data[session_id] = dict(values)

    async def adestroy(self, session_id: str) -> None:
        asyncio.get_running_loop()
        self._log("adestroy")
        self.data.pop(session_id, None)

    async def atouch(self, session_id: str) -> None:
        asyncio.get_running_loop()
        self._log("atouch")


class Incomplete(Driver):
    def read(self, session_id: str) -> dict[str, Any] | None:
        return None


def manager_with(name: str, factory: Any, **options: Any) -> SessionManager:
    config = SessionConfig(secret=SECRET, driver=name, drivers={name: options})
    return SessionManager(config, autoload_plugins=False, drivers={name: factory})


def two_requests(manager: SessionManager) -> None:
    first = manager.session(RequestContext({}))
    first.initiate()
    first.put("a", 1)
    first.commit()
    cookies = {k: c.value for k, c in first._context.outgoing.items()}
    second = manager.session(RequestContext(cookies))
    second.initiate()
    assert second.get("a") == 1
    second.commit()


def test_extend_adds_an_in_app_driver_with_validated_options() -> None:
    manager = manager_with("mine", Recording, label="hello")
    assert manager.driver.config.options == {"label": "hello"}
    assert manager.flavours.label == "sync"
    two_requests(manager)
    assert [op for op, _ in manager.driver.calls] == ["write", "read", "touch"]


def test_extend_after_the_driver_is_built_is_refused() -> None:
    manager = manager_with("mine", Recording)
    manager.driver
    with pytest.raises(RuntimeError, match="before the first request"):
        manager.extend("mine", Recording)


def test_touches_on_read_skips_the_touch() -> None:
    manager = manager_with("mine", TouchingOnRead)
    two_requests(manager)
    assert [op for op, _ in manager.driver.calls] == ["write", "read"]


async def one_async_request(manager: SessionManager) -> int:
    """A request that writes a fresh session; returns the loop's thread."""
    session = manager.session(RequestContext({}))
    await session.ainitiate()
    session.put("a", 1)
    await session.acommit()
    return threading.get_ident()


def test_sync_driver_runs_in_a_worker_thread_from_async_code() -> None:
    manager = manager_with("mine", Recording)
    loop_thread = anyio.run(one_async_request, manager)
    threads = {thread for _, thread in manager.driver.calls}
    assert threads
    assert loop_thread not in threads


def test_async_only_driver_works_async_and_fails_clearly_when_sync(
    async_only_driver: type[Any],
) -> None:
    manager = manager_with("aonly", async_only_driver)
    assert manager.flavours.label == "async"

    anyio.run(one_async_request, manager)
    with pytest.raises(ConfigError, match="async-only"):
        manager.require_sync()
    session = manager.session(RequestContext({}))
    session.initiate()
    session.put("a", 1)
    with pytest.raises(ConfigError, match="async-only"):
        session.commit()


async def two_async_requests(manager: SessionManager) -> int:
    first = manager.session(RequestContext({}))
    await first.ainitiate()
    first.put("a", 1)
    await first.acommit()
    cookies = {k: c.value for k, c in first._context.outgoing.items()}
    second = manager.session(RequestContext(cookies))
    await second.ainitiate()
    assert second.get("a") == 1
    second.put("b", 2)
    await second.acommit()
    return threading.get_ident()


def test_asyncio_bound_driver_uses_its_async_flavour_on_asyncio() -> None:
    manager = manager_with("bound", AsyncioBound)
    assert manager.flavours.async_library == "asyncio"
    anyio.run(two_async_requests, manager, backend="asyncio")
    assert [op for op, _ in manager.driver.calls] == ["awrite", "aread", "awrite"]


def test_asyncio_bound_driver_uses_its_sync_flavour_in_threads_on_trio() -> None:
    manager = manager_with("bound", AsyncioBound)
    loop_thread = anyio.run(two_async_requests, manager, backend="trio")
    calls = manager.driver.calls
    assert [op for op, _ in calls] == ["write", "read", "write"]
    assert loop_thread not in {thread for _, thread in calls}


def test_async_only_asyncio_bound_driver_on_trio_fails_clearly(
    async_only_driver: type[Any],
) -> None:
    class AsyncOnlyAsyncioBound(async_only_driver):  # type: ignore[misc,valid-type]
        async_library = "asyncio"

    manager = manager_with("bound", AsyncOnlyAsyncioBound)
    anyio.run(one_async_request, manager, backend="asyncio")
    with pytest.raises(UnsupportedEventLoopError) as failed:
        anyio.run(one_async_request, manager, backend="trio")
    message = str(failed.value)
    assert "AsyncOnlyAsyncioBound" in message
    assert "needs asyncio" in message
    assert "Run the application on asyncio, or use a driver with a sync flavour" in message


def test_async_library_must_be_asyncio_or_none() -> None:
    class Curio(Recording):
        async_library = "curio"

    manager = manager_with("curio", Curio)
    with pytest.raises(ConfigError, match=r"async_library.*'asyncio'.*or None"):
        manager.driver


def test_incomplete_driver_is_refused_at_startup() -> None:
    manager = manager_with("bad", Incomplete)
    with pytest.raises(ConfigError, match="must define read/write/destroy/touch"):
        manager.driver


def test_gc_needs_the_capability() -> None:
    manager = manager_with("mine", Recording)
    assert not manager.has_gc
    with pytest.raises(ConfigError, match="gc capability"):
        manager.gc()
    memory = SessionManager(SessionConfig(secret=SECRET, driver="memory"), autoload_plugins=False)
    assert memory.has_gc
    assert memory.gc().removed == 0


class PlainSync:
    """Exactly the four methods: no base class, no config, no for_request."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    def read(self, session_id: str) -> dict[str, Any] | None:
        return self.data.get(session_id)

    def write(self, session_id: str, values: dict[str, Any]) -> None:
        self.data[session_id] = dict(values)

    def destroy(self, session_id: str) -> None:
        self.data.pop(session_id, None)

    def touch(self, session_id: str) -> None:
        pass


class PlainAsync:
    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    async def read(self, session_id: str) -> dict[str, Any] | None:
        return self.data.get(session_id)

    async def write(self, session_id: str, values: dict[str, Any]) -> None:
        self.data[session_id] = dict(values)

    async def destroy(self, session_id: str) -> None:
        self.data.pop(session_id, None)

    async def touch(self, session_id: str) -> None:
        pass


@pytest.mark.parametrize(
    ("cls", "integration"), [(PlainSync, "asgi"), (PlainSync, "wsgi"), (PlainAsync, "asgi")]
)
def test_a_plain_four_method_class_works_unpackaged(cls: type, integration: str) -> None:
    from .plain_apps import two_requests

    manager = SessionManager(
        SessionConfig(secret=SECRET, driver="plain"),
        autoload_plugins=False,
        drivers={"plain": cls},
    )
    assert two_requests(manager, integration) == 2
    assert len(manager.driver.data) == 1


def test_an_unknown_driver_fails_when_the_manager_is_built_and_says_how_to_add_one() -> None:
    with pytest.raises(Exception, match=r"drivers=\{'mine': YourDriver\}"):
        SessionManager(SessionConfig(secret=SECRET, driver="mine"), autoload_plugins=False)
