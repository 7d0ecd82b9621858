"""The memcached driver's own error: a session too large for the server."""

from __future__ import annotations

from sessions.errors import DriverError

__all__ = ["SessionTooLargeError"]


class SessionTooLargeError(DriverError):
    """memcached refused a session because it exceeds the server's item size limit.

    Raised at commit, so the request fails visibly instead of losing the
    session. ``size`` is the encoded session in bytes; ``limit`` the server's
    ``item_size_max`` when it could be asked, else None.
    """

    def __init__(
        self, driver: str, address: str, size: int, limit: int | None, cause: BaseException
    ) -> None:
        super().__init__(driver, "write", address, cause)
        self.size = size
        self.limit = limit
        known = f"its item size limit of {limit} bytes" if limit else "its item size limit"
        self.args = (
            f"session driver {driver!r} failed to write at {address}: the session encodes to "
            f"{size} bytes and memcached refused it as over {known} (with the key and item "
            "header counted). Keep less in the session, or start memcached with a larger "
            "limit (memcached -I, 1m by default).",
        )
