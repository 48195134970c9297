"""Forms of the webhooks blueprint."""

from __future__ import annotations

import re
from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectMultipleField, StringField, URLField, widgets
from wtforms.validators import DataRequired, Length

ACTION_CHOICES = [("ADD", "ADD — a member joins a segment"),
                  ("REMOVE", "REMOVE — a member leaves a segment")]


class MultiCheckboxField(SelectMultipleField):
    """A multiple choice shown as checkboxes."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class WebhookForm(FlaskForm):
    """A webhook subscription: where to send which events."""

    url = URLField("Receiver URL", validators=[DataRequired(message="Enter the receiver URL."),
                                               Length(max=2000)],
                   description="http:// or https:// on a public internet address (internal "
                               "hosts are refused); receives signed POSTs of event batches.")
    description = StringField("Description", validators=[Length(max=200)],
                              description="Who receives it, e.g. 'CRM sync'.")
    actions = MultiCheckboxField("Actions", choices=ACTION_CHOICES, default=["ADD", "REMOVE"],
                                 validators=[DataRequired(message="Choose at least one action.")])
    segments = StringField("Segments", validators=[Length(max=2000)],
                           description="Segment ids or customer segment ids, separated by "
                                       "commas. Leave empty for every segment.")
    active = BooleanField("Active (deliver events)", default=True)

    def service_data(self, *, with_active: bool = True) -> dict[str, Any]:
        """The form as the webhooks service takes it (a new webhook is always active)."""
        actions = [a for a in ("ADD", "REMOVE") if a in (self.actions.data or [])]
        segments = [s for s in re.split(r"[,\s]+", self.segments.data or "") if s]
        data: dict[str, Any] = {
            "url": (self.url.data or "").strip(),
            "description": (self.description.data or "").strip(),
            "event_filter": {"actions": None if len(actions) == 2 else actions,
                             "segments": segments or None},
        }
        if with_active:
            data["active"] = bool(self.active.data)
        return data

    def add_service_errors(self, errors: dict[str, str]) -> None:
        """Show the service's refusals next to the fields they name."""
        fields = {"url": self.url, "description": self.description,
                  "event_filter.actions": self.actions, "event_filter.segments": self.segments,
                  "active": self.active}
        for key, message in errors.items():
            field = fields.get(key, self.url)
            field.errors = [*field.errors, message]

    def load(self, webhook) -> None:
        """Fill the form from an existing webhook."""
        event_filter = webhook.event_filter or {}
        self.url.data = webhook.url
        self.description.data = webhook.description
        self.actions.data = event_filter.get("actions") or ["ADD", "REMOVE"]
        self.segments.data = ", ".join(str(s) for s in event_filter.get("segments") or [])
        self.active.data = webhook.active


class EmptyForm(FlaskForm):
    """Only the CSRF token, for buttons that post."""
