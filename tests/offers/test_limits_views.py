"""The offer page's limits (page, fragment, 422, roles), the activation fields of the offer
form, and the member page's activation, usage and redemptions (issue 16)."""

from __future__ import annotations

from sqlalchemy import select

from tests.factories import make_member, make_offer, make_reward
from webapp.extensions import db
from webapp.models import Offer, OfferLimit
from webapp.services.offer_activity import activate, fulfill
from webapp.services.redemptions import cancel, redeem

HX = {"HX-Request": "true"}


def _add(client, offer, **data):
    form = {"limit_type": "membership_award_count", "limit": "3", "window": "month", "days": ""}
    form.update(data)
    return client.post(f"/offers/{offer.id}/limits", data=form)


def test_marketer_adds_and_removes_limits_page_fragment_and_422(client, auth):
    offer = make_offer("Coffee")
    auth.login("marketer")
    page = client.get(f"/offers/{offer.id}").get_data(as_text=True)
    assert 'id="limits"' in page and "No limits" in page and "Add a limit" in page
    response = _add(client, offer)
    assert response.status_code == 303
    page = client.get(response.location).get_data(as_text=True)
    assert "at most 3 awards per member per calendar month" in page
    assert "0 members at the limit in the current window" in page
    fragment = client.post(f"/offers/{offer.id}/limits", headers=HX, data={
        "limit_type": "global_award_count", "limit": "100", "window": "", "days": ""})
    assert fragment.status_code == 200
    text = fragment.get_data(as_text=True)
    assert text.startswith('<section id="limits"') and "<html" not in text
    assert "0 of 100 used" in text
    assert "Added limit" in fragment.headers["HX-Trigger"]
    # invalid: a rolling window without days, a limit of 0, activations mixed with awards
    bad = client.post(f"/offers/{offer.id}/limits", headers=HX, data={
        "limit_type": "membership_award_count", "limit": "2", "window": "days", "days": ""})
    assert bad.status_code == 422 and "Give the number of days" in bad.get_data(as_text=True)
    bad = _add(client, offer, limit="0")
    assert bad.status_code == 422 and "At most must be 1 or more" in bad.get_data(as_text=True)
    bad = _add(client, offer, limit_type="membership_activation", window="")
    assert bad.status_code == 422
    assert "which counts awards" in bad.get_data(as_text=True)
    assert db.session.scalar(select(OfferLimit.id).where(
        OfferLimit.limit_type == "membership_activation")) is None
    limit = db.session.scalar(select(OfferLimit).where(
        OfferLimit.limit_type == "global_award_count"))
    removed = client.post(f"/offers/{offer.id}/limits/{limit.id}/delete", headers=HX)
    assert removed.status_code == 200 and "0 of 100 used" not in removed.get_data(as_text=True)
    assert db.session.get(OfferLimit, limit.id) is None


def test_support_reads_limits_but_cannot_change_them(client, auth):
    offer = make_offer("Coffee")
    db.session.add(OfferLimit(offer_id=offer.id, limit_type="global_award_count",
                              configuration={"limit": 5, "window": None}))
    db.session.commit()
    limit = db.session.scalar(select(OfferLimit))
    auth.login("support")
    page = client.get(f"/offers/{offer.id}").get_data(as_text=True)
    assert "at most 5 awards over all members" in page
    assert "Add a limit" not in page and "Remove" not in page
    assert _add(client, offer).status_code == 403
    assert client.post(f"/offers/{offer.id}/limits/{limit.id}/delete").status_code == 403
    assert db.session.get(OfferLimit, limit.id) is not None


def test_offer_form_sets_activation_and_its_deadline(client, auth):
    auth.login("marketer")
    response = client.post("/offers/new", data={"name": "Double points",
                                                "requires_activation": "y",
                                                "must_fulfill_within_days": "0"})
    assert response.status_code == 422
    assert "Fulfil within must be 1 or more" in response.get_data(as_text=True)
    response = client.post("/offers/new", data={"name": "Double points",
                                                "requires_activation": "y",
                                                "must_fulfill_within_days": "7"})
    assert response.status_code == 303
    offer = db.session.scalar(select(Offer))
    assert offer.requires_activation and offer.must_fulfill_within_days == 7
    page = client.get(response.location).get_data(as_text=True)
    assert "an activation lapses after 7 days without an award" in page
    assert 'name="requires_activation"' in client.get(f"/offers/{offer.id}/edit").get_data(
        as_text=True)


def test_member_page_shows_activation_usage_redemptions_and_why_a_limit_applies(
        client, auth):
    member = make_member(external_id="ANA", points=500)
    offer = make_offer("Double points", requires_activation=True)
    capped = make_offer("Coffee")
    db.session.add(OfferLimit(offer_id=capped.id, limit_type="membership_award_count",
                              configuration={"limit": 1, "window": {"period": "month"}}))
    db.session.commit()
    activate(member, offer, actor="test")
    fulfill(member, offer, external_id="o-1", actor="test")
    activate(member, offer, actor="test")
    fulfill(member, capped, external_id="c-1", actor="test")
    weekly = make_offer("Week", requires_activation=True, must_fulfill_within_days=7)
    activate(member, weekly, actor="test")
    reward = make_reward("Mug", points=120)
    first, _, _ = redeem(member, reward, actor="test")
    redeem(member, reward, actor="test")
    cancel(first, actor="test")
    auth.login("support")
    page = client.get(f"/members/{member.id}").get_data(as_text=True)
    assert "activated · awarded 1×" in page
    assert "activated (fulfil by " in page
    assert "redeemed 1× · 1 cancelled" in page
    assert 'id="redemptions"' in page and "(refunded)" in page
    assert "member limit" in page
    assert "1 of 1 awards this month; resets 1 " in page
    explained = client.get(f"/members/{member.id}/offers/{capped.id}").get_data(as_text=True)
    assert "at most 1 award per member per calendar month" in explained
    assert "1 of 1 awards this month; resets 1 " in explained
