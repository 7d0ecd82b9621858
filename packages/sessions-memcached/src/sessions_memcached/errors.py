"""The memcached driver's own error: a session too large for the server."""

from __future__ import annotations

from sessions.errors import DriverError

__all__ = ["SessionTooLargeError"]


class SessionTooLargeError(DriverError):
    """A session exceeds the memcached server's item size limit.

    Raised at commit, so the request fails visibly. ``size`` is the encoded
    session in bytes; ``limit`` the server's ``item_size_max`` when it could be
    asked, else None. ``sent`` tells whether the session reached the server:
    the driver refuses it beforehand when it knows the limit, and the stored
    session is then unchanged; a server that refuses a ``set`` itself also
    deletes the stored session.
    """

    def __init__(
        self,
        driver: str,
        address: str,
        size: int,
        limit: int | None,
        cause: BaseException,
        *,
        sent: bool = False,
    ) -> None:
        super().__init__(driver, "write", address, cause)
        self.size = size
        self.limit = limit
        self.sent = sent
        known = f"its item size limit of {limit} bytes" if limit else "its item size limit"
        outcome = (
            "memcached refused it and dropped the stored session"
            if sent
            else "it was not sent, and the stored session is unchanged"
        )
        self.args = (
            f"session driver {driver!r} failed to write at {address}: the session encodes to "
            f"{size} bytes, over {known} (with the key and item header counted); {outcome}. "
            "Keep less in the session, or start memcached with a larger limit "
            "(memcached -I, 1m by default).",
        )
