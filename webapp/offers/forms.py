"""Forms of the offers blueprint: the offer itself and its audiences."""

from __future__ import annotations

import re
from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Optional, StopValidation

from webapp.offers.fields import IdListField, WholeNumberField
from webapp.targeting.audiences import (
    AGE_WITHIN,
    IN_ALL_SEGMENTS,
    IN_ANY_SEGMENT,
    validate_audience,
)
from webapp.targeting.errors import AudienceDefinitionError
from webapp.wording import MaxLength, Required, sentence

WINDOW_HINT = "UTC. Leave empty for no limit."


class OfferForm(FlaskForm):
    """Create or edit an offer."""

    name = StringField("Name", validators=[Required(), MaxLength(200)])
    external_id = StringField("External id", validators=[MaxLength(255)],
                              description="Your system's id for the offer (unique, optional).")
    category = StringField("Category", validators=[MaxLength(100)])
    description = TextAreaField("Description", validators=[MaxLength(20_000)])
    publish_at = DateTimeLocalField("Publish at", format="%Y-%m-%dT%H:%M",
                                    validators=[Optional()], description=WINDOW_HINT)
    expire_at = DateTimeLocalField("Expire at", format="%Y-%m-%dT%H:%M",
                                   validators=[Optional()], description=WINDOW_HINT)
    discontinued = BooleanField("Discontinued (nobody is eligible, whatever the audiences)")
    requires_activation = BooleanField("Requires activation (members activate it first; each "
                                       "activation allows one award)")
    must_fulfill_within_days = WholeNumberField(
        "Fulfil within (days)", validators=[Optional()], minimum=1, maximum=36_600,
        noun="Fulfil within", description="After activating. Leave empty for no deadline.")

    def values(self, original: Any = None) -> dict[str, Any]:
        """The form as the service's data mapping (an unchanged minute keeps its seconds)."""
        moments = {}
        for key in ("publish_at", "expire_at"):
            value = getattr(self, key).data
            stored = getattr(original, key, None)
            if value is not None and stored is not None and value == stored.replace(
                    second=0, microsecond=0):
                value = stored
            moments[key] = value
        values = {"name": self.name.data or "", "external_id": self.external_id.data or None,
                  "category": self.category.data or "",
                  "description": self.description.data or "",
                  "discontinued": bool(self.discontinued.data), **moments}
        if self.requires_activation is not None:  # offers only (rewards drop these fields)
            values["requires_activation"] = bool(self.requires_activation.data)
            values["must_fulfill_within_days"] = self.must_fulfill_within_days.data
        return values

    def add_service_errors(self, errors: dict[str, str]) -> None:
        """Show a service's field errors next to the fields (others at the top)."""
        for key, message in errors.items():
            field = getattr(self, key, None)
            if field is not None and hasattr(field, "errors"):
                field.errors = [*field.errors, sentence(field.label.text, message)]
            else:
                self.form_errors.append(sentence(key.replace("_", " ").capitalize(), message))


AUDIENCE_CHOICES = [(IN_ALL_SEGMENTS, "in ALL of the chosen segments"),
                    (IN_ANY_SEGMENT, "in ANY of the chosen segments")]


class AgeAudienceForm(FlaskForm):
    """An age_within audience: minimum and/or maximum age (inclusive)."""

    minimum_age = WholeNumberField("Minimum age", validators=[Optional()], minimum=0,
                                   maximum=200, noun="Minimum age", example="18",
                                   range_message="Minimum age must be from 0 to 200 years.")
    maximum_age = WholeNumberField("Maximum age", validators=[Optional()], minimum=0,
                                   maximum=200, noun="Maximum age", example="65",
                                   range_message="Maximum age must be from 0 to 200 years.")

    def validate(self, extra_validators: Any = None) -> bool:
        """The fields, then the audience rules of the targeting core (one wording for both)."""
        if not super().validate(extra_validators):
            return False
        try:
            validate_audience(AGE_WITHIN, self.configuration())
        except AudienceDefinitionError as exc:
            self.form_errors.append(str(exc))
            return False
        return True

    def configuration(self) -> dict[str, Any]:
        """The audience configuration."""
        return {"minimum_age": self.minimum_age.data, "maximum_age": self.maximum_age.data}


class SegmentAudienceForm(FlaskForm):
    """An in_all_segments / in_any_segment audience."""

    audience_type = SelectField("Members must be", choices=AUDIENCE_CHOICES)
    segments = IdListField("Segments")

    def validate_segments(self, field: IdListField) -> None:
        """At least one segment chosen (said here, in the dashboard's words)."""
        if not field.data:
            raise StopValidation("Choose at least one segment.")

    def configuration(self) -> dict[str, Any]:
        """The audience configuration."""
        return {"segments": list(dict.fromkeys(self.segments.data or []))}


LIMIT_TYPE_CHOICES = [
    ("membership_award_count", "awards per member"),
    ("global_award_count", "awards over all members"),
    ("membership_activation", "activations per member"),
    ("global_activation", "activations over all members"),
]
WINDOW_CHOICES = [("", "over all time"), ("days", "in a rolling number of days"),
                  ("day", "per calendar day"), ("week", "per calendar week (from Monday)"),
                  ("month", "per calendar month"), ("year", "per calendar year")]


class LimitForm(FlaskForm):
    """A limit on the offer: what it counts, how many, and over which window."""

    limit_type = SelectField("Limit", choices=LIMIT_TYPE_CHOICES)
    limit = WholeNumberField("At most", validators=[InputRequired(
        message="Give the most activations or awards allowed.")], minimum=1,
        maximum=2**31 - 1, noun="At most")
    window = SelectField("Counted", choices=WINDOW_CHOICES)
    days = WholeNumberField("Days", validators=[Optional()], minimum=1, maximum=36_600,
                            noun="Days", description="for a rolling window")

    def validate(self, extra_validators: Any = None) -> bool:
        """The fields, then a number of days for a rolling window."""
        if not super().validate(extra_validators):
            return False
        if self.window.data == "days" and self.days.data is None:
            self.days.errors = [*self.days.errors, "Give the number of days of the window."]
            return False
        return True

    def configuration(self) -> dict[str, Any]:
        """The limit configuration ({limit, window})."""
        config: dict[str, Any] = {"limit": self.limit.data}
        if self.window.data == "days":
            config["window"] = {"days": self.days.data}
        elif self.window.data:
            config["window"] = {"period": self.window.data}
        return config


_AUDIENCE_WORDS = (
    (re.compile(r"segments must list at least one segment id"), "Choose at least one segment."),
    (re.compile(r"segment (\d+) is listed twice"), r"Segment #\1 is chosen twice."),
    (re.compile(r"segment (\d+) does not exist"),
     r"Segment #\1 no longer exists; choose another."),
)


def audience_message(message: str) -> str:
    """An audience refusal of the targeting core in the dashboard's words (no internal names
    such as in_all_segments or minimum_age)."""
    body = message.split(": ", 1)[-1] if ":" in message.split(" ", 1)[0] else message
    for pattern, words in _AUDIENCE_WORDS:
        found = pattern.search(body)
        if found:
            return found.expand(words)
    body = body.replace("_", " ")
    return body[:1].upper() + body[1:].rstrip(".") + "."
