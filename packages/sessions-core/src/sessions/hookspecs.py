"""The pluggy hook specifications of the ``sessions`` project.

Plugins implement these with the `sessions.hookimpl` marker. Driver packages
implement `sessions_register_drivers` (and, if they have maintenance commands,
`sessions_register_commands`); audit and metrics plugins implement the
lifecycle hooks, which core calls only when some plugin implements them, so
they cost nothing otherwise.

The docstrings here are the hook reference: ``docs/hooks.md`` is generated
from them (``sessions hooks --markdown``), and a test fails when the two differ.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from .plugins import DriverRegistry

__all__ = [
    "LIFECYCLE_HOOKS",
    "PROJECT",
    "hookimpl",
    "hookspec",
    "sessions_committed",
    "sessions_conflict",
    "sessions_decode_failed",
    "sessions_destroyed",
    "sessions_initiated",
    "sessions_migrated",
    "sessions_register_commands",
    "sessions_register_drivers",
]

#: The pluggy project name: hook implementations are marked for it.
PROJECT = "sessions"

hookspec = pluggy.HookspecMarker(PROJECT)
#: Marker for hook implementations: ``@hookimpl def sessions_register_drivers(registry): ...``.
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def sessions_register_drivers(registry: DriverRegistry) -> None:
    """Add drivers to the registry.

    Called once per process, on the first driver lookup, for every plugin found
    through the ``sessions.drivers`` entry points (and for core's own drivers).

    ```python
    @hookimpl
    def sessions_register_drivers(registry):
        registry.add("redis", "sessions_redis.driver:RedisDriver")
    ```

    Args:
        registry: call `registry.add(name, factory)` for each driver. `name` is the
            config name (`SESSION_DRIVER=name`) and should equal the entry point's name;
            `factory` is the driver class or, better, a `"module:attr"` string, so
            nothing heavy is imported until the driver is selected.

    An exception raised here is recorded against the plugin (shown by
    `sessions drivers`) and discards everything that plugin added; other
    plugins are unaffected.
    """


@hookspec
def sessions_register_commands(cli: click.Group) -> None:
    """Add subcommands to the `sessions` command line.

    Called only when the command line needs a command it does not have built in
    (or lists its commands), so `sessions secret` stays fast.

    ```python
    @hookimpl
    def sessions_register_commands(cli):
        @cli.group()
        def sql():
            "SQL driver maintenance."
    ```

    Args:
        cli: the root `click.Group`; add commands or groups to it. Name them after
            your driver to avoid clashes.
    """


@hookspec
def sessions_initiated(session_id: str, fresh: bool, readonly: bool, driver: str) -> None:
    """A session was initiated for a request (its values were read).

    Args:
        session_id: the storage key (SHA-256 of the cookie token, base64url), never the
            token itself, so it is safe to log.
        fresh: `True` when no stored session was found (no cookie, a bad cookie, or
            an unknown, expired or unreadable record) and a new id was made.
        readonly: `True` for read-only sessions (websockets, `initiate(readonly=True)`).
        driver: the configured driver name.
    """


@hookspec
def sessions_committed(session_id: str, action: str, driver: str) -> None:
    """A session was committed at the end of a request.

    Called after `sessions_migrated` and `sessions_destroyed` of the same commit.
    Read-only sessions do not commit, so they never reach this hook.

    Args:
        session_id: the storage key the session now lives under.
        action: what reached the store for this key: `"write"`, `"touch"`,
            `"destroy"` (the session became empty) or `"none"` (nothing to store, or
            the driver's read already refreshed the expiry).
        driver: the configured driver name.
    """


@hookspec
def sessions_migrated(old_session_id: str, new_session_id: str, driver: str) -> None:
    """A session was regenerated: its data moved to a new storage key.

    Called at commit, after the store was updated, before `sessions_destroyed`
    for the old key. Only a session that was stored has an old key, so
    regenerating a brand-new session calls nothing here. Audit logs use it to
    follow a user across a login.

    Args:
        old_session_id: the storage key before `regenerate()`; its record is destroyed.
        new_session_id: the storage key after it.
        driver: the configured driver name.
    """


@hookspec
def sessions_destroyed(session_id: str, driver: str) -> None:
    """A stored session record was removed at commit.

    That happens when a stored session became empty, and for the old key of a
    regenerated session.

    Args:
        session_id: the storage key that was destroyed.
        driver: the configured driver name.
    """


@hookspec
def sessions_conflict(session_id: str, outcome: str, attempts: int, driver: str) -> None:
    """A commit met a change that another request committed to the same session.

    Only drivers with the versioned capability detect this. The response
    succeeds either way; this hook is for monitoring how often requests overlap.

    Args:
        session_id: the storage key being committed.
        outcome: `"merged"` (this request's changes were replayed onto the newer
            record and stored) or `"dropped"` (the record was destroyed meanwhile,
            by a logout, a regenerate or an expiry, so this request's changes to it
            were discarded rather than bringing it back).
        attempts: compare-and-set attempts the commit made.
        driver: the configured driver name.
    """


@hookspec
def sessions_decode_failed(source: str, reason: str, driver: str) -> None:
    """A cookie or stored payload failed to verify or decode.

    The request goes on with a fresh session, never an error page; this hook is
    for security logging (many failures from one client suggest tampering).

    Args:
        source: `"id-cookie"` (the signed id cookie did not verify), `"data-cookie"`
            (the cookie driver could not decrypt or decode its cookie) or `"store"`
            (a driver read a record that is not a valid payload).
        reason: what was wrong, in words; it never contains a secret or a token.
        driver: the configured driver name.
    """


#: The hooks core calls during requests (the rest are called at startup).
LIFECYCLE_HOOKS = (
    "sessions_initiated",
    "sessions_committed",
    "sessions_migrated",
    "sessions_destroyed",
    "sessions_conflict",
    "sessions_decode_failed",
)
