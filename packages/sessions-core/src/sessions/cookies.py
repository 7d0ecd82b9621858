"""Parsing the request's Cookie header, tolerantly."""

from __future__ import annotations

from collections.abc import Iterable


def parse_cookie_header(headers: Iterable[str]) -> dict[str, str]:
    """Cookies of one or more ``Cookie`` header values.

    Malformed pieces are skipped rather than rejected: a broken cookie set by
    another app on the same domain must not cost this app its session. When a
    name repeats, the first one wins (browsers send the most specific first).
    """
    cookies: dict[str, str] = {}
    for header in headers:
        for chunk in header.split(";"):
            name, sep, value = chunk.partition("=")
            if not sep:
                continue
            name = name.strip()
            if name and name not in cookies:
                value = value.strip()
                if len(value) > 1 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                cookies[name] = value
    return cookies
