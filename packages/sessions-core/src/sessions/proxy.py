"""Noticing a TLS-terminating proxy whose headers the server does not trust.

With ``secure=None`` (automatic) the session cookie is marked Secure when the
request's own scheme is https. Behind a proxy that terminates TLS, the server
sees http unless it is told to trust ``X-Forwarded-Proto`` (uvicorn
``--proxy-headers``, gunicorn ``--forwarded-allow-ips``, Werkzeug's
``ProxyFix``), and the cookie leaves without Secure. The integrations warn once
when a plain-http request carries such a header.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

__all__ = ["ProxyWarning"]

logger = logging.getLogger("sessions")

MESSAGE = (
    "a request arrived over plain http carrying %s: the application seems to run "
    "behind a proxy that terminates TLS, but the server does not trust the proxy's "
    "headers, so the session cookie is sent WITHOUT the Secure flag. Make the server "
    "trust the proxy (uvicorn --proxy-headers --forwarded-allow-ips=<proxy address>; "
    "gunicorn --forwarded-allow-ips; werkzeug.middleware.proxy_fix.ProxyFix for WSGI) "
    "or set the cookie's secure=True (SESSION_COOKIE_SECURE=true). "
    "This warning is logged once."
)


def _says_https(forwarded_proto: str | None, forwarded: str | None) -> str | None:
    """Which header claims https, if one does."""
    if forwarded_proto and forwarded_proto.split(",", 1)[0].strip().lower() == "https":
        return "X-Forwarded-Proto: https"
    if forwarded:
        for part in forwarded.split(",", 1)[0].split(";"):
            name, _, value = part.partition("=")
            if name.strip().lower() == "proto" and value.strip().strip('"').lower() == "https":
                return "Forwarded: proto=https"
    return None


class ProxyWarning:
    """Logs :data:`MESSAGE` once for the middleware that owns it.

    Inactive (free) when the cookie's ``secure`` is set explicitly, and after
    the warning was given.
    """

    __slots__ = ("active",)

    def __init__(self, secure: bool | None) -> None:
        self.active = secure is None

    def check_asgi(self, headers: Iterable[tuple[bytes, bytes]]) -> None:
        """Inspect an http scope's headers."""
        proto = forwarded = None
        for name, value in headers:
            if name == b"x-forwarded-proto":
                proto = value.decode("latin-1")
            elif name == b"forwarded":
                forwarded = value.decode("latin-1")
        self._check(proto, forwarded)

    def check_wsgi(self, environ: dict[str, object]) -> None:
        """Inspect a plain-http WSGI environ."""
        proto = environ.get("HTTP_X_FORWARDED_PROTO")
        forwarded = environ.get("HTTP_FORWARDED")
        self._check(
            proto if isinstance(proto, str) else None,
            forwarded if isinstance(forwarded, str) else None,
        )

    def _check(self, proto: str | None, forwarded: str | None) -> None:
        header = _says_https(proto, forwarded)
        if header is not None:
            self.active = False
            logger.warning(MESSAGE, header)
