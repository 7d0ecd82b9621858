"""The reserved keys core keeps inside every stored session dict.

A driver stores the session dict as it is given, so what core needs to keep
per session travels inside it, under keys applications never see (``Session``
takes them out when it reads and puts them back when it commits):

* ``__flash__``: the flash messages for the next request;
* ``__tag__``: the session's tag (usually a user id), see ``session.tag()``;
* ``__created__``: when the session was created, in whole epoch seconds;
* ``__age__``: the session's own idle age in seconds (``session.set_expiry()``).

Drivers read two of them: the record's time to live is :func:`store_age`, and a
driver with the tagging capability indexes :func:`tag_of`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "AGE_KEY",
    "CREATED_KEY",
    "FLASH_KEY",
    "RESERVED_KEYS",
    "TAG_KEY",
    "created_of",
    "store_age",
    "tag_of",
]

FLASH_KEY = "__flash__"
TAG_KEY = "__tag__"
CREATED_KEY = "__created__"
AGE_KEY = "__age__"
#: Every key core reserves in the stored dict.
RESERVED_KEYS = (FLASH_KEY, TAG_KEY, CREATED_KEY, AGE_KEY)


def store_age(values: Mapping[str, Any], default: int) -> int:
    """Seconds the store keeps this record: its own idle age, or ``default``."""
    age = values.get(AGE_KEY)
    if type(age) is int and age > 0:
        return age
    return default


def tag_of(values: Mapping[str, Any]) -> str | None:
    """The record's tag, or None when it has none."""
    tag = values.get(TAG_KEY)
    return tag if type(tag) is str and tag else None


def created_of(values: Mapping[str, Any]) -> int | None:
    """When the record was created (epoch seconds), or None for records that predate it."""
    created = values.get(CREATED_KEY)
    return created if type(created) is int else None
