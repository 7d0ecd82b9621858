"""The sql driver passes the conformance suite on each real database, in both flavours.

The sync suite runs on the sync DBAPIs (sqlite3, psycopg, PyMySQL) and the
async suite on the async ones (aiosqlite, asyncpg, aiomysql) made from the
same URL.
"""

from __future__ import annotations

from typing import Any

import pytest
from sessions.testing import AsyncDriverConformance, DriverConformance, Harness
from sessions_sql.driver import SQLDriver

from .conftest import Database

GARBAGE = b"\x80 this is not a session payload"


class _OnDatabase:
    db: Database
    driver_factory = SQLDriver
    driver_options: dict[str, Any] = {}

    def corrupt(self, harness: Harness, session_id: str) -> None:
        self.db.put_raw(session_id, GARBAGE)


def _use(instance: Any, db: Database) -> None:
    db.table()
    instance.db = db
    instance.driver_options = {"url": db.url}


class TestSQLiteSync(_OnDatabase, DriverConformance):
    @pytest.fixture(autouse=True)
    def _database(self, sqlite_db: Database) -> None:
        _use(self, sqlite_db)


class TestSQLiteAsync(_OnDatabase, AsyncDriverConformance):
    @pytest.fixture(autouse=True)
    def _database(self, sqlite_db: Database) -> None:
        _use(self, sqlite_db)


class TestSQLiteTrio(TestSQLiteAsync):
    """SQLAlchemy's async engines need asyncio: on trio, core uses the sync flavour."""

    backend = "trio"


class TestPostgresSync(_OnDatabase, DriverConformance):
    @pytest.fixture(autouse=True)
    def _database(self, postgres_db: Database) -> None:
        _use(self, postgres_db)


class TestPostgresAsync(_OnDatabase, AsyncDriverConformance):
    @pytest.fixture(autouse=True)
    def _database(self, postgres_db: Database) -> None:
        _use(self, postgres_db)


class TestPostgresTrio(TestPostgresAsync):
    backend = "trio"


class TestMariaDBSync(_OnDatabase, DriverConformance):
    @pytest.fixture(autouse=True)
    def _database(self, mariadb_db: Database) -> None:
        _use(self, mariadb_db)


class TestMariaDBAsync(_OnDatabase, AsyncDriverConformance):
    @pytest.fixture(autouse=True)
    def _database(self, mariadb_db: Database) -> None:
        _use(self, mariadb_db)


class TestMariaDBTrio(TestMariaDBAsync):
    backend = "trio"
