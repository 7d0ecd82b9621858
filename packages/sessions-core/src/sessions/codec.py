"""The session codec: tagged JSON, no pickle.

Session values are JSON types plus ``datetime`` (naive and aware), ``date``,
``UUID``, ``Decimal`` and ``bytes``; each comes back as the type it was put as.
A non-JSON value is written as a one-key object ``{"\\u0000": [tag, text]}``.
The key is a lone NUL, which no ordinary session key contains; a stored dict
that really has that key is escaped as ``{"\\u0000": ["map", [[k, v], ...]]}``
so decoding is never ambiguous.

Encoding uses the C JSON encoder; the Python-level escaping walk runs only when
the output shows a NUL-keyed object that the codec itself did not emit.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from .errors import DecodeError, UnsupportedValueError

__all__ = ["MAX_DEPTH", "SUPPORTED_TYPES", "check_value", "decode", "encode"]

TAG = "\x00"
_TAG_JSON = '"\\u0000":'  # a NUL key, wherever it stands in its object

SUPPORTED_TYPES = (
    "str, int, float, bool, None, list, dict with str keys, datetime, date, UUID, Decimal, bytes"
)
#: Deepest nesting of lists and dicts a session value may have, counting the
#: dicts a dotted key creates. Far beyond any real session; it keeps the
#: recursive walks of encode, decode and every driver away from Python's
#: recursion limit (a 5,000-deep list would otherwise raise RecursionError).
MAX_DEPTH = 64
_PLAIN = frozenset({str, int, float, bool, type(None)})
_SPECIAL = frozenset({datetime, date, UUID, Decimal, bytes})


def check_value(key: str, value: Any) -> None:
    """Raise :class:`UnsupportedValueError` unless ``value`` round-trips exactly.

    ``key`` is the session key being written; the message names the path
    inside the value where the offending type sits. Values nested deeper than
    :data:`MAX_DEPTH` lists and dicts (with the key's own dotted levels) are refused.
    """
    _check(value, key, key.count(".") if isinstance(key, str) else 0)


def _check(value: Any, where: str, depth: int) -> None:
    kind = type(value)
    if kind in _PLAIN or kind in _SPECIAL:
        return
    if kind is list or kind is dict:
        depth += 1
        if depth > MAX_DEPTH:
            raise UnsupportedValueError(
                f"cannot store the value at session key {where.split('[', 1)[0]!r}: lists and "
                f"dicts nest deeper than {MAX_DEPTH} levels there; flatten it"
            )
    if kind is list:
        for i, item in enumerate(value):
            _check(item, f"{where}[{i}]", depth)
        return
    if kind is dict:
        for k, item in value.items():
            if type(k) is not str:
                raise UnsupportedValueError(
                    f"cannot store dict key {k!r} ({type(k).__name__}) at session key "
                    f"{where!r}: dict keys must be str so they come back unchanged"
                )
            _check(item, f"{where}.{k}", depth)
        return
    hint = " (use a list)" if kind in (tuple, set, frozenset) else ""
    raise UnsupportedValueError(
        f"cannot store a value of type {kind.__module__}.{kind.__qualname__} at session "
        f"key {where!r}{hint}; supported types: {SUPPORTED_TYPES}"
    )


def _special(value: Any) -> list[str]:
    kind = type(value)
    if kind is datetime:
        return ["dt", value.isoformat()]
    if kind is date:
        return ["d", value.isoformat()]
    if kind is UUID:
        return ["uuid", str(value)]
    if kind is Decimal:
        return ["dec", str(value)]
    if kind is bytes:
        return ["b", base64.b64encode(value).decode("ascii")]
    raise UnsupportedValueError(
        f"cannot encode a value of type {kind.__qualname__}; supported types: {SUPPORTED_TYPES}"
    )


class _Emitted(threading.local):
    count = 0


_emitted = _Emitted()


def _default(value: Any) -> dict[str, list[str]]:
    _emitted.count += 1
    return {TAG: _special(value)}


# Built once: json.dumps/loads with options build a new encoder/decoder per call.
_ENCODER = json.JSONEncoder(default=_default, separators=(",", ":"), ensure_ascii=False)
_PLAIN_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def encode(values: Mapping[str, Any]) -> bytes:
    """Encode a session dict to UTF-8 JSON bytes."""
    _emitted.count = 0
    text = _ENCODER.encode(values)
    if _TAG_JSON in text and text.count(_TAG_JSON) != _emitted.count:
        # Some stored dict has a NUL key of its own: escape it.
        text = _PLAIN_ENCODER.encode(_escape(values))
    return text.encode("utf-8")


def _escape(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        items = {k: _escape(v) for k, v in value.items()}
        if TAG in items:
            return {TAG: ["map", [[k, v] for k, v in items.items()]]}
        return items
    if kind is list:
        return [_escape(v) for v in value]
    if kind in _SPECIAL:
        return {TAG: _special(value)}
    return value


def _hook(obj: dict[str, Any]) -> Any:
    if TAG not in obj:
        return obj
    if len(obj) != 1:
        raise DecodeError("tagged value with extra keys")
    tagged = obj[TAG]
    if type(tagged) is not list or len(tagged) != 2:
        raise DecodeError("malformed tagged value")
    tag, payload = tagged
    try:
        if tag == "dt":
            return datetime.fromisoformat(payload)
        if tag == "d":
            return date.fromisoformat(payload)
        if tag == "uuid":
            return UUID(payload)
        if tag == "dec":
            return Decimal(payload)
        if tag == "b":
            return base64.b64decode(payload, validate=True)
        if tag == "map":
            return dict(payload)
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise DecodeError(f"bad {tag!r} value: {exc}") from exc
    raise DecodeError(f"unknown value tag {tag!r}")


_DECODER = json.JSONDecoder(object_hook=_hook)


def decode(data: bytes | str) -> dict[str, Any]:
    """Decode what :func:`encode` produced.

    Raises :class:`DecodeError` for anything that is not a session encoding.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
        values = _DECODER.decode(text)
    except DecodeError:
        raise
    except (ValueError, TypeError, RecursionError) as exc:
        raise DecodeError(f"not a session payload: {exc}") from exc
    if type(values) is not dict:
        raise DecodeError(f"not a session payload: top level is {type(values).__name__}")
    # Only a payload with that many brackets can be too deep: a count in C is
    # cheap, the walk is paid only then.
    if text.count("[") + text.count("{") > MAX_DEPTH:
        _check_depth(values)
    return values


def _check_depth(values: dict[str, Any]) -> None:
    # Level by level, breadth first: no recursion, and about a third of the cost
    # of the JSON decode itself on a container-heavy payload.
    # The flash messages sit one level down (under "__flash__"): one level of slack.
    limit = MAX_DEPTH + 1
    level = [v for v in values.values() if type(v) is dict or type(v) is list]
    depth = 1
    while level:
        if depth > limit:
            raise DecodeError(f"not a session payload: nested deeper than {limit} levels")
        deeper: list[Any] = []
        push = deeper.append
        for container in level:
            for item in container.values() if type(container) is dict else container:
                kind = type(item)
                if kind is dict or kind is list:
                    push(item)
        level = deeper
        depth += 1
