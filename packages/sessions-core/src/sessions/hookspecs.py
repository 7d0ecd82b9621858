"""The pluggy hook specifications of the ``sessions`` project.

Plugins implement these with the :data:`sessions.hookimpl` marker. Driver
packages implement :func:`sessions_register_drivers`; audit and metrics plugins
implement the lifecycle hooks, which core calls only when some plugin
implements them, so they cost nothing otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .plugins import DriverRegistry

hookspec = pluggy.HookspecMarker("sessions")
hookimpl = pluggy.HookimplMarker("sessions")


@hookspec
def sessions_register_drivers(registry: DriverRegistry) -> None:
    """Add drivers: ``registry.add("redis", "sessions_redis.driver:RedisDriver")``.

    Give the factory as a ``"module:attr"`` string so nothing heavy is imported
    until the driver is selected.
    """


@hookspec
def sessions_register_commands(cli: Any) -> None:
    """Add subcommands to the ``sessions`` command line (a :class:`click.Group`)."""


@hookspec
def sessions_initiated(session_id: str, fresh: bool, readonly: bool, driver: str) -> None:
    """A session was initiated for a request: ``session_id`` is its storage key."""


@hookspec
def sessions_committed(session_id: str, action: str, driver: str) -> None:
    """A session was committed. ``action`` is what reached the store:
    ``"write"``, ``"touch"``, ``"destroy"`` or ``"none"``."""


@hookspec
def sessions_migrated(old_session_id: str, new_session_id: str, driver: str) -> None:
    """A session was regenerated: its data moved from one storage key to another."""


@hookspec
def sessions_destroyed(session_id: str, driver: str) -> None:
    """A stored session was removed (emptied, or left behind by regenerate)."""


@hookspec
def sessions_decode_failed(source: str, reason: str, driver: str) -> None:
    """A cookie or stored payload failed to verify or decode.

    ``source`` is ``"id-cookie"``, ``"data-cookie"`` or ``"store"``; ``reason``
    says what was wrong. The request goes on with a fresh session; this hook is
    for security logging.
    """
