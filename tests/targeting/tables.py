"""Member and membership tables shaped like the real models, built with SQLAlchemy Core."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB


def make_tables(prefix: str | None = None) -> tuple[sa.MetaData, sa.Table, sa.Table]:
    """A metadata with `members` and `segment_memberships` (unique names when `prefix` given)."""
    prefix = prefix if prefix is not None else ""
    md = sa.MetaData()
    json_type = sa.JSON().with_variant(JSONB(), "postgresql")
    members = sa.Table(
        f"{prefix}members", md,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("external_id", sa.String(255), unique=True, nullable=False),
        sa.Column("email", sa.String(320), unique=True, nullable=True),
        sa.Column("birthday", sa.Date, nullable=True),
        sa.Column("tier", sa.String(32), nullable=False),
        sa.Column("points", sa.BigInteger, nullable=True),
        sa.Column("xp", sa.BigInteger, nullable=True),
        sa.Column("coins", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("badges", json_type, nullable=True),
        sa.Column("custom_fields", json_type, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=True),
        sa.Column("updated_at", sa.DateTime, nullable=True),
    )
    memberships = sa.Table(
        f"{prefix}segment_memberships", md,
        sa.Column("segment_id", sa.Integer, nullable=False),
        sa.Column("member_id", sa.String(36), nullable=False),
        sa.Column("via", sa.String(16), nullable=False, server_default="rule"),
    )
    return md, members, memberships


def make_activities(md: sa.MetaData, prefix: str = "") -> sa.Table:
    """An `activities` table shaped like the model's (what activity criteria read)."""
    json_type = sa.JSON().with_variant(JSONB(), "postgresql")
    return sa.Table(
        f"{prefix}activities", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("member_id", sa.String(36), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("occurred_at", sa.DateTime, nullable=False),
        sa.Column("amount_e4", sa.BigInteger, nullable=True),
        sa.Column("properties", json_type, nullable=True),
    )


def _date(v: Any) -> date | None:
    if v is None or isinstance(v, date):
        return v
    return date.fromisoformat(v)


def _dt(v: Any) -> datetime | None:
    if v is None or isinstance(v, datetime):
        return v
    d = datetime.fromisoformat(v)
    if d.tzinfo is not None:
        from datetime import UTC

        d = d.astimezone(UTC).replace(tzinfo=None)
    return d


def member_row(member: dict[str, Any], index: int) -> dict[str, Any]:
    """A members row for an API-style member dict (email lower-cased, dates parsed)."""
    email = member.get("email")
    return {
        "id": member.get("id") or str(uuid.UUID(int=index)),
        "external_id": member.get("external_id") or f"ext-{index}",
        "email": email.lower() if isinstance(email, str) else None,
        "birthday": _date(member.get("birthday")),
        "tier": member["tier"] if member.get("tier") is not None else "bronze",
        "points": member.get("points"),
        "xp": member.get("xp"),
        "coins": member.get("coins") if member.get("coins") is not None else 0,
        "badges": member.get("badges"),
        "custom_fields": member.get("custom_fields"),
        "created_at": _dt(member.get("created_at")),
        "updated_at": _dt(member.get("updated_at")),
    }


class MemberDB:
    """A database with private members, segment_memberships and activities tables for one
    test session."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url)
        self.dialect = self.engine.dialect.name
        prefix = f"t{uuid.uuid4().hex[:8]}_"
        self.metadata, self.members, self.memberships = make_tables(prefix)
        self.activities = make_activities(self.metadata, prefix)
        self.metadata.create_all(self.engine)

    def reset(self, conn: sa.Connection) -> None:
        """Delete every row."""
        conn.execute(self.activities.delete())
        conn.execute(self.memberships.delete())
        conn.execute(self.members.delete())

    def close(self) -> None:
        """Drop the tables and dispose of the engine."""
        self.metadata.drop_all(self.engine)
        self.engine.dispose()
