"""Account security: admin-made password-reset links and TOTP two-factor sign-in.

Reset links and recovery codes are random and long, so they are stored as SHA-256 hashes
(like API tokens) and each works once: the row is claimed with a conditional UPDATE, so two
parallel uses cannot both succeed. TOTP codes are accepted one time step either side of
now, and a code's time step is recorded so that the same code (or an older one) is refused
afterwards.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

import pyotp
import segno
from flask import current_app
from markupsafe import Markup
from sqlalchemy import or_, select, update

from webapp.extensions import db
from webapp.models import PasswordReset, RecoveryCode, User
from webapp.passwords import hash_password, verify_password
from webapp.services.audit import record
from webapp.services.users import MIN_PASSWORD, SignIn, UserError
from webapp.timeutil import utcnow

ISSUER = "Beacon"
RECOVERY_CODES = 10
TOTP_WINDOW = 1  # time steps (30 s each) accepted either side of now
MAX_PASSWORD = 200


class AccountError(UserError):
    """A refused account operation, with a message for the person."""


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


# --- password-reset links ---------------------------------------------------------------

def reset_hours() -> int:
    """How many hours a new reset link works (PASSWORD_RESET_HOURS)."""
    return int(current_app.config.get("PASSWORD_RESET_HOURS", 24))


def create_reset_link(user: User, actor: User) -> str:
    """Make a one-time reset token for the user (earlier unused ones stop working); returns
    the token, which is not stored and so can be shown only now."""
    if not user.active:
        raise AccountError(f"{user.email} is deactivated: activate the account first.")
    now = utcnow()
    db.session.execute(update(PasswordReset)
                       .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
                       .values(used_at=now))
    raw = secrets.token_urlsafe(32)
    hours = reset_hours()
    reset = PasswordReset(user_id=user.id, token_hash=_digest(raw), created_by_label=actor.label,
                          created_at=now, expires_at=now + timedelta(hours=hours))
    db.session.add(reset)
    db.session.flush()
    record(actor.label, "user.reset_link", "user", user.id,
           f"Made a password-reset link for {user.email} (works once, for {hours} hours)")
    db.session.commit()
    return raw


INVALID_LINK = ("This password-reset link is not valid. Check that you copied all of it, or "
                "ask an administrator for a new one.")


def find_reset(raw: str) -> PasswordReset:
    """The usable reset of a token, or AccountError saying why it cannot be used."""
    reset = db.session.scalar(select(PasswordReset)
                              .where(PasswordReset.token_hash == _digest(raw or "")))
    if reset is None:
        raise AccountError(INVALID_LINK)
    if reset.used_at is not None:
        raise AccountError("This password-reset link has already been used or was replaced by "
                           "a newer one. Ask an administrator for a new link.")
    if reset.expires_at <= utcnow():
        raise AccountError("This password-reset link has expired. Ask an administrator for a "
                           "new one.")
    if not reset.user.active:
        raise AccountError("This account has been deactivated. Ask an administrator.")
    return reset


def reset_password(raw: str, new: str) -> User:
    """Set a new password with a reset token (once); ends every session of the user."""
    reset = find_reset(raw)
    if not MIN_PASSWORD <= len(new) <= MAX_PASSWORD:
        raise AccountError(f"The new password must have {MIN_PASSWORD} to {MAX_PASSWORD} "
                           "characters.")
    claimed = db.session.execute(update(PasswordReset)
                                 .where(PasswordReset.id == reset.id,
                                        PasswordReset.used_at.is_(None))
                                 .values(used_at=utcnow()))
    if claimed.rowcount != 1:  # a parallel request used it first
        db.session.rollback()
        raise AccountError("This password-reset link has already been used. Ask an "
                           "administrator for a new link.")
    user = reset.user
    user.password_hash = hash_password(new)
    user.session_version += 1
    record(user.label, "user.password_reset", "user", user.id,
           f"{user.email} set a new password with a reset link made by "
           f"{reset.created_by_label} (their sessions ended)")
    db.session.commit()
    return user


# --- TOTP two-factor sign-in ------------------------------------------------------------

@dataclass(frozen=True)
class Enrolment:
    """What the enrolment page shows: the secret, grouped for typing, and its QR code."""

    secret: str
    grouped: str
    uri: str
    qr_svg: Markup


def begin_enrolment(user: User) -> Enrolment:
    """The pending TOTP secret of a user not yet enrolled (made and saved on first call)."""
    if user.totp_enabled:
        raise AccountError("Two-factor sign-in is already on.")
    if not user.totp_secret:
        user.totp_secret = pyotp.random_base32()
        db.session.commit()
    secret = user.totp_secret
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    svg = segno.make(uri, error="m").svg_inline(scale=4, border=2, title="QR code of the key",
                                                 dark="#111827", light="#ffffff")
    grouped = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    svg = svg.replace("<svg ", '<svg role="img" ', 1)
    return Enrolment(secret, grouped, uri, Markup(svg))


def _clean(code: str) -> str:
    return "".join((code or "").split()).replace("-", "").lower()


def _accept_totp(user: User, code: str) -> bool:
    """Whether the code is a current TOTP code not used before; claims its time step."""
    digits = _clean(code)
    if not user.totp_secret or len(digits) != 6 or not digits.isdigit():
        return False
    totp = pyotp.TOTP(user.totp_secret)
    now_step = int(time.time()) // totp.interval
    for step in range(now_step - TOTP_WINDOW, now_step + TOTP_WINDOW + 1):
        if hmac.compare_digest(totp.at(step * totp.interval), digits):
            claimed = db.session.execute(
                update(User).where(User.id == user.id,
                                   or_(User.totp_last_step.is_(None),
                                       User.totp_last_step < step))
                .values(totp_last_step=step))
            db.session.commit()
            db.session.refresh(user)
            return claimed.rowcount == 1
    return False


def _accept_recovery_code(user: User, code: str) -> bool:
    """Whether the code is one of the user's unused recovery codes; uses it up."""
    cleaned = _clean(code)
    if len(cleaned) != 10:
        return False
    claimed = db.session.execute(
        update(RecoveryCode).where(RecoveryCode.user_id == user.id,
                                   RecoveryCode.code_hash == _digest(cleaned),
                                   RecoveryCode.used_at.is_(None))
        .values(used_at=utcnow()))
    if claimed.rowcount == 1:
        record(user.label, "user.recovery_code", "user", user.id,
               f"{user.email} signed in with a recovery code "
               f"({remaining_recovery_codes(user)} left)")
    db.session.commit()
    return claimed.rowcount == 1


def _new_recovery_codes(user: User) -> list[str]:
    db.session.execute(RecoveryCode.__table__.delete().where(RecoveryCode.user_id == user.id))
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
    codes = ["".join(secrets.choice(alphabet) for _ in range(10)) for _ in range(RECOVERY_CODES)]
    db.session.add_all(RecoveryCode(user_id=user.id, code_hash=_digest(c)) for c in codes)
    return [f"{c[:5]}-{c[5:]}" for c in codes]


def remaining_recovery_codes(user: User) -> int:
    """How many unused recovery codes the user has."""
    return len(db.session.scalars(select(RecoveryCode.id).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))).all())


def enable_totp(user: User, code: str) -> list[str]:
    """Switch two-factor sign-in on once the code from the app matches; returns the new
    recovery codes (stored only as hashes, so shown only now)."""
    if user.totp_enabled:
        raise AccountError("Two-factor sign-in is already on.")
    if not user.totp_secret:
        raise AccountError("Start again: the enrolment key was not found.")
    if not _accept_totp(user, code):
        raise AccountError("That code does not match. Enter the 6-digit code your "
                           "authenticator app shows now for Beacon.")
    user.totp_enabled_at = utcnow()
    codes = _new_recovery_codes(user)
    record(user.label, "user.totp_on", "user", user.id,
           f"{user.email} turned on two-factor sign-in")
    db.session.commit()
    return codes


def check_second_factor(user: User, code: str) -> bool:
    """Whether the code is a fresh TOTP code or an unused recovery code of the user."""
    if not user.totp_enabled:
        return False
    return _accept_totp(user, code) or _accept_recovery_code(user, code)


def disable_totp(user: User, proof: str, *, address: str | None) -> None:
    """Switch two-factor sign-in off, confirmed by the password, a code or a recovery code.

    Wrong answers count against the client address like failed sign-ins, so a borrowed
    session cannot be used to guess the password here.
    """
    from webapp import login_throttle as throttle

    if not user.totp_enabled:
        raise AccountError("Two-factor sign-in is already off.")
    counters = throttle.store()
    by_address = throttle.address_key(address)
    wait = counters.hit(by_address, throttle.address_policy())
    if wait:
        raise AccountError("Too many wrong answers from your network. Try again in "
                           f"{throttle.wait_text(wait)}.")
    if not (verify_password(user.password_hash, proof or "")
            or check_second_factor(user, proof)):
        raise AccountError("That is neither your password nor a valid code.")
    counters.undo(by_address)
    _switch_off(user)
    record(user.label, "user.totp_off", "user", user.id,
           f"{user.email} turned off two-factor sign-in")
    db.session.commit()


def _switch_off(user: User) -> None:
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    db.session.execute(RecoveryCode.__table__.delete().where(RecoveryCode.user_id == user.id))


def admin_disable_totp(user: User, actor: User) -> None:
    """An admin switches a user's two-factor sign-in off (a lost phone and recovery codes);
    the user's sessions end, and they can enrol again with a new key."""
    if not user.totp_enabled:
        raise AccountError(f"Two-factor sign-in is already off for {user.email}.")
    _switch_off(user)
    user.session_version += 1
    record(actor.label, "user.totp_off", "user", user.id,
           f"Turned off two-factor sign-in for {user.email} (their sessions ended)")
    db.session.commit()


def sign_in_code(user: User, code: str, *, address: str | None,
                 remembered: list[int] | tuple[int, ...] = ()) -> SignIn:
    """The second sign-in step, throttled exactly like a password (a wrong code is a failed
    sign-in of the address and, from a browser the account has not used, of the account)."""
    from webapp import login_throttle as throttle

    counters = throttle.store()
    by_address = throttle.address_key(address)
    by_account = throttle.account_key(user.email)
    wait = counters.hit(by_address, throttle.address_policy())
    if wait:
        return SignIn(None, "Too many failed sign-ins from your network. Try again in "
                            f"{throttle.wait_text(wait)}.")
    if user.id not in remembered:
        wait = counters.hit(by_account, throttle.account_policy())
        if wait:
            counters.undo(by_address)
            return SignIn(None, "Too many failed sign-ins to this account. Try again in "
                                f"{throttle.wait_text(wait)}.")
    if not check_second_factor(user, code):
        return SignIn(None, "Wrong or already used code. Enter the current 6-digit code "
                            "from your authenticator app, or one of your recovery codes.")
    counters.undo(by_address)
    counters.clear(by_account)
    user.last_login_at = utcnow()
    db.session.commit()
    return SignIn(user, None)


def totp_required(user: User) -> bool:
    """Whether this user must enrol before doing anything else (REQUIRE_ADMIN_TOTP)."""
    return (bool(current_app.config.get("REQUIRE_ADMIN_TOTP")) and user.role == "admin"
            and not user.totp_enabled)
