"""Deeply nested values: refused with a clear error when put or flashed, and a
stored payload nested too deep reads as unreadable (a fresh session), never a
RecursionError."""

from __future__ import annotations

from typing import Any

import pytest
from sessions import DecodeError, SessionConfig, SessionManager, UnsupportedValueError
from sessions.codec import MAX_DEPTH, check_value, decode, encode
from sessions.driver import RequestContext

SECRET = "depth-tests-secret-0123456789-abcdefghij"


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


@pytest.fixture
def manager() -> SessionManager:
    return SessionManager(SessionConfig(secret=SECRET, driver="memory"), autoload_plugins=False)


def test_a_5000_deep_list_is_refused_by_put_and_flash(manager: SessionManager) -> None:
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    session = manager.session(RequestContext({}))
    session.initiate()
    for call in (
        lambda: session.put("deep", deep),
        lambda: session.flash("deep", deep),
        lambda: session.__setitem__("deep", deep),
    ):
        with pytest.raises(UnsupportedValueError, match=f"deeper than {MAX_DEPTH} levels"):
            call()
    assert session.is_empty


def test_the_limit_counts_dotted_key_levels() -> None:
    check_value("a", nested(MAX_DEPTH))
    with pytest.raises(UnsupportedValueError, match=r"'a\.b'"):
        check_value("a.b", nested(MAX_DEPTH))
    with pytest.raises(UnsupportedValueError):
        check_value("a", nested(MAX_DEPTH + 1))


def test_values_at_the_limit_round_trip(manager: SessionManager) -> None:
    session = manager.session(RequestContext({}))
    session.initiate()
    session.put("deep", nested(MAX_DEPTH))
    session.flash("deep", nested(MAX_DEPTH))
    session.commit()
    cookies = {n: c.value for n, c in session._context.outgoing.items()}
    again = manager.session(RequestContext(cookies))
    again.initiate()
    assert again.get("deep") == nested(MAX_DEPTH)
    assert again.flash_messages.get("deep") == nested(MAX_DEPTH)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 5, 900, 5000])
def test_an_over_deep_payload_does_not_decode(depth: int) -> None:
    payload = "[" * depth + "]" * depth
    with pytest.raises(DecodeError, match=r"nested deeper|not a session payload"):
        decode('{"a":' + payload + "}")


def test_an_over_deep_stored_session_reads_as_fresh(manager: SessionManager) -> None:
    session = manager.session(RequestContext({}))
    session.initiate()
    session.put("user", "ada")
    session.commit()
    cookies = {n: c.value for n, c in session._context.outgoing.items()}
    # What another writer (or a tampered store) left behind: encodable, too deep.
    manager.driver.write(session.session_id, {"user": "ada", "deep": nested(200)})
    assert len(encode({"deep": nested(200)})) > 0
    again = manager.session(RequestContext(cookies))
    again.initiate()
    assert again.fresh
    assert again.is_empty
