"""The driver conformance suite, sync and async.

A driver package runs it by subclassing one class in a test module::

    from sessions.testing import DriverConformance

    class TestMyDriver(DriverConformance):
        driver_factory = MyDriver
        driver_options = {"location": "/tmp/x"}

        def corrupt(self, harness, session_id):
            ...  # store bytes under session_id that are not a session payload

:class:`AsyncDriverConformance` runs the same checks through the async flavour.
Options that depend on fixtures (a server's URL) can be set from an autouse
fixture on the subclass: ``self.driver_options = {"url": server.url}``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

import anyio

from ..driver import Record, RequestContext
from ..keys import new_token, storage_key
from ..session import Session
from .harness import Harness

__all__ = ["SAMPLE_VALUES", "AsyncDriverConformance", "DriverConformance"]

#: One value of every type the codec supports, nested as apps nest them.
SAMPLE_VALUES: dict[str, Any] = {
    "str": "héllo ✓",
    "int": 42,
    "big": 2**70,
    "float": 1.5,
    "true": True,
    "none": None,
    "list": [1, "two", [3.0]],
    "dict": {"a": {"b": "c"}},
    "aware": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=2))),
    "naive": datetime(2026, 1, 2, 3, 4, 5),
    "utc": datetime(2026, 1, 2, tzinfo=UTC),
    "date": date(2026, 1, 2),
    "uuid": UUID("12345678-1234-5678-1234-567812345678"),
    "decimal": Decimal("10.50"),
    "bytes": b"\x00\xffbinary",
    "nested": {"when": [date(2020, 2, 29)], "\x00": "nul key"},
}


def new_key() -> str:
    """A fresh storage key, shaped as core makes them."""
    return storage_key(new_token())


class _Base:
    driver_factory: ClassVar[Callable[..., Any] | None] = None
    driver_options: dict[str, Any] = {}
    #: Session age used by the suite, in seconds. Raise it for stores whose
    #: clock ticks in whole seconds and may expire an entry up to 1 s early.
    age: ClassVar[int] = 2

    def make_harness(self) -> Harness:
        """The harness; override to pass extra SessionConfig fields."""
        if self.driver_factory is None:
            raise NotImplementedError("set driver_factory on the conformance subclass")
        return Harness(self.driver_factory, self.driver_options, self.age)

    def corrupt(self, harness: Harness, session_id: str) -> None:
        """Store something under ``session_id`` that is not a valid payload."""
        raise NotImplementedError(
            "implement corrupt(harness, session_id) to store unreadable data, so the suite "
            "can check that the driver reads it as missing"
        )


class DriverConformance(_Base):
    """The contract, through the driver's sync flavour."""

    def test_missing_reads_none(self) -> None:
        h = self.make_harness()
        assert h.call("read", new_key()) is None

    def test_round_trip_every_value_type(self) -> None:
        h = self.make_harness()
        key = new_key()
        h.call("write", key, SAMPLE_VALUES)
        got = h.call("read", key)
        assert got == SAMPLE_VALUES
        assert {k: type(v) for k, v in got.items()} == {
            k: type(v) for k, v in SAMPLE_VALUES.items()
        }

    def test_read_returns_a_copy(self) -> None:
        h = self.make_harness()
        key = new_key()
        h.call("write", key, {"list": [1]})
        h.call("read", key)["list"].append(2)
        assert h.call("read", key) == {"list": [1]}

    def test_overwrite_replaces_whole_dict(self) -> None:
        h = self.make_harness()
        key = new_key()
        h.call("write", key, {"a": 1, "b": 2})
        h.call("write", key, {"c": 3})
        assert h.call("read", key) == {"c": 3}

    def test_sessions_are_independent(self) -> None:
        h = self.make_harness()
        one, two = new_key(), new_key()
        h.call("write", one, {"who": 1})
        h.call("write", two, {"who": 2})
        assert h.call("read", one) == {"who": 1}
        assert h.call("read", two) == {"who": 2}

    def test_destroy(self) -> None:
        h = self.make_harness()
        key = new_key()
        h.call("write", key, {"a": 1})
        h.call("destroy", key)
        assert h.call("read", key) is None

    def test_destroy_and_touch_missing_are_not_errors(self) -> None:
        h = self.make_harness()
        key = new_key()
        h.call("destroy", key)
        h.call("touch", key)
        assert h.call("read", key) is None

    def test_touch_extends_expiry(self) -> None:
        h = self.make_harness()
        key = new_key()
        h.call("write", key, {"a": 1})
        time.sleep(self.age * 0.6)
        h.call("touch", key)
        time.sleep(self.age * 0.6)
        assert h.call("read", key) == {"a": 1}

    def test_expiry_touch_never_revives_and_gc_and_tags_skip_expired(self) -> None:
        """One wait past the age serves every expiry check (the kit's slowest part)."""
        h = self.make_harness()
        key = new_key()
        h.call("write", key, {"a": 1})
        tag = "user-" + new_key()[:8]
        if h.manager.flavours.tagging:
            _tagged_session(h, tag, {"old": 1})
        time.sleep(self.age + 1.2)
        assert h.call("read", key) is None, "a session outlived its age"
        h.call("touch", key)
        assert h.call("read", key) is None, "touch brought an expired session back"
        if h.manager.has_gc:
            live = new_key()
            h.call("write", live, {"live": 1})
            result = h.driver.gc()
            assert result.removed >= 1, "gc removed nothing, but a record had expired"
            assert h.call("read", live) == {"live": 1}, "gc removed a live record"
        if h.manager.flavours.tagging:
            fresh = _tagged_session(h, tag, {"b": 1})
            listed = [info.session_id for info in h.manager.sessions.tagged(tag)]
            assert listed == [fresh], "tagged() listed an expired session"

    # -- versioned capability (conflict-free commits) --------------------------------

    def _versioned(self) -> Harness:
        h = self.make_harness()
        if not h.manager.flavours.versioned:
            _skip("the driver does not declare the versioned capability")
        return h

    def test_versioned_create_only_when_absent(self) -> None:
        h = self._versioned()
        key = new_key()
        assert h.call("write_versioned", key, {"a": 1}, None) is True
        assert h.call("write_versioned", key, {"a": 2}, None) is False
        record = h.call("read_versioned", key)
        assert isinstance(record, Record)
        assert record.values == {"a": 1}
        assert isinstance(record.version, int)

    def test_versioned_stale_version_is_refused(self) -> None:
        h = self._versioned()
        key = new_key()
        h.call("write_versioned", key, {"n": 0}, None)
        first = h.call("read_versioned", key)
        assert h.call("write_versioned", key, {"n": 1}, first.version) is True
        assert h.call("write_versioned", key, {"n": 99}, first.version) is False
        second = h.call("read_versioned", key)
        assert second.values == {"n": 1}
        assert second.version != first.version
        assert h.call("write_versioned", key, {}, first.version) is False
        assert h.call("read", key) == {"n": 1}
        assert h.call("write_versioned", key, {}, second.version) is True
        assert h.call("read_versioned", key) is None

    def test_versioned_write_never_revives_a_destroyed_record(self) -> None:
        h = self._versioned()
        key = new_key()
        h.call("write", key, {"user": 42})
        record = h.call("read_versioned", key)
        assert record is not None
        assert record.values == {"user": 42}
        h.call("destroy", key)
        assert h.call("write_versioned", key, {"user": 42, "x": 1}, record.version) is False
        assert h.call("read", key) is None

    def test_versioned_two_writers_both_land_through_core(self) -> None:
        h = self._versioned()
        _store_session(h, {"n": 0})
        one, two = _open(h), _open(h)
        for session in (one, two):
            session.initiate()
        one.put("one", 1)
        one.increment("n")
        two.put("two", 2)
        two.increment("n", 10)
        one.commit()
        two.commit()
        after = _open(h)
        after.initiate()
        assert after.all() == {"n": 11, "one": 1, "two": 2}

    def test_versioned_no_resurrection_after_destroy_through_core(self) -> None:
        h = self._versioned()
        _store_session(h, {"user": 42})
        logout, slow = _open(h), _open(h)
        logout.initiate()
        slow.initiate()
        logout.clear()
        logout.commit()
        slow.put("cart", 3)
        slow.commit()
        again = _open(h)
        again.initiate()
        assert again.fresh is True
        assert again.all() == {}

    def test_unreadable_data_reads_none(self) -> None:
        h = self.make_harness()
        key = new_key()
        self.corrupt(h, key)
        assert h.call("read", key) is None

    def test_one_megabyte_value(self) -> None:
        h = self.make_harness()
        key = new_key()
        blob = "x" * (1024 * 1024)
        h.call("write", key, {"blob": blob})
        assert h.call("read", key) == {"blob": blob}

    def test_write_racing_read_never_tears(self) -> None:
        h = self.make_harness()
        key = new_key()
        h.call("write", key, _version(0))
        errors: list[str] = []
        done = threading.Event()

        def reader() -> None:
            while not done.is_set():
                got = h.call("read", key)
                if not _consistent(got):
                    errors.append(repr(got)[:200])

        thread = threading.Thread(target=reader)
        thread.start()
        try:
            for i in range(1, 60):
                h.call("write", key, _version(i))
        finally:
            done.set()
            thread.join()
        assert errors == []
        assert h.call("read", key) == _version(59)

    def test_session_round_trip_through_core(self) -> None:
        h = self.make_harness()
        context = h.context()
        session = Session(h.manager, context)
        session.initiate()
        session.put("user.name", "ada")
        session.commit()
        h.finish(context)
        context = h.context()
        again = Session(h.manager, context)
        again.initiate()
        assert again.fresh is False
        assert again.get("user.name") == "ada"

    # -- tagging capability (a user's sessions) ---------------------------------------

    def _tagging(self) -> Harness:
        h = self.make_harness()
        if not h.manager.flavours.tagging:
            _skip("the driver does not declare the tagging capability")
        return h

    def test_tagging_lists_a_tags_live_sessions(self) -> None:
        h = self._tagging()
        tag = "user-" + new_key()[:8]
        first = _tagged_session(h, tag, {"device": "phone"})
        second = _tagged_session(h, tag, {"device": "laptop"})
        _tagged_session(h, tag + "-other", {"device": "tablet"})
        listed = {info.session_id: info for info in h.manager.sessions.tagged(tag)}
        assert set(listed) == {first, second}
        info = listed[first]
        assert info.tag == tag
        assert dict(info.values) == {"device": "phone"}
        _check_times(info, self.age)
        _same(h.manager.sessions.get(second), listed[second])
        assert h.manager.sessions.get(new_key()) is None

    def test_tagging_untag_retag_and_regenerate(self) -> None:
        h = self._tagging()
        tag = "user-" + new_key()[:8]
        untagged = _tagged_session(h, tag, {"a": 1})
        _change(h, untagged, lambda s: s.untag())
        retagged = _tagged_session(h, tag, {"b": 1})
        _change(h, retagged, lambda s: s.tag(tag + "-new"))
        moved = _tagged_session(h, tag, {"c": 1})
        regenerated = _change(h, moved, lambda s: s.regenerate())
        assert regenerated != moved
        assert [info.session_id for info in h.manager.sessions.tagged(tag)] == [regenerated]
        assert [i.session_id for i in h.manager.sessions.tagged(tag + "-new")] == [retagged]
        assert h.manager.sessions.get(moved) is None

    def test_tagging_destroy_and_destroy_tagged_with_keep(self) -> None:
        h = self._tagging()
        tag = "user-" + new_key()[:8]
        ids = [_tagged_session(h, tag, {"n": i}) for i in range(4)]
        other = _tagged_session(h, tag + "-other", {"n": 9})
        h.manager.sessions.destroy(ids[0])
        assert {i.session_id for i in h.manager.sessions.tagged(tag)} == set(ids[1:])
        assert h.manager.sessions.destroy_tagged(tag, keep=ids[1]) == 2
        assert [i.session_id for i in h.manager.sessions.tagged(tag)] == [ids[1]]
        assert h.call("read", ids[2]) is None
        assert h.manager.sessions.destroy_tagged(tag) == 1
        assert h.manager.sessions.tagged(tag) == []
        assert [i.session_id for i in h.manager.sessions.tagged(tag + "-other")] == [other]


class AsyncDriverConformance(_Base):
    """The contract, through the driver's async flavour (or a worker thread).

    Each test runs in its own event loop, with the harness built inside it, so
    drivers with loop-bound pools are tested as applications use them. The loop
    is asyncio's; a subclass with ``backend = "trio"`` runs the same checks on
    trio (where core calls an ``async_library = "asyncio"`` driver's sync
    flavour in worker threads).
    """

    #: The anyio backend the checks run on: ``"asyncio"`` or ``"trio"``.
    backend: ClassVar[str] = "asyncio"

    def _run(self, body: Callable[[Harness], Awaitable[None]]) -> None:
        async def main() -> None:
            h = self.make_harness()
            try:
                await body(h)
            finally:
                await h.manager.aclose()

        anyio.run(main, backend=self.backend)

    def test_missing_reads_none(self) -> None:
        async def body(h: Harness) -> None:
            assert await h.acall("read", new_key()) is None

        self._run(body)

    def test_round_trip_every_value_type(self) -> None:
        async def body(h: Harness) -> None:
            key = new_key()
            await h.acall("write", key, SAMPLE_VALUES)
            got = await h.acall("read", key)
            assert got == SAMPLE_VALUES
            assert {k: type(v) for k, v in got.items()} == {
                k: type(v) for k, v in SAMPLE_VALUES.items()
            }

        self._run(body)

    def test_overwrite_replaces_whole_dict(self) -> None:
        async def body(h: Harness) -> None:
            key = new_key()
            await h.acall("write", key, {"a": 1, "b": 2})
            await h.acall("write", key, {"c": 3})
            assert await h.acall("read", key) == {"c": 3}

        self._run(body)

    def test_destroy(self) -> None:
        async def body(h: Harness) -> None:
            key = new_key()
            await h.acall("write", key, {"a": 1})
            await h.acall("destroy", key)
            assert await h.acall("read", key) is None
            await h.acall("destroy", key)
            await h.acall("touch", key)

        self._run(body)

    def test_touch_extends_expiry(self) -> None:
        async def body(h: Harness) -> None:
            key = new_key()
            await h.acall("write", key, {"a": 1})
            await anyio.sleep(self.age * 0.6)
            await h.acall("touch", key)
            await anyio.sleep(self.age * 0.6)
            assert await h.acall("read", key) == {"a": 1}

        self._run(body)

    def test_expires_after_age_and_touch_never_revives(self) -> None:
        async def body(h: Harness) -> None:
            key = new_key()
            await h.acall("write", key, {"a": 1})
            await anyio.sleep(self.age + 1.2)
            assert await h.acall("read", key) is None
            await h.acall("touch", key)
            assert await h.acall("read", key) is None, "touch brought an expired session back"

        self._run(body)

    # -- versioned capability (conflict-free commits) --------------------------------

    def _run_versioned(self, body: Callable[[Harness], Awaitable[None]]) -> None:
        async def guarded(h: Harness) -> None:
            if not h.manager.flavours.versioned:
                _skip("the driver does not declare the versioned capability")
            await body(h)

        self._run(guarded)

    def test_versioned_create_only_when_absent(self) -> None:
        async def body(h: Harness) -> None:
            key = new_key()
            assert await h.acall("write_versioned", key, {"a": 1}, None) is True
            assert await h.acall("write_versioned", key, {"a": 2}, None) is False
            record = await h.acall("read_versioned", key)
            assert isinstance(record, Record)
            assert record.values == {"a": 1}

        self._run_versioned(body)

    def test_versioned_stale_version_is_refused(self) -> None:
        async def body(h: Harness) -> None:
            key = new_key()
            await h.acall("write_versioned", key, {"n": 0}, None)
            first = await h.acall("read_versioned", key)
            assert await h.acall("write_versioned", key, {"n": 1}, first.version) is True
            assert await h.acall("write_versioned", key, {"n": 99}, first.version) is False
            second = await h.acall("read_versioned", key)
            assert second.values == {"n": 1}
            assert await h.acall("write_versioned", key, {}, first.version) is False
            assert await h.acall("write_versioned", key, {}, second.version) is True
            assert await h.acall("read_versioned", key) is None

        self._run_versioned(body)

    def test_versioned_write_never_revives_a_destroyed_record(self) -> None:
        async def body(h: Harness) -> None:
            key = new_key()
            await h.acall("write", key, {"user": 42})
            record = await h.acall("read_versioned", key)
            assert record is not None
            await h.acall("destroy", key)
            assert await h.acall("write_versioned", key, {"x": 1}, record.version) is False
            assert await h.acall("read", key) is None

        self._run_versioned(body)

    def test_versioned_two_writers_both_land_through_core(self) -> None:
        async def body(h: Harness) -> None:
            await _astore_session(h, {"n": 0})
            one, two = _open(h), _open(h)
            await one.ainitiate()
            await two.ainitiate()
            one.put("one", 1)
            one.increment("n")
            two.put("two", 2)
            two.increment("n", 10)
            # Both commit at once: each one's compare-and-set may meet the other's.
            async with anyio.create_task_group() as tg:
                tg.start_soon(one.acommit)
                tg.start_soon(two.acommit)
            after = _open(h)
            await after.ainitiate()
            assert after.all() == {"n": 11, "one": 1, "two": 2}

        self._run_versioned(body)

    def test_versioned_no_resurrection_after_destroy_through_core(self) -> None:
        async def body(h: Harness) -> None:
            await _astore_session(h, {"user": 42})
            logout, slow = _open(h), _open(h)
            await logout.ainitiate()
            await slow.ainitiate()
            logout.clear()
            await logout.acommit()
            slow.put("cart", 3)
            await slow.acommit()
            again = _open(h)
            await again.ainitiate()
            assert again.fresh is True
            assert again.all() == {}

        self._run_versioned(body)

    def test_unreadable_data_reads_none(self) -> None:
        async def body(h: Harness) -> None:
            key = new_key()
            self.corrupt(h, key)
            assert await h.acall("read", key) is None

        self._run(body)

    def test_one_megabyte_value(self) -> None:
        async def body(h: Harness) -> None:
            key = new_key()
            blob = "y" * (1024 * 1024)
            await h.acall("write", key, {"blob": blob})
            assert await h.acall("read", key) == {"blob": blob}

        self._run(body)

    def test_write_racing_read_never_tears(self) -> None:
        async def body(h: Harness) -> None:
            key = new_key()
            await h.acall("write", key, _version(0))
            errors: list[str] = []
            done = anyio.Event()

            async def reader() -> None:
                while not done.is_set():
                    got = await h.acall("read", key)
                    if not _consistent(got):
                        errors.append(repr(got)[:200])
                    await anyio.sleep(0)

            async with anyio.create_task_group() as tg:
                tg.start_soon(reader)
                for i in range(1, 60):
                    await h.acall("write", key, _version(i))
                done.set()
            assert errors == []
            assert await h.acall("read", key) == _version(59)

        self._run(body)

    def test_session_round_trip_through_core(self) -> None:
        async def body(h: Harness) -> None:
            context = h.context()
            session = Session(h.manager, context)
            await session.ainitiate()
            session.put("cart.total", Decimal("9.99"))
            await session.acommit()
            h.finish(context)
            again = Session(h.manager, h.context())
            await again.ainitiate()
            assert again.fresh is False
            assert again.get("cart.total") == Decimal("9.99")

        self._run(body)

    # -- tagging capability (a user's sessions) ---------------------------------------

    def _run_tagging(self, body: Callable[[Harness], Awaitable[None]]) -> None:
        async def guarded(h: Harness) -> None:
            if not h.manager.flavours.tagging:
                _skip("the driver does not declare the tagging capability")
            await body(h)

        self._run(guarded)

    def test_tagging_lists_a_tags_live_sessions(self) -> None:
        async def body(h: Harness) -> None:
            tag = "user-" + new_key()[:8]
            first = await _atagged_session(h, tag, {"device": "phone"})
            second = await _atagged_session(h, tag, {"device": "laptop"})
            await _atagged_session(h, tag + "-other", {"device": "tablet"})
            listed = {info.session_id: info for info in await h.manager.sessions.atagged(tag)}
            assert set(listed) == {first, second}
            assert dict(listed[first].values) == {"device": "phone"}
            _check_times(listed[first], self.age)
            _same(await h.manager.sessions.aget(second), listed[second])

        self._run_tagging(body)

    def test_tagging_destroy_and_destroy_tagged_with_keep(self) -> None:
        async def body(h: Harness) -> None:
            tag = "user-" + new_key()[:8]
            ids = [await _atagged_session(h, tag, {"n": i}) for i in range(4)]
            await h.manager.sessions.adestroy(ids[0])
            assert await h.manager.sessions.adestroy_tagged(tag, keep=ids[1]) == 2
            listed = await h.manager.sessions.atagged(tag)
            assert [info.session_id for info in listed] == [ids[1]]
            assert await h.acall("read", ids[3]) is None

        self._run_tagging(body)


#: Each tagged session's cookies, by storage key, as a browser would keep them.
_COOKIES: dict[str, dict[str, str]] = {}


def _tagged_session(h: Harness, tag: str, values: dict[str, Any]) -> str:
    """A new session with ``values`` and ``tag``, committed through core; its storage key."""
    context = RequestContext({})
    session = Session(h.manager, context)
    session.initiate()
    session.update(values)
    session.tag(tag)
    session.commit()
    _COOKIES[session.session_id] = {n: c.value for n, c in context.outgoing.items()}
    return session.session_id


async def _atagged_session(h: Harness, tag: str, values: dict[str, Any]) -> str:
    context = RequestContext({})
    session = Session(h.manager, context)
    await session.ainitiate()
    session.update(values)
    session.tag(tag)
    await session.acommit()
    _COOKIES[session.session_id] = {n: c.value for n, c in context.outgoing.items()}
    return session.session_id


def _change(h: Harness, session_id: str, action: Callable[[Session], Any]) -> str:
    """A request from the browser holding ``session_id``: run ``action``, commit; the new key."""
    context = RequestContext(_COOKIES.pop(session_id))
    session = Session(h.manager, context)
    session.initiate()
    assert session.session_id == session_id, "the stored session did not open"
    action(session)
    session.commit()
    _COOKIES[session.session_id] = {n: c.value for n, c in context.outgoing.items()}
    return session.session_id


def _same(got: Any, listed: Any) -> None:
    """``get`` and ``tagged`` report the same session (expiry read at slightly different times)."""
    assert got is not None, "get() did not find a listed session"
    assert (got.session_id, dict(got.values), got.tag, got.created_at) == (
        listed.session_id,
        dict(listed.values),
        listed.tag,
        listed.created_at,
    )
    assert abs((got.expires_at - listed.expires_at).total_seconds()) < 2


def _check_times(info: Any, age: int) -> None:
    now = datetime.now(UTC)
    assert info.created_at is not None
    assert now - timedelta(seconds=30) < info.created_at <= now + timedelta(seconds=1)
    assert now < info.expires_at <= now + timedelta(seconds=age + 2)
    assert abs((info.last_seen - now).total_seconds()) < 30


def _skip(reason: str) -> None:
    import pytest  # the kit runs under pytest; importing it lazily keeps `sessions` free of it

    pytest.skip(reason)


def _open(h: Harness) -> Session:
    """A session for a request carrying the harness's cookies (not yet initiated)."""
    return Session(h.manager, h.context())


def _store_session(h: Harness, values: dict[str, Any]) -> None:
    """Commit ``values`` as a new session and keep its cookie in the jar."""
    h.jar.clear()
    context = h.context()
    session = Session(h.manager, context)
    session.initiate()
    for key, value in values.items():
        session.put(key, value)
    session.commit()
    h.finish(context)


async def _astore_session(h: Harness, values: dict[str, Any]) -> None:
    """Async :func:`_store_session`."""
    h.jar.clear()
    context = h.context()
    session = Session(h.manager, context)
    await session.ainitiate()
    for key, value in values.items():
        session.put(key, value)
    await session.acommit()
    h.finish(context)


def _version(i: int) -> dict[str, Any]:
    # Sizes differ per version so a torn read cannot look consistent.
    return {"version": i, "payload": str(i) * (1000 + 37 * i)}


def _consistent(values: Any) -> bool:
    if type(values) is not dict or set(values) != {"version", "payload"}:
        return False
    i = values["version"]
    return bool(values["payload"] == str(i) * (1000 + 37 * i))
