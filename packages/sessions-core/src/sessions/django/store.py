"""``SessionStore``: Django's session engine API over any sessions driver.

What is stored, per session:

* under the storage key ``storage_key(session_key)`` (a SHA-256 digest), never
  the session key itself, so a dump of the store hands out no live session;
* the session dict as Django's ``SESSION_SERIALIZER`` round-trips it (the
  default JSONSerializer turns tuples into lists and refuses a datetime, as it
  does with Django's own engines), plus ``"__expires_at__"``: the Unix time
  the session expires, worked out at save time from ``SESSION_COOKIE_AGE`` or
  the session's own ``set_expiry()``, as Django's database engine stores
  ``expire_date``. ``load()`` treats a record past it as missing;
* ``"__age__"`` (core's :data:`~sessions.record.AGE_KEY`) for a session with its
  own ``set_expiry()``: the seconds the store should keep it, which drivers
  that honour :func:`~sessions.record.store_age` use as the record's TTL.

Each operation is the driver's sync contract (``read``/``write``/``destroy``),
or, for a driver with the versioned capability, ``read_versioned`` and a
conditional ``write_versioned``: create-only for ``save(must_create=True)``,
replace-only-if-present for ``save()``, so neither ever resurrects a session
or overwrites a concurrent creation.
"""

from __future__ import annotations

import time
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError
from django.core.signing import JSONSerializer

from ..codec import check_value
from ..keys import is_storage_key, new_token, storage_key
from ..manager import SessionManager
from ..record import AGE_KEY
from .config import get_manager
from .serializers import TaggedSerializer

__all__ = ["EXPIRES_KEY", "SessionStore"]

#: The stored record's expiry (Unix time); never part of the session Django sees.
EXPIRES_KEY = "__expires_at__"
#: How often ``save()`` re-reads a record that a concurrent request changed
#: between the read and the conditional write, before it gives up.
_WRITE_ATTEMPTS = 8
_CREATE_ATTEMPTS = 16


class SessionStore(SessionBase):
    """A Django session stored through the driver ``SESSIONS`` selects.

    Session keys are our tokens (``secrets.token_urlsafe(32)``, 43 characters);
    a cookie holding anything else, such as a key from Django's own engines,
    is treated as no session, so a new one starts.
    """

    # Django's property (validated on assignment); annotated for mypy only.
    _session_key: str | None

    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        # The version of the record load() read (versioned drivers only).
        self._version: int | None = None
        # create() is saving under a key it just drew (see save()).
        self._drawn = False

    @classmethod
    def get_manager(cls) -> SessionManager:
        """The manager sessions are stored through: the process's, built from the
        settings. A subclass may return another (two engines in one process)."""
        return get_manager()

    # -- keys -------------------------------------------------------------------------

    def _validate_session_key(self, key: Any) -> bool:
        # A token has the shape of a storage key: 43 base64url characters.
        return is_storage_key(key)

    def _get_new_session_key(self) -> str:
        # 256 random bits: a collision is never expected, and save(must_create=True)
        # refuses one anyway, so no exists() round trip first.
        return new_token()

    async def _aget_new_session_key(self) -> str:
        return new_token()

    # -- records ----------------------------------------------------------------------

    def _fetch(self, session_key: str) -> tuple[dict[str, Any] | None, int | None]:
        """``(session dict, version)`` of a live record; ``(None, None)`` when there
        is none: missing, expired, unreadable, or past its own expiry."""
        manager = self.get_manager()
        driver = manager.driver
        flavours = manager.flavours
        sid = storage_key(session_key)
        # Django never extends a session on reading it, only on saving it: where a
        # driver's reads can leave the expiry alone (touch=False), they do.
        options = {"touch": False} if flavours.read_touch_flag else {}
        version: int | None = None
        if flavours.versioned:
            record = driver.read_versioned(sid, **options)
            if record is None:
                return None, None
            values, version = record.values, record.version
        else:
            values = driver.read(sid, **options)
        if type(values) is not dict:
            return None, None
        expires = values.pop(EXPIRES_KEY, None)
        if isinstance(expires, bool) or not isinstance(expires, int | float):
            return None, None  # not a record this engine wrote
        if expires <= time.time():
            return None, None
        values.pop(AGE_KEY, None)
        return values, version

    def _record(self, data: dict[str, Any]) -> dict[str, Any]:
        """What is stored for ``data``: the serializer's round trip, plus the expiry."""
        serializer = self.serializer
        if serializer is TaggedSerializer:
            for key, value in data.items():
                check_value(key, value)
            values = dict(data)
        else:
            values = serializer().loads(serializer().dumps(data))
            if type(values) is not dict:
                raise TypeError(
                    f"SESSION_SERIALIZER {serializer.__module__}.{serializer.__qualname__} "
                    f"turned the session into a {type(values).__name__}; it must give a dict"
                )
            if serializer is not JSONSerializer:
                # A custom serializer's output must still be storable by the driver.
                for key, value in values.items():
                    check_value(key, value)
        expiry = data.get("_session_expiry")
        age = self.get_expiry_age(expiry=expiry)
        values[EXPIRES_KEY] = round(time.time() + age, 3)
        if expiry:  # a set_expiry() of its own: the store keeps it as long (or less)
            values[AGE_KEY] = max(int(age), 1)
        return values

    # -- Django's engine API ------------------------------------------------------------

    def load(self) -> dict[str, Any]:
        """The stored session; ``{}`` (and no session key) when there is none."""
        key = self.session_key
        values = None if key is None else self._fetch(key)
        if values is None or values[0] is None:
            self._session_key = None
            self._version = None
            return {}
        self._version = values[1]
        return values[0]

    def exists(self, session_key: str | None) -> bool:
        """True when a live session is stored under ``session_key``."""
        if not self._validate_session_key(session_key):
            return False
        assert session_key is not None
        return self._fetch(session_key)[0] is not None

    def create(self) -> None:
        """Store the current data under a new session key (``{}`` for a new session)."""
        for _ in range(_CREATE_ATTEMPTS):
            self._session_key = self._get_new_session_key()
            self._drawn = True
            try:
                self.save(must_create=True)
            except CreateError:
                continue
            finally:
                self._drawn = False
            self.modified = True
            return
        raise RuntimeError(
            f"could not create a session: {_CREATE_ATTEMPTS} new random keys all existed "
            "in the store, which only a broken driver (or random source) explains"
        )

    def save(self, must_create: bool = False) -> None:
        """Store the session.

        ``must_create=True`` stores a new record or raises ``CreateError`` when
        one exists under the key. Otherwise the existing record is replaced, and
        ``UpdateError`` is raised when there is none (it was deleted, by a
        logout in a concurrent request for example): a session is never
        brought back.
        """
        if self.session_key is None:
            return self.create()
        data = self._get_session(no_load=must_create)
        record = self._record(data)
        manager = self.get_manager()
        driver = manager.driver
        sid = storage_key(self.session_key)
        if manager.flavours.versioned:
            self._save_versioned(driver, sid, record, must_create)
        elif must_create:
            # A key create() just drew from 256 random bits was never stored: no
            # read to prove it. A key given by the caller is checked.
            if not self._drawn and self._fetch(self.session_key)[0] is not None:
                raise CreateError
            driver.write(sid, record)
        else:
            if self._fetch(self.session_key)[0] is None:
                raise UpdateError
            driver.write(sid, record)
        return None

    def _save_versioned(
        self, driver: Any, sid: str, record: dict[str, Any], must_create: bool
    ) -> None:
        if must_create:
            if not driver.write_versioned(sid, record, None):
                raise CreateError
            self._version = None  # the new record's version is only known by reading it
            return
        version = self._version
        assert self.session_key is not None
        for _ in range(_WRITE_ATTEMPTS):
            if version is None:
                found, version = self._fetch(self.session_key)
                if found is None:
                    raise UpdateError
                if version is None:
                    raise RuntimeError("the driver's read_versioned gave no version")
            if driver.write_versioned(sid, record, version):
                self._version = None
                return
            # Deleted, or changed by a concurrent request since it was read: read
            # again. A deleted one raises UpdateError; a changed one is replaced, as
            # Django's own engines do (the last save wins).
            version = None
        raise UpdateError

    def delete(self, session_key: str | None = None) -> None:
        """Delete the session under ``session_key`` (default: this one's)."""
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        if not self._validate_session_key(session_key):
            return
        self.get_manager().driver.destroy(storage_key(session_key))
        if session_key == self.session_key:
            self._version = None

    @classmethod
    def clear_expired(cls) -> None:
        """Remove expired sessions with the driver's ``gc``; nothing for stores that
        expire sessions by themselves (Redis, memcached)."""
        manager = cls.get_manager()
        if callable(getattr(manager.driver, "gc", None)):
            manager.gc()

    # -- the async twins: the same sync operations, in a worker thread ----------------

    async def aload(self) -> dict[str, Any]:
        """Async :meth:`load`."""
        result: dict[str, Any] = await sync_to_async(self.load, thread_sensitive=False)()
        return result

    async def aexists(self, session_key: str | None) -> bool:
        """Async :meth:`exists`."""
        result: bool = await sync_to_async(self.exists, thread_sensitive=False)(session_key)
        return result

    async def acreate(self) -> None:
        """Async :meth:`create`."""
        await sync_to_async(self.create, thread_sensitive=False)()

    async def asave(self, must_create: bool = False) -> None:
        """Async :meth:`save`."""
        await sync_to_async(self.save, thread_sensitive=False)(must_create)

    async def adelete(self, session_key: str | None = None) -> None:
        """Async :meth:`delete`."""
        await sync_to_async(self.delete, thread_sensitive=False)(session_key)

    @classmethod
    async def aclear_expired(cls) -> None:
        """Async :meth:`clear_expired`."""
        await sync_to_async(cls.clear_expired, thread_sensitive=False)()
