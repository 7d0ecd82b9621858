"""Tags and lifetimes on the session: tag/untag, set_expiry, absolute_age, created_at."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sessions import SessionConfig, SessionManager, TaggingNotSupportedError
from sessions.driver import RequestContext
from sessions.record import AGE_KEY, CREATED_KEY, TAG_KEY
from sessions.session import Session

SECRET = "lifetime-tests-secret-0123456789abcdefghij"


class Browser:
    def __init__(self, **config: Any) -> None:
        self.manager = SessionManager(
            SessionConfig(secret=SECRET, driver=config.pop("driver", "memory"), **config),
            autoload_plugins=False,
        )
        self.jar: dict[str, str] = {}
        self.max_age: int | None = None

    def request(self, action: Any = None) -> Session:
        context = RequestContext(dict(self.jar))
        session = self.manager.session(context)
        session.initiate()
        if action is not None:
            action(session)
        session.commit()
        for name, cookie in context.outgoing.items():
            self.jar[name] = cookie.value
            if name == self.manager.config.cookie_name:
                self.max_age = cookie.max_age
        return session

    def stored(self, session: Session) -> dict[str, Any]:
        return dict(self.manager.driver.read(session.session_id) or {})


def test_tag_is_stored_kept_across_regenerate_and_removed_by_untag_and_clear() -> None:
    browser = Browser()
    first = browser.request(lambda s: (s.put("user", 1), s.tag("user-1")))
    assert browser.stored(first)[TAG_KEY] == "user-1"
    assert browser.request().current_tag == "user-1"
    moved = browser.request(lambda s: s.regenerate())
    assert browser.stored(moved)[TAG_KEY] == "user-1"
    untagged = browser.request(lambda s: s.untag())
    assert TAG_KEY not in browser.stored(untagged)
    browser.request(lambda s: s.tag("user-1"))
    cleared = browser.request(lambda s: (s.clear(), s.put("notice", "bye")))
    assert cleared.current_tag is None
    assert TAG_KEY not in browser.stored(cleared)


def test_reserved_keys_never_show_in_the_values() -> None:
    browser = Browser()
    browser.request(lambda s: (s.put("a", 1), s.tag("t"), s.set_expiry("1d")))
    again = browser.request()
    assert again.all() == {"a": 1}
    assert list(again) == ["a"]


def test_core_keys_alone_never_keep_a_session_stored() -> None:
    browser = Browser()
    session = browser.request(lambda s: s.tag("t"))
    assert browser.manager.driver.read(session.session_id) is None


@pytest.mark.parametrize("bad", ["", 42, None, "x" * 257])
def test_tag_must_be_a_short_non_empty_string(bad: Any) -> None:
    with pytest.raises(ValueError, match="non-empty str"):
        Browser().request(lambda s: s.tag(bad))


def test_tagging_on_a_driver_that_cannot_names_the_drivers_that_can() -> None:
    browser = Browser(driver="cookie")
    assert browser.manager.sessions.supports_tagging is False
    with pytest.raises(TaggingNotSupportedError, match=r"'cookie'.*memory, file, redis, sql"):
        browser.request(lambda s: s.tag("user-1"))
    with pytest.raises(TaggingNotSupportedError):
        browser.manager.sessions.tagged("user-1")


def test_set_expiry_sets_the_cookie_max_age_and_the_store_ttl() -> None:
    browser = Browser(age="2h")
    session = browser.request(lambda s: (s.put("a", 1), s.set_expiry("30d")))
    assert browser.max_age == 30 * 86400
    assert session.expiry == 30 * 86400
    expires = browser.manager.driver._data[session.session_id][0]
    assert expires - time.monotonic() == pytest.approx(30 * 86400, abs=5)
    # An unchanged request rewrites it (touch would restart the default age).
    browser.manager.driver._data[session.session_id] = (
        time.monotonic() + 10,
        *browser.manager.driver._data[session.session_id][1:],
    )
    browser.request()
    expires = browser.manager.driver._data[session.session_id][0]
    assert expires - time.monotonic() == pytest.approx(30 * 86400, abs=5)
    assert browser.max_age == 30 * 86400


def test_set_expiry_zero_is_a_browser_session_and_none_goes_back() -> None:
    browser = Browser(age="2h")
    browser.request(lambda s: (s.put("a", 1), s.set_expiry(0)))
    assert browser.max_age is None
    assert browser.request().expiry == 0
    browser.request(lambda s: s.set_expiry(None))
    assert browser.max_age == 7200
    assert browser.request().expiry is None


def test_set_expiry_refuses_a_bad_age() -> None:
    with pytest.raises(ValueError, match=r"set_expiry\(age\)"):
        Browser().request(lambda s: s.set_expiry("soon"))


def test_absolute_age_ends_an_active_session() -> None:
    browser = Browser(age="1h", absolute_age="1d")
    session = browser.request(lambda s: s.put("user", 1))
    record = browser.stored(session)
    assert record[CREATED_KEY] == pytest.approx(time.time(), abs=5)
    # The same session, created two days ago and used a minute ago.
    record[CREATED_KEY] = int(time.time()) - 2 * 86400
    browser.manager.driver.write(session.session_id, record)
    again = browser.request()
    assert again.fresh
    assert again.all() == {}
    assert browser.manager.driver.read(session.session_id) is None


def test_absolute_age_must_not_be_shorter_than_age() -> None:
    with pytest.raises(ValueError, match="absolute_age"):
        SessionConfig(secret=SECRET, age="2h", absolute_age="1h")
    assert (
        SessionConfig.from_env(
            {"SESSION_SECRET": SECRET, "SESSION_ABSOLUTE_AGE": "30d"}
        ).absolute_age_seconds
        == 30 * 86400
    )


def test_created_at_is_kept_and_a_record_without_it_starts_now() -> None:
    browser = Browser()
    first = browser.request(lambda s: s.put("a", 1))
    created = first.created_at
    assert datetime.now(UTC) - created < timedelta(seconds=5)
    browser.manager.driver.write(first.session_id, {"a": 1})  # as the previous release stored it
    later = browser.request(lambda s: s.put("b", 2))
    assert later.created_at >= created
    assert CREATED_KEY in browser.stored(later)
    assert AGE_KEY not in browser.stored(later)
