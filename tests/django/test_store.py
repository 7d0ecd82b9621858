"""Django's session engine contract, on every backend, through ``SessionStore`` itself.

Each test states a behaviour Django documents for ``SessionBase`` and its
built-in engines (django/contrib/sessions/backends/base.py, db.py, cache.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import pytest
from django.contrib.sessions.backends.base import CreateError, UpdateError
from sessions.keys import is_storage_key, storage_key

from .conftest import BACKENDS, Backend, make_backend


@pytest.fixture(params=[*BACKENDS, "memory", "dbm"])
def backend(request: pytest.FixtureRequest, tmp_path: Any) -> Backend:
    """Every first-party backend, core's versioned memory driver, and the example
    third-party driver (sessions-dbm)."""
    return make_backend(request.param, request, tmp_path)


def store(key: str | None = None) -> Any:
    from sessions.django import SessionStore

    return SessionStore(key)


def raw(key: str) -> dict[str, Any] | None:
    """The record stored for session key ``key``, read by the driver directly."""
    from sessions.django.config import get_manager

    values: dict[str, Any] | None = get_manager().driver.read(storage_key(key))
    return values


def saved(**values: Any) -> Any:
    s = store()
    for k, v in values.items():
        s[k] = v
    s.save()
    return s


def test_a_new_session_is_stored_under_the_digest_of_its_key(use_backend: Backend) -> None:
    s = saved(user="ada")
    key = s.session_key
    assert is_storage_key(key)  # our token format, not Django's 32 lowercase characters
    assert store().exists(key)
    assert store(key).load() == {"user": "ada"}
    keys = use_backend.keys()
    if keys is not None:
        assert storage_key(key) in keys
        assert key not in keys
    assert raw(key) is not None  # under storage_key(key)...
    from sessions.django.config import get_manager

    assert get_manager().driver.read(key) is None  # ...and never under the key itself


def test_create_makes_an_empty_record_with_a_fresh_key(use_backend: Backend) -> None:
    s = store()
    s.create()
    assert s.modified
    assert s.session_key is not None
    assert store().exists(s.session_key)
    assert store(s.session_key).load() == {}
    other = store()
    other.create()
    assert other.session_key != s.session_key


def test_save_must_create_refuses_an_existing_key(use_backend: Backend) -> None:
    s = saved(n=1)
    clash = store(s.session_key)
    clash["n"] = 2
    with pytest.raises(CreateError):
        clash.save(must_create=True)
    assert store(s.session_key).load() == {"n": 1}


def test_save_only_updates_and_never_brings_a_deleted_session_back(
    use_backend: Backend,
) -> None:
    s = saved(n=1)
    key = s.session_key
    concurrent = store(key)
    assert concurrent["n"] == 1  # loaded before the logout
    store().delete(key)  # a logout in another request
    concurrent["n"] = 2
    with pytest.raises(UpdateError):
        concurrent.save()
    assert not store().exists(key)
    assert raw(key) is None


def test_save_replaces_a_session_changed_concurrently(use_backend: Backend) -> None:
    s = saved(n=1)
    first, second = store(s.session_key), store(s.session_key)
    assert first["n"] == second["n"] == 1
    first["n"] = 2
    first.save()
    second["n"] = 3
    second.save()  # the last save wins, as with Django's own engines
    assert store(s.session_key).load() == {"n": 3}


def test_load_of_an_unknown_key_is_empty_clears_the_key_and_creates_nothing(
    use_backend: Backend,
) -> None:
    before = use_backend.keys()
    for key in ("A" * 43, "0123456789abcdefghijklmnopqrstuv", "bad key;", ""):
        s = store(key)
        assert s.load() == {}
        assert s.session_key is None
    assert use_backend.keys() == before


def test_load_of_a_session_past_its_own_expiry_is_empty(use_backend: Backend) -> None:
    s = store()
    s["n"] = 1
    s.set_expiry(-1)  # expired a second ago
    s.save()
    key = s.session_key
    loaded = store(key)
    assert loaded.load() == {}
    assert loaded.session_key is None
    assert not store().exists(key)
    # An absolute expiry in the past too.
    s = store()
    s["n"] = 1
    s.set_expiry(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5))
    s.save()
    assert store(s.session_key).load() == {}


def test_load_of_a_record_this_engine_did_not_write_is_empty(use_backend: Backend) -> None:
    from sessions.django.config import get_manager
    from sessions.keys import new_token

    key = new_token()
    get_manager().driver.write(storage_key(key), {"n": 1})  # no expiry: not ours
    s = store(key)
    assert s.load() == {}
    assert s.session_key is None


def test_delete_and_flush(use_backend: Backend) -> None:
    s = saved(n=1)
    key = s.session_key
    store().delete(key)
    assert not store().exists(key)
    store().delete(key)  # a missing session is not an error
    s = saved(n=1)
    key = s.session_key
    s.flush()
    assert s.session_key is None
    assert not store().exists(key)
    assert s.load() == {}


def test_cycle_key_keeps_the_data_and_the_old_key_stops_existing(use_backend: Backend) -> None:
    s = saved(n=1)
    old = s.session_key
    s.cycle_key()
    new = s.session_key
    assert new != old
    assert not store().exists(old)
    assert store(new).load() == {"n": 1}
    s["n"] = 2
    s.save()
    assert store(new).load() == {"n": 2}
    assert raw(old) is None


def test_expiry_is_stored_and_honoured(use_backend: Backend) -> None:
    s = store()
    s["n"] = 1
    s.set_expiry(600)
    assert s.get_expiry_age() == 600
    assert not s.get_expire_at_browser_close()
    s.save()
    loaded = store(s.session_key)
    assert loaded.get_expiry_age() == 600
    record = raw(s.session_key)
    assert record is not None
    assert abs(record["__expires_at__"] - (time.time() + 600)) < 5
    s.set_expiry(0)  # until the browser closes; the store keeps it SESSION_COOKIE_AGE
    s.save()
    loaded = store(s.session_key)
    assert loaded.get_expire_at_browser_close()
    record = raw(s.session_key)
    assert record is not None
    from django.conf import settings

    assert abs(record["__expires_at__"] - (time.time() + settings.SESSION_COOKIE_AGE)) < 5
    when = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    s.set_expiry(when)
    s.save()
    assert store(s.session_key).get_expiry_date() == when


def test_values_follow_the_json_serializer(use_backend: Backend) -> None:
    s = saved(t=(1, 2), nested={"k": [1, "x", None, True, 1.5]})
    assert store(s.session_key).load() == {"t": [1, 2], "nested": {"k": [1, "x", None, True, 1.5]}}
    s["when"] = dt.datetime.now(dt.UTC)
    with pytest.raises(TypeError, match="not JSON serializable"):
        s.save()  # as Django's own engines refuse it with JSONSerializer


def test_clear_expired_removes_what_the_store_has_expired(use_backend: Backend) -> None:
    s = saved(n=1)
    live = saved(n=2)
    store().clear_expired()  # never an error, whatever the store
    if use_backend.age_out is None:
        assert store().exists(live.session_key)
        return
    use_backend.age_out(storage_key(s.session_key))
    store().clear_expired()
    keys = use_backend.keys()
    assert keys is not None
    assert storage_key(s.session_key) not in keys
    assert storage_key(live.session_key) in keys


def test_async_twins(use_backend: Backend) -> None:
    async def scenario() -> None:
        s = store()
        await s.aset("n", 1)
        await s.asave()
        key = s.session_key
        assert await store().aexists(key)
        loaded = store(key)
        assert await loaded.aload() == {"n": 1}
        assert await loaded.aget("n") == 1
        with pytest.raises(CreateError):
            await store(key).asave(must_create=True)
        await s.acycle_key()
        assert s.session_key != key
        assert not await store().aexists(key)
        assert await store(s.session_key).aload() == {"n": 1}
        gone = store(s.session_key)
        assert await gone.aget("n") == 1  # loaded before the logout
        await store().adelete(s.session_key)
        await gone.aset("n", 2)
        with pytest.raises(UpdateError):
            await gone.asave()
        assert not await store().aexists(s.session_key)
        fresh = store()
        await fresh.acreate()
        assert await store().aexists(fresh.session_key)
        await fresh.aset_expiry(60)
        assert await fresh.aget_expiry_age() == 60
        await fresh.asave()
        await fresh.aflush()
        assert fresh.session_key is None
        await store().aclear_expired()
        unknown = store("B" * 43)
        assert await unknown.aload() == {}
        assert unknown.session_key is None

    asyncio.run(scenario())


def test_a_versioned_driver_is_written_with_compare_and_set(memory_sessions: None) -> None:
    from sessions.django.config import get_manager

    manager = get_manager()
    assert manager.flavours.versioned  # core's memory driver has the capability
    s = saved(n=1)
    key = s.session_key
    before = manager.driver.read_versioned(storage_key(key)).version
    loaded = store(key)
    loaded["n"] = 2
    loaded.save()
    after = manager.driver.read_versioned(storage_key(key))
    assert after.values["n"] == 2
    assert after.version != before
    # A record replaced behind the store's back (another request) is replaced again,
    # after a re-read: the last save wins, as with Django's engines.
    loaded = store(key)
    loaded["n"] = 3
    manager.driver.write(storage_key(key), {**manager.driver.read(storage_key(key)), "n": 9})
    loaded.save()
    assert store(key).load() == {"n": 3}
    # A record deleted in between is not brought back.
    loaded["n"] = 4
    manager.driver.destroy(storage_key(key))
    with pytest.raises(UpdateError):
        loaded.save()
    assert manager.driver.read(storage_key(key)) is None


def test_the_store_keeps_a_session_as_long_as_its_own_expiry(memory_sessions: None) -> None:
    """With a driver that honours per-session ages (core's memory driver), the
    record's time to live in the store follows set_expiry(), not SESSION_COOKIE_AGE."""
    from django.conf import settings
    from sessions.django.config import get_manager

    sessions = get_manager().sessions

    def ttl(key: str) -> float:
        info = sessions.get(storage_key(key))
        assert info is not None
        return info.expires_at.timestamp() - time.time()

    s = saved(n=1)
    assert abs(ttl(s.session_key) - settings.SESSION_COOKIE_AGE) < 5
    s.set_expiry(600)
    s.save()
    assert abs(ttl(s.session_key) - 600) < 5
    s.set_expiry(dt.timedelta(days=30))  # longer than SESSION_COOKIE_AGE
    s.save()
    assert abs(ttl(s.session_key) - 30 * 86400) < 5
    s.set_expiry(None)
    s.save()
    assert abs(ttl(s.session_key) - settings.SESSION_COOKIE_AGE) < 5
