"""``sessions sql ddl``: print the table's CREATE statements for a database.

For reviewing, or pasting into a migration when Alembic is not in use. The
dialect comes from ``--url`` (or ``--dialect``), else from the ``SESSION_*``
environment the application itself reads. After the CREATE statements comes,
commented out, the upgrade of a table made before tags; ``--upgrade``
prints only that, ready to run.
"""

from __future__ import annotations

from typing import Any

import click
from sessions.config import SessionConfig
from sessions.errors import ConfigError
from sqlalchemy import MetaData, Table, create_mock_engine
from sqlalchemy.engine import URL
from sqlalchemy.schema import CreateIndex, CreateTable

from . import urls
from .schema import DEFAULT_TABLE, make_table
from .upgrade import upgrade_ddl

__all__ = ["ddl", "sql"]

_DIALECT_URLS = {
    "sqlite": "sqlite://",
    "postgresql": "postgresql+psycopg://",
    "mysql": "mysql+pymysql://",
    "mariadb": "mariadb+pymysql://",
}


@click.group()
def sql() -> None:
    """The sql driver's table: DDL for migrations."""


@sql.command()
@click.option("--url", help="database URL (default: SESSION_SQL_URL from the environment)")
@click.option(
    "--dialect",
    type=click.Choice(sorted(_DIALECT_URLS)),
    help="print for this dialect without a URL",
)
@click.option("--table", help="table name (default: SESSION_SQL_TABLE or 'sessions')")
@click.option("--schema", help="schema or database of the table (default: SESSION_SQL_SCHEMA)")
@click.option(
    "--upgrade",
    is_flag=True,
    help="print only the ALTER TABLE / CREATE INDEX that bring a table made before tags up to date",
)
def ddl(
    url: str | None, dialect: str | None, table: str | None, schema: str | None, upgrade: bool
) -> None:
    """Print CREATE TABLE and CREATE INDEX for the sessions table (or, with --upgrade,
    the ALTER TABLE for a table made by an earlier release)."""
    try:
        target, env_table, env_schema = _target(url, dialect)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    name, where = table or env_table or DEFAULT_TABLE, schema or env_schema
    click.echo(render_upgrade(target, name, where) if upgrade else render(target, name, where))


def render_upgrade(url: URL, table: str = DEFAULT_TABLE, schema: str | None = None) -> str:
    """The upgrade of a table made before tags (a ``tag`` column and its index), for ``url``."""
    engine = create_mock_engine(url, lambda *_args, **_kwargs: None)
    return upgrade_ddl(make_table(MetaData(), table, schema), engine.dialect)


def render(url: URL, table: str = DEFAULT_TABLE, schema: str | None = None) -> str:
    """The DDL, as the dialect of ``url`` spells it, one statement per paragraph.

    The upgrade of a table made before tags follows, commented out, so the
    output still runs as it is.
    """
    statements: list[str] = []

    def collect(sql: Any, *_args: Any, **_kwargs: Any) -> None:
        text = str(sql.compile(dialect=engine.dialect)).strip()
        statements.append("\n".join(line.rstrip() for line in text.splitlines()) + ";")

    # A mock engine compiles for the dialect without connecting or needing its DBAPI.
    engine = create_mock_engine(url, collect)
    created: Table = make_table(MetaData(), table, schema)
    collect(CreateTable(created))
    for index in sorted(created.indexes, key=lambda i: str(i.name)):
        collect(CreateIndex(index))
    upgrade = upgrade_ddl(created, engine.dialect)
    statements.append(
        "-- Upgrading a table made before tags instead (sessions sql ddl --upgrade):\n"
        + "\n".join(f"-- {line}" for line in upgrade.splitlines() if line)
    )
    return "\n\n".join(statements)


def _target(url: str | None, dialect: str | None) -> tuple[URL, str | None, str | None]:
    if url is not None:
        return urls.parse(url, "--url"), None, None
    if dialect is not None:
        return urls.parse(_DIALECT_URLS[dialect], "--dialect"), None, None
    config = SessionConfig.from_env(driver="sql")
    options = config.driver_options("sql")
    if not options.get("url"):
        raise ConfigError(
            "SESSION_SQL_URL",
            None,
            "a database URL; or pass --url URL or --dialect sqlite|postgresql|mysql|mariadb",
        )
    return (
        urls.parse(options["url"], "SESSION_SQL_URL"),
        options.get("table"),
        options.get("schema"),
    )
