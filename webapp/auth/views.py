"""Sign in (with a second step for two-factor users), sign out, passwords and TOTP."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, logout_user

from webapp.access import access
from webapp.auth import bp
from webapp.auth.forms import (
    CodeForm,
    LoginForm,
    PasswordForm,
    ResetPasswordForm,
    TotpDisableForm,
)
from webapp.extensions import db
from webapp.htmx import is_htmx
from webapp.login_throttle import remember_device, remembered_accounts
from webapp.models import User
from webapp.services import accounts
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
        if outcome.user and outcome.user.totp_enabled:
            # Not signed in yet: the password step is remembered (signed, short-lived) and
            # every page but the code page still treats this browser as signed out.
            session[PENDING_KEY] = {"user": outcome.user.id, "sv": outcome.user.session_version,
                                    "next": safe_next(form.next.data), "at": time.time()}
            return redirect(url_for("auth.code"), code=303)
        if outcome.user:
            return _finish_sign_in(outcome.user, safe_next(form.next.data))
        form.password.errors = [outcome.message]
        return render_template("auth/login.html", form=form), 422
    status = 422 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


PENDING_KEY = "_pending_sign_in"
PENDING_SECONDS = 300


def _finish_sign_in(user: User, target: str):
    """Sign the user in to this browser and go on: to enrolment first if it is required."""
    session.pop(PENDING_KEY, None)
    start_session(user)
    if accounts.totp_required(user):
        target = url_for("auth.two_factor")
    response = redirect(target, code=303)
    remember_device(response, request, user.id)
    return response


def _pending_user() -> tuple[User | None, dict]:
    """The user who passed the password step in this browser, if still recent and valid."""
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict) or time.time() - float(pending.get("at", 0)) \
            > PENDING_SECONDS:
        return None, {}
    user = db.session.get(User, int(pending.get("user", 0)))
    if user is None or not user.active or user.session_version != pending.get("sv") \
            or not user.totp_enabled:
        return None, {}
    return user, pending


@bp.route("/login/code", methods=["GET", "POST"])
@access("public")
def code():
    """The second sign-in step: a code from the authenticator app or a recovery code."""
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    user, pending = _pending_user()
    if user is None:
        session.pop(PENDING_KEY, None)
        flash("Sign in with your email and password first. A sign-in waiting for its code "
              "lasts 5 minutes.", "info")
        return redirect(url_for("auth.login"), code=303)
    form = CodeForm()
    if form.validate_on_submit():
        outcome = accounts.sign_in_code(user, form.code.data, address=request.remote_addr,
                                        remembered=remembered_accounts(request))
        if outcome.user:
            return _finish_sign_in(outcome.user, safe_next(pending.get("next")))
        form.code.errors = [outcome.message]
    status = 422 if request.method == "POST" else 200
    return render_template("auth/code.html", form=form), status


@bp.route("/reset/<token>", methods=["GET", "POST"])
@access("public")
def reset(token: str):
    """Set a new password with a one-time link an admin made; the link then stops working."""
    try:
        target = accounts.find_reset(token)
    except accounts.AccountError as exc:
        return render_template("auth/reset.html", form=None, problem=str(exc)), 404
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            user = accounts.reset_password(token, form.new.data)
        except accounts.AccountError as exc:
            form.new.errors = [*form.new.errors, str(exc)]
        else:
            if current_user.is_authenticated:
                logout_user()
            session.pop(PENDING_KEY, None)
            flash(f"Your new password is set. Sign in as {user.email} with it.", "success")
            return redirect(url_for("auth.login"), code=303)
    status = 422 if request.method == "POST" else 200
    return render_template("auth/reset.html", form=form, problem=None,
                           email=target.user.email), status


@bp.route("/account/two-factor", methods=["GET", "POST"])
@access("read")
def two_factor():
    """Two-factor sign-in: enrol (key, QR code, confirm with a code) or see its state."""
    user = current_user._get_current_object()
    if user.totp_enabled:
        return render_template("auth/two_factor.html", user=user, form=TotpDisableForm(),
                               codes=session.pop("recovery_codes", None),
                               remaining=accounts.remaining_recovery_codes(user))
    form = CodeForm()
    if form.validate_on_submit():
        try:
            codes = accounts.enable_totp(user, form.code.data)
        except accounts.AccountError as exc:
            form.code.errors = [*form.code.errors, str(exc)]
        else:
            # Shown once on the next page; only their hashes are stored.
            session["recovery_codes"] = codes
            flash("Two-factor sign-in is on. Sign-in now asks for a code after the password.",
                  "success")
            return redirect(url_for("auth.two_factor"), code=303)
    status = 422 if request.method == "POST" else 200
    return render_template("auth/two_factor.html", user=user, form=form,
                           enrolment=accounts.begin_enrolment(user),
                           required=accounts.totp_required(user)), status


@bp.route("/account/two-factor/off", methods=["POST"])
@access("read")
def two_factor_off():
    """Turn two-factor sign-in off, confirmed by the password or a code."""
    user = current_user._get_current_object()
    if not user.totp_enabled:
        return redirect(url_for("auth.two_factor"), code=303)
    if user.role == "admin" and current_app.config.get("REQUIRE_ADMIN_TOTP"):
        flash("Administrators must keep two-factor sign-in on here.", "error")
        return redirect(url_for("auth.two_factor"), code=303)
    form = TotpDisableForm()
    if form.validate_on_submit():
        try:
            accounts.disable_totp(user, form.proof.data, address=request.remote_addr)
        except accounts.AccountError as exc:
            form.proof.errors = [*form.proof.errors, str(exc)]
        else:
            flash("Two-factor sign-in is off.", "success")
            return redirect(url_for("auth.two_factor"), code=303)
    return render_template("auth/two_factor.html", user=user, form=form, codes=None,
                           remaining=accounts.remaining_recovery_codes(user)), 422


ENROLMENT_ENDPOINTS = {"auth.two_factor", "auth.logout", "auth.login", "auth.code",
                       "auth.reset", "static"}


@bp.before_app_request
def require_admin_totp():
    """With REQUIRE_ADMIN_TOTP, an admin without two-factor sign-in may only enrol."""
    if (not current_app.config.get("REQUIRE_ADMIN_TOTP") or request.endpoint is None
            or request.endpoint in ENROLMENT_ENDPOINTS):
        return None
    if not current_user.is_authenticated or not accounts.totp_required(current_user):
        return None
    if request.path.startswith("/api/"):
        abort(403, "Administrators must turn on two-factor sign-in before using Beacon.")
    flash("Administrators must turn on two-factor sign-in before doing anything else.", "info")
    if is_htmx():  # a whole page, not the enrolment page swapped into a fragment
        return "", 204, {"HX-Redirect": url_for("auth.two_factor")}
    return redirect(url_for("auth.two_factor"), code=303)


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
