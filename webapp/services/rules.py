"""Segment rules in the database: criteria compiled to SQL in this database's dialect and the
program's time zone, the one place the services (and the web, through them) do it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy.sql.elements import ColumnElement

from webapp.extensions import db
from webapp.models import Activity, Member, SegmentMembership
from webapp.timeutil import utcnow


def program_timezone() -> str:
    """The program's time zone (BEACON_TIMEZONE), in which ages and calendar dates are read."""
    return current_app.config["TIMEZONE"]


def rules_condition(definition: Any, *, now: datetime | None = None,
                    memberships: bool = True, per_member: bool = False) -> ColumnElement[bool]:
    """SQL over `members` for a definition's rules (no overrides), at `now` (default: now).

    `definition` is a definition dict or a validated `Definition`; `segment` criteria read the
    materialized `segment_memberships` (`memberships=False` refuses them instead); with
    `per_member` (for a few members) activity criteria read each member's own activities.
    """
    from webapp.targeting.sql import compile_criteria

    return compile_criteria(definition, Member.__table__,
                            dialect=db.session.get_bind().dialect.name, now=now or utcnow(),
                            tz=program_timezone(),
                            memberships=SegmentMembership.__table__ if memberships else None,
                            activities=Activity.__table__, per_member=per_member)
