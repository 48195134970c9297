"""Organising segments in the dashboard: tags and owner in the form, list filters, archive and
restore (pages with and without HX-Request, refusals with messages), archived segments out of
the pickers and refused as new uses."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests.factories import make_member, make_offer, make_reward, make_segment, make_user
from webapp.extensions import db
from webapp.models import Audience, AuditEntry, Segment
from webapp.services.segments import archive_segment, save_segment

HX = {"HX-Request": "true"}


def _text(response) -> str:
    return response.get_data(as_text=True)


def _names(html: str) -> list[str]:
    """The segment names in the list, in order."""
    return re.findall(r"<strong>([^<]+)</strong></a>", html)


def _form(**extra) -> dict:
    data = {"name": "Tagged", "kind": "static", "description": "", "url": "",
            "customer_segment_id": "", "tags": "", "owner": "", "save": "1"}
    data.update(extra)
    return data


def test_form_saves_tags_and_owner_and_shows_them(client, auth):
    me = auth.login("marketer")
    other = make_user("marketer", email="owner@example.test", name="Olga Owner")
    page = client.get("/segments/new")
    body = _text(page)
    assert page.status_code == 200 and 'name="tags"' in body
    # A new segment is owned by whoever creates it, unless they choose otherwise.
    assert re.search(rf'<option selected value="{me.id}">|<option value="{me.id}" selected',
                     body), "the creator is the default owner"
    assert "Olga Owner (owner@example.test)" in body
    response = client.post("/segments/new", data=_form(tags=" Loyalty, q4  campaign,,loyalty",
                                                       owner=str(other.id)))
    assert response.status_code == 303, _text(response)
    segment = db.session.scalar(select(Segment).where(Segment.name == "Tagged"))
    assert segment.tags == ["loyalty", "q4 campaign"] and segment.owner_id == other.id
    shown = _text(client.get(f"/segments/{segment.id}"))
    assert "Olga Owner" in shown and ">loyalty</a>" in shown and ">q4 campaign</a>" in shown
    edit = _text(client.get(f"/segments/{segment.id}/edit"))
    assert 'value="loyalty, q4 campaign"' in edit
    assert "In use: loyalty, q4 campaign." in edit


def test_form_refuses_bad_tags_with_422_and_a_message(client, auth):
    auth.login("marketer")
    response = client.post("/segments/new", data=_form(tags="ok, " + "x" * 41))
    assert response.status_code == 422
    body = _text(response)
    assert "a tag is at most 40 characters" in body
    assert db.session.scalar(select(Segment).where(Segment.name == "Tagged")) is None
    control = client.post("/segments/new", data=_form(tags="bad\x00tag"))
    assert control.status_code == 422 and "no control characters" in _text(control)
    assert client.get("/segments/?tag=x%00y").status_code == 200
    unknown = client.post("/segments/new", data=_form(owner="999999"))
    assert unknown.status_code == 422
    assert "is not a user of Beacon" in _text(unknown)


def test_list_filters_by_tag_owner_and_archive_status(client, auth):
    me = auth.login("support")
    other = make_user("marketer", email="owner@example.test", name="Olga Owner")
    for name, tags, owner in [("Alpha", ["vip"], me.id), ("Beta", ["vip", "q4"], other.id),
                              ("Gamma", ["q4"], None), ("Delta", [], None)]:
        save_segment({"name": name, "kind": "static", "tags": tags, "owner": owner},
                     actor="test")
    archive_segment(db.session.scalar(select(Segment).where(Segment.name == "Gamma")),
                    actor="test")
    page = client.get("/segments/")
    body = _text(page)
    assert _names(body) == ["Alpha", "Beta", "Delta"]  # archived ones hidden by default
    assert '<a href="/segments/?status=archived">1 archived not shown</a>' in body
    assert '<option value="vip" >vip (2)</option>' in body or "vip (2)" in body
    assert "Olga Owner" in body and ">Me</option>" in body
    assert _names(_text(client.get("/segments/?tag=VIP"))) == ["Alpha", "Beta"]
    assert _names(_text(client.get("/segments/?tag=q4"))) == ["Beta"]
    assert _names(_text(client.get("/segments/?tag=q4&status=all"))) == ["Beta", "Gamma"]
    assert _names(_text(client.get("/segments/?status=archived"))) == ["Gamma"]
    assert _names(_text(client.get("/segments/?owner=me"))) == ["Alpha"]
    assert _names(_text(client.get(f"/segments/?owner={other.id}"))) == ["Beta"]
    assert _names(_text(client.get("/segments/?owner=none"))) == ["Delta"]
    fragment = client.get("/segments/?tag=vip&sort=size", headers=HX)
    text = _text(fragment)
    assert fragment.status_code == 200 and "<html" not in text
    assert text.lstrip().startswith('<section id="segment-list"')
    # Sort links keep the filters.
    assert "tag=vip" in re.search(r'href="([^"]*sort=name[^"]*)"', text).group(1)
    empty = _text(client.get("/segments/?tag=nothing-has-this"))
    assert "No segment matches" in empty


def test_archive_and_restore_with_and_without_htmx(client, auth):
    auth.login("marketer")
    member = make_member(tier="gold")
    segment = make_segment("Gold", include=[{"field": "tier", "operator": "equals",
                                             "value": "gold"}])
    page = _text(client.get(f"/segments/{segment.id}"))
    assert f'action="/segments/{segment.id}/archive"' in page
    response = client.post(f"/segments/{segment.id}/archive")
    assert response.status_code == 303
    shown = _text(client.get(response.headers["Location"]))
    assert "Archived Gold." in shown and "badge archived" in shown
    assert "its members and history are kept" in shown
    assert member.external_id in shown  # still its member
    assert f'action="/segments/{segment.id}/restore"' in shown
    assert "Gold" not in _names(_text(client.get("/segments/")))
    restored = client.post(f"/segments/{segment.id}/restore", headers=HX)
    assert restored.status_code == 204
    assert restored.headers["HX-Redirect"] == f"/segments/{segment.id}"
    db.session.expire_all()
    assert db.session.get(Segment, segment.id).archived_at is None
    again = client.post(f"/segments/{segment.id}/restore", headers=HX)
    assert again.status_code == 422
    assert "Gold is not archived" in _text(again)
    actions = list(db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.entity_id == str(segment.id)).order_by(AuditEntry.id)))
    assert actions[-2:] == ["segment.archive", "segment.restore"]


def test_archive_refused_while_used_names_the_uses(client, auth):
    auth.login("admin")
    segment = make_segment("Used")
    make_offer("Spring sale", audiences=[("in_any_segment", {"segments": [segment.id]})])
    make_reward("Lounge", required=[segment])
    response = client.post(f"/segments/{segment.id}/archive")
    assert response.status_code == 409
    body = _text(response)
    assert "<html" in body and "Not archived:" in body
    assert "Spring sale" in body and "Lounge" in body
    fragment = client.post(f"/segments/{segment.id}/archive", headers=HX)
    assert fragment.status_code == 422
    text = _text(fragment)
    assert "<html" not in text and text.lstrip().startswith('<div id="segment-status">')
    assert "Spring sale" in text
    db.session.expire_all()
    assert db.session.get(Segment, segment.id).archived_at is None


def test_support_cannot_archive_or_restore(client, auth):
    auth.login("support")
    segment = make_segment("S", kind="static")
    assert "/archive" not in _text(client.get(f"/segments/{segment.id}"))
    assert client.post(f"/segments/{segment.id}/archive").status_code == 403
    assert client.post(f"/segments/{segment.id}/restore").status_code == 403


def test_archived_segments_leave_the_pickers_and_are_refused_as_new_uses(client, auth):
    auth.login("marketer")
    old = make_segment("Old archive", kind="static")
    make_segment("Old but live", kind="static")
    archive_segment(old, actor="test")
    offer = make_offer("Offer")
    picker = _text(client.get(f"/offers/{offer.id}?picker=1&segment_q=old", headers=HX))
    assert "Old but live" in picker and "Old archive" not in picker
    refused = client.post(f"/offers/{offer.id}/audiences/segments",
                          data={"audience_type": "in_any_segment", "segments": [str(old.id)]})
    assert refused.status_code == 422
    assert "Old archive is archived" in _text(refused)
    assert db.session.scalar(select(Audience)) is None
    reward = make_reward("Reward")
    reward_picker = _text(client.get(f"/rewards/{reward.id}?picker=1&segment_q=old",
                                     headers=HX))
    assert "Old but live" in reward_picker and "Old archive" not in reward_picker
    refused_reward = client.post(f"/rewards/{reward.id}/segments",
                                 data={"segments": [str(old.id)]}, headers=HX)
    assert refused_reward.status_code == 422
    assert "Old archive is archived" in _text(refused_reward)
    db.session.expire_all()
    assert reward.required_segments == []
    builder = client.post("/segments/builder/row", headers=HX, data={
        "name": "x", "kind": "dynamic", "include-0-field": "segment",
        "include-0-operator": "in", "include-0-segment_q": "old",
        "find_segments": "include-0", "row": "include-0"})
    assert "Old but live" in _text(builder) and "Old archive" not in _text(builder)
    criterion = client.post("/segments/new", data={
        "name": "New", "kind": "dynamic", "tags": "", "owner": "", "save": "1",
        "include-0-field": "segment", "include-0-operator": "in",
        "include-0-value": str(old.id)})
    assert criterion.status_code == 422
    assert "Old archive is archived" in _text(criterion)


def test_archived_static_segment_takes_no_upload(client, auth):
    auth.login("marketer")
    segment = make_segment("List", kind="static")
    archive_segment(segment, actor="test")
    assert "Upload list" not in _text(client.get(f"/segments/{segment.id}"))
    from io import BytesIO

    response = client.post(f"/segments/{segment.id}/uploads", data={
        "file": (BytesIO(b"external_id\nEXT1\n"), "list.csv"), "mode": "add"},
        content_type="multipart/form-data")
    assert response.status_code == 422
    assert "is archived: restore it on its page before uploading" in _text(response)
