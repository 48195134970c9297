"""Offers: list, create, edit, delete, and audiences built with htmx with the exact reach."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from webapp.access import access
from webapp.admin.forms import EmptyForm
from webapp.extensions import db
from webapp.htmx import is_htmx, render
from webapp.models import Audience, Offer, OfferLimit
from webapp.offers import bp, catalog
from webapp.offers.fields import get_or_404
from webapp.offers.forms import (
    AudienceForm,
    LimitForm,
    OfferForm,
    audience_form,
    audience_form_names,
)
from webapp.services import offer_limits as limits
from webapp.services.offer_limits import limit_standing
from webapp.services.offers import (
    OfferError,
    add_audience,
    clean_query,
    delete_offer,
    describe_audience,
    offer_reach,
    remove_audience,
    save_offer,
    segment_names,
    segment_options,
    state_of,
)
from webapp.targeting.audiences import audience_label, audience_lead, segment_ids_of
from webapp.targeting.limits import describe_limit


def _offer_or_404(offer_id: int) -> Offer:
    return get_or_404(Offer, offer_id)


@bp.route("/")
@access("read")
def index():
    """Offers, searchable and filtered by state (active, scheduled, expired, discontinued)."""
    ctx = catalog.list_context(Offer)
    ids = [o.id for o in ctx["page"].items]
    counts = dict(db.session.execute(
        select(Audience.offer_id, func.count()).where(Audience.offer_id.in_(ids))
        .group_by(Audience.offer_id)).all()) if ids else {}
    return render("offers/index.html", "offer_list", audience_counts=counts, **ctx)


@bp.route("/new", methods=["GET", "POST"])
@access("write")
def new():
    """Create an offer."""
    return catalog.save_from_form(OfferForm(), None, kind="offer", save=save_offer,
                                  error=OfferError)


@bp.route("/<int:offer_id>/edit", methods=["GET", "POST"])
@access("write")
def edit(offer_id: int):
    """Change an offer's details, window or discontinued flag."""
    offer = _offer_or_404(offer_id)
    return catalog.save_from_form(OfferForm(obj=offer), offer, kind="offer", save=save_offer,
                                  error=OfferError)


@bp.route("/<int:offer_id>/delete", methods=["POST"])
@access("admin")
def delete(offer_id: int):
    """Delete an offer and its audiences."""
    return catalog.delete_from_form(_offer_or_404(offer_id), kind="offer", delete=delete_offer)


# --- the offer page and its audiences -----------------------------------------------------------


def audiences_context(offer: Offer, *, posted: AudienceForm | None = None,
                      preview: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the audiences block shows: the audiences in words, the reach and the add forms
    (one per form of the audience registry; `posted` in place of its empty one)."""
    audiences = list(offer.audiences)
    ids = {sid for a in audiences for sid in segment_ids_of(a.audience_type, a.configuration or {})}
    names = segment_names(sorted(ids))
    rows = [{"audience": a, "label": audience_label(a.audience_type),
             "text": describe_audience(a.audience_type, a.configuration or {}, names),
             "lead": audience_lead(a.audience_type),
             "segments": [(sid, names.get(sid, f"segment #{sid}"))
                          for sid in segment_ids_of(a.audience_type, a.configuration or {})]}
            for a in audiences]
    reach = offer_reach([(a.audience_type, a.configuration or {}) for a in audiences])
    total = offer_reach([])
    add_forms = [posted if posted is not None and posted.form_name == name
                 else audience_form(name)(formdata=None) for name in audience_form_names()]
    picked = [f.data for form in add_forms for f in form.config_fields
              if f.type == "IdListField" and f.data]
    segment_q = clean_query(request.args.get("segment_q", ""))
    selected = picked[0] if picked else catalog.selected_ids(request.args.getlist("segments"))
    chosen, options = segment_options(segment_q, selected or [])
    return {"offer": offer, "audience_rows": rows, "reach": reach, "total_members": total,
            "add_forms": add_forms, "segment_q": segment_q, "chosen": chosen,
            "options": options, "selected": set(selected or []), "preview": preview,
            "remove_form": EmptyForm()}


@bp.route("/<int:offer_id>")
@access("read")
def show(offer_id: int):
    """An offer's details, its audiences (built with htmx) and its exact reach."""
    offer = _offer_or_404(offer_id)
    ctx = audiences_context(offer)
    block = "segment_options" if request.args.get("picker") == "1" else "audiences"
    return render("offers/show.html", block, state=state_of(offer), delete_form=EmptyForm(),
                  **(ctx | limits_context(offer)))


def _section_response(offer: Offer, block: str, section: dict[str, Any], status: int,
                      message: str | None, whole: Callable[[], dict[str, Any]]):
    """The answer to a change in one section (`block`: audiences or limits) of the offer page:
    the section for htmx (with its message), a redirect once saved, or the whole page with
    the section's errors (`whole`: makes the context of the whole page, only then)."""
    if is_htmx():
        body = render("offers/show.html", block, **section)
        headers = {"HX-Trigger": json.dumps({"showMessage": message})} if message else {}
        return body, status, headers
    if status == 200 and message:
        flash(message, "success")
        return redirect(url_for("offers.show", offer_id=offer.id), code=303)
    return render("offers/show.html", None, state=state_of(offer), delete_form=EmptyForm(),
                  **whole()), status


def _audiences_response(offer: Offer, status: int = 200, message: str | None = None,
                        **context: Any):
    ctx = audiences_context(offer, **context)
    return _section_response(offer, "audiences", ctx, status, message,
                             lambda: ctx | limits_context(offer))


@bp.route("/<int:offer_id>/audiences/<form_name>", methods=["POST"])
@access("write")
def add(offer_id: int, form_name: str):
    """Add an audience with one of the registry's add forms (`age`, `segments`, …), or, with
    preview, show the reach it would give."""
    offer = _offer_or_404(offer_id)
    if form_name not in audience_form_names():
        abort(404)
    form = audience_form(form_name)()
    if not form.validate_on_submit():
        return _audiences_response(offer, 422, posted=form)
    audience_type, config = form.chosen_type(), form.configuration()
    current = [(a.audience_type, a.configuration or {}) for a in offer.audiences]
    try:
        if request.form.get("preview"):
            reach = offer_reach(current + [(audience_type, config)])
            names = segment_names(segment_ids_of(audience_type, config))
            preview = {"text": describe_audience(audience_type, config, names), "reach": reach}
            return _audiences_response(offer, 200, preview=preview, posted=form)
        audience = add_audience(offer, audience_type, config, actor=current_user.label)
    except OfferError as exc:
        form.add_service_errors(exc)
        return _audiences_response(offer, 422, posted=form)
    names = segment_names(segment_ids_of(audience.audience_type, audience.configuration))
    return _audiences_response(
        offer, 200, message="Added audience: " + describe_audience(
            audience.audience_type, audience.configuration, names))


@bp.route("/<int:offer_id>/audiences/<int:audience_id>/delete", methods=["POST"])
@access("write")
def remove(offer_id: int, audience_id: int):
    """Remove one audience from the offer."""
    offer = _offer_or_404(offer_id)
    audience = get_or_404(Audience, audience_id)
    if audience.offer_id != offer.id:
        abort(404)
    if not EmptyForm().validate_on_submit():
        return _audiences_response(offer, 422)
    remove_audience(audience, actor=current_user.label)
    return _audiences_response(offer, 200, message="Removed the audience.")


@bp.route("/<int:offer_id>/check")
@access("read")
def check_member(offer_id: int):
    """Open this offer's explanation for a member named by id, external id or email."""
    return catalog.check_member(_offer_or_404(offer_id), kind="offer")


# --- limits -------------------------------------------------------------------------------------


def limits_context(offer: Offer, *, limit_form: LimitForm | None = None) -> dict[str, Any]:
    """What the limits block shows: each limit in words with its standing, and the add form."""
    return {"offer": offer, "limit_rows": limit_standing(offer),
            "limit_form": limit_form or LimitForm(formdata=None), "remove_form": EmptyForm()}


def _limits_response(offer: Offer, status: int = 200, message: str | None = None,
                     form: LimitForm | None = None):
    ctx = limits_context(offer, limit_form=form)
    return _section_response(offer, "limits", ctx, status, message,
                             lambda: audiences_context(offer) | ctx)


@bp.route("/<int:offer_id>/limits", methods=["POST"])
@access("write")
def add_limit(offer_id: int):
    """Add a limit to the offer."""
    offer = _offer_or_404(offer_id)
    form = LimitForm()
    if not form.validate_on_submit():
        return _limits_response(offer, 422, form=form)
    try:
        limit = limits.add_limit(offer, form.limit_type.data, form.configuration(),
                                 actor=current_user.label)
    except OfferError as exc:
        form.form_errors.extend(exc.errors.values())
        return _limits_response(offer, 422, form=form)
    return _limits_response(offer, 200, message="Added limit: " + describe_limit(
        limit.limit_type, limit.configuration))


@bp.route("/<int:offer_id>/limits/<int:limit_id>/delete", methods=["POST"])
@access("write")
def remove_limit(offer_id: int, limit_id: int):
    """Remove one limit from the offer."""
    offer = _offer_or_404(offer_id)
    limit = get_or_404(OfferLimit, limit_id)
    if limit.offer_id != offer.id:
        abort(404)
    if not EmptyForm().validate_on_submit():
        return _limits_response(offer, 422)
    limits.remove_limit(limit, actor=current_user.label)
    return _limits_response(offer, 200, message="Removed the limit.")
