"""Forms of the segments blueprint (the criteria rows are read by `webapp.segments.builder`)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

KIND_CHOICES = [("dynamic", "Dynamic — members who match criteria"),
                ("static", "Static — an uploaded or edited list")]


class SegmentForm(FlaskForm):
    """A segment's attributes; the service validates them (one set of rules for UI and API)."""

    name = StringField("Name")
    description = TextAreaField("Description")
    customer_segment_id = StringField("Customer segment id")
    url = StringField("URL")
    kind = RadioField("Kind", choices=KIND_CHOICES, default="dynamic")
    tags = StringField("Tags")
    owner = SelectField("Owner", choices=[SelectChoice("", "No owner")], validate_choice=False)
    version = HiddenField()

    def fill_organisation(self, segment, users) -> None:
        """Owner choices (the active users, and the current owner), and on a GET the segment's
        tags and owner as the fields show them."""
        choices = [SelectChoice("", "No owner")] + [
            SelectChoice(str(u.id), f"{u.label} ({u.email})" if u.name else u.email)
            for u in users]
        if segment is not None and segment.owner is not None \
                and str(segment.owner_id) not in {c.value for c in choices}:
            choices.append(SelectChoice(str(segment.owner_id), segment.owner.label))
        self.owner.choices = choices

    def tag_list(self) -> list[str]:
        """The tags typed, split at commas."""
        return [t for t in (self.tags.data or "").split(",") if t.strip()]


class ArchiveForm(FlaskForm):
    """Only the CSRF token, for the archive and restore buttons."""


class DeleteForm(FlaskForm):
    """Only the CSRF token, for the delete button."""
