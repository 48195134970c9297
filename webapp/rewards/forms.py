"""Forms of the rewards blueprint."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms.validators import InputRequired

from webapp.offers.fields import IdListField, WholeNumberField
from webapp.offers.forms import OfferForm


class RewardForm(OfferForm):
    """Create or edit a reward: an offer's fields plus its points cost."""

    points = WholeNumberField("Points cost", default=0,
                              validators=[InputRequired("Give the points cost.")],
                              noun="Points cost")
    discontinued = BooleanField("Discontinued (hidden from every member)")
    requires_activation = None  # rewards are redeemed, not activated
    must_fulfill_within_days = None

    def values(self, original: Any = None) -> dict[str, Any]:
        """The form as the service's data mapping."""
        return {**super().values(original), "points": self.points.data}


class RequiredSegmentsForm(FlaskForm):
    """Segments to add to a reward's requirements."""

    segments = IdListField("Segments")
