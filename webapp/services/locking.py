"""Serializing the writes that check a limit or a balance before they write.

A fulfillment must read the counts and write the award with no other award in between;
a redemption must read the balance and debit it likewise. On PostgreSQL the transaction
locks the offer's (or member's) row with SELECT ... FOR UPDATE, so writers of the same row
queue while others go on, and each statement after the lock reads what the previous holder
committed (READ COMMITTED). SQLite has one writer at a time: the transaction takes the
write lock up front (BEGIN IMMEDIATE) instead of at its first write, so no other writer can
commit between its reads and its writes.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Member, Offer


def _sqlite_write_lock() -> bool:
    """On SQLite, start the session's transaction with BEGIN IMMEDIATE (True if SQLite)."""
    if db.session.get_bind().dialect.name != "sqlite":
        return False
    connection = db.session.connection()
    raw = connection.connection.dbapi_connection
    if raw is not None and raw.in_transaction:
        # Earlier writes of this request: finish them, then start over holding the lock.
        db.session.commit()
        connection = db.session.connection()
        raw = connection.connection.dbapi_connection
    if raw is not None and not raw.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    return True


def _lock(model: Any, key: Any) -> None:
    if _sqlite_write_lock():
        return
    db.session.execute(sa.select(model.id).where(model.id == key).with_for_update())


def lock_offer(offer_id: int) -> None:
    """Hold the offer's row (PostgreSQL) or the database's write lock (SQLite) until the
    session's transaction ends."""
    _lock(Offer, offer_id)


def lock_member(member_id: str) -> None:
    """Hold the member's row (PostgreSQL) or the write lock (SQLite) until the transaction
    ends."""
    _lock(Member, member_id)
