"""``sessions check``: a write/read/touch/destroy round trip through the configured driver."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from anyio.from_thread import BlockingPortal, start_blocking_portal

from ..config import SessionConfig
from ..driver import RequestContext, acall
from ..keys import new_token, storage_key
from ..manager import SessionManager
from ..redact import redact_text
from .common import env_file_option, load_config


class _Trip:
    """Runs each operation as its own request; cookies carry over like a browser's,
    so drivers that keep data in the cookie are checked the same way."""

    def __init__(self, manager: SessionManager, portal: BlockingPortal | None) -> None:
        self.manager = manager
        # One event loop for every async call, as in an application, so loop-bound
        # pools of async drivers are used the way they are meant to be.
        self.portal = portal
        self.jar: dict[str, str] = {}

    def __call__(self, op: str, *args: Any) -> Any:
        context = RequestContext(dict(self.jar))
        driver = self.manager.request_driver(context)
        if self.portal is not None:
            flavours = self.manager.flavours

            async def run() -> Any:
                return await acall(flavours, driver, op, *args)

            result = self.portal.call(run)
        else:
            result = getattr(driver, op)(*args)
        for name, cookie in context.outgoing.items():
            if cookie.max_age == 0:
                self.jar.pop(name, None)
            else:
                self.jar[name] = cookie.value
        return result


def _step(label: str, action: Callable[[], Any], check: Callable[[Any], str | None]) -> Any:
    started = time.perf_counter()
    try:
        result = action()
    except Exception as exc:
        click.echo(f"  FAIL  {label}: {type(exc).__name__}: {redact_text(str(exc))}")
        raise _Failed(label) from exc
    elapsed = (time.perf_counter() - started) * 1000
    problem = check(result)
    if problem is not None:
        click.echo(f"  FAIL  {label}: {problem}")
        raise _Failed(label)
    click.echo(f"  ok    {label} ({elapsed:.1f} ms)")
    return result


class _Failed(Exception):
    pass


def _close(close: Callable[[], Any]) -> None:
    try:
        close()
    except Exception as exc:
        click.echo(f"  warning: closing the driver failed: {type(exc).__name__}: {exc}")


@click.command()
@env_file_option
@click.option(
    "--flavour",
    type=click.Choice(["auto", "sync", "async"]),
    default="auto",
    show_default=True,
    help="Which side of the driver to exercise (auto: sync when it has one).",
)
def check(env_file: Path, flavour: str) -> None:
    """Check that the configured driver works: write, read, touch and destroy a
    throwaway session, then print a verdict (exit status 1 on failure)."""
    config = load_config(env_file)
    click.echo(f"driver {config.driver!r} (age {config.age_seconds} s)")
    key = storage_key(new_token())
    values = {"sessions-check": key[:8], "at": datetime.now(UTC)}
    failed: str | None = None
    with ExitStack() as stack:
        failed = _run_steps(config, key, values, flavour, stack)
    if failed is not None:
        click.echo(f"FAILED: driver {config.driver!r} did not pass the check (step: {failed})")
        raise SystemExit(1)
    click.echo(f"OK: driver {config.driver!r} stores, reads and removes sessions")


def _built(config: SessionConfig) -> SessionManager:
    manager = SessionManager(config)
    manager.driver  # noqa: B018 - builds it
    return manager


def _run_steps(
    config: SessionConfig, key: str, values: dict[str, Any], flavour: str, stack: ExitStack
) -> str | None:
    """Run every step; the label of the first that failed, or None."""
    try:
        manager: SessionManager = _step(
            "load and build the driver", lambda: _built(config), lambda _: None
        )
        name = manager.config.driver
        entry = manager.plugins.drivers.get(name)
        origin = f"{entry.distribution} {entry.version}" if entry else "unknown distribution"
        where = manager.driver.describe() if hasattr(manager.driver, "describe") else "?"
        click.echo(
            f"  from {origin}, storing in {redact_text(str(where))}, "
            f"flavours {manager.flavours.label}"
        )
        if not getattr(manager.driver, "durable", True):
            click.echo(
                f"  warning: driver {name!r} is not durable: it keeps sessions in memory only, "
                "so a restart of its store logs every user out"
            )
        use_async = flavour == "async" or (flavour == "auto" and not manager.flavours.sync)
        portal = None
        if use_async:
            portal = stack.enter_context(start_blocking_portal())
            stack.callback(_close, lambda: portal.call(manager.aclose))
        else:
            stack.callback(_close, manager.close)
        if flavour == "sync":
            _step("sync flavour available", manager.require_sync, lambda _: None)
        trip = _Trip(manager, portal)
        side = "async" if use_async else "sync"
        click.echo(f"  throwaway key {key[:12]}... via the {side} flavour")
        _step("write", lambda: trip("write", key, values), lambda _: None)
        _step(
            "read back",
            lambda: trip("read", key),
            lambda got: None if got == values else f"expected {values!r}, read {got!r}",
        )
        _step("touch", lambda: trip("touch", key), lambda _: None)
        _step("destroy", lambda: trip("destroy", key), lambda _: None)
        _step(
            "read after destroy",
            lambda: trip("read", key),
            lambda got: None if got is None else f"expected nothing, read {got!r}",
        )
    except _Failed as exc:
        return str(exc)
    return None
