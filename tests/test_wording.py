"""One voice on every form: over-long input is refused on the server with a message naming the
limit, required fields say "<Label> is required.", and no internal names reach people."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from tests.factories import make_offer, make_segment
from webapp.extensions import db
from webapp.models import Audience, Offer, Reward, Segment, Webhook

HX = {"HX-Request": "true"}
LONG = "N" * 10_000


def _errors(body: str) -> list[str]:
    return re.findall(r'class="error" role="alert">(.*?)</small>', body)


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize(("url", "data", "model"), [
    ("/offers/new", {"name": LONG}, Offer),
    ("/rewards/new", {"name": LONG, "points": "10"}, Reward),
    ("/segments/new", {"name": LONG, "kind": "static", "save": "1"}, Segment),
])
def test_a_long_name_is_refused_with_the_limit_not_cut(client, auth, url, data, model):
    auth.login("marketer")
    response = client.post(url, data=data)
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Name must be at most 200 characters (10,000 given)." in body
    assert _count(model) == 0
    # no maxlength attribute: a browser would cut pasted text silently instead
    assert "maxlength" not in client.get(url).get_data(as_text=True)


@pytest.mark.parametrize(("url", "data"), [
    ("/offers/new", {"name": "  "}),
    ("/rewards/new", {"name": "", "points": "1"}),
    ("/segments/new", {"name": "", "kind": "static", "save": "1"}),
])
def test_a_missing_name_reads_the_same_everywhere(client, auth, url, data):
    auth.login("marketer")
    body = client.post(url, data=data).get_data(as_text=True)
    assert "Name is required." in body
    assert "This field is required." not in body and "name is required" not in body


def test_offer_description_over_the_limit_is_refused(client, auth):
    auth.login("marketer")
    response = client.post("/offers/new", data={"name": "Wine", "description": "d" * 20_001})
    assert response.status_code == 422
    assert "Description must be at most 20,000 characters (20,001 given)." in \
        _errors(response.get_data(as_text=True))


def test_an_audience_without_segments_asks_in_plain_words(client, auth):
    auth.login("marketer")
    offer = make_offer("Wine")
    response = client.post(f"/offers/{offer.id}/audiences/segments",
                           data={"audience_type": "in_all_segments"}, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Choose at least one segment." in body
    assert "in_all_segments" not in body.split('<select', 1)[0] and "segment id" not in body
    assert _count(Audience) == 0


def test_an_age_audience_reads_once(client, auth):
    auth.login("marketer")
    offer = make_offer("Wine", audiences=[("age_within", {"minimum_age": 25, "maximum_age": 40})])
    body = client.get(f"/offers/{offer.id}").get_data(as_text=True)
    text = re.sub(r"<[^>]+>", " ", body)
    assert re.search(r"Age\s+25 to 40 years old", text)
    assert not re.search(r"Age\s+age", text, re.IGNORECASE)
    form = client.post(f"/offers/{offer.id}/audiences/age", data={"minimum_age": "x"},
                       headers=HX).get_data(as_text=True)
    assert "e.g. 250" not in form and "Minimum age must be a whole number" in form


def test_segment_messages_name_fields_as_people_do(client, auth):
    auth.login("marketer")
    make_segment("Taken", kind="static", customer_segment_id="crm-1")
    body = client.post("/segments/new", data={
        "name": "New", "kind": "static", "customer_segment_id": "crm-1", "url": "ftp://x",
        "save": "1"}).get_data(as_text=True)
    assert "Customer segment id &#39;crm-1&#39; is already used by segment #" in body
    assert "URL must be a web address starting with http:// or https://." in body
    assert "customer_segment_id" not in re.sub(r'(name|id|for)="[^"]*"', "", body)


def test_webhook_and_admin_forms_share_the_wording(client, auth):
    auth.login("admin")
    body = client.post("/webhooks/", data={"url": "https://example.com/h", "actions": ["ADD"],
                                           "description": "d" * 300}).get_data(as_text=True)
    assert "Description must be at most 200 characters (300 given)." in body
    assert _count(Webhook) == 0
    body = client.post("/admin/tokens", data={"name": "", "role": "support"}).get_data(
        as_text=True)
    assert "Name is required." in body
