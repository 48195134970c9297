"""Many rows at once: inserted at driver speed (COPY on PostgreSQL, executemany on SQLite),
and conditions naming many ids in as few statements as the database allows."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import any_, bindparam, func, literal_column, select
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


def one_of(column: Any, ids: Sequence[Any]) -> Any:
    """The condition "`column` is one of `ids`" with the ids as one parameter however many
    there are: `= ANY(array)` of the column's type on PostgreSQL, `IN (SELECT value FROM
    json_each(array))` on SQLite; both are planned as one index lookup per id. (IN lists of
    500 ids cost SQLAlchemy as much again as the lookups: it renders the list's parameters
    on every run.)"""
    from webapp.extensions import db

    if db.session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam("ids", list(ids), type_=ARRAY(column.type),
                                        unique=True))
    listed = func.json_each(bindparam("ids", json.dumps(list(ids)), unique=True))
    return column.in_(select(literal_column("value")).select_from(listed))
