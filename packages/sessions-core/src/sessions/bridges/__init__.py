"""Bridges: move sessions kept by another library into ours, without logging anyone out.

A bridge is passed to :class:`sessions.asgi.SessionMiddleware` (``bridges=[...]``).
It only reads the other library's data: nothing is written in its format.
"""
