"""The session file's record format: a small binary header, then the values.

A record is::

    magic    4 bytes   b"SF\\x00\\x01" (format 1)
    version  8 bytes   unsigned, big-endian: bumped by every write
    age      4 bytes   unsigned, big-endian: seconds a write or read extends the life by
    tag     32 bytes   SHA-256 of the session's tag, or 32 zero bytes when untagged
    values   the rest  the sessions codec's JSON (``sessions.codec.encode``)

and its expiry is the file's modification time itself (set into the future by
every write and read), so garbage collection still judges a file by ``lstat``
alone, whatever each session's own age.

Files written by the previous release carry no header: their content is the
codec's JSON (which always starts with ``{``) and they expire ``age`` seconds
after their modification time. They read as version 0 with the configured age,
and their first write turns them into the current format.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from typing import NamedTuple

__all__ = [
    "HEADER_SIZE",
    "MAGIC",
    "MAX_AGE",
    "NO_TAG",
    "Header",
    "first",
    "parse",
    "payload",
    "tag_digest",
]

MAGIC = b"SF\x00\x01"
_HEADER = struct.Struct(">4sQI32s")
#: Bytes before the values in a current-format file.
HEADER_SIZE = _HEADER.size
#: The tag field of an untagged session.
NO_TAG = bytes(32)
#: The longest age the field holds (about 136 years); longer ones are cut to it.
MAX_AGE = 2**32 - 1
_NS = 1_000_000_000
# A version that would overflow the field starts again (after 2**64 writes).
_VERSION_LIMIT = 2**64


class Header(NamedTuple):
    """What a record says about itself besides its values."""

    version: int
    #: Seconds of life a write or read gives the session (its own age or the default).
    age: int
    #: :func:`tag_digest` of the session's tag, or :data:`NO_TAG`.
    tag: bytes
    #: Written by the previous release: no header, expiry is mtime + age.
    legacy: bool = False

    def pack(self) -> bytes:
        """The header's bytes (a legacy header is never written back)."""
        return _HEADER.pack(MAGIC, self.version % _VERSION_LIMIT, self.age, self.tag)

    def expires_ns(self, mtime_ns: int) -> int:
        """When a file with this header and modification time expires (epoch ns)."""
        return mtime_ns + self.age * _NS if self.legacy else mtime_ns

    def next(self, age: int, tag: bytes) -> Header:
        """The header of the record that replaces this one."""
        return Header((self.version + 1) % _VERSION_LIMIT or 1, min(age, MAX_AGE), tag)


def first(age: int, tag: bytes) -> Header:
    """The header of a newly created record."""
    return Header(1, min(age, MAX_AGE), tag)


def parse(data: bytes, default_age: int) -> Header | None:
    """The header at the start of ``data``; None when it is neither format.

    ``data`` may be just the first :data:`HEADER_SIZE` bytes of the file.
    """
    if data[:4] == MAGIC:
        if len(data) < HEADER_SIZE:
            return None
        _, version, age, tag = _HEADER.unpack_from(data)
        return Header(version, age, tag) if age > 0 else None
    if data[:1] == b"{":
        return Header(0, default_age, NO_TAG, legacy=True)
    return None


def payload(data: bytes, header: Header) -> bytes:
    """The values' bytes of a whole record."""
    return data if header.legacy else data[HEADER_SIZE:]


# A user's requests repeat their tag: hash it once.
@functools.lru_cache(maxsize=4096)
def tag_digest(tag: str | None) -> bytes:
    """The tag field for ``tag`` (:data:`NO_TAG` for None)."""
    if tag is None:
        return NO_TAG
    return hashlib.sha256(tag.encode("utf-8", "surrogatepass")).digest()
