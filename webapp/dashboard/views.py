"""The overview page."""

from __future__ import annotations

from flask import render_template
from sqlalchemy import func, select

from webapp.access import access
from webapp.dashboard import bp
from webapp.extensions import db
from webapp.models import Member, MembershipEvent, Offer, Override, Reward, Segment


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
    events = db.session.scalars(
        select(MembershipEvent).order_by(MembershipEvent.id.desc()).limit(12)).all()
    return render_template("dashboard/index.html", stats=stats, largest=largest, events=events)
