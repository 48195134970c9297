"""Sign in and sign out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user

from webapp.access import access
from webapp.auth import bp
from webapp.auth.forms import LoginForm
from webapp.services.users import authenticate


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
                               current_app.config["LOGIN_MAX_FAILURES"],
                               current_app.config["LOGIN_LOCK_SECONDS"])
        if outcome.user:
            login_user(outcome.user)
            return redirect(safe_next(form.next.data), code=303)
        form.password.errors = [outcome.message]
        return render_template("auth/login.html", form=form), 422
    status = 422 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@access("public")
def logout():
    """Sign out and return to the sign-in page."""
    logout_user()
    flash("You have been signed out.", "info")
    return redirect(url_for("auth.login"), code=303)
