"""Reward pages: list, create/edit, required segments with htmx (page, fragment, 422), roles."""

from __future__ import annotations

import re

import pytest
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


def _errors(body: str) -> list[str]:
    return re.findall(r'<small class="error" role="alert">(.*?)</small>', body)


def test_points_cost_gives_one_clear_message_each(client, auth):
    auth.login("marketer")
    cases = {"99999999999999999999": "Points cost must be at most "
                                     "9,223,372,036,854,775,807.",
             "9223372036854775808": "Points cost must be at most "
                                    "9,223,372,036,854,775,807.",
             "abc": "Points cost must be a whole number (digits only, e.g. 250).",
             "1e5": "Points cost must be a whole number (digits only, e.g. 250).",
             "-5": "Points cost must be 0 or more.",
             "": "Points cost is required."}
    for points, message in cases.items():
        response = client.post("/rewards/new", data={"name": "Spa", "points": points})
        assert response.status_code == 422, points
        assert _errors(response.get_data(as_text=True)) == [message], points
    assert db.session.scalar(select(func.count()).select_from(Reward)) == 0
    response = client.post("/rewards/new", data={"name": "Spa", "points": "9223372036854775807"})
    assert response.status_code == 303
    reward = db.session.scalar(select(Reward))
    response = client.post(f"/rewards/{reward.id}/edit",
                           data={"name": "Spa", "points": "99999999999999999999"})
    assert response.status_code == 422
    db.session.refresh(reward)
    assert reward.points == 2**63 - 1


@pytest.mark.parametrize("value", ["9223372036854775808", "99999999999999999999", "-1", "x"])
def test_required_segment_picker_refuses_ids_no_segment_can_have(client, auth, value):
    auth.login("marketer")
    reward = make_reward("Spa", points=10)
    response = client.post(f"/rewards/{reward.id}/segments", data={"segments": [value]},
                           headers=HX)
    assert response.status_code == 422
    assert _errors(response.get_data(as_text=True)) == [
        f"Not a segment id: “{value}” (segment ids are whole numbers from 1 to "
        "9,223,372,036,854,775,807)."]
    assert db.session.scalar(select(func.count()).select_from(RewardRequiredSegment)) == 0


def test_breadcrumb_names_the_reward_and_huge_ids_are_not_found(client, auth):
    auth.login("admin")
    reward = make_reward("Spa day", points=10)
    body = client.get(f"/rewards/{reward.id}").get_data(as_text=True)
    crumbs = re.search(r'<div class="breadcrumbs">(.*?)</div>', body).group(1)
    assert crumbs.endswith("/ Spa day")
    huge = "99999999999999999999"
    assert client.get(f"/rewards/{huge}").status_code == 404
    assert client.get(f"/rewards/{huge}/edit").status_code == 404
    assert client.post(f"/rewards/{huge}/delete").status_code == 404
    assert client.post(f"/rewards/{reward.id}/segments/{huge}/delete").status_code == 404
    assert client.get(f"/rewards/?page={huge}").status_code == 200


def test_support_reads_but_cannot_write(client, auth):
    reward = make_reward("Spa")
    auth.login("support")
    page = client.get(f"/rewards/{reward.id}").get_data(as_text=True)
    assert "Require more segments" not in page and "Edit" not in page
    assert client.post(f"/rewards/{reward.id}/segments", data={"segments": ["1"]}
                       ).status_code == 403
    assert client.get("/rewards/new").status_code == 403
