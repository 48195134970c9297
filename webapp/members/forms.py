"""Forms of the members blueprint: the what-if profile."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.validators import Optional, ValidationError

from webapp.offers.fields import WholeNumberField
from webapp.timeutil import utcnow
from webapp.wording import MaxLength, Present

EARLIEST_BIRTHDAY = date(1900, 1, 1)


class WhatIfForm(FlaskForm):
    """Profile values to try on a member; nothing is saved."""

    tier = SelectField("Tier")
    points = WholeNumberField("Points", validators=[Present()],
                              noun="Points")
    birthday = DateField("Birthday", validators=[Optional()],
                         description="Leave empty for a member without a birthday.")
    badges = StringField("Badges", validators=[MaxLength(10_000)],
                         description="Badge ids separated by commas.")
    custom_fields = TextAreaField("Custom fields (JSON object)", validators=[MaxLength(100_000)])

    def __init__(self, *args: Any, tiers: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tier.choices = [(t, t.capitalize()) for t in tiers]

    def validate_birthday(self, field: DateField) -> None:
        """A birthday between 1900-01-01 and today (UTC), as the API requires."""
        today = utcnow().date()
        if field.data is not None and not EARLIEST_BIRTHDAY <= field.data <= today:
            raise ValidationError(
                f"Give a birthday between 1900-01-01 and today ({today.isoformat()}); "
                f"{field.data.isoformat()} is "
                f"{'in the future' if field.data > today else 'too early'}.")

    def validate_custom_fields(self, field: TextAreaField) -> None:
        """Custom fields must be a JSON object."""
        text = (field.data or "").strip() or "{}"
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ValidationError(
                f"Not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}.") from exc
        if not isinstance(value, dict):
            raise ValidationError("Give a JSON object, e.g. {\"city\": \"London\"}.")

    def attributes(self) -> dict[str, Any]:
        """The validated values as member attributes for the targeting core."""
        badges = [b.strip() for b in (self.badges.data or "").split(",") if b.strip()]
        return {
            "tier": self.tier.data,
            "points": self.points.data,
            "birthday": self.birthday.data.isoformat() if self.birthday.data else None,
            "badges": list(dict.fromkeys(badges)),
            "custom_fields": json.loads((self.custom_fields.data or "").strip() or "{}"),
        }
