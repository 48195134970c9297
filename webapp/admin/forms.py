"""Forms of the admin blueprint."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Regexp

from webapp.models import ROLES
from webapp.targeting.declared import TYPES
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


class AttributeForm(FlaskForm):
    """A declared custom field (checked by webapp.services.attributes, which names each
    problem by its field)."""

    key = StringField("Key", description="The custom field's key as members carry it, "
                                         "e.g. vip or Customer Type.")
    type = SelectField("Type", choices=list(TYPES.items()), default="string")
    allowed_values = TextAreaField("Allowed values", description=(
        "One per line; leave empty to allow any value. For text, numbers and lists of text."))
    description = TextAreaField("Description", description="What the field means, for "
                                                           "marketers building segments.")
    example = StringField("Example", description="A typical value, e.g. gold, 42, true, "
                                                 "2026-01-31 or a, b for a list.")
