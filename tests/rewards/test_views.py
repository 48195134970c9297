"""Reward pages: list, create/edit, required segments with htmx (page, fragment, 422), roles."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.factories import make_member, make_reward, make_segment
from webapp.extensions import db
from webapp.models import Reward, RewardRequiredSegment

HX = {"HX-Request": "true"}


def test_index_and_create(client, auth):
    auth.login("marketer")
    make_reward("Free coffee", points=150)
    make_reward("Old mug", discontinued=True)
    page = client.get("/rewards/?state=discontinued").get_data(as_text=True)
    assert "Old mug" in page and "Free coffee" not in page
    response = client.post("/rewards/new", data={"name": "Spa", "points": "-5"})
    assert response.status_code == 422
    assert "Points cost must be 0 or more." in response.get_data(as_text=True)
    response = client.post("/rewards/new", data={"name": "Spa", "points": "12000"})
    assert response.status_code == 303
    reward = db.session.scalar(select(Reward).where(Reward.name == "Spa"))
    assert reward.points == 12000
    response = client.post(f"/rewards/{reward.id}/edit", data={"name": "Spa day", "points": "9000"})
    assert response.status_code == 303
    db.session.refresh(reward)
    assert (reward.name, reward.points) == ("Spa day", 9000)


def test_required_segments_with_htmx(client, auth):
    auth.login("marketer")
    make_member(tier="gold", points=20000)
    make_member(tier="gold", points=10)
    make_member(tier="bronze", points=50000)
    gold = make_segment("Gold", include=[{"field": "tier", "operator": "equals", "value": "gold"}])
    reward = make_reward("Spa", points=12000)
    page = client.get(f"/rewards/{reward.id}").get_data(as_text=True)
    assert 'id="reach-value">3<' in page and 'id="affordable-value">2<' in page
    response = client.post(f"/rewards/{reward.id}/segments", data={}, headers=HX)
    assert response.status_code == 422 and "Choose at least one segment." in response.get_data(
        as_text=True)
    response = client.post(f"/rewards/{reward.id}/segments", data={"segments": ["4242"]},
                           headers=HX)
    assert response.status_code == 422 and "does not exist" in response.get_data(as_text=True)
    response = client.post(f"/rewards/{reward.id}/segments", data={"segments": [str(gold.id)]},
                           headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.startswith('<section id="required-segments"')
    assert 'id="reach-value">2<' in body and 'id="affordable-value">1<' in body
    response = client.post(f"/rewards/{reward.id}/segments/{gold.id}/delete")
    assert response.status_code == 303
    assert db.session.scalar(select(func.count()).select_from(RewardRequiredSegment)) == 0
    assert client.post(f"/rewards/{reward.id}/segments/{gold.id}/delete").status_code == 404


def test_support_reads_but_cannot_write(client, auth):
    reward = make_reward("Spa")
    auth.login("support")
    page = client.get(f"/rewards/{reward.id}").get_data(as_text=True)
    assert "Require more segments" not in page and "Edit" not in page
    assert client.post(f"/rewards/{reward.id}/segments", data={"segments": ["1"]}
                       ).status_code == 403
    assert client.get("/rewards/new").status_code == 403
