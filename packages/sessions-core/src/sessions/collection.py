"""``manager.sessions``: a user's sessions, listed and ended from anywhere.

Works inside and outside a request (a password-change handler, an admin
page, the ``sessions`` command line), with sync and async twins. Finding
sessions by tag needs a driver with the tagging capability; destroying one
session by its id works with every driver.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .driver import StoredSession, acall
from .record import RESERVED_KEYS, created_of, store_age, tag_of

if TYPE_CHECKING:
    from .manager import SessionManager

__all__ = ["SessionCollection", "SessionInfo"]


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One stored session, as ``manager.sessions`` lists it."""

    #: The storage key (a digest of the cookie's token: safe to show and log).
    session_id: str
    #: The session's values (read-only; core's own keys left out).
    values: Mapping[str, Any]
    #: The session's tag, or None.
    tag: str | None
    #: When the store will expire it unless it is used again (aware UTC).
    expires_at: datetime
    #: When it was created (aware UTC); None for sessions stored before this was kept.
    created_at: datetime | None
    #: When it was last written or refreshed (aware UTC), as fine as the touch interval.
    last_seen: datetime

    @classmethod
    def from_stored(cls, stored: StoredSession, default_age: int) -> SessionInfo:
        """Build one from what a driver reported."""
        values = stored.values
        created = created_of(values)
        expires = stored.expires_at
        return cls(
            session_id=stored.session_id,
            values=MappingProxyType({k: v for k, v in values.items() if k not in RESERVED_KEYS}),
            tag=tag_of(values),
            expires_at=datetime.fromtimestamp(expires, UTC),
            created_at=None if created is None else datetime.fromtimestamp(created, UTC),
            last_seen=datetime.fromtimestamp(expires - store_age(values, default_age), UTC),
        )


class SessionCollection:
    """The stored sessions of one manager's driver (``manager.sessions``)."""

    def __init__(self, manager: SessionManager) -> None:
        self._manager = manager

    @property
    def supports_tagging(self) -> bool:
        """True when the driver can find sessions by tag."""
        return self._manager.flavours.tagging

    def _infos(self, found: list[StoredSession]) -> list[SessionInfo]:
        age = self._manager.config.age_seconds
        infos = [SessionInfo.from_stored(stored, age) for stored in found]
        return sorted(infos, key=lambda info: info.last_seen, reverse=True)

    def _info(self, found: StoredSession | None) -> SessionInfo | None:
        if found is None:
            return None
        return SessionInfo.from_stored(found, self._manager.config.age_seconds)

    def _sync(self, op: str, *args: Any) -> Any:
        manager = self._manager
        manager.require_sync()
        return getattr(manager.driver, op)(*args)

    async def _async(self, op: str, *args: Any) -> Any:
        manager = self._manager
        return await acall(manager.flavours, manager.driver, op, *args)

    # -- sync --------------------------------------------------------------------------

    def tagged(self, tag: str) -> list[SessionInfo]:
        """The live sessions tagged ``tag``, most recently seen first."""
        self._manager.require_tagging()
        return self._infos(self._sync("tagged", tag))

    def get(self, session_id: str) -> SessionInfo | None:
        """One session by its storage key (without refreshing it), or None."""
        self._manager.require_tagging()
        return self._info(self._sync("peek", session_id))

    def destroy(self, session_id: str) -> None:
        """End one session by its storage key; a missing one is not an error."""
        self._sync("destroy", session_id)

    def destroy_tagged(self, tag: str, *, keep: str | None = None) -> int:
        """End every session tagged ``tag`` but ``keep`` ("sign out other devices").

        Returns how many were destroyed. ``keep`` is a storage key, typically
        the current request's ``session.session_id``.
        """
        self._manager.require_tagging()
        return int(self._sync("destroy_tagged", tag, keep))

    # -- async -------------------------------------------------------------------------

    async def atagged(self, tag: str) -> list[SessionInfo]:
        """Async :meth:`tagged`."""
        self._manager.require_tagging()
        return self._infos(await self._async("tagged", tag))

    async def aget(self, session_id: str) -> SessionInfo | None:
        """Async :meth:`get`."""
        self._manager.require_tagging()
        return self._info(await self._async("peek", session_id))

    async def adestroy(self, session_id: str) -> None:
        """Async :meth:`destroy`."""
        await self._async("destroy", session_id)

    async def adestroy_tagged(self, tag: str, *, keep: str | None = None) -> int:
        """Async :meth:`destroy_tagged`."""
        self._manager.require_tagging()
        return int(await self._async("destroy_tagged", tag, keep))
