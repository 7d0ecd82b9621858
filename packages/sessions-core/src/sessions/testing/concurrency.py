"""Overlapping requests on one session, for drivers with the versioned capability.

Every check holds one request between its read and its commit while another
request on the same cookie commits, through core, exactly as two browser tabs
would; then a stress check runs 8 clients on one cookie, each doing 50
increments plus a key of its own, and requires every acknowledged increment
and key at the end. A driver package runs them by subclassing, as with the
conformance suite::

    from sessions.testing import ConcurrentCommits

    class TestMyDriverConcurrency(ConcurrentCommits):
        driver_factory = MyDriver
        driver_options = {...}

:class:`AsyncConcurrentCommits` runs the same checks through the async flavour
(concurrent tasks on one event loop). Drivers without the capability skip them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import anyio

from ..session import Session
from .conformance import _Base, _skip
from .harness import Harness

__all__ = ["SCENARIOS", "AsyncConcurrentCommits", "ConcurrentCommits", "Scenario"]

Action = Callable[[Session], Any]


@dataclass(frozen=True)
class Scenario:
    """One overlap: the stored values, the held request, the quick one, and the check."""

    initial: dict[str, Any]
    slow: Action
    fast: Action
    check: Callable[[Session], None]


def _expect(values: dict[str, Any], *, fresh: bool = False) -> Callable[[Session], None]:
    def check(after: Session) -> None:
        assert after.fresh is fresh, f"expected fresh={fresh}, got {after!r}"
        assert after.all() == values

    return check


def _add_ten_and_a_coupon(session: Session) -> None:
    session.increment("cart.items", 10)
    session.put("coupon", "Z")


def _flash_merged(after: Session) -> None:
    assert after.flash_messages.all() == {"notice": "slow", "alert": "fast"}


#: The overlap scenarios, by name. The jar holds the quick request's cookie
#: afterwards (after a regenerate, the new one).
SCENARIOS: dict[str, Scenario] = {
    "different_keys_both_survive": Scenario(
        {"user": 42},
        lambda s: s.put("a", 1),
        lambda s: s.put("b", 2),
        _expect({"user": 42, "a": 1, "b": 2}),
    ),
    "increments_add_up": Scenario(
        {"n": 0}, lambda s: s.increment("n", 5), lambda s: s.increment("n", 3), _expect({"n": 8})
    ),
    "nested_increments_add_up": Scenario(
        {"cart": {"items": 1, "name": "x"}},
        lambda s: s.decrement("cart.items"),
        _add_ten_and_a_coupon,
        _expect({"cart": {"items": 10, "name": "x"}, "coupon": "Z"}),
    ),
    "the_later_commit_wins_per_key": Scenario(
        {"k": "old"},
        lambda s: s.put("k", "slow"),
        lambda s: s.put("k", "fast"),
        _expect({"k": "slow"}),
    ),
    "a_forget_merges": Scenario(
        {"k": 1, "j": 2}, lambda s: s.forget("k"), lambda s: s.put("j", 3), _expect({"j": 3})
    ),
    "a_logout_is_never_undone": Scenario(
        {"user": 42}, lambda s: s.put("cart", 1), lambda s: s.clear(), _expect({}, fresh=True)
    ),
    "a_clear_wins_over_the_concurrent_change": Scenario(
        {"user": 42}, lambda s: s.clear(), lambda s: s.put("cart", 1), _expect({}, fresh=True)
    ),
    "a_regenerate_wins_over_the_concurrent_change": Scenario(
        {"user": 42}, lambda s: s.put("cart", 1), lambda s: s.regenerate(), _expect({"user": 42})
    ),
    "flash_messages_merge": Scenario(
        {"user": 42},
        lambda s: s.flash("notice", "slow"),
        lambda s: s.flash("alert", "fast"),
        _flash_merged,
    ),
    "emptying_key_by_key_keeps_the_other_requests_keys": Scenario(
        {"only": 1, "b": 1},
        lambda s: s.forget("only"),
        lambda s: s.put("b", 2),
        _expect({"b": 2}),
    ),
}

CLIENTS, ROUNDS = 8, 50


def store(h: Harness, values: dict[str, Any]) -> None:
    """Commit ``values`` as a new session and keep its cookie in the jar."""
    h.jar.clear()
    context = h.context()
    session = Session(h.manager, context)
    session.initiate()
    session.update(values)
    session.commit()
    h.finish(context)


def current(h: Harness) -> Session:
    """The session the jar's cookie opens now."""
    session = Session(h.manager, h.context())
    session.initiate()
    return session


class _Concurrency(_Base):
    #: Session age for these checks: long, so nothing expires under load.
    age: ClassVar[int] = 60

    def _harness(self) -> Harness:
        h = self.make_harness()
        if not h.manager.flavours.versioned:
            _skip("the driver does not declare the versioned capability")
        return h


class ConcurrentCommits(_Concurrency):
    """Overlapping requests through the sync flavour (threads)."""

    def _overlap(self, name: str) -> None:
        scenario = SCENARIOS[name]
        h = self._harness()
        store(h, scenario.initial)
        held = Session(h.manager, h.context())
        held.initiate()
        scenario.slow(held)
        context = h.context()
        quick = Session(h.manager, context)
        quick.initiate()
        scenario.fast(quick)
        quick.commit()
        h.finish(context)
        held.commit()
        scenario.check(current(h))

    def test_stress_every_increment_and_key_survives(self) -> None:
        h = self._harness()
        store(h, {"n": 0})
        start = threading.Barrier(CLIENTS)
        errors: list[BaseException] = []

        def client(i: int) -> None:
            try:
                start.wait()
                for r in range(ROUNDS):
                    session = Session(h.manager, h.context())
                    session.initiate()
                    session.increment("n")
                    session.put(f"client{i}", r)
                    time.sleep(0.0005)  # hold it open, so others read the same version
                    session.commit()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [], f"clients failed: {errors[:3]!r}"
        after = current(h)
        assert after.get("n") == CLIENTS * ROUNDS, (
            f"{after.get('n')} of {CLIENTS * ROUNDS} survived"
        )
        expected = {f"client{i}": ROUNDS - 1 for i in range(CLIENTS)}
        assert expected.items() <= after.all().items(), f"expected {expected}, got {after.all()}"


class AsyncConcurrentCommits(_Concurrency):
    """Overlapping requests through the async flavour (tasks on one loop)."""

    backend: ClassVar[str] = "asyncio"

    def _overlap(self, name: str) -> None:
        scenario = SCENARIOS[name]

        async def main() -> None:
            h = self._harness()
            try:
                await _astore(h, scenario.initial)
                held = Session(h.manager, h.context())
                await held.ainitiate()
                scenario.slow(held)
                context = h.context()
                quick = Session(h.manager, context)
                await quick.ainitiate()
                scenario.fast(quick)
                await quick.acommit()
                h.finish(context)
                await held.acommit()
                after = Session(h.manager, h.context())
                await after.ainitiate()
                scenario.check(after)
            finally:
                await h.manager.aclose()

        anyio.run(main, backend=self.backend)

    def test_stress_every_increment_and_key_survives(self) -> None:
        async def main() -> None:
            h = self._harness()
            try:
                await _astore(h, {"n": 0})

                async def client(i: int) -> None:
                    for r in range(ROUNDS):
                        session = Session(h.manager, h.context())
                        await session.ainitiate()
                        session.increment("n")
                        session.put(f"client{i}", r)
                        await anyio.sleep(0)  # let the others read the same version
                        await session.acommit()

                async with anyio.create_task_group() as tg:
                    for i in range(CLIENTS):
                        tg.start_soon(client, i)
                after = Session(h.manager, h.context())
                await after.ainitiate()
                survived = after.get("n")
                assert survived == CLIENTS * ROUNDS, f"{survived} of {CLIENTS * ROUNDS} survived"
                expected = {f"client{i}": ROUNDS - 1 for i in range(CLIENTS)}
                assert expected.items() <= after.all().items(), f"{expected} vs {after.all()}"
            finally:
                await h.manager.aclose()

        anyio.run(main, backend=self.backend)


async def _astore(h: Harness, values: dict[str, Any]) -> None:
    h.jar.clear()
    context = h.context()
    session = Session(h.manager, context)
    await session.ainitiate()
    session.update(values)
    await session.acommit()
    h.finish(context)


def _overlap_test(name: str) -> Callable[[Any], None]:
    def test(self: Any) -> None:
        self._overlap(name)

    test.__name__ = f"test_overlap_{name}"
    test.__doc__ = f"Overlap: {name.replace('_', ' ')}."
    return test


for _name in SCENARIOS:
    for _cls in (ConcurrentCommits, AsyncConcurrentCommits):
        setattr(_cls, f"test_overlap_{_name}", _overlap_test(_name))
