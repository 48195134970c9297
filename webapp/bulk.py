"""Rows into a table at driver speed: COPY on PostgreSQL, executemany on SQLite."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def insert_rows(connection, table: str, columns: Sequence[str],
                rows: Iterable[Sequence]) -> None:
    """Insert tuples of values in `columns` order into `table` (no commit).

    `connection` is a SQLAlchemy Connection (e.g. db.session.connection()); on SQLite the
    values must already be in its storage form.
    """
    names = ", ".join(columns)
    if connection.dialect.name == "postgresql":
        raw = connection.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    connection.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(rows))
