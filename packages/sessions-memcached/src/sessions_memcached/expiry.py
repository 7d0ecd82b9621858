"""Memcached's expiry rule: up to 30 days is relative, beyond that an absolute time.

memcached reads an expiry above 2 592 000 seconds as a Unix timestamp, so a
relative 40 days would be read as a moment in January 1970 and the item would
expire at once. Longer ages are therefore sent as "now + age".
"""

from __future__ import annotations

import time

__all__ = ["MAX_RELATIVE", "expiry"]

#: The longest expiry memcached reads as a number of seconds from now (30 days).
MAX_RELATIVE = 60 * 60 * 24 * 30


def expiry(age: int, now: float | None = None) -> int:
    """The exptime to send for an item that should live ``age`` seconds.

    ``now`` is the current Unix time (defaults to the clock); absolute
    expiries rely on the web server's and memcached's clocks agreeing.
    """
    if age <= MAX_RELATIVE:
        return age
    return int(time.time() if now is None else now) + age
