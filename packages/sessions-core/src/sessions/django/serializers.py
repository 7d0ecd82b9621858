"""An opt-in ``SESSION_SERIALIZER`` for Django: the sessions codec (tagged JSON).

    SESSION_SERIALIZER = "sessions.django.serializers.TaggedSerializer"

With it, a session keeps ``datetime``, ``date``, ``UUID``, ``Decimal`` and
``bytes`` values as those types (Django's JSONSerializer refuses them), and
anything else is refused when the session is saved, naming the key. No pickle.
"""

from __future__ import annotations

from typing import Any

from ..codec import decode, encode

__all__ = ["TaggedSerializer"]


class TaggedSerializer:
    """Django's serializer protocol (``dumps``/``loads``) over :mod:`sessions.codec`."""

    def dumps(self, obj: Any) -> bytes:
        """Encode a session dict (Django's signing also passes other dicts)."""
        if type(obj) is not dict:
            raise TypeError(f"TaggedSerializer encodes dicts, not {type(obj).__name__}")
        return encode(obj)

    def loads(self, data: bytes) -> Any:
        """Decode what :meth:`dumps` produced (raises ``ValueError`` on anything else)."""
        return decode(data)
