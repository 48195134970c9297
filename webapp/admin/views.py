"""Administration: users, API tokens, the attribute registry and the audit log."""

from __future__ import annotations

import json

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_login import current_user
from sqlalchemy import select

from webapp.access import access
from webapp.admin import bp
from webapp.admin.forms import (
    AttributeForm,
    EmptyForm,
    TokenCreateForm,
    UserCreateForm,
    UserUpdateForm,
)
from webapp.extensions import db
from webapp.models import ApiToken, AttributeDefinition, AuditEntry, User
from webapp.services import attributes as registry
from webapp.services.accounts import (
    AccountError,
    admin_disable_totp,
    create_reset_link,
    reset_hours,
)
from webapp.services.audit import diff, record
from webapp.services.tokens import create_token
from webapp.services.users import UserError, create_user, update_user
from webapp.targeting.declared import TYPES
from webapp.timeutil import utcnow


@bp.route("/users", methods=["GET", "POST"])
@access("admin")
def users():
    """List users and create a new one."""
    form = UserCreateForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = create_user(form.email.data, form.password.data, form.role.data,
                               name=form.name.data or "", actor=current_user.label)
        except UserError as exc:
            form.email.errors.append(str(exc))
            status = 422
        else:
            flash(f"Created {user.email} as {user.role}.", "success")
            return redirect(url_for("admin.users"), code=303)
    elif request.method == "POST":
        status = 422
    rows = db.session.scalars(select(User).order_by(User.email)).all()
    return render_template("admin/users.html", users=rows, form=form,
                           update_form=UserUpdateForm(),
                           reset_link=session.pop("reset_link", None)), status


@bp.route("/users/<int:user_id>", methods=["POST"])
@access("admin")
def update(user_id: int):
    """Change a user's role or active flag."""
    user = db.session.get(User, user_id) or abort(404)
    form = UserUpdateForm()
    if form.validate_on_submit():
        try:
            update_user(user, role=form.role.data, active=form.active.data, actor=current_user)
            flash(f"Updated {user.email}.", "success")
        except UserError as exc:
            flash(str(exc), "error")
    else:
        flash("The change could not be saved: the form was incomplete or expired.", "error")
    return redirect(url_for("admin.users"), code=303)


@bp.route("/users/<int:user_id>/reset-link", methods=["POST"])
@access("admin")
def reset_link(user_id: int):
    """Make a one-time password-reset link for a user, shown once to pass on."""
    user = db.session.get(User, user_id) or abort(404)
    if not EmptyForm().validate_on_submit():
        flash("The link was not made: the form was incomplete or expired. Try again.", "error")
        return redirect(url_for("admin.users"), code=303)
    try:
        raw = create_reset_link(user, current_user._get_current_object())
    except AccountError as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.users"), code=303)
    # Post/redirect/get, as for API tokens: the link rides in the signed session once.
    session["reset_link"] = {"email": user.email, "hours": reset_hours(),
                             "url": url_for("auth.reset", token=raw, _external=True)}
    return redirect(url_for("admin.users"), code=303)


@bp.route("/users/<int:user_id>/two-factor-off", methods=["POST"])
@access("admin")
def two_factor_off(user_id: int):
    """Turn a user's two-factor sign-in off (they lost their phone and recovery codes)."""
    user = db.session.get(User, user_id) or abort(404)
    if not EmptyForm().validate_on_submit():
        flash("Nothing was changed: the form was incomplete or expired. Try again.", "error")
        return redirect(url_for("admin.users"), code=303)
    try:
        admin_disable_totp(user, current_user._get_current_object())
    except AccountError as exc:
        flash(str(exc), "error")
    else:
        flash(f"Two-factor sign-in is off for {user.email}; they were signed out.", "success")
    return redirect(url_for("admin.users"), code=303)


@bp.route("/tokens", methods=["GET", "POST"])
@access("admin")
def tokens():
    """List API tokens and create one (its value is shown once)."""
    form = TokenCreateForm()
    status = 200
    if form.validate_on_submit():
        token, raw = create_token(form.name.data.strip(), form.role.data, current_user)
        record(current_user.label, "token.create", "api_token", token.id,
               f"Created API token {token.name} ({token.role})")
        db.session.commit()
        # Post/redirect/get: a reload must not create a second token. The value rides in
        # the signed session once and is gone after this redirect's page is shown.
        session["new_token"] = raw
        return redirect(url_for("admin.tokens"), code=303)
    elif request.method == "POST":
        status = 422
    new_token = session.pop("new_token", None)
    rows = db.session.scalars(select(ApiToken).order_by(ApiToken.created_at.desc())).all()
    return render_template("admin/tokens.html", tokens=rows, form=form, new_token=new_token,
                           revoke_form=EmptyForm()), status


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@access("admin")
def revoke(token_id: int):
    """Revoke an API token; requests with it are refused from now on."""
    token = db.session.get(ApiToken, token_id) or abort(404)
    if EmptyForm().validate_on_submit() and token.revoked_at is None:
        token.revoked_at = utcnow()
        record(current_user.label, "token.revoke", "api_token", token.id,
               f"Revoked API token {token.name}")
        db.session.commit()
        flash(f"Revoked {token.name}.", "success")
    return redirect(url_for("admin.tokens"), code=303)


@bp.route("/audit")
@access("admin")
def audit():
    """The audit log, newest first, paginated and filterable by entity."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc())
    entity = request.args.get("entity", "")
    if entity:
        query = query.where(AuditEntry.entity_type == entity)
    page = db.paginate(query, per_page=50, error_out=False)
    return render_template("admin/audit.html", page=page, entity=entity, diff=diff)


# --- the attribute registry ----------------------------------------------------------------------

def _attribute_form_errors(form: AttributeForm, exc: registry.AttributeError_) -> None:
    for name, message in exc.errors.items():
        field = getattr(form, name, None) if name else None
        if field is not None and hasattr(field, "errors"):
            field.errors = [*list(field.errors or []), str(message)]
        else:
            flash(str(message), "error")


def _save_attribute(form: AttributeForm, row: AttributeDefinition | None = None):
    """Save the posted declaration: a redirect to the registry when saved, else the status
    to render the form with (its fields carry the messages)."""
    if not form.validate_on_submit():
        return 422 if request.method == "POST" else 200
    data = {"key": form.key.data or "", "type": form.type.data,
            "allowed_values": form.allowed_values.data or "",
            "description": form.description.data or "", "example": form.example.data or ""}
    try:
        saved = registry.save(data, actor=current_user.label, definition=row)
    except registry.AttributeError_ as exc:
        db.session.rollback()
        _attribute_form_errors(form, exc)
        return 422
    flash(f"{'Saved' if row else 'Declared'} custom field {saved.key!r}.", "success")
    return redirect(url_for("admin.attributes"), code=303)


def _shown(value) -> str:
    """A stored allowed value or example as typed in the form."""
    if isinstance(value, list):
        return ", ".join(value)
    return value if isinstance(value, str) else json.dumps(value)


@bp.route("/attributes", methods=["GET", "POST"])
@access("admin")
def attributes():
    """Declared member fields with how many members have each and how many disagree; a form
    to declare another."""
    form = AttributeForm()
    outcome = _save_attribute(form)
    if not isinstance(outcome, int):
        return outcome
    return render_template("admin/attributes.html", rows=registry.definitions(),
                           usage=registry.usage(), form=form, delete_form=EmptyForm(),
                           types=TYPES, mode=registry.mode()), outcome


@bp.route("/attributes/<int:attribute_id>", methods=["GET", "POST"])
@access("admin")
def attribute_edit(attribute_id: int):
    """Change a declaration."""
    row = db.session.get(AttributeDefinition, attribute_id) or abort(404)
    form = AttributeForm(data=None if request.method == "POST" else {
        "key": row.key, "type": row.type, "description": row.description,
        "allowed_values": "\n".join(_shown(v) for v in row.allowed_values or []),
        "example": "" if row.example is None else _shown(row.example)})
    outcome = _save_attribute(form, row)
    if not isinstance(outcome, int):
        return outcome
    return render_template("admin/attribute_edit.html", row=row, form=form), outcome


@bp.route("/attributes/<int:attribute_id>/delete", methods=["POST"])
@access("admin")
def attribute_delete(attribute_id: int):
    """Remove a declaration; members keep their values."""
    row = db.session.get(AttributeDefinition, attribute_id) or abort(404)
    if EmptyForm().validate_on_submit():
        key = row.key
        registry.delete(row, actor=current_user.label)
        flash(f"Removed the declaration of {key!r}; members keep their values.", "success")
    return redirect(url_for("admin.attributes"), code=303)
