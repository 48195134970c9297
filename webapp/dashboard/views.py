"""The overview page."""

from __future__ import annotations

from flask import render_template
from sqlalchemy import Integer, cast, func, select

from webapp.access import access
from webapp.dashboard import bp
from webapp.extensions import db
from webapp.models import AuditEntry, Member, MembershipEvent, Offer, Override, Reward, Segment


@bp.route("/")
@access("read")
def index():
    """Program at a glance: counts, the largest segments and the latest membership changes."""
    count = lambda model: db.session.scalar(select(func.count()).select_from(model))  # noqa: E731
    stats = {
        "members": count(Member), "segments": count(Segment), "offers": count(Offer),
        "rewards": count(Reward), "overrides": count(Override),
        "dynamic": db.session.scalar(select(func.count()).where(Segment.kind == "dynamic")),
    }
    largest = db.session.scalars(select(Segment).order_by(Segment.size.desc()).limit(6)).all()
    changes = db.session.execute(
        select(AuditEntry, Segment.name)
        .outerjoin(Segment, Segment.id == cast(AuditEntry.entity_id, Integer))
        .where(AuditEntry.action == "membership.change")
        .order_by(AuditEntry.id.desc()).limit(10)).all()
    events = db.session.scalar(select(func.count()).select_from(MembershipEvent))
    return render_template("dashboard/index.html", stats=stats, largest=largest,
                           changes=changes, events=events)
