"""Forms of the uploads blueprint."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import RadioField, SelectField, StringField
from wtforms.validators import Optional

from webapp.wording import MaxLength

MODE_CHOICES = [
    ("add", "Add — put the file's members on the list"),
    ("remove", "Remove — take the file's members off the list"),
    ("replace", "Replace — the list becomes exactly the file"),
]
HEADER_CHOICES = [("auto", "Detect"), ("yes", "First row is a header"),
                  ("no", "No header row")]


class UploadForm(FlaskForm):
    """A member-list file to check (dry run) before it is applied."""

    file = FileField("File", validators=[FileRequired("Choose a file to upload.")],
                     description="CSV (with or without a header) or plain text with one member "
                                 "id, external id or email per line; UTF-8.")
    mode = RadioField("What to do", choices=MODE_CHOICES, default="add")
    column = StringField("Identifier column", validators=[Optional(), MaxLength(255)],
                         description="Header name or column number; leave empty to detect it.")
    header = SelectField("Header row", choices=HEADER_CHOICES, default="auto")

    def header_option(self) -> bool | None:
        """The header choice as the parser takes it."""
        return {"yes": True, "no": False}.get(self.header.data)


class EmptyForm(FlaskForm):
    """A form with only the CSRF token, for buttons that post."""
