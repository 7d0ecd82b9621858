"""Connections to memcached: pymemcache clients, one reusable set per server.

Each server gets a :class:`ServerPool` of pymemcache clients that live as long
as the driver. A connection that the server dropped while it sat idle (the
server restarted) is noticed on its next use; the operation is then retried
once on a new connection and the other idle connections are discarded, so the
first request after a restart works. That retry is only for idempotent
operations (get and touch, set of the whole value, delete, touch); a
compare-and-set or an add is never sent twice.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheUnexpectedCloseError

from .servers import ServerAddress, label

__all__ = ["ServerPool", "SessionClient"]

T = TypeVar("T")

#: Signs that a reused connection was closed by the server while idle.
CONNECTION_LOST = (
    MemcacheUnexpectedCloseError,
    BrokenPipeError,
    ConnectionResetError,
    ConnectionAbortedError,
)


class SessionClient(Client):  # type: ignore[misc]  # pymemcache ships no type hints
    """pymemcache's ``Client`` with get-and-touch (``gat``, ``gats``), which 4.0 lacks."""

    def gat(self, key: str, expire: int) -> bytes | None:
        """Fetch ``key`` and set its expiry in one round trip; None when missing."""
        # The command name carries the expiry: "gat <exptime> <key>".
        name = b"gat " + self._check_integer(expire, "expire")
        found: dict[str, Any] = self._fetch_cmd(name, [key], False, key_prefix=self.key_prefix)
        value = found.get(key)
        return value if value is None else bytes(value)

    def gats(self, key: str, expire: int) -> tuple[bytes, int] | None:
        """``gat`` that also returns the item's CAS unique: ``(value, cas)``, or None."""
        name = b"gats " + self._check_integer(expire, "expire")
        found: dict[str, Any] = self._fetch_cmd(name, [key], True, key_prefix=self.key_prefix)
        item = found.get(key)
        if item is None:
            return None
        value, cas = item
        return bytes(value), int(cas)


class ServerPool:
    """Reusable connections to one memcached server.

    Args:
        address: ``(host, port)`` or a Unix socket path.
        make: builds a new, not yet connected client for ``address``.
        keep: at most this many idle connections are kept; more are opened
            under load and closed when they come back.
        idle_timeout: close connections idle longer than this many seconds
            (0: never), for firewalls that drop quiet connections.
    """

    def __init__(
        self,
        address: ServerAddress,
        make: Callable[[ServerAddress], SessionClient],
        *,
        keep: int,
        idle_timeout: float = 0.0,
    ) -> None:
        self.address = address
        self.label = label(address)
        self._make = make
        self._keep = keep
        self._idle_timeout = idle_timeout
        # deque.append/pop are atomic, so taking and returning needs no lock.
        self._idle: deque[tuple[float, SessionClient]] = deque()

    def run(self, operation: Callable[[SessionClient], T], *, retry: bool = True) -> T:
        """Run ``operation`` on a pooled connection and return its result.

        Exceptions propagate unchanged; the connection they happened on is closed.
        ``retry=False`` is for operations that are not idempotent (``cas``,
        ``add``): the server may have applied one whose reply was lost.
        """
        client = self._take()
        reused = client.sock is not None
        try:
            result = operation(client)
        except CONNECTION_LOST:
            client.close()
            if not (reused and retry):
                raise
            self._discard_idle()
            client = self._make(self.address)
            try:
                result = operation(client)
            except BaseException:
                client.close()
                raise
        except BaseException:
            client.close()
            raise
        self._give_back(client)
        return result

    def close(self) -> None:
        """Close the idle connections (those in use close when they come back)."""
        self._keep = 0
        self._discard_idle()

    @property
    def idle(self) -> int:
        """How many connections sit idle in the pool."""
        return len(self._idle)

    def _take(self) -> SessionClient:
        timeout = self._idle_timeout
        while True:
            try:
                used_at, client = self._idle.pop()
            except IndexError:
                return self._make(self.address)
            if timeout and time.monotonic() - used_at > timeout:
                client.close()
                continue
            return client

    def _give_back(self, client: SessionClient) -> None:
        if len(self._idle) < self._keep:
            self._idle.append((time.monotonic() if self._idle_timeout else 0.0, client))
        else:
            client.close()

    def _discard_idle(self) -> None:
        while True:
            try:
                _, client = self._idle.pop()
            except IndexError:
                return
            client.close()
