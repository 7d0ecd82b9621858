"""Read and write an application's sessions in tests, without HTTP.

    from sessions.testing import session_for

    def test_dashboard_greets_the_signed_in_user(client):
        with session_for(manager, client.cookies) as session:
            session.put("user.name", "ada")       # committed on leaving the block,
        assert "ada" in client.get("/").text      # its cookie now in client.cookies

        with session_for(manager, client.cookies) as session:
            assert session.get("visits") == 1     # what the app stored

The session is initiated from the cookies in ``cookies`` (any mutable mapping of
cookie names to values: a dict, ``httpx``'s and Starlette's ``client.cookies``)
and committed when the block ends without an exception; the cookies the commit
sets are written back into ``cookies`` (and deleted ones removed), as a browser
would. An exception in the block commits nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, MutableMapping
from contextlib import asynccontextmanager, contextmanager
from http.cookiejar import CookieJar

from ..driver import RequestContext
from ..manager import SessionManager
from ..session import Session

__all__ = ["asession_for", "session_for"]


def _read(cookies: MutableMapping[str, str] | None) -> dict[str, str]:
    if cookies is None:
        return {}
    jar = getattr(cookies, "jar", None)
    if isinstance(jar, CookieJar):
        # httpx keys cookies by (name, domain, path): the one a server set
        # (with its domain) is newer than one set here without a domain.
        found: dict[str, str] = {}
        for cookie in sorted(jar, key=lambda c: bool(c.domain)):
            if cookie.value is not None:
                found[cookie.name] = cookie.value
        return found
    return dict(cookies)


def _write(cookies: MutableMapping[str, str], name: str, value: str | None) -> None:
    jar = getattr(cookies, "jar", None)
    setter = getattr(cookies, "set", None)
    if isinstance(jar, CookieJar) and callable(setter):
        # Replace every copy, under the domain the server used, so the next
        # request sends exactly one.
        same = [cookie for cookie in jar if cookie.name == name]
        domain = next((cookie.domain for cookie in same if cookie.domain), "")
        for cookie in same:
            jar.clear(cookie.domain, cookie.path, cookie.name)
        if value is not None:
            setter(name, value, domain=domain)
        return
    cookies.pop(name, None)
    if value is not None:
        cookies[name] = value


def _context(manager: SessionManager, cookies: MutableMapping[str, str] | None) -> RequestContext:
    if not isinstance(manager, SessionManager):
        raise TypeError(
            f"session_for() needs the application's SessionManager, got {type(manager).__name__}"
        )
    return RequestContext(_read(cookies))


def _apply(context: RequestContext, cookies: MutableMapping[str, str] | None) -> None:
    if cookies is None:
        return
    for name, cookie in context.outgoing.items():
        _write(cookies, name, None if cookie.max_age == 0 else cookie.value)


@contextmanager
def session_for(
    manager: SessionManager,
    cookies: MutableMapping[str, str] | None = None,
    *,
    readonly: bool = False,
) -> Iterator[Session]:
    """An initiated session for ``cookies``, committed when the block ends.

    Uses the driver's sync flavour (``initiate``/``commit``); use
    :func:`asession_for` in async tests or with an async-only driver.

    Args:
        manager: the application's :class:`~sessions.SessionManager`.
        cookies: the test client's cookie jar: read to find the session, and
            updated with the cookies the commit sets. Omitted: a new session.
        readonly: read only; nothing is committed and no cookie changes.
    """
    context = _context(manager, cookies)
    session = manager.session(context)
    session.initiate(readonly=readonly)
    yield session
    session.commit()
    _apply(context, cookies)


@asynccontextmanager
async def asession_for(
    manager: SessionManager,
    cookies: MutableMapping[str, str] | None = None,
    *,
    readonly: bool = False,
) -> AsyncIterator[Session]:
    """:func:`session_for` for async code: ``ainitiate``/``acommit`` through the async flavour."""
    context = _context(manager, cookies)
    session = manager.session(context)
    await session.ainitiate(readonly=readonly)
    yield session
    await session.acommit()
    _apply(context, cookies)
