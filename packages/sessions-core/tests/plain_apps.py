"""Two requests through a real integration, for contract tests of plain drivers."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
from sessions import SessionManager


def _wsgi(manager: SessionManager) -> Any:
    from sessions.wsgi import SessionMiddleware

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = environ["sessions.session"]
        count = session.increment("n")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(count).encode()]

    return SessionMiddleware(app, manager)


def _asgi(manager: SessionManager) -> Any:
    from sessions.asgi import SessionMiddleware

    async def app(scope: Any, receive: Any, send: Any) -> None:
        count = scope["session"].increment("n")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(count).encode()})

    return SessionMiddleware(app, manager)


def two_requests(manager: SessionManager, integration: str) -> int:
    """Run two requests carrying cookies; the counter the second one saw."""
    if integration == "wsgi":
        with httpx.Client(
            transport=httpx.WSGITransport(app=_wsgi(manager)), base_url="http://t"
        ) as client:
            client.get("/")
            return int(client.get("/").text)

    async def run() -> int:
        transport = httpx.ASGITransport(app=_asgi(manager))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await client.get("/")
            return int((await client.get("/")).text)

    return anyio.run(run)
