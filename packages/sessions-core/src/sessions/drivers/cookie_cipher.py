"""Sealing and opening the cookie driver's data cookie with AES-256-GCM.

A sealed value is base64url (no padding) of::

    version (1 byte) | key id (4 bytes) | nonce (12 bytes) | ciphertext | tag (16 bytes)

and the plaintext inside is ``expiry (8 bytes, big-endian Unix milliseconds) | payload``.

* The keys are derived with HKDF-SHA256 from the configured secrets under a
  label of their own, so the cipher never shares a key with the id signature.
* The key id is derived from the secret under yet another label: it names the
  key without revealing anything about it, so opening a cookie costs one
  decryption, and a cookie from a removed secret is refused without any.
* The associated data covers the header bytes and whatever the caller binds
  (the cookie name and the session), so a sealed value only opens in the place
  it was made for.
"""

from __future__ import annotations

import binascii
import os
import struct
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..keys import derive_keys

__all__ = [
    "CIPHER_LABEL",
    "KEY_ID_LABEL",
    "OVERHEAD",
    "CookieCipher",
    "OpenError",
    "Opened",
    "max_payload",
    "sealed_length",
]

CIPHER_LABEL = b"sessions/v1/cookie-driver-aes-256-gcm"
KEY_ID_LABEL = b"sessions/v1/cookie-driver-key-id"
VERSION = 1
_HEADER = 1 + 4
_NONCE = 12
_TAG = 16
_EXPIRY = struct.Struct(">Q")
#: Bytes a sealed value adds to its payload before base64.
OVERHEAD = _HEADER + _NONCE + _TAG + _EXPIRY.size
# binascii with a translation is measurably faster than base64.urlsafe_*.
# Decoding maps "+" and "/" to "!", which strict mode rejects, so only the
# base64url alphabet gets through, with no separate scan.
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_+/", b"+/!!")
_MIN_RAW = _HEADER + _NONCE + _TAG + _EXPIRY.size
_NONCE_END = _HEADER + _NONCE
_EXPIRY_SIZE = _EXPIRY.size
# By length % 4; a remainder of 1 is never valid, and strict mode says so.
_PADDING = ("", "===", "==", "=")


class OpenError(Exception):
    """A sealed value did not open; ``str(error)`` says why, for the decode-failed hook."""


#: What :meth:`CookieCipher.open` finds: (expiry in Unix milliseconds, payload,
#: whether a fallback secret opened it). A plain tuple: it is made on every
#: request, and a named tuple costs several times more to build.
Opened = tuple[int, bytes, bool]


def sealed_length(payload_length: int) -> int:
    """Length of the base64url text :meth:`CookieCipher.seal` makes for a payload."""
    raw = payload_length + OVERHEAD
    return (raw * 4 + 2) // 3


def max_payload(prefix: int, limit: int) -> int:
    """Largest payload whose sealed text, after ``prefix`` characters, fits in ``limit``."""
    room = limit - prefix
    raw = (room * 3) // 4
    payload = raw - OVERHEAD
    while payload > 0 and prefix + sealed_length(payload) > limit:
        payload -= 1
    return max(payload, 0)


class CookieCipher:
    """AES-256-GCM over the current secret (seals, opens) and fallbacks (open only).

    Args:
        secrets_: the current secret first, then the fallbacks.
        max_length: sealed values longer than this are refused unread (a browser
            never sends back more than it accepted, so anything longer is forged).
    """

    __slots__ = ("_by_id", "_current", "_current_header", "_max_length")

    def __init__(self, secrets_: Sequence[str], *, max_length: int = 4096) -> None:
        if not secrets_:
            raise ValueError("CookieCipher needs at least one secret")
        keys = derive_keys(secrets_, CIPHER_LABEL)
        key_ids = derive_keys(secrets_, KEY_ID_LABEL, length=4)
        # Two secrets share a key id with probability 2**-32; keep every
        # candidate so even then a cookie opens, at the price of a second try.
        # Keyed by the whole header (version and key id), so one lookup
        # checks both.
        self._by_id: dict[bytes, list[tuple[AESGCM, bool]]] = {}
        for index, (key, key_id) in enumerate(zip(keys, key_ids, strict=True)):
            self._by_id.setdefault(bytes([VERSION]) + key_id, []).append((AESGCM(key), index > 0))
        self._current = AESGCM(keys[0])
        self._current_header = bytes([VERSION]) + key_ids[0]
        self._max_length = max_length

    def seal(self, expires_ms: int, payload: bytes, bind: bytes) -> str:
        """Encrypt ``payload`` with its expiry under the current key, bound to ``bind``."""
        header = self._current_header
        nonce = os.urandom(_NONCE)
        sealed = self._current.encrypt(nonce, _EXPIRY.pack(expires_ms) + payload, header + bind)
        text = binascii.b2a_base64(header + nonce + sealed, newline=False)
        return text.translate(_TO_URLSAFE).rstrip(b"=").decode("ascii")

    def open(self, value: str, bind: bytes) -> Opened:
        """Decrypt a value made by :meth:`seal` with the same ``bind``.

        Raises :class:`OpenError` naming the first thing found wrong.
        """
        if len(value) > self._max_length:
            raise OpenError(f"{len(value)} characters, longer than any cookie this driver sends")
        try:
            text = (value + _PADDING[len(value) & 3]).encode("ascii").translate(_FROM_URLSAFE)
            raw = binascii.a2b_base64(text, strict_mode=True)
        except (UnicodeEncodeError, binascii.Error):
            raise OpenError("not base64url text of a possible length (truncated?)") from None
        if len(raw) < _MIN_RAW:
            raise OpenError(f"{len(raw)} bytes, too short to be a sealed session")
        header = raw[:_HEADER]
        candidates = self._by_id.get(header)
        if candidates is None:
            if raw[0] != VERSION:
                raise OpenError(f"unknown format version {raw[0]} (this driver writes {VERSION})")
            raise OpenError("sealed under a key that is not configured (secret removed?)")
        nonce = raw[_HEADER:_NONCE_END]
        sealed = raw[_NONCE_END:]
        aad = header + bind
        for aead, stale in candidates:
            try:
                plain = aead.decrypt(nonce, sealed, aad)
            except InvalidTag:
                continue
            return _EXPIRY.unpack_from(plain)[0], plain[_EXPIRY_SIZE:], stale
        raise OpenError(
            "does not authenticate: tampered, or sealed for another cookie name or session"
        )
