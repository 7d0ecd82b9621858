"""Security primitives: tokens, storage keys, key derivation and id-cookie signing.

* A token is ``secrets.token_urlsafe(32)``: 43 characters of base64url.
* The storage key a driver sees is base64url(SHA-256(token)), so a dump of the
  store hands out no live session, and every key is safe as a file name.
* Keys are derived from the configured secrets with HKDF-SHA256 and a label per
  purpose, so the id signature and the cookie driver's cipher never share a key.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from typing import NamedTuple

__all__ = [
    "IdSigner",
    "Opened",
    "derive_keys",
    "is_storage_key",
    "new_token",
    "storage_key",
]

TOKEN_LENGTH = 43
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
_STAMP = re.compile(r"[0-9a-z]{1,10}")
#: A signature is base64url HMAC-SHA256: 43 characters, like a token.
_MAC_LENGTH = 43
SIGNATURE_LABEL = b"sessions/v1/id-cookie-signature"


def new_token() -> str:
    """Return a new, unguessable session token (256 bits of randomness)."""
    return secrets.token_urlsafe(32)


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(raw: bytes) -> str:
    return binascii.b2a_base64(raw, newline=False).translate(_URLSAFE).rstrip(b"=").decode("ascii")


def storage_key(token: str) -> str:
    """Return the storage key for ``token``: base64url SHA-256, 43 characters."""
    return _b64(hashlib.sha256(token.encode("ascii")).digest())


def is_storage_key(value: object) -> bool:
    """True when ``value`` has the exact shape of a storage key (43 base64url chars).

    Drivers that turn keys into paths or cache keys call this to refuse anything
    else before touching storage.
    """
    return isinstance(value, str) and _TOKEN.fullmatch(value) is not None


def derive_keys(secrets_: Sequence[str], label: bytes, length: int = 32) -> list[bytes]:
    """Derive one key per secret with HKDF-SHA256 under ``label``.

    The first key belongs to the current secret; the rest to the fallbacks, in order.
    """
    # Imported here: cryptography is slow to import and only needed at startup.
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return [
        HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=label).derive(
            secret.encode("utf-8")
        )
        for secret in secrets_
    ]


class Opened(NamedTuple):
    """A verified id cookie."""

    token: str
    #: Signed with the current secret (a fallback's cookie is re-signed).
    current: bool
    #: The storage key of the token.
    storage_key: str
    #: When the session's expiry was last refreshed (epoch seconds), for
    #: ``touch_interval``; None for a cookie that carries no such time.
    touched: int | None = None


class IdSigner:
    """Signs and verifies the session id cookie: ``<token>.<hmac-sha256>``.

    With a touch time (``touch_interval``), the cookie is
    ``<token>.<time, base 36>.<hmac-sha256>`` and the MAC covers the time too,
    so a client cannot postpone or bring forward its session's refresh. Only the
    current key signs; every key (current, then fallbacks) verifies. The MAC
    covers the cookie name, so a cookie cannot be moved to another name.
    """

    __slots__ = ("_cache_size", "_macs", "_verified")

    def __init__(
        self, secrets_: Sequence[str], cookie_name: str, *, cache_size: int = 10_000
    ) -> None:
        """``cache_size``: how many verified values are remembered (~200 bytes each)."""
        self._cache_size = cache_size
        prefix = cookie_name.encode("utf-8") + b"\x00"
        # Keyed once: copying a keyed HMAC is ~3x cheaper than keying per request.
        self._macs = [
            hmac.new(key, prefix, hashlib.sha256) for key in derive_keys(secrets_, SIGNATURE_LABEL)
        ]
        # A returning browser sends the same value on every request; only values
        # that verified are kept, so nothing a client invents ever gets in.
        self._verified: dict[str, Opened] = {}

    def _mac(self, index: int, signed: str) -> str:
        mac = self._macs[index].copy()
        mac.update(signed.encode("ascii"))
        return _b64(mac.digest())

    def sign(self, token: str, touched: int | None = None) -> str:
        """Return the cookie value for ``token`` (carrying ``touched``, epoch seconds, if given)."""
        signed = token if touched is None else f"{token}.{_base36(touched)}"
        return f"{signed}.{self._mac(0, signed)}"

    def open(self, value: str) -> Opened | None:
        """The :class:`Opened` cookie of a valid value, else ``None``.

        Verified values are remembered, so a returning browser costs one dict lookup.
        """
        hit = self._verified.get(value)
        if hit is not None:
            return hit
        verified = self._verify(value)
        if verified is None:
            return None
        opened = Opened(verified[0], verified[1], storage_key(verified[0]), verified[2])
        if len(self._verified) >= self._cache_size:
            # Evict the oldest entry (dicts keep insertion order).
            self._verified.pop(next(iter(self._verified)), None)
        self._verified[value] = opened
        return opened

    def verify(self, value: str) -> tuple[str, bool] | None:
        """``(token, signed_with_current_key)`` of a validly signed value, else ``None``."""
        verified = self._verify(value)
        return None if verified is None else (verified[0], verified[1])

    def _verify(self, value: str) -> tuple[str, bool, int | None] | None:
        """``(token, current, touched)`` of a validly signed value, else ``None``.

        Anything that is not exactly a token, an optional time and a signature
        is rejected before any MAC is computed; MACs are compared in constant time.
        """
        size = len(value)
        if (
            size < 2 * TOKEN_LENGTH + 1
            or value[TOKEN_LENGTH] != "."
            or value[size - _MAC_LENGTH - 1] != "."
            or not value.isascii()  # compare_digest takes ASCII str only
        ):
            return None
        token = value[:TOKEN_LENGTH]
        if _TOKEN.fullmatch(token) is None:
            return None
        signed = value[: size - _MAC_LENGTH - 1]
        touched: int | None = None
        if size != 2 * TOKEN_LENGTH + 1:
            stamp = signed[TOKEN_LENGTH + 1 :]
            if _STAMP.fullmatch(stamp) is None:
                return None
            touched = int(stamp, 36)
        given = value[size - _MAC_LENGTH :]
        for index in range(len(self._macs)):
            if hmac.compare_digest(self._mac(index, signed), given):
                return token, index == 0, touched
        return None

    def unsign(self, value: str) -> str | None:
        """Return the token of a validly signed cookie value, else ``None``."""
        verified = self.verify(value)
        return None if verified is None else verified[0]


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
        if not number:
            return text
