"""Forms of the auth blueprint."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from webapp.wording import MaxLength, Required


class LoginForm(FlaskForm):
    """Email and password sign-in."""

    email = EmailField("Email", validators=[Required(), MaxLength(320)])
    password = PasswordField("Password", validators=[Required(), MaxLength(200)])
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


class ResetPasswordForm(FlaskForm):
    """Set a new password with a one-time reset link."""

    new = PasswordField("New password",
                        validators=[DataRequired(message="Enter a new password."),
                                    Length(min=10, max=200,
                                           message="The new password must have 10 to 200 "
                                                   "characters.")])
    confirm = PasswordField("Repeat the new password",
                            validators=[DataRequired(message="Repeat the new password."),
                                        EqualTo("new", message="The two new passwords differ.")])


class CodeForm(FlaskForm):
    """A code from the authenticator app, or a recovery code."""

    code = StringField("Code", validators=[
        DataRequired(message="Enter the 6-digit code from your authenticator app."),
        Length(max=40, message="A code has 6 digits; a recovery code 10 letters and digits.")])


class TotpDisableForm(FlaskForm):
    """Turn two-factor sign-in off, confirmed by the password or a code."""

    proof = PasswordField("Your password, or a code", validators=[
        DataRequired(message="Enter your password, a code from your app or a recovery code."),
        Length(max=200)])
