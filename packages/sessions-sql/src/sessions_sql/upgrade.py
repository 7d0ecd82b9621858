"""Bringing a sessions table made by an earlier release up to this one.

The driver's first layout (before tags) was ``key, data, expires_at,
version, owner`` with an index on ``expires_at``. This release writes a ``tag``
column (indexed) and no longer uses ``owner``, which was never written. Every
added column is nullable or has a default, so adding it is quick, keeps every
row (nobody is logged out), and processes of the earlier release still running
during a rolling deploy keep working next to it: they never name ``tag`` nor
``owner``.

The driver checks the table once at startup (:func:`missing_columns`) and,
with ``create_table`` on, adds what is missing (:func:`add_columns`); with it
off (server databases, whose schema belongs to migrations) it refuses to start
with :class:`TableOutdatedError`, which says what to run. ``sessions sql ddl``
prints the same statements (:func:`upgrade_ddl`).
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Table, inspect, text
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.schema import CreateColumn, CreateIndex

__all__ = [
    "TableOutdatedError",
    "add_columns",
    "missing_columns",
    "outdated_message",
    "upgrade_ddl",
    "upgrade_statements",
]

#: Columns a table made before tags lacks.
ADDED_SINCE_FIRST_LAYOUT = ("tag",)


class TableOutdatedError(Exception):
    """The sessions table lacks columns this release writes (the cause inside a DriverError)."""


def missing_columns(conn: Connection, table: Table) -> list[Column[object]]:
    """Columns of ``table`` the database's table does not have (none if it is missing)."""
    found = inspect(conn).get_columns(table.name, schema=table.schema)
    names = {str(column["name"]).lower() for column in found}
    return [column for column in table.columns if column.name.lower() not in names]


def upgrade_statements(
    table: Table, dialect: Dialect, columns: list[Column[object]] | None = None
) -> list[str]:
    """``ALTER TABLE ... ADD COLUMN`` and ``CREATE INDEX`` for ``columns`` of ``table``.

    ``columns`` defaults to those a table made before tags lacks.
    """
    if columns is None:
        columns = [table.c[name] for name in ADDED_SINCE_FIRST_LAYOUT]
    name = dialect.identifier_preparer.format_table(table)
    statements = [
        f"ALTER TABLE {name} ADD COLUMN {CreateColumn(column).compile(dialect=dialect)}"
        for column in columns
    ]
    statements += [
        str(CreateIndex(index).compile(dialect=dialect)) for index in _indexes_of(table, columns)
    ]
    return statements


def add_columns(conn: Connection, table: Table, columns: list[Column[object]]) -> None:
    """Add ``columns`` (and their indexes) to the table; a concurrent adder is tolerated."""
    for statement in upgrade_statements(table, conn.dialect, columns):
        try:
            conn.execute(text(statement))
        except SQLAlchemyError:
            # Another process may have added it between our check and now.
            if missing_columns(conn, table) and statement.startswith("ALTER"):
                raise
            if statement.startswith("CREATE") and not _has_index(conn, table, statement):
                raise
    if conn.in_transaction():
        conn.commit()


def outdated_message(table: Table, dialect: Dialect, columns: list[Column[object]]) -> str:
    """What is missing and the three ways to add it."""
    names = ", ".join(column.name for column in columns)
    ops = "; ".join(
        [f"op.add_column({table.name!r}, sa.Column({column.name!r}, ...))" for column in columns]
        + [
            f"op.create_index({index.name!r}, {table.name!r}, {[c.name for c in index.columns]!r})"
            for index in _indexes_of(table, columns)
        ]
    )
    sql = "; ".join(upgrade_statements(table, dialect, columns))
    return (
        f"table {table.fullname!r} lacks column(s) {names} that this release of sessions-sql "
        f"writes: upgrade it with your migrations (Alembic: {ops}; see the sql driver's docs), "
        f"or run `sessions sql ddl --upgrade`, which prints: {sql}; "
        "or set the sql driver's create_table=true to let the driver add them"
    )


def upgrade_ddl(table: Table, dialect: Dialect) -> str:
    """The upgrade of a table made before tags, as ``sessions sql ddl`` prints it."""
    return "\n\n".join(f"{s};" for s in upgrade_statements(table, dialect))


def _indexes_of(table: Table, columns: list[Column[object]]) -> list[Index]:
    added = {column.name for column in columns}
    return sorted(
        (i for i in table.indexes if added & {c.name for c in i.columns}),
        key=lambda i: str(i.name),
    )


def _has_index(conn: Connection, table: Table, statement: str) -> bool:
    indexes = inspect(conn).get_indexes(table.name, schema=table.schema)
    return any(str(index["name"]) in statement for index in indexes)
