"""What the offer and reward pages share: the list query, saving a form, deleting, and the
member check (each blueprint keeps its own routes and roles and calls these)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import flash, redirect, request, url_for
from flask_login import current_user

from webapp.admin.forms import EmptyForm
from webapp.extensions import db
from webapp.htmx import render
from webapp.offers.fields import page_number
from webapp.services.lookup import find_member
from webapp.services.offers import (
    STATES,
    clean_query,
    search_condition,
    state_condition,
    state_of,
)
from webapp.timeutil import utcnow

PER_PAGE = 25


def list_context(model: Any) -> dict[str, Any]:
    """One page of offers or rewards for the list: search text, state filter, pagination."""
    q = clean_query(request.args.get("q", ""))
    state = request.args.get("state", "")
    state = state if state in STATES else ""
    now = utcnow()
    query = sa.select(model).order_by(model.name, model.id)
    if q:
        query = query.where(search_condition(model, q))
    if state:
        query = query.where(state_condition(model, state, now))
    page = db.paginate(query, page=page_number(request.args.get("page")), per_page=PER_PAGE,
                       error_out=False)
    return {"page": page, "q": q, "state": state, "states": STATES, "state_of": state_of,
            "now": now}


def save_from_form(form: Any, item: Any, *, kind: str, save: Callable[..., Any],
                   error: type[Exception]) -> Any:
    """Validate the form and save the offer/reward: the form again (422) with the field
    errors, or a 303 to the saved item's page."""
    template = f"{kind}s/form.html"
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return render(template, None, form=form, **{kind: item}), status
    try:
        saved = save(form.values(item), **{kind: item}, actor=current_user.label)
    except error as exc:
        form.add_service_errors(exc.errors)
        return render(template, None, form=form, **{kind: item}), 422
    flash(f"Saved {kind} {saved.name}.", "success")
    return redirect(url_for(f"{kind}s.show", **{f"{kind}_id": saved.id}), code=303)


def delete_from_form(item: Any, *, kind: str, delete: Callable[..., None]) -> Any:
    """Delete the offer/reward when the confirmation form is valid; back to the list."""
    if not EmptyForm().validate_on_submit():
        flash(f"The {kind} was not deleted: the form expired. Try again.", "error")
        return redirect(url_for(f"{kind}s.show", **{f"{kind}_id": item.id}), code=303)
    name = item.name
    delete(item, actor=current_user.label)
    flash(f"Deleted {kind} {name}.", "success")
    return redirect(url_for(f"{kind}s.index"), code=303)


def selected_ids(values: list[str]) -> list[int]:
    """Segment ids chosen in a picker's address (anything else is ignored)."""
    return [int(v) for v in values if v.isdigit() and len(v) < 10]


def check_member(item: Any, *, kind: str) -> Any:
    """Redirect to the member's explanation of this offer/reward (the member is named by id,
    external id or email), or back with a message."""
    identifier = request.args.get("member", "").strip()
    member = find_member(identifier) if identifier else None
    if member is None:
        flash(f"No member matches “{identifier}”." if identifier
              else "Give a member id, external id or email.", "error")
        return redirect(url_for(f"{kind}s.show", **{f"{kind}_id": item.id}), code=303)
    return redirect(url_for(f"members.{kind}", member_id=member.id, **{f"{kind}_id": item.id}),
                    code=303)
