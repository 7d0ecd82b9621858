"""The ``memory`` driver: sessions in a dict of the manager's process.

For development, tests and single-process apps. Values are stored encoded, as
every other driver stores them, so what comes back is a copy with the codec's
types, never the live objects of an earlier request.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from ..codec import decode, encode
from ..driver import Driver, DriverConfig, GcProgress, GcResult, Option
from ..errors import DecodeError


class MemoryDriver(Driver):
    """Sessions in process memory, expiring ``age`` seconds after the last write or touch."""

    options: ClassVar[tuple[Option, ...]] = (
        Option(
            "max_sessions", int, 100_000, "evict expired sessions when more than this many are held"
        ),
    )
    durable: ClassVar[bool] = False

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        self._age = config.age
        self._max = int(config.options.get("max_sessions") or 100_000)
        self._data: dict[str, tuple[float, bytes]] = {}

    def describe(self) -> str:
        """Where sessions live."""
        return "process memory"

    # The four operations never block, so the async flavour calls them directly.
    def read(self, session_id: str) -> dict[str, Any] | None:
        """Values of a live session, or None."""
        entry = self._data.get(session_id)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            self._data.pop(session_id, None)
            return None
        try:
            return decode(entry[1])
        except DecodeError:
            self.config.notify_decode_failed("store", f"undecodable entry for {session_id}")
            return None

    def write(self, session_id: str, values: dict[str, Any]) -> None:
        """Store ``values`` for ``age`` seconds."""
        if len(self._data) >= self._max and session_id not in self._data:
            self.gc()
        self._data[session_id] = (time.monotonic() + self._age, encode(values))

    def destroy(self, session_id: str) -> None:
        """Forget the session."""
        self._data.pop(session_id, None)

    def touch(self, session_id: str) -> None:
        """Restart the session's expiry."""
        entry = self._data.get(session_id)
        if entry is not None:
            self._data[session_id] = (time.monotonic() + self._age, entry[1])

    async def aread(self, session_id: str) -> dict[str, Any] | None:
        """Async :meth:`read`."""
        return self.read(session_id)

    async def awrite(self, session_id: str, values: dict[str, Any]) -> None:
        """Async :meth:`write`."""
        self.write(session_id, values)

    async def adestroy(self, session_id: str) -> None:
        """Async :meth:`destroy`."""
        self.destroy(session_id)

    async def atouch(self, session_id: str) -> None:
        """Async :meth:`touch`."""
        self.touch(session_id)

    def gc(self, progress: GcProgress | None = None) -> GcResult:
        """Remove expired sessions."""
        started = time.monotonic()
        entries = list(self._data.items())
        expired = [key for key, (expires, _) in entries if expires <= started]
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
        self._data[session_id] = (time.monotonic() + self._age, payload)
