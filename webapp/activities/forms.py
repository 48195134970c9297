"""Forms of the activities blueprint."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired


class ImportForm(FlaskForm):
    """A CSV file of activities to check (dry run) before it is applied."""

    file = FileField("CSV file", validators=[FileRequired("Choose a CSV file to import.")],
                     description="UTF-8 CSV with a header row naming the columns (see "
                                 "The columns).")


class EmptyForm(FlaskForm):
    """A form with only the CSRF token, for buttons that post."""
