"""User accounts: creation, sign-in with throttling, role changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import ROLES, User
from webapp.passwords import hash_password, verify_password
from webapp.services.audit import record
from webapp.timeutil import utcnow

MIN_PASSWORD = 10


class UserError(ValueError):
    """A refused user operation, with a message for the person."""


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


def authenticate(email: str, password: str, max_failures: int, lock_seconds: int) -> SignIn:
    """Check credentials; lock the account for a while after repeated failures."""
    generic = "Wrong email or password."
    user = find_by_email(email)
    now = utcnow()
    if user is None:
        return SignIn(None, generic)
    if user.locked_until and user.locked_until > now:
        wait = int((user.locked_until - now).total_seconds() // 60) + 1
        return SignIn(None, f"Too many failed sign-ins. Try again in {wait} minute"
                            f"{'s' if wait != 1 else ''}.")
    if not verify_password(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= max_failures:
            user.locked_until = now + timedelta(seconds=lock_seconds)
            user.failed_logins = 0
            db.session.commit()
            return SignIn(None, "Too many failed sign-ins. This account is locked for "
                                f"{lock_seconds // 60} minutes.")
        db.session.commit()
        return SignIn(None, generic)
    if not user.active:
        return SignIn(None, "This account has been deactivated. Ask an administrator.")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    db.session.commit()
    return SignIn(user, None)


def update_user(user: User, *, role: str, active: bool, actor: User) -> None:
    """Change a user's role or active flag; an admin cannot demote or deactivate themself."""
    if role not in ROLES:
        raise UserError(f"Unknown role {role!r}.")
    if user.id == actor.id and (role != "admin" or not active):
        raise UserError("You cannot remove your own admin role or deactivate yourself.")
    before = {"role": user.role, "active": user.active}
    user.role, user.active = role, active
    record(actor.label, "user.update", "user", user.id, f"Updated {user.email}",
           before=before, after={"role": role, "active": active})
    db.session.commit()
