"""Forms of the auth blueprint."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField

from webapp.wording import MaxLength, Required


class LoginForm(FlaskForm):
    """Email and password sign-in."""

    email = EmailField("Email", validators=[Required(), MaxLength(320)])
    password = PasswordField("Password", validators=[Required(), MaxLength(200)])
    next = HiddenField()
