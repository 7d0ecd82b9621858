"""The ``cookie`` driver: the whole session lives in the browser, encrypted.

No server storage, so it works behind any load balancer. The session values
travel in a second cookie next to the id cookie, ``<cookie_name>.data``,
sealed with AES-256-GCM (see :mod:`sessions.drivers.cookie_cipher`) and bound
to that cookie name and to the session's storage key.

Deliberate choices:

* **Touch re-encrypts.** Core touches an unchanged session on every response;
  here that seals the same values again with a fresh expiry inside and sends
  them with a fresh Max-Age. An idle timeout that rolls forward needs the
  expiry inside the ciphertext to move, and the same step re-encrypts a cookie
  that a fallback secret opened under the current one, on that very response.
  The cost is one AES-GCM seal (about a microsecond) and a Set-Cookie header.
* **Fixed name.** There is one data cookie per browser, whatever the session
  id, so regenerate overwrites it rather than leaving an orphan behind, and
  destroy deletes it. Core destroys the old key before writing the new one in
  the same response, and a later cookie of one name replaces an earlier one.
* **Size is checked at commit.** The whole Set-Cookie line is measured; over
  :data:`COOKIE_LIMIT` bytes the write raises :class:`CookieTooLargeError`
  instead of sending a cookie that browsers silently drop.
* **No compression.** Compressing attacker-influenced values (flashed form
  input) next to secrets before encryption leaks those secrets through the
  cookie's length, the CRIME/BREACH pattern.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import Any, ClassVar

from ..codec import decode, encode
from ..driver import Driver, DriverConfig, Option, OutgoingCookie, RequestContext
from ..errors import CookieTooLargeError, DecodeError
from .cookie_cipher import CookieCipher, OpenError, max_payload, sealed_length

__all__ = ["COOKIE_LIMIT", "CookieDriver", "CookieRequest", "data_cookie_name"]

#: Largest Set-Cookie header value (name, value and attributes) sent, in bytes.
#: RFC 6265 asks browsers to accept at least 4096; bigger ones may be dropped.
COOKIE_LIMIT = 4096
DATA_SUFFIX = ".data"
_BIND_PREFIX = b"sessions/v1/data-cookie\x00"
# RFC 6265 cookie-name token characters, as SessionConfig checks them.
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SERVER_SIDE = "memory, file, redis, sql or memcached"


def data_cookie_name(cookie_name: str) -> str:
    """Name of the data cookie that goes with session id cookie ``cookie_name``."""
    name = cookie_name + DATA_SUFFIX
    if not _COOKIE_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid cookie name (RFC 6265 token characters)")
    return name


class CookieDriver(Driver):
    """Keeps each session in an encrypted cookie; stores nothing on the server.

    The manager-wide instance holds the derived keys; :meth:`for_request`
    hands out a :class:`CookieRequest` bound to one request's cookies.
    """

    options: ClassVar[tuple[Option, ...]] = ()
    touches_on_read: ClassVar[bool] = False
    blocking: ClassVar[bool] = False

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        self.cookie_name = data_cookie_name(config.session.cookie_name)
        self.cipher = CookieCipher(config.session.secrets, max_length=COOKIE_LIMIT)
        self.bind_prefix = _BIND_PREFIX + self.cookie_name.encode("ascii") + b"\x00"
        self.max_age = None if config.session.clear_with_browser else config.age
        self.age_ms = config.age * 1000
        self.cookie_options = config.session.cookie
        #: Largest encoded session whose ``name=value`` alone stays within the limit.
        self.max_payload = max_payload(len(self.cookie_name) + 1, COOKIE_LIMIT)
        # Set-Cookie size minus the value, per Secure flag: the value is the
        # only part that varies, so the exact size costs no header rendering.
        self._attributes: dict[bool, int] = {}

    def for_request(self, context: RequestContext) -> CookieRequest:
        """The driver bound to one request's cookies."""
        return CookieRequest(self, context)

    def attributes_size(self, cookie: OutgoingCookie) -> int:
        """Bytes of ``cookie``'s Set-Cookie header value other than the value itself."""
        size = self._attributes.get(cookie.secure)
        if size is None:
            size = len(replace(cookie, value="").header().encode("utf-8"))
            self._attributes[cookie.secure] = size
        return size

    def describe(self) -> str:
        """Where sessions live."""
        return f"the browser (encrypted cookie {self.cookie_name!r})"

    def _unbound(self, operation: str) -> RuntimeError:
        return RuntimeError(
            f"the cookie driver cannot {operation} without a request: its data lives in "
            "the request's cookies; call driver.for_request(context) and use that"
        )

    # The manager-wide instance has no cookies to work on; these exist so core
    # sees both flavours on the class, and fail clearly if called directly.
    def read(self, session_id: str) -> dict[str, Any] | None:
        """Refused: use :meth:`for_request`."""
        raise self._unbound("read")

    def write(self, session_id: str, values: dict[str, Any]) -> None:
        """Refused: use :meth:`for_request`."""
        raise self._unbound("write")

    def destroy(self, session_id: str) -> None:
        """Refused: use :meth:`for_request`."""
        raise self._unbound("destroy")

    def touch(self, session_id: str) -> None:
        """Refused: use :meth:`for_request`."""
        raise self._unbound("touch")

    async def aread(self, session_id: str) -> dict[str, Any] | None:
        """Refused: use :meth:`for_request`."""
        raise self._unbound("read")

    async def awrite(self, session_id: str, values: dict[str, Any]) -> None:
        """Refused: use :meth:`for_request`."""
        raise self._unbound("write")

    async def adestroy(self, session_id: str) -> None:
        """Refused: use :meth:`for_request`."""
        raise self._unbound("destroy")

    async def atouch(self, session_id: str) -> None:
        """Refused: use :meth:`for_request`."""
        raise self._unbound("touch")


class CookieRequest:
    """The cookie driver for one request: reads the data cookie the browser
    sent and queues the one to send back on the request context."""

    __slots__ = ("_context", "_driver", "_opened")

    def __init__(self, driver: CookieDriver, context: RequestContext) -> None:
        self._driver = driver
        self._context = context
        # (storage key, payload) of the last cookie read, so touch re-seals
        # without decrypting a second time.
        self._opened: tuple[str, bytes] | None = None

    def _bind(self, session_id: str) -> bytes:
        return self._driver.bind_prefix + session_id.encode("utf-8")

    def _open(self, session_id: str) -> bytes | None:
        """The live payload the browser holds for ``session_id``, else None."""
        driver = self._driver
        raw = self._context.cookies.get(driver.cookie_name)
        if raw is None:
            return None
        try:
            opened = driver.cipher.open(raw, self._bind(session_id))
        except OpenError as exc:
            self._refuse(str(exc))
            return None
        now = time.time() * 1000
        expires_ms, payload, _ = opened
        if expires_ms <= now:
            self._refuse(f"expired {(now - expires_ms) / 1000:.0f} s ago")
            return None
        return payload

    def _refuse(self, reason: str) -> None:
        driver = self._driver
        driver.config.notify_decode_failed("data-cookie", f"{driver.cookie_name}: {reason}")
        # Delete it, or the browser sends it (and the hook fires) on every
        # request until the session is written; a write in this same
        # response replaces the deletion.
        self._context.delete_cookie(driver.cookie_name, driver.config.session.cookie)

    def read(self, session_id: str) -> dict[str, Any] | None:
        """The session's values, or None if the cookie is missing, expired or unreadable.

        An unreadable or expired data cookie is reported to the decode-failed
        hook and deleted on the response.
        """
        payload = self._open(session_id)
        if payload is None:
            return None
        try:
            values = decode(payload)
        except DecodeError as exc:
            self._refuse(str(exc))
            return None
        self._opened = (session_id, payload)
        return values

    def write(self, session_id: str, values: dict[str, Any]) -> None:
        """Queue the sealed values on the response.

        Raises :class:`CookieTooLargeError` when the Set-Cookie line would be
        over the browser limit; nothing is queued then.
        """
        self._send(session_id, encode(values))

    def destroy(self, session_id: str) -> None:
        """Queue the data cookie's deletion (if the browser has one)."""
        if self._opened is not None and self._opened[0] == session_id:
            self._opened = None
        driver = self._driver
        self._context.delete_cookie(driver.cookie_name, driver.config.session.cookie)

    def touch(self, session_id: str) -> None:
        """Send the same values again with a fresh expiry, under the current key."""
        opened = self._opened
        if opened is not None and opened[0] == session_id:
            payload: bytes | None = opened[1]
        else:
            payload = self._open(session_id)
        if payload is not None:
            self._send(session_id, payload)

    def _send(self, session_id: str, payload: bytes) -> None:
        driver = self._driver
        name = driver.cookie_name
        if len(payload) > driver.max_payload:
            # Spares encrypting a session that cannot fit whatever the attributes.
            rough = len(name) + 1 + sealed_length(len(payload))
            raise _too_large(name, rough, len(payload), exact=False)
        value = driver.cipher.seal(
            int(time.time() * 1000) + driver.age_ms, payload, self._bind(session_id)
        )
        context = self._context
        previous = context.outgoing.get(name)
        context.set_cookie(name, value, max_age=driver.max_age, options=driver.cookie_options)
        size = driver.attributes_size(context.outgoing[name]) + len(value)
        if size > COOKIE_LIMIT:
            if previous is None:
                del context.outgoing[name]
            else:
                context.outgoing[name] = previous
            raise _too_large(name, size, len(payload), exact=True)
        self._opened = (session_id, payload)

    async def aread(self, session_id: str) -> dict[str, Any] | None:
        """Async :meth:`read` (no I/O: runs inline)."""
        return self.read(session_id)

    async def awrite(self, session_id: str, values: dict[str, Any]) -> None:
        """Async :meth:`write` (no I/O: runs inline)."""
        self.write(session_id, values)

    async def adestroy(self, session_id: str) -> None:
        """Async :meth:`destroy` (no I/O: runs inline)."""
        self.destroy(session_id)

    async def atouch(self, session_id: str) -> None:
        """Async :meth:`touch` (no I/O: runs inline)."""
        self.touch(session_id)


def _too_large(name: str, size: int, payload: int, *, exact: bool) -> CookieTooLargeError:
    what = "would be" if exact else "would be at least"
    return CookieTooLargeError(
        f"the session does not fit in a cookie: the Set-Cookie header for {name!r} {what} "
        f"{size} bytes, over the {COOKIE_LIMIT}-byte limit browsers accept "
        f"(the session's values take {payload} bytes before encryption). Browsers drop "
        f"such cookies silently, so it was not sent. Keep less in the session, or use "
        f"a server-side driver ({_SERVER_SIDE}) that only puts the id in the cookie."
    )
