"""``sessions gc``: bulk clean-up of expired sessions, for drivers that need it."""

from __future__ import annotations

import inspect
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import anyio
import click

from ..driver import GcProgress, GcResult
from ..errors import SessionError
from ..manager import SessionManager
from .common import env_file_option, load_config


def _run(manager: SessionManager, progress: GcProgress) -> GcResult:
    driver = manager.driver
    if callable(getattr(driver, "gc", None)) and not inspect.iscoroutinefunction(driver.gc):
        return manager.gc(progress=progress)
    # An async-only driver offers ``agc`` (or an async ``gc``); run it in an event loop.
    fn = getattr(driver, "agc", None) or driver.gc

    async def call() -> Any:
        return await fn(progress=progress)

    result: GcResult = anyio.run(call)
    return result


def _size(nbytes: int | None) -> str:
    if nbytes is None:
        return "unknown"
    if nbytes < 1024:
        return f"{nbytes} bytes"
    size = nbytes / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


@click.command()
@env_file_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def gc(env_file: Path, as_json: bool) -> None:
    """Remove expired sessions from the selected driver's store.

    Only drivers with the gc capability need this (file, sql, memory); stores
    that expire entries themselves (redis, memcached, cookie) have nothing to do,
    which is reported and is not an error. Run it from cron: it needs the
    driver's settings, not SESSION_SECRET.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    config = load_config(env_file, needs_secret=False)
    manager = SessionManager(config)
    try:
        if not manager.has_gc:
            message = (
                f"driver {config.driver!r} expires sessions by itself "
                "(no gc capability): nothing to do"
            )
            click.echo(json.dumps({"driver": config.driver, "gc": False}) if as_json else message)
            return
        with Progress(
            TextColumn("[bold]collecting[/bold] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=Console(stderr=True),
            transient=True,
        ) as bar:
            task = bar.add_task(config.driver, total=None)

            def progress(scanned: int, total: int | None) -> None:
                bar.update(task, completed=scanned, total=total)

            result = _run(manager, progress)
    except SessionError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        manager.close()
    if as_json:
        click.echo(json.dumps({"driver": config.driver, "gc": True, **asdict(result)}))
        return
    click.echo(
        f"{config.driver}: scanned {result.scanned}, removed {result.removed}, "
        f"freed {_size(result.bytes_freed)}, in {result.seconds:.3f} s"
    )
