"""Forms of the rewards blueprint."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectMultipleField
from wtforms.validators import InputRequired, NumberRange

from webapp.offers.forms import OfferForm


class RewardForm(OfferForm):
    """Create or edit a reward: an offer's fields plus its points cost."""

    points = IntegerField("Points cost", default=0, validators=[
        InputRequired("Give the points cost."),
        NumberRange(min=0, max=2**63 - 1, message="Points cost must be 0 or more.")])
    discontinued = BooleanField("Discontinued (hidden from every member)")

    def values(self, original: Any = None) -> dict[str, Any]:
        """The form as the service's data mapping."""
        return {**super().values(original), "points": self.points.data}


class RequiredSegmentsForm(FlaskForm):
    """Segments to add to a reward's requirements."""

    segments = SelectMultipleField("Segments", coerce=int, validate_choice=False)
