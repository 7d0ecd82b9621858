"""The ``memory`` driver: sessions in a dict of the manager's process.

For development, tests and single-process apps. Values are stored encoded, as
every other driver stores them, so what comes back is a copy with the codec's
types, never the live objects of an earlier request.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, ClassVar

from ..codec import decode, encode
from ..driver import Driver, DriverConfig, GcProgress, GcResult, Option, Record, StoredSession
from ..errors import ConfigError, DecodeError
from ..record import store_age, tag_of


class MemoryDriver(Driver):
    """Sessions in process memory, expiring ``age`` seconds after the last write or touch.

    Versioned (conflict-free commits): each entry carries a version, and a
    lock makes every compare-and-set atomic across threads. Tagging: an index
    of tag -> session ids, pruned when listed. ``max_sessions`` is a hard cap:
    past it, the least recently used session is evicted.
    """

    options: ClassVar[tuple[Option, ...]] = (
        Option(
            "max_sessions",
            int,
            100_000,
            "most sessions held; past it, the least recently used one is evicted",
        ),
    )
    durable: ClassVar[bool] = False

    blocking: ClassVar[bool] = False

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        self._age = config.age
        given = config.options.get("max_sessions")
        self._max = 100_000 if given is None else int(given)
        if self._max < 1:
            raise ConfigError(
                f"drivers.{config.name}.max_sessions", self._max, "a whole number of at least 1"
            )
        # key -> (expires at, payload, version), least recently used first.
        self._data: OrderedDict[str, tuple[float, bytes, int]] = OrderedDict()
        # tag -> keys written with it (pruned when listed).
        self._tags: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def describe(self) -> str:
        """Where sessions live."""
        return "process memory"

    def _live(self, session_id: str, now: float) -> tuple[float, bytes, int] | None:
        # Callers hold the lock.
        entry = self._data.get(session_id)
        if entry is None:
            return None
        if entry[0] <= now:
            del self._data[session_id]
            return None
        self._data.move_to_end(session_id)
        return entry

    def _store(
        self, session_id: str, values: dict[str, Any], payload: bytes, version: int, now: float
    ) -> None:
        # Callers hold the lock.
        data = self._data
        data[session_id] = (now + store_age(values, self._age), payload, version)
        data.move_to_end(session_id)
        tag = tag_of(values)
        if tag is not None:
            self._tags.setdefault(tag, set()).add(session_id)
        while len(data) > self._max:
            data.popitem(last=False)

    def _decoded(self, session_id: str, payload: bytes) -> dict[str, Any] | None:
        try:
            return decode(payload)
        except DecodeError:
            self.config.notify_decode_failed("store", f"undecodable entry for {session_id}")
            return None

    # The operations never block for long, so the async flavour calls them directly.
    def read(self, session_id: str) -> dict[str, Any] | None:
        """Values of a live session, or None."""
        record = self.read_versioned(session_id)
        return None if record is None else record.values

    def read_versioned(self, session_id: str) -> Record | None:
        """Values and version of a live session, or None."""
        with self._lock:
            entry = self._live(session_id, time.monotonic())
        if entry is None:
            return None
        values = self._decoded(session_id, entry[1])
        return None if values is None else Record(values, entry[2])

    def write(self, session_id: str, values: dict[str, Any]) -> None:
        """Store ``values`` for ``age`` seconds."""
        payload = encode(values)
        with self._lock:
            now = time.monotonic()
            entry = self._live(session_id, now)
            self._store(session_id, values, payload, 1 if entry is None else entry[2] + 1, now)

    def write_versioned(self, session_id: str, values: dict[str, Any], version: int | None) -> bool:
        """Compare-and-set: store (or, with ``{}``, remove) only if the version still matches."""
        payload = encode(values) if values else b""
        with self._lock:
            now = time.monotonic()
            entry = self._live(session_id, now)
            if (entry is None) != (version is None) or (entry is not None and entry[2] != version):
                return False
            if not values:
                self._data.pop(session_id, None)
            else:
                self._store(session_id, values, payload, 1 if entry is None else entry[2] + 1, now)
            return True

    def destroy(self, session_id: str) -> None:
        """Forget the session."""
        with self._lock:
            self._data.pop(session_id, None)

    def touch(self, session_id: str) -> None:
        """Restart the session's expiry (an expired session stays expired)."""
        with self._lock:
            now = time.monotonic()
            entry = self._live(session_id, now)
            if entry is not None:
                self._data[session_id] = (now + self._age, entry[1], entry[2])

    async def aread(self, session_id: str) -> dict[str, Any] | None:
        """Async :meth:`read`."""
        return self.read(session_id)

    async def aread_versioned(self, session_id: str) -> Record | None:
        """Async :meth:`read_versioned`."""
        return self.read_versioned(session_id)

    async def awrite(self, session_id: str, values: dict[str, Any]) -> None:
        """Async :meth:`write`."""
        self.write(session_id, values)

    async def awrite_versioned(
        self, session_id: str, values: dict[str, Any], version: int | None
    ) -> bool:
        """Async :meth:`write_versioned`."""
        return self.write_versioned(session_id, values, version)

    async def adestroy(self, session_id: str) -> None:
        """Async :meth:`destroy`."""
        self.destroy(session_id)

    async def atouch(self, session_id: str) -> None:
        """Async :meth:`touch`."""
        self.touch(session_id)

    # -- tagging ------------------------------------------------------------------------

    def _stored(self, session_id: str, now: float) -> StoredSession | None:
        # Callers hold the lock; expiry on time.time()'s clock, as the contract says.
        entry = self._data.get(session_id)
        if entry is None or entry[0] <= now:
            return None
        values = self._decoded(session_id, entry[1])
        if values is None:
            return None
        return StoredSession(session_id, values, time.time() + entry[0] - now)

    def tagged(self, tag: str) -> list[StoredSession]:
        """Live sessions whose current record has ``tag``; stale index entries are pruned."""
        found: list[StoredSession] = []
        with self._lock:
            now = time.monotonic()
            members = self._tags.get(tag, set())
            for session_id in list(members):
                stored = self._stored(session_id, now)
                if stored is None or tag_of(stored.values) != tag:
                    members.discard(session_id)
                else:
                    found.append(stored)
            if not members:
                self._tags.pop(tag, None)
        return found

    def peek(self, session_id: str) -> StoredSession | None:
        """The session with its expiry, without refreshing it."""
        with self._lock:
            return self._stored(session_id, time.monotonic())

    def destroy_tagged(self, tag: str, keep: str | None = None) -> int:
        """Destroy every live session tagged ``tag`` but ``keep``."""
        removed = 0
        for stored in self.tagged(tag):
            if stored.session_id != keep:
                with self._lock:
                    if self._data.pop(stored.session_id, None) is not None:
                        removed += 1
        return removed

    async def atagged(self, tag: str) -> list[StoredSession]:
        """Async :meth:`tagged`."""
        return self.tagged(tag)

    async def apeek(self, session_id: str) -> StoredSession | None:
        """Async :meth:`peek`."""
        return self.peek(session_id)

    async def adestroy_tagged(self, tag: str, keep: str | None = None) -> int:
        """Async :meth:`destroy_tagged`."""
        return self.destroy_tagged(tag, keep)

    def gc(self, progress: GcProgress | None = None) -> GcResult:
        """Remove expired sessions."""
        started = time.monotonic()
        with self._lock:
            entries = list(self._data.items())
            expired = [key for key, (expires, _, _) in entries if expires <= started]
            freed = 0
            for key in expired:
                entry = self._data.pop(key, None)
                if entry is not None:
                    freed += len(entry[1])
        if progress is not None:
            progress(len(entries), len(entries))
        return GcResult(len(entries), len(expired), freed, time.monotonic() - started)

    def store_raw(self, session_id: str, payload: bytes) -> None:
        """Put raw bytes under a key (for the conformance kit's corruption test)."""
        with self._lock:
            self._store(session_id, {}, payload, 1, time.monotonic())
