"""Response headers that keep session responses out of shared caches.

A response that depends on the session cookie (it read the session) or sets
a cookie must say ``Vary: Cookie``, or a shared cache or CDN may serve one
visitor's page, or cookie, to another. A response that sets a session cookie
is also marked ``Cache-Control: private`` when the application said nothing
about caching. Headers the application set are merged, never replaced.
"""

from __future__ import annotations

from collections.abc import MutableSequence
from typing import TypeVar

__all__ = ["asgi_cache_safe_headers", "cache_safe_headers"]

H = TypeVar("H", str, bytes)


def _tokens(value: str) -> set[str]:
    return {part.strip().lower() for part in value.split(",")}


def cache_safe_headers(headers: MutableSequence[tuple[H, H]], *, vary: bool, private: bool) -> None:
    """Add ``Vary: Cookie`` (``vary``) and ``Cache-Control: private`` (``private``).

    ``headers`` are ASGI's ``(bytes, bytes)`` or WSGI's ``(str, str)`` pairs,
    changed in place. An existing Vary gets ``Cookie`` appended (unless it is
    ``*`` or names it already); an existing Cache-Control is left alone.
    """
    if not (vary or private):
        return
    raw = bool(headers) and isinstance(headers[0][0], bytes)
    vary_at = -1
    has_cache_control = False
    for i, (name, value) in enumerate(headers):
        key = (name.decode("latin-1") if isinstance(name, bytes) else name).lower()
        if key == "vary" and vary:
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            tokens = _tokens(text)
            if "*" in tokens or "cookie" in tokens:
                vary = False
            else:
                vary_at = i
        elif key == "cache-control":
            has_cache_control = True
    if vary:
        if vary_at >= 0:
            name, value = headers[vary_at]
            if isinstance(value, bytes):
                headers[vary_at] = (name, value + b", Cookie")
            else:
                headers[vary_at] = (name, value + ", Cookie")
        else:
            headers.append(_pair(raw, "Vary", "Cookie"))  # type: ignore[arg-type]
    if private and not has_cache_control:
        headers.append(_pair(raw, "Cache-Control", "private"))  # type: ignore[arg-type]


def _pair(raw: bool, name: str, value: str) -> tuple[str, str] | tuple[bytes, bytes]:
    if raw:
        return (name.lower().encode("latin-1"), value.encode("latin-1"))
    return (name, value)


def asgi_cache_safe_headers(
    headers: list[tuple[bytes, bytes]], *, vary: bool, private: bool
) -> None:
    """:func:`cache_safe_headers` for ASGI's ``(bytes, bytes)`` headers.

    Runs on every response that uses its session, so it compares raw bytes
    instead of decoding each header (names lowercased: ASGI asks for lowercase,
    not every application sends it).
    """
    vary_at = -1
    has_cache_control = False
    for i, (raw_name, value) in enumerate(headers):
        name = raw_name.lower()
        if name == b"vary" and vary:
            tokens = {part.strip().lower() for part in value.split(b",")}
            if b"*" in tokens or b"cookie" in tokens:
                vary = False
            else:
                vary_at = i
        elif name == b"cache-control":
            has_cache_control = True
    if vary:
        if vary_at >= 0:
            name, value = headers[vary_at]
            headers[vary_at] = (name, value + b", Cookie")
        else:
            headers.append((b"vary", b"Cookie"))
    if private and not has_cache_control:
        headers.append((b"cache-control", b"private"))
