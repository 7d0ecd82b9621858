"""``sessions list`` and ``sessions revoke``: a user's sessions, from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..collection import SessionInfo
from ..errors import SessionError
from ..manager import SessionManager
from .common import env_file_option, load_config


def _manager(env_file: Path) -> SessionManager:
    try:
        return SessionManager(load_config(env_file))
    except SessionError as exc:
        raise click.ClickException(str(exc)) from exc


def _row(info: SessionInfo) -> dict[str, Any]:
    return {
        "session_id": info.session_id,
        "tag": info.tag,
        "created_at": None if info.created_at is None else info.created_at.isoformat(),
        "last_seen": info.last_seen.isoformat(),
        "expires_at": info.expires_at.isoformat(),
        "keys": sorted(info.values),
    }


@click.command(name="list")
@click.option("--tag", required=True, help="List the sessions tagged with this (a user id).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@env_file_option
def list_sessions(tag: str, as_json: bool, env_file: Path) -> None:
    """List the live sessions of one tag (a user's devices), most recent first.

    Values are not printed, only their keys: a session may hold personal data.
    """
    manager = _manager(env_file)
    try:
        found = manager.sessions.tagged(tag)
    except SessionError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        manager.close()
    rows = [_row(info) for info in found]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"Sessions tagged {escape(tag)!r} ({len(rows)})")
    for column in ("Session id", "Created", "Last seen", "Expires", "Keys"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["session_id"],
            row["created_at"] or "-",
            row["last_seen"],
            row["expires_at"],
            escape(", ".join(row["keys"]) or "-"),
        )
    Console().print(table)


@click.command()
@click.option("--tag", help="End every session with this tag (sign a user out everywhere).")
@click.option("--keep", help="With --tag: a session id to keep (the one in use).")
@click.option("--id", "session_id", help="End one session by its id (as `sessions list` shows).")
@env_file_option
def revoke(tag: str | None, keep: str | None, session_id: str | None, env_file: Path) -> None:
    """End sessions: all of one tag (--tag, optionally --keep one) or one (--id)."""
    if (tag is None) == (session_id is None):
        raise click.UsageError("give exactly one of --tag or --id")
    if keep is not None and tag is None:
        raise click.UsageError("--keep goes with --tag")
    manager = _manager(env_file)
    try:
        if tag is not None:
            count = manager.sessions.destroy_tagged(tag, keep=keep)
            kept = f", kept {keep}" if keep else ""
            click.echo(f"revoked {count} session{'s' if count != 1 else ''} tagged {tag!r}{kept}")
        else:
            assert session_id is not None
            manager.sessions.destroy(session_id)
            click.echo(f"revoked session {session_id}")
    except SessionError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        manager.close()
