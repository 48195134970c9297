"""The overview page."""

from __future__ import annotations

from flask import render_template, url_for
from sqlalchemy import Integer, cast, func, or_, select

from webapp.access import access
from webapp.dashboard import bp, charts
from webapp.extensions import db
from webapp.models import AuditEntry, Member, MembershipEvent, Offer, Override, Reward, Segment
from webapp.services import stats
from webapp.timeutil import utcnow

CHART_DAYS = 30


@bp.route("/")
@access("read")
def index():
    """Program at a glance: counts, membership changes per day, the largest segments' sizes
    over time and the latest membership changes."""
    count = lambda model: db.session.scalar(select(func.count()).select_from(model))  # noqa: E731
    now = utcnow()
    stats_ = {
        "members": count(Member), "segments": count(Segment), "offers": count(Offer),
        "rewards": count(Reward),
        "overrides": db.session.scalar(select(func.count()).select_from(Override).where(
            or_(Override.expires_at.is_(None), Override.expires_at > now))),
        "dynamic": db.session.scalar(select(func.count()).where(Segment.kind == "dynamic")),
        "archived": db.session.scalar(select(func.count()).where(
            Segment.archived_at.is_not(None))),
    }
    largest = stats.largest_segments(6)
    sizes = stats.daily_sizes([s.id for s in largest[:5]], CHART_DAYS, now)
    size_chart = charts.size_lines([
        {"name": s.name, "url": url_for("segments.show", segment_id=s.id),
         "points": [(day, size) for day, size in sizes[s.id] if size is not None]}
        for s in largest[:5] if any(size is not None for _, size in sizes[s.id])])
    change_chart = charts.change_bars(stats.membership_changes_per_day(CHART_DAYS, now))
    changes = db.session.execute(
        select(AuditEntry, Segment.name)
        .outerjoin(Segment, Segment.id == cast(AuditEntry.entity_id, Integer))
        .where(AuditEntry.action == "membership.change")
        .order_by(AuditEntry.id.desc()).limit(10)).all()
    events = db.session.scalar(select(func.count()).select_from(MembershipEvent))
    return render_template("dashboard/index.html", stats=stats_, largest=largest,
                           changes=changes, events=events, change_chart=change_chart,
                           size_chart=size_chart, chart_days=CHART_DAYS)
