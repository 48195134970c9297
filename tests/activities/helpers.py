"""Helpers for the activity import tests: files, a segment on coffee purchases."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from tests.factories import make_segment
from webapp.extensions import db
from webapp.models import Activity
from webapp.timeutil import utcnow

HEADER = "member,activity_type,occurred_at,amount,external_id,properties.item\n"
COFFEE_3_IN_30 = {"field": "activity.count", "operator": ">=", "value": 3,
                  "activity": {"type": "purchase", "window": {"days": 30},
                               "where": [{"field": "properties.item", "operator": "equals",
                                          "value": "coffee"}]}}


def iso(days_ago: int = 1) -> str:
    """An ISO 8601 moment some days ago, in UTC."""
    return (utcnow() - timedelta(days=days_ago)).replace(microsecond=0).isoformat() + "Z"


def write(tmp_path: Path, content: str | bytes, name: str = "activities.csv") -> Path:
    """A file with exactly these bytes (str is encoded as UTF-8)."""
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def coffee_csv(member: str, count: int, start: int = 0) -> str:
    """A file of `count` coffee purchases by one member (external ids c<start>…)."""
    lines = [f"{member},purchase,{iso(1)},3.5,c{start + i},coffee" for i in range(count)]
    return HEADER + "\n".join(lines) + "\n"


def coffee_segment():
    """A dynamic segment of members with three coffee purchases in 30 days."""
    return make_segment("Coffee regulars", include=[COFFEE_3_IN_30])


def stored() -> int:
    """How many activities are stored."""
    return db.session.scalar(select(func.count()).select_from(Activity))
