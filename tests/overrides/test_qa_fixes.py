"""QA regressions: the reason's length limit is the same on the server as in the form."""

from __future__ import annotations

import pytest

from tests.factories import make_member, make_segment
from webapp.extensions import db
from webapp.models import Override
from webapp.services.overrides import MAX_DESCRIPTION, OverrideError, reset_override, set_override

GOLD = [{"field": "tier", "operator": "equals", "value": "gold"}]
HX = {"HX-Request": "true"}


@pytest.fixture
def gold(app):
    """A gold segment and one gold member."""
    return make_segment("Gold tier", include=GOLD), make_member(tier="gold", external_id="G1")


def test_service_refuses_a_reason_over_the_form_limit(gold):
    segment, member = gold
    assert MAX_DESCRIPTION == 2000
    with pytest.raises(OverrideError, match=r"at most 2,000 characters \(2,100 given\)"):
        set_override(segment, member, "block", description="x" * 2100, actor="T")
    assert db.session.query(Override).count() == 0
    set_override(segment, member, "block", description="y" * 2000, actor="T")
    with pytest.raises(OverrideError, match="at most 2,000"):
        reset_override(segment, member, actor="T", description="z" * 2001)
    assert db.session.query(Override).count() == 1


def test_form_refuses_a_long_reason_with_a_clear_message(client, auth, gold):
    segment, member = gold
    auth.login("admin")
    data = {"context": "segment", "segment_id": str(segment.id), "member": "G1",
            "status": "block", "description": "x" * 2100}
    response = client.post("/overrides/set", data=data, headers=HX)
    assert response.status_code == 422
    assert "Reason must be at most 2,000 characters" in response.get_data(as_text=True)
    # no maxlength: a browser would silently cut a pasted reason instead of saying so
    assert 'maxlength=' not in response.get_data(as_text=True)
    assert db.session.query(Override).count() == 0
