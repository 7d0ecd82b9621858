"""``sessions sql ddl`` and ``sessions gc`` through the real ``sessions`` command line."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from sessions.cli import make_cli
from sessions.codec import encode
from sessions.plugins import reset_plugins
from sessions.testing import Harness, new_key
from sessions_sql.driver import SQLDriver
from sqlalchemy import text

from .conftest import SECRET, Database


@pytest.fixture(autouse=True)
def _installed_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The command comes from this package's entry point, as for a user.
    monkeypatch.delenv("SESSIONS_PLUGINS", raising=False)
    monkeypatch.delenv("SESSIONS_DISABLED_PLUGINS", raising=False)
    reset_plugins()
    yield
    reset_plugins()


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(make_cli(), list(args), env=env or {}, catch_exceptions=False)
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        ("postgresql", ['COLLATE "C"', "BYTEA", "TIMESTAMP WITH TIME ZONE"]),
        ("mariadb", ["CHARACTER SET ascii COLLATE ascii_bin", "LONGBLOB", "DATETIME(6)"]),
        ("mysql", ["CHARACTER SET ascii COLLATE ascii_bin", "LONGBLOB", "DATETIME(6)"]),
        ("sqlite", ["VARCHAR(43)", "BLOB", "DATETIME"]),
    ],
)
def test_ddl_for_a_dialect(dialect: str, expected: list[str]) -> None:
    code, output = run("sql", "ddl", "--dialect", dialect)
    assert code == 0, output
    assert output.startswith("CREATE TABLE sessions (")
    for fragment in [*expected, "PRIMARY KEY", "version BIGINT", "tag VARCHAR(255)"]:
        assert fragment in output
    assert "owner" not in output
    assert "CREATE INDEX ix_sessions_expires_at ON sessions (expires_at);" in output
    assert "CREATE INDEX ix_sessions_tag ON sessions (tag);" in output
    # The upgrade of a 0.1 table follows, commented out, so the output runs as it is.
    create, _, upgrade = output.partition("-- Upgrading a table made before tags")
    assert "ALTER" not in create
    assert "-- ALTER TABLE sessions ADD COLUMN tag VARCHAR(255)" in upgrade
    assert "-- CREATE INDEX ix_sessions_tag ON sessions (tag);" in upgrade


@pytest.mark.parametrize("dialect", ["postgresql", "mariadb", "sqlite"])
def test_ddl_upgrade_prints_only_the_alter_statements(dialect: str) -> None:
    code, output = run("sql", "ddl", "--dialect", dialect, "--upgrade", "--table", "web")
    assert code == 0, output
    statements = [s.strip() for s in output.split(";") if s.strip()]
    assert len(statements) == 2
    assert statements[0].startswith("ALTER TABLE web ADD COLUMN tag VARCHAR(255)")
    assert statements[1] == "CREATE INDEX ix_web_tag ON web (tag)"


def test_ddl_from_the_environment_with_table_and_schema(mariadb_db: Database) -> None:
    env = {
        "SESSION_SECRET": SECRET,
        "SESSION_SQL_URL": mariadb_db.url,
        "SESSION_SQL_TABLE": "web_sessions",
    }
    code, output = run("sql", "ddl", "--schema", "app", env=env)
    assert code == 0, output
    assert "CREATE TABLE app.web_sessions" in output
    assert "ascii_bin" in output


def test_ddl_without_a_database_says_what_to_give() -> None:
    code, output = run("sql", "ddl", env={"SESSION_SECRET": SECRET})
    assert code == 2
    assert "SESSION_SQL_URL" in output
    assert "--url" in output
    assert "--dialect" in output


def test_ddl_refuses_an_unsupported_database() -> None:
    code, output = run("sql", "ddl", "--url", "oracle://scott@127.0.0.1/db")
    assert code == 2
    assert "postgresql" in output


def test_printed_ddl_creates_a_table_the_driver_uses(any_db: Database) -> None:
    table = f"from_ddl_{new_key()[:8].lower().replace('-', '_')}"
    code, output = run("sql", "ddl", "--url", any_db.url, "--table", table)
    assert code == 0, output
    with any_db.engine.begin() as conn:
        for statement in output.strip().split(";\n"):
            conn.execute(text(statement.rstrip(";")))
    h = Harness(SQLDriver, {"url": any_db.url, "table": table, "create_table": False}, age=60)
    key = new_key()
    h.call("write", key, {"via": "ddl"})
    assert h.call("read", key) == {"via": "ddl"}
    h.manager.close()


def test_sessions_gc_command(sqlite_db: Database) -> None:
    sqlite_db.table()
    for _ in range(4):
        sqlite_db.put_raw(new_key(), b"{}", expires_in=-1)
    live = new_key()
    sqlite_db.put_raw(live, encode({"a": 1}))
    env = {"SESSION_SECRET": SECRET, "SESSION_DRIVER": "sql", "SESSION_SQL_URL": sqlite_db.url}
    code, output = run("gc", "--json", env=env)
    assert code == 0, output
    assert '"removed": 4' in output
    assert sqlite_db.count() == 1
