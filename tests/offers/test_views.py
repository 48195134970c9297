"""Offer pages: list and filters, create/edit/delete, audiences with htmx (page, fragment, 422)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.factories import make_member, make_offer, make_segment
from webapp.extensions import db
from webapp.models import Audience, Offer
from webapp.timeutil import utcnow

HX = {"HX-Request": "true"}


def test_index_searches_and_filters_by_state(client, auth):
    auth.login("support")
    now = utcnow()
    make_offer("Wine tasting", publish_at=now - timedelta(days=1), external_id="W-1")
    make_offer("Spring launch", publish_at=now + timedelta(days=5))
    make_offer("Old deal", discontinued=True)
    page = client.get("/offers/").get_data(as_text=True)
    assert "Wine tasting" in page and "Spring launch" in page and "New offer" not in page
    page = client.get("/offers/?state=scheduled").get_data(as_text=True)
    assert "Spring launch" in page and "Wine tasting" not in page
    fragment = client.get("/offers/?q=w-1", headers=HX).get_data(as_text=True)
    assert fragment.startswith('<div id="offer-list"') and "Wine tasting" in fragment
    assert "<html" not in fragment
    empty = client.get("/offers/?q=nothing-like-this").get_data(as_text=True)
    assert "No offer matches" in empty


def test_create_edit_and_invalid_form(client, auth):
    auth.login("marketer")
    response = client.post("/offers/new", data={"name": "", "publish_at": "2026-05-01T10:00",
                                                "expire_at": "2026-04-01T10:00"})
    assert response.status_code == 422
    assert "Name is required." in response.get_data(as_text=True)
    response = client.post("/offers/new", data={"name": "Lounge", "publish_at": "2026-05-01T10:00",
                                                "expire_at": "2026-04-01T10:00"})
    assert response.status_code == 422
    assert "must be after the publish time" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Offer)) == 0
    response = client.post("/offers/new", data={"name": "Lounge", "external_id": "L-1",
                                                "category": "experience"})
    assert response.status_code == 303
    offer = db.session.scalar(select(Offer))
    assert response.location.endswith(f"/offers/{offer.id}")
    make_offer("Other", external_id="L-2")
    url = f"/offers/{offer.id}/edit"
    response = client.post(url, data={"name": "Lounge", "external_id": "L-2"})
    assert response.status_code == 422 and "already used" in response.get_data(as_text=True)
    response = client.post(url, data={"name": "Lounge+", "external_id": "L-1",
                                      "discontinued": "y"})
    assert response.status_code == 303
    db.session.refresh(offer)
    assert offer.name == "Lounge+" and offer.discontinued


def test_add_age_audience_full_page_fragment_and_422(client, auth):
    auth.login("marketer")
    today = utcnow().date()
    make_member(birthday=today.replace(year=today.year - 30))
    make_member(birthday=today.replace(year=today.year - 10))
    offer = make_offer("Wine")
    page = client.get(f"/offers/{offer.id}").get_data(as_text=True)
    assert 'id="reach-value">2<' in page
    # without htmx: redirect back to the page
    response = client.post(f"/offers/{offer.id}/audiences/age", data={"minimum_age": "18"})
    assert response.status_code == 303
    assert 'id="reach-value">1<' in client.get(f"/offers/{offer.id}").get_data(as_text=True)
    # with htmx: the audiences block, a toast
    response = client.post(f"/offers/{offer.id}/audiences/age", data={"maximum_age": "40"},
                           headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.startswith('<section id="audiences"')
    assert "showMessage" in response.headers["HX-Trigger"] and "40 years old or younger" in body
    # invalid: 422 with the message, nothing saved
    response = client.post(f"/offers/{offer.id}/audiences/age",
                           data={"minimum_age": "50", "maximum_age": "20"}, headers=HX)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "The minimum age (50) is above the maximum age (20)." in body
    assert "minimum_age" not in body.replace('name="minimum_age"', "").replace(
        'id="minimum_age"', "").replace('for="minimum_age"', "")
    response = client.post(f"/offers/{offer.id}/audiences/age", data={})
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Give a minimum age, a maximum age, or both." in body
    assert "not both null" not in body and ">age_within<" not in body and "Age</span>" in body
    assert db.session.scalar(select(func.count()).select_from(Audience)) == 2


def test_segment_audience_preview_add_remove(client, auth):
    auth.login("marketer")
    gold_member = make_member(tier="gold")
    make_member(tier="bronze")
    gold = make_segment("Gold", include=[{"field": "tier", "operator": "equals", "value": "gold"}])
    offer = make_offer("Lounge")
    response = client.post(f"/offers/{offer.id}/audiences/segments",
                           data={"audience_type": "in_all_segments", "segments": [str(gold.id)],
                                 "preview": "1"}, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "With “in all of: Gold” added" in body
    assert db.session.scalar(select(func.count()).select_from(Audience)) == 0
    response = client.post(f"/offers/{offer.id}/audiences/segments",
                           data={"audience_type": "in_all_segments", "segments": ["9999"]},
                           headers=HX)
    assert response.status_code == 422
    assert "Segment #9999 no longer exists; choose another." in response.get_data(as_text=True)
    response = client.post(f"/offers/{offer.id}/audiences/segments",
                           data={"audience_type": "in_any_segment", "segments": [str(gold.id)]},
                           headers=HX)
    assert response.status_code == 200 and 'id="reach-value">1<' in response.get_data(as_text=True)
    audience = db.session.scalar(select(Audience))
    assert audience.configuration == {"segments": [gold.id]}
    response = client.post(f"/offers/{offer.id}/audiences/{audience.id}/delete", headers=HX)
    assert response.status_code == 200 and "No audiences" in response.get_data(as_text=True)
    assert gold_member.id  # the reach counted the gold member above


def test_segment_picker_searches_as_a_fragment(client, auth):
    auth.login("marketer")
    make_segment("Londoners", refresh=False)
    make_segment("Parisians", refresh=False)
    offer = make_offer()
    fragment = client.get(f"/offers/{offer.id}?picker=1&segment_q=lond", headers=HX).get_data(
        as_text=True)
    assert fragment.startswith('<div id="segment-options"')
    assert "Londoners" in fragment and "Parisians" not in fragment
    page = client.get(f"/offers/{offer.id}?segment_q=par").get_data(as_text=True)
    assert "<html" in page and "Parisians" in page and "Londoners" not in page


def test_roles_see_only_what_they_may_do(client, auth):
    offer = make_offer("Lounge")
    auth.login("support")
    page = client.get(f"/offers/{offer.id}").get_data(as_text=True)
    assert "Add audience" not in page and "Delete" not in page and "Edit" not in page
    assert client.post(f"/offers/{offer.id}/audiences/age", data={"minimum_age": "1"}
                       ).status_code == 403
    auth.logout()
    auth.login("marketer")
    page = client.get(f"/offers/{offer.id}").get_data(as_text=True)
    assert "Add audience" in page and ">Delete<" not in page
    assert client.post(f"/offers/{offer.id}/delete").status_code == 403
    auth.logout()
    auth.login("admin")
    response = client.post(f"/offers/{offer.id}/delete")
    assert response.status_code == 303
    assert db.session.get(Offer, offer.id) is None


def test_check_member_goes_to_the_permalink(client, auth):
    auth.login("support")
    member = make_member(external_id="EXT-42")
    offer = make_offer()
    response = client.get(f"/offers/{offer.id}/check?member=EXT-42")
    assert response.status_code == 303
    assert response.location.endswith(f"/members/{member.id}/offers/{offer.id}")
    response = client.get(f"/offers/{offer.id}/check?member=nobody", follow_redirects=True)
    assert "No member matches “nobody”" in response.get_data(as_text=True)


def test_editing_without_changes_keeps_the_stored_seconds(client, auth):
    from datetime import datetime

    from webapp.models import AuditEntry

    auth.login("marketer")
    offer = make_offer("Lounge", publish_at=datetime(2026, 1, 2, 9, 52, 34))
    response = client.post(f"/offers/{offer.id}/edit",
                           data={"name": "Lounge", "publish_at": "2026-01-02T09:52"})
    assert response.status_code == 303
    db.session.refresh(offer)
    assert offer.publish_at == datetime(2026, 1, 2, 9, 52, 34)
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def _errors(body: str) -> list[str]:
    return re.findall(r'<small class="error" role="alert">(.*?)</small>', body)


def test_breadcrumb_names_the_offer(client, auth):
    auth.login("support")
    offer = make_offer("Wine tasting", external_id="OFF-102")
    body = client.get(f"/offers/{offer.id}").get_data(as_text=True)
    crumbs = re.search(r'<div class="breadcrumbs">(.*?)</div>', body).group(1)
    assert crumbs.endswith("/ Wine tasting") and "OFF-102" not in crumbs


def test_age_inputs_give_one_message_each(client, auth):
    auth.login("marketer")
    offer = make_offer("Wine")
    cases = {"abc": "Minimum age must be a whole number (digits only, e.g. 18).",
             "1e5": "Minimum age must be a whole number (digits only, e.g. 18).",
             "99999999999999999999999": "Minimum age must be from 0 to 200 years.",
             "-1": "Minimum age must be from 0 to 200 years."}
    for value, message in cases.items():
        response = client.post(f"/offers/{offer.id}/audiences/age",
                               data={"minimum_age": value}, headers=HX)
        assert response.status_code == 422, value
        assert _errors(response.get_data(as_text=True)) == [message], value
    assert db.session.scalar(select(func.count()).select_from(Audience)) == 0


@pytest.mark.parametrize("value", ["9223372036854775808", "99999999999999999999", "0", "abc"])
def test_segment_picker_refuses_ids_no_segment_can_have(client, auth, value):
    auth.login("marketer")
    offer = make_offer("Lounge")
    for preview in ("", "1"):
        response = client.post(f"/offers/{offer.id}/audiences/segments",
                               data={"audience_type": "in_all_segments", "segments": [value],
                                     "preview": preview}, headers=HX)
        assert response.status_code == 422
        assert _errors(response.get_data(as_text=True)) == [
            f"Not a segment id: “{value}” (segment ids are whole numbers from 1 to "
            "9,223,372,036,854,775,807)."]
    assert db.session.scalar(select(func.count()).select_from(Audience)) == 0


def test_ids_beyond_64_bits_in_addresses_are_not_found(client, auth):
    auth.login("admin")
    offer = make_offer("Lounge")
    huge = "99999999999999999999"
    assert client.get(f"/offers/{huge}").status_code == 404
    assert client.get(f"/offers/{huge}/edit").status_code == 404
    assert client.post(f"/offers/{huge}/delete").status_code == 404
    assert client.post(f"/offers/{offer.id}/audiences/{huge}/delete").status_code == 404
    assert client.get(f"/offers/?page={huge}").status_code == 200
    response = client.get(f"/offers/{offer.id}", query_string={
        "picker": "1", "segment_q": huge, "segments": [huge]})
    assert response.status_code == 200
