"""Services refuse with one error type that carries field -> message."""

from __future__ import annotations

import pytest

from webapp.services.errors import ServiceError
from webapp.services.members import MemberError
from webapp.services.offers import OfferError
from webapp.services.overrides import OverrideError
from webapp.services.rewards import RewardError
from webapp.services.segments import SegmentError
from webapp.services.webhooks import WebhookError


@pytest.mark.parametrize("error", [MemberError, OfferError, RewardError, SegmentError,
                                   WebhookError])
def test_field_errors_are_service_errors(error: type[ServiceError]) -> None:
    """Each service's error is a ServiceError keyed by field, 422 unless told otherwise."""
    exc = error({"points": "points takes a number"})
    assert isinstance(exc, ServiceError) and exc.errors == {"points": "points takes a number"}
    assert exc.status == 422 and "points takes a number" in str(exc)


def test_override_error_keeps_its_sentence_and_names_its_field() -> None:
    """An override refusal reads as before and says which attribute it is about."""
    exc = OverrideError("The expiry is in the past; give a future time, or none.", "expires_at")
    assert str(exc) == "The expiry is in the past; give a future time, or none."
    assert exc.errors == {"expires_at": str(exc)}
    assert OverrideError("Someone else changed this override.").errors == {
        "": "Someone else changed this override."}
