"""Rewards: list, create, edit, delete, and required segments built with htmx with the reach."""

from __future__ import annotations

import json
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from webapp.access import access
from webapp.admin.forms import EmptyForm
from webapp.extensions import db
from webapp.htmx import is_htmx, render
from webapp.models import Reward, RewardRequiredSegment
from webapp.offers import catalog
from webapp.offers.fields import get_or_404, in_id_range
from webapp.rewards import bp
from webapp.rewards.forms import RequiredSegmentsForm, RewardForm
from webapp.services.offers import (
    clean_query,
    segment_options,
    state_of,
)
from webapp.services.rewards import (
    RewardError,
    change_required_segments,
    delete_reward,
    reward_reach_detail,
    save_reward,
)


def _reward_or_404(reward_id: int) -> Reward:
    return get_or_404(Reward, reward_id)


@bp.route("/")
@access("read")
def index():
    """Rewards, searchable and filtered by state (active, scheduled, expired, discontinued)."""
    ctx = catalog.list_context(Reward)
    ids = [r.id for r in ctx["page"].items]
    counts = dict(db.session.execute(
        select(RewardRequiredSegment.reward_id, func.count()).where(
            RewardRequiredSegment.reward_id.in_(ids))
        .group_by(RewardRequiredSegment.reward_id)).all()) if ids else {}
    return render("rewards/index.html", "reward_list", required_counts=counts, **ctx)


@bp.route("/new", methods=["GET", "POST"])
@access("write")
def new():
    """Create a reward."""
    return catalog.save_from_form(RewardForm(), None, kind="reward", save=save_reward,
                                  error=RewardError)


@bp.route("/<int:reward_id>/edit", methods=["GET", "POST"])
@access("write")
def edit(reward_id: int):
    """Change a reward's details, cost, window or discontinued flag."""
    reward = _reward_or_404(reward_id)
    return catalog.save_from_form(RewardForm(obj=reward), reward, kind="reward",
                                  save=save_reward, error=RewardError)


@bp.route("/<int:reward_id>/delete", methods=["POST"])
@access("admin")
def delete(reward_id: int):
    """Delete a reward."""
    return catalog.delete_from_form(_reward_or_404(reward_id), kind="reward",
                                    delete=delete_reward)


# --- the reward page and its required segments --------------------------------------------------


def segments_context(reward: Reward, form: RequiredSegmentsForm | None = None) -> dict[str, Any]:
    """What the required-segments block shows: the segments, the reach and the add form."""
    required = list(reward.required_segments)
    ids = [s.id for s in required]
    reach, affordable = reward_reach_detail(ids, reward.points)
    segment_q = clean_query(request.args.get("segment_q", ""))
    selected = (form.segments.data if form and form.segments.data
                else catalog.selected_ids(request.args.getlist("segments")))
    selected = [s for s in selected or [] if s not in ids]
    chosen, options = segment_options(segment_q, selected)
    options = [s for s in options if s.id not in ids]
    return {"reward": reward, "required": required, "reach": reach, "affordable": affordable,
            "total_members": reward_reach_detail([], 0)[0],
            "form": form or RequiredSegmentsForm(formdata=None), "segment_q": segment_q,
            "chosen": chosen, "options": options, "remove_form": EmptyForm()}


@bp.route("/<int:reward_id>")
@access("read")
def show(reward_id: int):
    """A reward's details, its required segments (built with htmx) and its exact reach."""
    reward = _reward_or_404(reward_id)
    block = "segment_options" if request.args.get("picker") == "1" else "required_segments"
    return render("rewards/show.html", block, state=state_of(reward), delete_form=EmptyForm(),
                  **segments_context(reward))


def _segments_response(reward: Reward, status: int = 200, message: str | None = None,
                       form: RequiredSegmentsForm | None = None):
    ctx = segments_context(reward, form)
    if is_htmx():
        headers = {"HX-Trigger": json.dumps({"showMessage": message})} if message else {}
        return render("rewards/show.html", "required_segments", **ctx), status, headers
    if status == 200 and message:
        flash(message, "success")
        return redirect(url_for("rewards.show", reward_id=reward.id), code=303)
    return render("rewards/show.html", None, state=state_of(reward), delete_form=EmptyForm(),
                  **ctx), status


@bp.route("/<int:reward_id>/segments", methods=["POST"])
@access("write")
def add_segments(reward_id: int):
    """Require the chosen segments too."""
    reward = _reward_or_404(reward_id)
    form = RequiredSegmentsForm()
    if not form.validate_on_submit():
        return _segments_response(reward, 422, form=form)
    if not form.segments.data:
        form.segments.errors = [*form.segments.errors, "Choose at least one segment."]
        return _segments_response(reward, 422, form=form)
    try:
        change_required_segments(reward, list(form.segments.data), mode="add",
                                 actor=current_user.label)
    except RewardError as exc:
        form.segments.errors = [*form.segments.errors,
                                *(exc.words_for(key) for key in exc.errors)]
        return _segments_response(reward, 422, form=form)
    count = len(form.segments.data)
    return _segments_response(reward, 200, message=f"Added {count} required segment"
                              f"{'' if count == 1 else 's'}.")


@bp.route("/<int:reward_id>/segments/<int:segment_id>/delete", methods=["POST"])
@access("write")
def remove_segment(reward_id: int, segment_id: int):
    """Stop requiring one segment."""
    reward = _reward_or_404(reward_id)
    if not in_id_range(segment_id):
        abort(404)
    link = db.session.scalar(select(RewardRequiredSegment).where(
        RewardRequiredSegment.reward_id == reward.id,
        RewardRequiredSegment.segment_id == segment_id))
    if link is None:
        abort(404)
    if not EmptyForm().validate_on_submit():
        return _segments_response(reward, 422)
    change_required_segments(reward, [segment_id], mode="remove", actor=current_user.label)
    return _segments_response(reward, 200, message="Removed the required segment.")


@bp.route("/<int:reward_id>/check")
@access("read")
def check_member(reward_id: int):
    """Open this reward's explanation for a member named by id, external id or email."""
    return catalog.check_member(_reward_or_404(reward_id), kind="reward")
