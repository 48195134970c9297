"""Forms of the overrides blueprint."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import request
from flask_wtf import FlaskForm
from wtforms import (
    FieldList,
    Form,
    FormField,
    HiddenField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Optional, ValidationError

from webapp.services.overrides import MAX_DESCRIPTION
from webapp.timeutil import parse_datetime
from webapp.wording import MaxLength, Required

STATUS_CHOICES = [
    ("block", "Block — keep the member out, whatever the rules say"),
    ("add", "Add — keep the member in, whatever the rules say"),
]
CONTEXTS = ("segment", "member", "index")
MAX_METADATA_ROWS = 20


class When:
    """Validator: empty, or an ISO date/time such as 2026-11-22T09:30 (UTC)."""

    def __call__(self, form: Form, field: StringField) -> None:
        text = (field.data or "").strip()
        field.parsed = None
        if not text:
            return
        try:
            field.parsed = parse_datetime(text)
        except ValueError as exc:
            raise ValidationError(
                f"{text!r} is not a date and time; use the picker or write "
                "2026-11-22T09:30 (UTC).") from exc


class MetadataRow(Form):
    """One key/value pair of an override's metadata (a sub-form: no CSRF of its own)."""

    key = StringField("Key", validators=[MaxLength(100, "Metadata key")])
    value = StringField("Value", validators=[MaxLength(1000, "Metadata value")])


class OverrideForm(FlaskForm):
    """Pin a member in or out of a dynamic segment."""

    context = HiddenField(default="index")
    next = HiddenField()
    segment_id = SelectField("Segment", coerce=int, validate_choice=True,
                             choices=[], description="Rule-managed (dynamic) segments only.")
    member = StringField("Member", validators=[Required(
        "Member is required: give a member id, external id or email."), MaxLength(320)],
        description="Member id, external id or email.", id="override-member")
    status = RadioField("Override", choices=STATUS_CHOICES, default="block",
                        validators=[Required("Choose add or block.")])
    description = TextAreaField("Reason", validators=[
        Required("Reason is required: say why this member is pinned in or out."),
        MaxLength(MAX_DESCRIPTION)],
        description="Required. Support agents read this when they explain what a member sees.")
    reference_id = StringField("Reference id", validators=[Optional(), MaxLength(255)],
                               description="Optional: a ticket, case or campaign id.")
    metadata = FieldList(FormField(MetadataRow),
                         min_entries=2, max_entries=MAX_METADATA_ROWS)
    status_change_timestamp = StringField(
        "Status-change time (UTC)", validators=[When()],
        render_kw={"type": "datetime-local", "step": "60"},
        description="Optional; empty means now.")
    expires_at = StringField(
        "Expires (UTC)", validators=[When()],
        render_kw={"type": "datetime-local", "step": "60"},
        description="Optional; from then on the rules decide again.")

    def validate_metadata(self, field: FieldList) -> None:
        """At most MAX_METADATA_ROWS pairs; every value has a key; no key twice."""
        posted = {name.split("-")[1] for name, value in request.form.items(multi=True)
                  if name.startswith("metadata-") and name.count("-") == 2 and value.strip()}
        if len(posted) > MAX_METADATA_ROWS:
            raise ValidationError(f"At most {MAX_METADATA_ROWS} metadata pairs are allowed "
                                  f"({len(posted)} given).")
        seen: set[str] = set()
        for row in field:
            key = (row.key.data or "").strip()
            value = (row.value.data or "").strip()
            if not key and value:
                raise ValidationError(f"The metadata value {value!r} needs a key.")
            if key and key in seen:
                raise ValidationError(f"The metadata key {key!r} appears twice.")
            if key:
                seen.add(key)

    def metadata_dict(self) -> dict[str, Any]:
        """The filled metadata rows as a dict."""
        return {(row.key.data or "").strip(): (row.value.data or "").strip()
                for row in self.metadata if (row.key.data or "").strip()}

    def when(self, name: str) -> datetime | None:
        """A validated date/time field's value (naive UTC), or None when empty."""
        return getattr(getattr(self, name), "parsed", None)

    def ensure_blank_row(self) -> None:
        """Keep one empty metadata row to fill in, up to the limit."""
        if len(self.metadata) < MAX_METADATA_ROWS and all(
                (row.key.data or "").strip() for row in self.metadata):
            self.metadata.append_entry()


class BulkResetForm(FlaskForm):
    """Reset the selected overrides."""

    next = HiddenField()


class ResetForm(FlaskForm):
    """Reset one override."""

    context = HiddenField(default="index")
    next = HiddenField()
    description = StringField("Why (optional)", validators=[MaxLength(MAX_DESCRIPTION,
                                                                      "Reason")])
