"""Forms of the offers blueprint: the offer itself and its audiences."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Optional

from webapp.offers.fields import MAX_INT, IdListField, WholeNumberField
from webapp.services.errors import ServiceError
from webapp.targeting.audiences import (
    CHOICE,
    NUMBER,
    SEGMENT_IDS,
    AudienceField,
    AudienceType,
    validate_audience,
)
from webapp.targeting.audiences import forms as audience_forms
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


class AudienceForm(FlaskForm):
    """An add form for the audience types that share it (the registry's ``form``); its fields
    are the types' fields, made by :func:`audience_form` from the registry."""

    form_name = ""
    kinds: tuple[AudienceType, ...] = ()

    @property
    def title(self) -> str:
        """The form's heading ('Add an age range')."""
        return self.kinds[0].title

    @property
    def config_fields(self) -> list[Any]:
        """The form fields of the configuration keys, in the registry's order."""
        return [self[f.name] for f in self.kinds[0].fields]

    def chosen_type(self) -> str:
        """The audience type being added (the choice when several types share the form)."""
        if len(self.kinds) == 1:
            return self.kinds[0].name
        return self.audience_type.data

    def configuration(self) -> dict[str, Any]:
        """The audience configuration (segments chosen twice count once)."""
        config: dict[str, Any] = {}
        for spec in self.kinds[0].fields:
            value = self[spec.name].data
            if spec.input == SEGMENT_IDS:
                value = list(dict.fromkeys(value or []))
            elif spec.input == CHOICE:
                value = value or None
            config[spec.name] = value
        return config

    def validate(self, extra_validators: Any = None) -> bool:
        """The fields, then the audience rules of the targeting core (one wording for both;
        whether chosen segments exist is the service's to say)."""
        if not super().validate(extra_validators):
            return False
        try:
            validate_audience(self.chosen_type(), self.configuration())
        except AudienceDefinitionError as exc:
            self.add_errors({exc.field: exc.words})
            return False
        return True

    def add_errors(self, errors: Mapping[str, str]) -> None:
        """Put messages by field (``configuration.<key>`` keys name a form field; others go at
        the top of the form)."""
        for key, message in errors.items():
            field = self._fields.get(key.removeprefix("configuration."))
            if field is not None and key.startswith("configuration."):
                field.errors = [*field.errors, message]
            else:
                self.form_errors.append(message)

    def add_service_errors(self, exc: ServiceError) -> None:
        """Show a service's refusal by its fields, in the dashboard's words."""
        self.add_errors({key: exc.words_for(key) for key in exc.errors})


def _form_field(spec: AudienceField) -> Any:
    """The form field of one configuration key, by its input kind."""
    if spec.input == NUMBER:
        return WholeNumberField(
            spec.label, validators=[Optional()], minimum=spec.minimum or 0,
            maximum=spec.form_maximum or MAX_INT, noun=spec.label,
            example=spec.example or "250", range_message=spec.range_words or None,
            description=spec.hint)
    if spec.input == SEGMENT_IDS:
        return IdListField(spec.label, description=spec.hint)
    return SelectField(spec.label, choices=[("", "—"), *spec.choices], description=spec.hint)


@cache
def audience_form(form_name: str) -> type[AudienceForm]:
    """The form class of one of the registry's add forms (made once per form name)."""
    kinds = audience_forms()[form_name]
    attributes: dict[str, Any] = {"form_name": form_name, "kinds": kinds,
                                  "__doc__": f"Add a {' / '.join(k.name for k in kinds)} "
                                             "audience."}
    if len(kinds) > 1:
        attributes["audience_type"] = SelectField(
            "Members must be", choices=[(k.name, k.choice or k.label) for k in kinds])
    for spec in kinds[0].fields:
        attributes[spec.name] = _form_field(spec)
    return type(f"{form_name.title().replace('_', '')}AudienceForm", (AudienceForm,),
                attributes)


def audience_form_names() -> tuple[str, ...]:
    """The registry's add forms, in the order the offer page shows them."""
    return tuple(audience_forms())


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
