"""The Session API on its own: guards, read-only sessions, values, change tracking."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sessions import (
    NotANumberError,
    ReadOnlySessionError,
    Session,
    SessionConfig,
    SessionManager,
    SessionNotInitiatedError,
    UnsupportedValueError,
)
from sessions.driver import RequestContext

SECRET = "session-tests-secret-0123456789-abcdefgh"


@pytest.fixture
def manager() -> SessionManager:
    return SessionManager(SessionConfig(secret=SECRET, driver="memory"), autoload_plugins=False)


def request(manager: SessionManager, cookies: dict[str, str] | None = None) -> Session:
    return manager.session(RequestContext(cookies or {}))


def next_cookies(session: Session) -> dict[str, str]:
    return {name: c.value for name, c in session._context.outgoing.items()}


def test_every_method_needs_initiate(manager: SessionManager) -> None:
    session = request(manager)
    for call in (
        lambda: session.get("a"),
        lambda: session.put("a", 1),
        lambda: session.all(),
        lambda: session.has("a"),
        lambda: session["a"],
        lambda: session.flash("a", 1),
    ):
        with pytest.raises(SessionNotInitiatedError, match="initiate"):
            call()


def test_uninitiated_session_commits_nothing(manager: SessionManager) -> None:
    session = request(manager)
    session.commit()
    assert session._context.outgoing == {}


def test_readonly_refuses_changes_and_commits_nothing(manager: SessionManager) -> None:
    first = request(manager)
    first.initiate()
    first.put("a", 1)
    first.flash("notice", "hi")
    first.commit()
    cookies = next_cookies(first)

    ro = request(manager, cookies)
    ro.initiate(readonly=True)
    assert ro.readonly
    assert ro.get("a") == 1
    assert ro.flash_messages.get("notice") == "hi"
    for call in (
        lambda: ro.put("b", 2),
        lambda: ro.forget("a"),
        lambda: ro.clear(),
        lambda: ro.regenerate(),
        lambda: ro.flash("x", 1),
        lambda: ro.reflash(),
        lambda: ro.increment("n"),
    ):
        with pytest.raises(ReadOnlySessionError, match="read-only"):
            call()
    ro.commit()
    assert ro._context.outgoing == {}
    # The flash message was read, not consumed.
    again = request(manager, cookies)
    again.initiate()
    assert again.flash_messages.all() == {"notice": "hi"}


async def _async_round_trip(manager: SessionManager) -> dict[str, Any]:
    first = request(manager)
    await first.ainitiate()
    first.put("when", datetime(2026, 1, 1, tzinfo=UTC))
    await first.acommit()
    second = request(manager, next_cookies(first))
    await second.ainitiate()
    return second.all()


def test_async_twins(manager: SessionManager) -> None:
    import anyio

    values = anyio.run(_async_round_trip, manager)
    assert values == {"when": datetime(2026, 1, 1, tzinfo=UTC)}


@pytest.mark.parametrize(
    ("value", "where", "kind"),
    [
        ({1, 2}, "k", "set"),
        ((1, 2), "k", "tuple"),
        ({"a": [object()]}, "k.a[0]", "object"),
        ({1: "x"}, "k", "int"),
        (Decimal, "k", "type"),
    ],
)
def test_unsupported_values_are_refused_naming_key_and_type(
    manager: SessionManager, value: Any, where: str, kind: str
) -> None:
    session = request(manager)
    session.initiate()
    with pytest.raises(UnsupportedValueError) as info:
        session.put("k", value)
    assert repr(where) in str(info.value)
    assert kind in str(info.value)
    with pytest.raises(UnsupportedValueError):
        session.flash("k", value)
    with pytest.raises(UnsupportedValueError):
        session["k"] = value
    assert session.all() == {}


def test_increment_refuses_non_numbers(manager: SessionManager) -> None:
    session = request(manager)
    session.initiate()
    session.put("s", "3")
    session.put("b", False)
    with pytest.raises(NotANumberError, match="'s'"):
        session.increment("s")
    with pytest.raises(NotANumberError, match="'b'"):
        session.decrement("b")
    with pytest.raises(NotANumberError, match="amount"):
        session.increment("n", True)  # type: ignore[arg-type]
    assert session.increment("d", Decimal("1.5")) == Decimal("1.5")
    assert session.increment("f", 0.5) == 0.5


def test_get_has_and_defaults(manager: SessionManager) -> None:
    session = request(manager)
    session.initiate()
    session.put("user.name", "ada")
    session.put("none", None)
    assert session.get("user") == {"name": "ada"}
    assert session.get("user.name") == "ada"
    assert session.get("user.age", 36) == 36
    assert session.get("none", "default") == "default"
    assert session.has("user.name")
    assert not session.has("none")
    assert not session.has("user.name.first")
    assert "none" in session
    session.put("user.name.first", "Ada")  # a string is replaced by a dict on the path
    assert session.get("user.name") == {"first": "Ada"}


def test_change_tracking(manager: SessionManager) -> None:
    session = request(manager)
    session.initiate()
    assert not session.has_been_modified
    session.put("cart.items", 1)
    session["flag"] = True
    session.forget("missing")
    assert session.changed_keys == {"cart", "flag"}
    assert session.has_been_modified
    session.clear()
    assert session.cleared
    assert session.is_empty


def test_flash_all_needs_input_without_an_integration_form(manager: SessionManager) -> None:
    session = request(manager)
    session.initiate()
    with pytest.raises(TypeError, match=r"flash_all\(await request.form\(\)\)"):
        session.flash_all()


def test_flash_all_reads_form_from_integration_and_skips_uploads(manager: SessionManager) -> None:
    class MultiDict(dict[str, list[Any]]):
        def getlist(self, key: str) -> list[Any]:
            return self[key]

    form = MultiDict(title=["Hi"], tags=["a", "b"], upload=[object()])
    session = manager.session(RequestContext({}), form=lambda: form)
    session.initiate()
    session.flash_all()
    session.commit()
    nxt = request(manager, next_cookies(session))
    nxt.initiate()
    assert nxt.flash_messages.all() == {"title": "Hi", "tags": ["a", "b"]}


def test_flash_messages_api(manager: SessionManager) -> None:
    session = request(manager)
    session.initiate()
    session.flash({"errors": {"title": "required"}, "notice": "x"})
    session.commit()
    nxt = request(manager, next_cookies(session))
    nxt.initiate()
    fm = nxt.flash_messages
    assert fm.get("errors.title") == "required"
    assert fm.get("errors.body", "") == ""
    assert fm.has("errors.title")
    assert not fm.has("errors.body")
    assert fm.all() == {"errors": {"title": "required"}, "notice": "x"}
    assert not fm.is_empty
    assert "__flash__" not in nxt.all()
