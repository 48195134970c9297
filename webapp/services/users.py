"""User accounts: creation, sign-in with throttling, role changes."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import ROLES, User
from webapp.passwords import hash_password, verify_password
from webapp.services.audit import record
from webapp.timeutil import utcnow

MIN_PASSWORD = 10


class UserError(ValueError):
    """A refused user operation, with a message for the person."""


class WrongPassword(UserError):
    """The current password given to confirm a change is wrong."""


def find_by_email(email: str) -> User | None:
    """The user with this email, case-insensitively."""
    return db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def create_user(email: str, password: str, role: str, name: str = "",
                actor: str = "system") -> User:
    """Create a user, refusing a duplicate email, a weak password or an unknown role."""
    email = email.strip().lower()
    if role not in ROLES:
        raise UserError(f"Unknown role {role!r}: choose one of {', '.join(ROLES)}.")
    if "@" not in email:
        raise UserError(f"{email!r} is not an email address.")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"The password must have at least {MIN_PASSWORD} characters.")
    if find_by_email(email):
        raise UserError(f"A user with the email {email} already exists.")
    user = User(email=email, name=name.strip(), role=role, password_hash=hash_password(password))
    db.session.add(user)
    db.session.flush()
    record(actor, "user.create", "user", user.id, f"Created {email} as {role}",
           after={"email": email, "role": role})
    db.session.commit()
    return user


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in attempt."""

    user: User | None
    message: str | None


GENERIC_FAILURE = "Wrong email or password."


@cache
def _dummy_hash() -> str:
    """Checked when no account has the email, so that a wrong email costs the same time as
    a wrong password and the answer's timing does not tell which emails exist."""
    return hash_password("not the password of anyone")


def authenticate(email: str, password: str, *, address: str | None,
                 remembered: list[int] | tuple[int, ...] = ()) -> SignIn:
    """Check credentials, throttled per client address and per account (login_throttle).

    `remembered` are the user ids this browser has signed in as before: such a browser is
    exempt from the per-account backoff, so no stranger can keep a user out of it.
    """
    from webapp import login_throttle as throttle

    counters = throttle.store()
    by_address = throttle.address_key(address)
    by_account = throttle.account_key(email)
    user = find_by_email(email)
    trusted = user is not None and user.id in remembered
    wait = counters.hit(by_address, throttle.address_policy())
    if wait:
        return SignIn(None, "Too many failed sign-ins from your network. Try again in "
                            f"{throttle.wait_text(wait)}.")
    if not trusted:
        wait = counters.hit(by_account, throttle.account_policy())
        if wait:
            counters.undo(by_address)  # this attempt was refused, not tried
            return SignIn(None, "Too many failed sign-ins to this account from browsers it "
                                "has not signed in with. Try again in "
                                f"{throttle.wait_text(wait)}, or use a browser you have "
                                "signed in with before.")
    if user is None:
        verify_password(_dummy_hash(), password)
        return SignIn(None, GENERIC_FAILURE)
    if not verify_password(user.password_hash, password):
        return SignIn(None, GENERIC_FAILURE)
    counters.undo(by_address)
    counters.clear(by_account)
    if not user.active:
        return SignIn(None, "This account has been deactivated. Ask an administrator.")
    user.last_login_at = utcnow()
    db.session.commit()
    return SignIn(user, None)


def change_password(user: User, current: str, new: str) -> None:
    """Set a new password after checking the current one; ends the user's other sessions."""
    if not verify_password(user.password_hash, current):
        raise WrongPassword("The current password is wrong.")
    if len(new) < MIN_PASSWORD:
        raise UserError(f"The new password must have at least {MIN_PASSWORD} characters.")
    if new == current:
        raise UserError("The new password is the same as the current one.")
    user.password_hash = hash_password(new)
    user.session_version += 1
    record(user.label, "user.password", "user", user.id,
           f"{user.email} changed their password (their other sessions ended)")
    db.session.commit()


def end_sessions(user: User) -> None:
    """End every session of the user on the server (committed)."""
    user.session_version += 1
    db.session.commit()


def update_user(user: User, *, role: str, active: bool, actor: User) -> None:
    """Change a user's role or active flag; an admin cannot demote or deactivate themself."""
    if role not in ROLES:
        raise UserError(f"Unknown role {role!r}.")
    if user.id == actor.id and (role != "admin" or not active):
        raise UserError("You cannot remove your own admin role or deactivate yourself.")
    before = {"role": user.role, "active": user.active}
    if user.active and not active:
        user.session_version += 1  # a deactivated user's open sessions end now
    user.role, user.active = role, active
    record(actor.label, "user.update", "user", user.id, f"Updated {user.email}",
           before=before, after={"role": role, "active": active})
    db.session.commit()
