"""Time helpers: the app stores naive UTC datetimes everywhere."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time as a naive UTC datetime (what the database columns hold)."""
    return datetime.now(UTC).replace(tzinfo=None)


def parse_datetime(text: str) -> datetime:
    """Parse an ISO 8601 date or datetime into naive UTC; raises ValueError when it is not one."""
    text = text.strip()
    if len(text) == 10:
        return datetime.fromisoformat(text)
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value
