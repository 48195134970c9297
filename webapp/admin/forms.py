"""Forms of the admin blueprint."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Regexp

from webapp.models import ROLES

ROLE_CHOICES = [(r, r.capitalize()) for r in ROLES]


class UserCreateForm(FlaskForm):
    """A new dashboard user."""

    email = EmailField("Email", validators=[
        DataRequired(), Length(max=320),
        Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", message="Invalid email address.")])
    name = StringField("Name", validators=[Length(max=120)])
    role = SelectField("Role", choices=ROLE_CHOICES, default="support")
    password = PasswordField("Initial password",
                             validators=[DataRequired(), Length(min=10, max=200)])


class UserUpdateForm(FlaskForm):
    """Change a user's role or deactivate them."""

    role = SelectField("Role", choices=ROLE_CHOICES)
    active = BooleanField("Active")


class TokenCreateForm(FlaskForm):
    """A new API token."""

    name = StringField("Name", validators=[DataRequired(), Length(max=120)],
                       description="Who uses it, e.g. 'CRM nightly sync'.")
    role = SelectField("Role", choices=ROLE_CHOICES, default="support")


class EmptyForm(FlaskForm):
    """A form with only the CSRF token, for buttons that post."""
