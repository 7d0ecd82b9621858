"""uvicorn's h11 protocol with TCP_NODELAY set on every accepted connection.

uvicorn started with ``--workers N`` leaves TCP_NODELAY off on its keep-alive
connections (encode/uvicorn#3149): a response written in two parts then waits
for the client's delayed ACK, about 40 ms a request on loopback. The soak
suite serves its ASGI apps with ``--http nodelay:NoDelayH11Protocol``.
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


class NoDelayH11Protocol(H11Protocol):
    """H11Protocol that turns Nagle's algorithm off first."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
