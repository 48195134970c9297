"""Sign in and sign out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, logout_user

from webapp.access import access
from webapp.auth import bp
from webapp.auth.forms import LoginForm, PasswordForm
from webapp.login_throttle import remember_device, remembered_accounts
from webapp.services.users import (
    UserError,
    WrongPassword,
    authenticate,
    change_password,
    end_sessions,
)
from webapp.sessions import start_session


def safe_next(target: str | None) -> str:
    """A local path to go to after sign-in; anything pointing off-site becomes the home page."""
    if not target:
        return url_for("dashboard.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") \
            or "\\" in target:
        return url_for("dashboard.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
@access("public")
def login():
    """Show the sign-in form; sign in and go to the requested page."""
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        outcome = authenticate(form.email.data, form.password.data,
                               address=request.remote_addr,
                               remembered=remembered_accounts(request))
        if outcome.user:
            start_session(outcome.user)
            response = redirect(safe_next(form.next.data), code=303)
            remember_device(response, request, outcome.user.id)
            return response
        form.password.errors = [outcome.message]
        return render_template("auth/login.html", form=form), 422
    status = 422 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@access("public")
def logout():
    """Sign out, ending every session of this user on the server, and go to the sign-in page."""
    if current_user.is_authenticated:
        end_sessions(current_user)
    logout_user()
    flash("You have been signed out.", "info")
    return redirect(url_for("auth.login"), code=303)


@bp.route("/account/password", methods=["GET", "POST"])
@access("read")
def password():
    """Change one's own password; every other session of the user ends."""
    form = PasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()  # the User itself, not the proxy
        try:
            change_password(user, form.current.data, form.new.data)
        except UserError as exc:
            field = form.current if isinstance(exc, WrongPassword) else form.new
            field.errors = [*field.errors, str(exc)]
        else:
            start_session(user)  # this browser stays signed in, on the new generation
            flash("Password changed. You were signed out everywhere else.", "success")
            return redirect(url_for("auth.password"), code=303)
    status = 422 if request.method == "POST" else 200
    return render_template("auth/password.html", form=form), status
