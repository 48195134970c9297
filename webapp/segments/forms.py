"""Forms of the segments blueprint (the criteria rows are read by `webapp.segments.builder`)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, StringField, TextAreaField

KIND_CHOICES = [("dynamic", "Dynamic — members who match criteria"),
                ("static", "Static — an uploaded or edited list")]


class SegmentForm(FlaskForm):
    """A segment's attributes; the service validates them (one set of rules for UI and API)."""

    name = StringField("Name")
    description = TextAreaField("Description")
    customer_segment_id = StringField("Customer segment id")
    url = StringField("URL")
    kind = RadioField("Kind", choices=KIND_CHOICES, default="dynamic")
    version = HiddenField()


class DeleteForm(FlaskForm):
    """Only the CSRF token, for the delete button."""
