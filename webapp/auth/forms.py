"""Forms of the auth blueprint."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length


class LoginForm(FlaskForm):
    """Email and password sign-in."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])
    next = HiddenField()


class PasswordForm(FlaskForm):
    """Change one's own password."""

    current = PasswordField("Current password",
                            validators=[DataRequired(message="Enter your current password."),
                                        Length(max=200)])
    new = PasswordField("New password",
                        validators=[DataRequired(message="Enter a new password."),
                                    Length(min=10, max=200,
                                           message="The new password must have 10 to 200 "
                                                   "characters.")])
    confirm = PasswordField("Repeat the new password",
                            validators=[DataRequired(message="Repeat the new password."),
                                        EqualTo("new", message="The two new passwords differ.")])
