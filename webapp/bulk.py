"""Many rows at once: inserted at driver speed (COPY on PostgreSQL, executemany on SQLite),
and conditions naming many ids in as few statements as the database allows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY

#: Ids per IN list on SQLite (well within its limit on bound parameters).
CHUNK = 500


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


def one_of(column: Any, ids: Sequence[Any], chunk: int = CHUNK) -> Iterable[Any]:
    """Conditions "`column` is one of `ids`", in as few statements as the session's database
    allows: one `= ANY(array)` on PostgreSQL (a single parameter of the column's type however
    many ids, planned as an index scan), IN lists of `chunk` ids on SQLite."""
    from webapp.extensions import db

    if not ids:
        return
    if db.session.get_bind().dialect.name == "postgresql":
        yield column == any_(bindparam("ids", list(ids), type_=ARRAY(column.type),
                                   unique=True))
        return
    ids = list(ids)
    for start in range(0, len(ids), chunk):
        yield column.in_(ids[start:start + chunk])
