"""Forms of the admin blueprint."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.validators import Regexp

from webapp.models import ROLES
from webapp.wording import MaxLength, MinLength, Required

ROLE_CHOICES = [(r, r.capitalize()) for r in ROLES]


class UserCreateForm(FlaskForm):
    """A new dashboard user."""

    email = EmailField("Email", validators=[
        Required(), MaxLength(320),
        Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
               message="Email must be an email address, e.g. ada@example.com.")])
    name = StringField("Name", validators=[MaxLength(120)])
    role = SelectField("Role", choices=ROLE_CHOICES, default="support")
    password = PasswordField("Initial password",
                             validators=[Required(), MinLength(10), MaxLength(200)])


class UserUpdateForm(FlaskForm):
    """Change a user's role or deactivate them."""

    role = SelectField("Role", choices=ROLE_CHOICES)
    active = BooleanField("Active")


class TokenCreateForm(FlaskForm):
    """A new API token."""

    name = StringField("Name", validators=[Required(), MaxLength(120)],
                       description="Who uses it, e.g. 'CRM nightly sync'.")
    role = SelectField("Role", choices=ROLE_CHOICES, default="support")


class EmptyForm(FlaskForm):
    """A form with only the CSRF token, for buttons that post."""
