"""A read-only bridge from Starlette's ``SessionMiddleware`` (and FastAPI's, the same one).

Starlette keeps the whole session in a cookie (``session`` by default): base64
JSON signed with itsdangerous' ``TimestampSigner`` under the application's
``secret_key``. On a request that carries such a cookie and no session of ours,
:class:`StarletteCookieBridge` verifies it once with the old secret, copies its
values into our (fresh) session and expires the old cookie, so users who were
signed in stay signed in when an application switches::

    from sessions.asgi import SessionMiddleware
    from sessions.bridges.starlette import StarletteCookieBridge

    app.add_middleware(
        SessionMiddleware,
        manager=manager,
        bridges=[StarletteCookieBridge(secret_key=OLD_STARLETTE_SECRET)],
    )

Needs ``itsdangerous``, which every application using Starlette's session
middleware already has.
"""

from __future__ import annotations

import binascii
import json
from base64 import b64decode

import itsdangerous
from itsdangerous.exc import BadSignature

from ..config import CookieOptions
from ..driver import RequestContext
from ..errors import SessionError
from ..session import FLASH_KEY, Session

__all__ = ["StarletteCookieBridge"]

#: Starlette's default ``max_age``: 14 days.
STARLETTE_MAX_AGE = 14 * 24 * 60 * 60


class StarletteCookieBridge:
    """Adopts Starlette ``SessionMiddleware`` cookies into our sessions.

    Args:
        secret_key: the ``secret_key`` the application gave Starlette's middleware.
        cookie_name: Starlette's ``session_cookie`` (default ``"session"``, which
            may be our cookie's name too: a cookie is taken for Starlette's only
            when Starlette's signature verifies, which ours never does).
        max_age: Starlette's ``max_age``; older cookies are ignored, as
            Starlette would. ``None`` accepts any age.
        path: Starlette's ``path``, needed to expire its cookie.
        domain: Starlette's ``domain``, needed to expire its cookie.

    On a request whose own session is fresh (no valid cookie of ours), a
    cookie that verifies has its values copied into the session (top-level
    keys, as Starlette stored them) and is expired. A cookie that does not
    verify is ignored (and expired when it cannot be ours). When the request
    has a session of ours, a leftover Starlette cookie is only expired, never
    read again.
    """

    def __init__(
        self,
        secret_key: str,
        *,
        cookie_name: str = "session",
        max_age: int | None = STARLETTE_MAX_AGE,
        path: str = "/",
        domain: str | None = None,
    ) -> None:
        if not isinstance(secret_key, str) or not secret_key:
            raise TypeError(
                "StarletteCookieBridge needs secret_key: the non-empty string the "
                "application passed to Starlette's SessionMiddleware"
            )
        self.cookie_name = cookie_name
        self.max_age = max_age
        self._signer = itsdangerous.TimestampSigner(secret_key)
        self._options = CookieOptions(path=path, domain=domain)

    def open(self, raw: str) -> dict[str, object] | None:
        """The values of a Starlette session cookie, or None when it does not verify."""
        try:
            data = self._signer.unsign(raw.encode("utf-8"), max_age=self.max_age)
            values = json.loads(b64decode(data))
        except (BadSignature, binascii.Error, ValueError, UnicodeError):
            return None
        return values if isinstance(values, dict) else None

    def migrate(self, session: Session, context: RequestContext) -> None:
        """Copy a verified Starlette session into a fresh ``session``; expire the cookie."""
        raw = context.cookies.get(self.cookie_name)
        if raw is None:
            return
        shared_name = self.cookie_name == session._manager.config.cookie_name
        if not session.fresh:
            # The request has a live session of ours: the old cookie is history.
            if not shared_name:
                context.delete_cookie(self.cookie_name, self._options)
            return
        values = self.open(raw)
        if values is None:
            if not shared_name:
                context.delete_cookie(self.cookie_name, self._options)
            return
        if not session.readonly:
            for key, value in values.items():
                if key == FLASH_KEY:
                    continue
                try:
                    session[key] = value
                except SessionError:
                    # JSON gives only values we accept; a refusal here is a
                    # value this session cannot take, and the rest still moves.
                    continue
        # With a shared name, our own cookie (set at commit) replaces this deletion.
        context.delete_cookie(self.cookie_name, self._options)
