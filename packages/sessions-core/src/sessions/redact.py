"""Hiding credentials in anything this library prints: errors, logs, CLI output.

One helper for the whole family, so a driver's error message, ``sessions
init`` and ``sessions check`` agree on what is secret:

* the password of a URL's user info (``redis://:hunter2@db/0``);
* query or key=value parameters with a secret-looking name
  (``?password=...``, ``sslpassword=...``, ``token=...``);
* the whole value of an option whose name looks secret (``password``,
  ``secret``, ``token``, ``api_key``...).
"""

from __future__ import annotations

import difflib
import re
from typing import Any

__all__ = ["MASK", "is_secret_name", "redact", "redact_text"]

MASK = "***"

# Names whose values are credentials. ``key`` alone is not one: ``key_prefix``
# and ``ssl_keyfile`` are ordinary settings.
_SECRET_NAME = re.compile(
    r"password|passwd|passphrase|secret|token|credential|private_?key|api_?key|access_?key|"
    r"(?:^|[_\-.])(?:pwd|pass|auth|sas|sig|signature)(?:$|[_\-.])",
    re.IGNORECASE,
)
_HIDDEN = re.compile(r"<[^<>]*, hidden>")
# user:password@ in the authority of any scheme://... URL.
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@?#]*:)(?P<pw>[^@\s/?#]*)@")
# name=value inside query strings, DSNs ("host=db password=x") and similar.
_PARAM = re.compile(r"(?P<name>[A-Za-z][A-Za-z0-9_\-.]*)(?P<eq>\s*=\s*)(?P<value>[^&\s;,'\"]+)")


_SECRET_WORDS = ("password", "passwd", "passphrase", "secret", "token", "credentials", "apikey")


def is_secret_name(name: str) -> bool:
    """True when an option or parameter called ``name`` holds a credential.

    A misspelt one counts too (``passwrd``, ``secrt``): an unknown option's
    error must not echo the password it was meant to carry.
    """
    if _SECRET_NAME.search(name) is not None:
        return True
    words = re.split(r"[^a-z0-9]+", name.lower())
    return any(
        len(word) >= 4 and difflib.get_close_matches(word, _SECRET_WORDS, n=1, cutoff=0.85)
        for word in words
    )


def _param(match: re.Match[str]) -> str:
    if is_secret_name(match.group("name")) and match.group("value") != MASK:
        return f"{match.group('name')}{match.group('eq')}{MASK}"
    return match.group(0)


def redact_text(text: str) -> str:
    """``text`` with URL passwords and secret-named ``name=value`` parameters masked."""
    if "=" not in text and "@" not in text:
        return text
    text = _USERINFO.sub(lambda m: f"{m.group('head')}{MASK}@", text)
    return _PARAM.sub(_param, text)


def redact(value: Any, name: str = "") -> Any:
    """A version of ``value`` safe to print, for an option or field called ``name``.

    A value whose name looks secret is replaced whole (keeping only its type and
    length); strings and the strings inside lists, tuples and dicts get
    :func:`redact_text`; anything else is returned unchanged.
    """
    if isinstance(value, str) and _HIDDEN.fullmatch(value):
        return value  # already redacted
    if name and is_secret_name(name) and value is not None:
        if isinstance(value, str):
            return f"<{len(value)} characters, hidden>"
        return f"<{type(value).__name__}, hidden>"
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list | tuple):
        return type(value)(redact(item) for item in value)
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    return value
