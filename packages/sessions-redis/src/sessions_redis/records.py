"""The stored record: a short ASCII header, then the codec's JSON payload.

One Redis string per session, so a read stays one ``GETEX``::

    v<version>:<json>                 an untagged session
    v<version>,<n>:<tag><json>        a tagged one; <n> is the tag's length in bytes
    {...json...}                      written by the previous release: version 0

The version is a random positive 48-bit integer chosen by the writer, not a
counter: every write (plain or compare-and-set) gives the record one no other
write will give it, so a concurrent compare-and-set always notices, and a write
retried after a lost reply recognises its own result (see
:mod:`sessions_redis.scripts`). The tag sits in the header so the Lua scripts
can compare the old tag with the new one, and filter a tag's members, without
decoding JSON. Lua parses the same header (``scripts.py``); keep both in step.
"""

from __future__ import annotations

import random
from typing import NamedTuple

__all__ = ["MAX_HEADER", "Parsed", "UnreadableRecord", "new_version", "pack", "parse"]

#: The header always fits in this many bytes (``v`` + 15 digits + ``,`` + length + ``:``).
MAX_HEADER = 40
_VERSION_BITS = 48
_OPEN_BRACE = ord("{")
_V = ord("v")


class UnreadableRecord(ValueError):
    """The bytes under a session key are not a record this driver wrote."""


class Parsed(NamedTuple):
    """A record split into its parts (the payload is still encoded JSON)."""

    version: int
    tag: str | None
    payload: bytes


def new_version() -> int:
    """A fresh version: random, never 0 (0 is the previous release's records)."""
    return random.getrandbits(_VERSION_BITS) or 1


def header(version: int, tag: str | None) -> bytes:
    """The bytes that precede the payload for ``version`` and ``tag``."""
    if tag is None:
        return b"v%d:" % version
    raw = tag.encode("utf-8")
    return b"v%d,%d:%s" % (version, len(raw), raw)


def pack(version: int, tag: str | None, payload: bytes) -> bytes:
    """The whole record to store."""
    return header(version, tag) + payload


def parse(data: bytes) -> Parsed:
    """Split a stored record; raise :class:`UnreadableRecord` if it is not one."""
    if not data:
        raise UnreadableRecord("empty value")
    first = data[0]
    if first == _OPEN_BRACE:
        return Parsed(0, None, data)
    if first != _V:
        raise UnreadableRecord("no record header (neither 'v<version>:' nor a JSON object)")
    colon = data.find(b":", 1, MAX_HEADER)
    if colon < 0:
        raise UnreadableRecord("record header without ':'")
    head = data[1:colon]
    version_text, comma, length_text = head.partition(b",")
    if not version_text.isdigit() or (comma and not length_text.isdigit()):
        raise UnreadableRecord(f"malformed record header {bytes(data[: colon + 1])!r}")
    start = colon + 1
    if not comma:
        return Parsed(int(version_text), None, data[start:])
    end = start + int(length_text)
    if end > len(data):
        raise UnreadableRecord("record shorter than its tag")
    try:
        tag = data[start:end].decode("utf-8")
    except UnicodeDecodeError:
        raise UnreadableRecord("tag is not UTF-8") from None
    return Parsed(int(version_text), tag, data[end:])
