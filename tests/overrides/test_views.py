"""Override pages: review page, per-segment/per-member blocks, set, preview, reset, bulk, CSV."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.factories import make_member, make_segment
from webapp.extensions import db
from webapp.models import AuditEntry, Member, Override, OverrideHistory
from webapp.services.membership import segment_ids_of
from webapp.services.overrides import set_override
from webapp.timeutil import utcnow

GOLD = [{"field": "tier", "operator": "equals", "value": "gold"}]
HX = {"HX-Request": "true"}


@pytest.fixture
def world(app):
    """A gold segment with one gold and one silver member, and a static list."""
    gold_member = make_member(tier="gold", external_id="GOLD1", email="gold@example.com")
    silver_member = make_member(tier="silver", external_id="SILVER1")
    gold = make_segment("Gold tier", include=GOLD)
    static = make_segment("Hand-picked", kind="static")
    return {"gold": gold, "static": static, "gm": gold_member, "sm": silver_member}


def form_data(segment, member_ident, status="block", **extra):
    data = {"context": "segment", "segment_id": str(segment.id), "member": member_ident,
            "status": status, "description": "Fraud investigation",
            "reference_id": "CASE-1", "metadata-0-key": "ticket", "metadata-0-value": "42"}
    data.update(extra)
    return data


# --- Per-segment block ----------------------------------------------------------------------

def test_segment_page_full_and_fragment(client, auth, world):
    auth.login("admin")
    gold = world["gold"]
    page = client.get(f"/overrides/segment/{gold.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<html" in html and 'id="segment-overrides"' in html
    assert 'id="override-form"' in html and "Pin a member in or out of Gold tier" in html
    fragment = client.get(f"/overrides/segment/{gold.id}", headers=HX)
    body = fragment.get_data(as_text=True)
    assert fragment.status_code == 200
    assert body.lstrip().startswith('<section id="segment-overrides"') and "<html" not in body
    assert "HX-Request" in fragment.headers.get("Vary", "")


def test_static_segment_offers_no_form(client, auth, world):
    auth.login("admin")
    html = client.get(f"/overrides/segment/{world['static'].id}").get_data(as_text=True)
    assert "edit its member list instead" in html
    assert 'id="override-form"' not in html


def test_unknown_segment_and_member_are_404(client, auth, world):
    auth.login("support")
    assert client.get("/overrides/segment/999999").status_code == 404
    assert client.get("/overrides/member/nobody").status_code == 404


def test_admin_blocks_from_the_segment_block_with_htmx(client, auth, world):
    auth.login("admin")
    gold, gm = world["gold"], world["gm"]
    response = client.post("/overrides/set", data=form_data(gold, "gold@example.com"),
                           headers=HX)
    assert response.status_code == 200
    assert response.headers["HX-Retarget"] == "#segment-overrides"
    assert "the rules say in; the override says out" in response.headers["HX-Trigger"]
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<section id="segment-overrides"')
    assert "Fraud investigation" in body and "CASE-1" in body and "ticket: 42" in body
    assert gold.id not in segment_ids_of(gm.id)
    override = db.session.scalar(select(Override))
    assert override.actor_label == "Admin" and override.metadata_ == {"ticket": "42"}


def test_set_without_javascript_redirects(client, auth, world):
    auth.login("admin")
    gold = world["gold"]
    response = client.post("/overrides/set", data=form_data(gold, "SILVER1", status="add"))
    assert response.status_code == 303
    # Back to the segment page (the segments area's when it exists, else this area's).
    assert response.location.endswith((f"/segments/{gold.id}", f"/overrides/segment/{gold.id}"))
    page = client.get(response.location).get_data(as_text=True)
    assert "the rules say out; the override says in" in page
    assert gold.id in segment_ids_of(world["sm"].id)


def test_same_status_again_says_nothing_changed(client, auth, world):
    auth.login("admin")
    gold = world["gold"]
    client.post("/overrides/set", data=form_data(gold, "GOLD1"))
    again = client.post("/overrides/set", data=form_data(gold, "GOLD1"), headers=HX)
    assert again.status_code == 200
    assert "already blocked from Gold tier; nothing changed" in again.headers["HX-Trigger"]
    assert db.session.query(OverrideHistory).count() == 1


@pytest.mark.parametrize(("change", "message"), [
    ({"description": ""}, "Reason is required"),
    ({"member": "nobody@nowhere"}, "No member has the member id, external id or email"),
    ({"status": "maybe"}, "Not a valid choice"),
    ({"expires_at": "tomorrow"}, "is not a date and time"),
    ({"expires_at": "2001-01-01T00:00"}, "The expiry is in the past"),
    ({"metadata-1-value": "orphan"}, "needs a key"),
])
def test_invalid_submit_is_422_with_the_message(client, auth, world, change, message):
    auth.login("admin")
    gold = world["gold"]
    response = client.post("/overrides/set", data=form_data(gold, "GOLD1", **change),
                           headers=HX)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<form id="override-form"')
    assert message in body
    if not {"member", "status"} & set(change):  # the effect stays visible next to the error
        assert "the rules say in; the override says out" in body
    assert db.session.scalar(select(Override)) is None
    assert gold.id in segment_ids_of(world["gm"].id)


def test_invalid_submit_without_javascript_is_a_full_page(client, auth, world):
    auth.login("admin")
    response = client.post("/overrides/set",
                           data=form_data(world["gold"], "GOLD1", description=""))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "<html" in html and "Reason is required" in html


def test_static_segment_is_refused_by_the_form(client, auth, world):
    auth.login("admin")
    response = client.post("/overrides/set", data=form_data(world["static"], "GOLD1"),
                           headers=HX)
    assert response.status_code == 422
    assert "edit its member list instead" in response.get_data(as_text=True)
    assert db.session.scalar(select(Override)) is None


def test_preview_shows_the_effect_before_saving(client, auth, world):
    auth.login("admin")
    gold = world["gold"]
    response = client.post("/overrides/preview", data=form_data(gold, "GOLD1"), headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="override-effect"')
    assert "the rules say in; the override says out" in body
    assert "Saving removes GOLD1 from Gold tier" in body
    assert db.session.scalar(select(Override)) is None
    missing = client.post("/overrides/preview", data=form_data(gold, "ghost"), headers=HX)
    assert missing.status_code == 422
    assert "No member has the member id" in missing.get_data(as_text=True)
    full = client.post("/overrides/preview", data=form_data(gold, "SILVER1", status="add"))
    assert full.status_code == 200
    html = full.get_data(as_text=True)
    assert "<html" in html and "the rules say out; the override says in" in html
    set_override(gold, world["gm"], "block", description="Fraud", actor="Ada")
    same = client.post("/overrides/preview", data=form_data(gold, "GOLD1"), headers=HX)
    assert "GOLD1 already has this block override" in same.get_data(as_text=True)
    other = client.post("/overrides/preview", data=form_data(gold, "GOLD1", status="add"),
                        headers=HX)
    assert "Replaces the current block override set by Ada" in other.get_data(as_text=True)


def test_reset_from_the_segment_block(client, auth, world):
    auth.login("admin")
    gold, gm = world["gold"], world["gm"]
    outcome = set_override(gold, gm, "block", description="Fraud", actor="Ada")
    response = client.post(f"/overrides/{outcome.override.id}/reset",
                           data={"context": "segment", "segment_id": gold.id}, headers=HX)
    assert response.status_code == 200
    assert "the rules decide again" in response.headers["HX-Trigger"]
    assert gold.id in segment_ids_of(gm.id)
    assert "reset" in response.get_data(as_text=True)  # the history line
    again = client.post(f"/overrides/{outcome.override.id}/reset",
                        data={"context": "segment", "segment_id": gold.id})
    assert again.status_code == 303


# --- Per-member block -----------------------------------------------------------------------

def test_member_page_by_any_identifier(client, auth, world):
    auth.login("support")
    gold, gm = world["gold"], world["gm"]
    set_override(gold, gm, "block", description="Chargeback abuse", actor="Ada")
    for ident in (gm.id, "GOLD1", "gold@example.com"):
        html = client.get(f"/overrides/member/{ident}").get_data(as_text=True)
        assert "Chargeback abuse" in html and "Gold tier" in html
    fragment = client.get("/overrides/member/GOLD1", headers=HX).get_data(as_text=True)
    assert fragment.lstrip().startswith('<section id="member-overrides"')


def test_admin_pins_from_the_member_block(client, auth, world):
    auth.login("admin")
    gold, sm = world["gold"], world["sm"]
    form = client.get("/overrides/member/SILVER1").get_data(as_text=True)
    assert "Gold tier — SILVER1 is out now" in form
    assert "Hand-picked" not in form  # static segments are not offered
    response = client.post("/overrides/set", headers=HX, data={
        "context": "member", "member": "SILVER1", "segment_id": str(gold.id),
        "status": "add", "description": "VIP the data misses"})
    assert response.status_code == 200
    assert response.headers["HX-Retarget"] == "#member-overrides"
    assert gold.id in segment_ids_of(sm.id)
    bad = client.post("/overrides/set", headers=HX, data={
        "context": "member", "member": "SILVER1", "segment_id": "-1", "status": "add",
        "description": "x"})
    assert bad.status_code == 422
    assert "Choose a rule-managed (dynamic) segment" in bad.get_data(as_text=True)


# --- Roles ----------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["marketer", "support"])
def test_read_only_roles_see_no_buttons(client, auth, world, role):
    set_override(world["gold"], world["gm"], "block", description="Fraud", actor="Ada")
    auth.login(role)
    for url in ("/overrides/", f"/overrides/segment/{world['gold'].id}", "/overrides/member/GOLD1"):
        html = client.get(url).get_data(as_text=True)
        assert "Fraud" in html  # the reason is visible
        assert 'id="override-form"' not in html
        assert "Reset" not in html and "bulk-reset-form" not in html
    response = client.post("/overrides/set", data=form_data(world["gold"], "SILVER1"))
    assert response.status_code == 403
    assert db.session.query(Override).count() == 1


def test_admin_sees_the_buttons(client, auth, world):
    set_override(world["gold"], world["gm"], "block", description="Fraud", actor="Ada")
    auth.login("admin")
    html = client.get("/overrides/").get_data(as_text=True)
    assert "Reset selected" in html and 'id="override-form"' in html and ">Reset<" in html


# --- Review page ----------------------------------------------------------------------------

@pytest.fixture
def many(app):
    """Overrides of different segments, statuses, authors, ages and expiries."""
    gold = make_segment("Gold tier", include=GOLD)
    everyone = make_segment("Everyone")
    members = [make_member(tier="gold", external_id=f"M{i:02d}") for i in range(6)]
    set_override(gold, members[0], "block", description="old fraud", actor="Ada")
    set_override(gold, members[1], "add", description="vip", actor="Bob")
    set_override(everyone, members[2], "block", description="test account", actor="Ada",
                 expires_at=utcnow() + timedelta(hours=1))
    set_override(everyone, members[3], "block", description="=cmd|' /C calc'!A0", actor="Cy")
    old = db.session.scalar(select(Override).where(Override.description == "old fraud"))
    old.status_change_timestamp = utcnow() - timedelta(days=100)
    expired = db.session.scalar(select(Override).where(Override.description == "test account"))
    expired.expires_at = utcnow() - timedelta(minutes=5)
    db.session.commit()
    return {"gold": gold, "everyone": everyone, "members": members}


def listed(html: str) -> list[str]:
    return [d for d in ("old fraud", "vip", "test account", "=cmd") if d in html]


FILTERS = [
    ("", ["old fraud", "vip", "test account", "=cmd"]),
    ("status=add", ["vip"]),
    ("author=Ada", ["old fraud", "test account"]),
    ("age=gt90", ["old fraud"]),
    ("age=lt7", ["vip", "test account", "=cmd"]),
    ("state=expired", ["test account"]),
    ("state=active", ["old fraud", "vip", "=cmd"]),
    ("member=M01", ["vip"]),
    ("member=nobody", []),
    ("status=add&author=Ada", []),
    ("status=nonsense&age=zzz&sort=evil&segment=abc", ["old fraud", "vip", "test account", "=cmd"]),
]


def test_review_filters(client, auth, many):
    auth.login("support")
    for query, expected in FILTERS:
        response = client.get(f"/overrides/?{query}")
        assert response.status_code == 200, query
        assert sorted(listed(response.get_data(as_text=True))) == sorted(expected), query


def test_review_filter_by_segment_and_fragment(client, auth, many):
    auth.login("marketer")
    response = client.get(f"/overrides/?segment={many['gold'].id}", headers=HX)
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<section id="override-list"')
    assert sorted(listed(body)) == ["old fraud", "vip"]
    assert "2 overrides" in body


def test_review_sorting(client, auth, many):
    auth.login("admin")
    by_member = client.get("/overrides/?sort=member").get_data(as_text=True)
    positions = [by_member.index(f">M0{i}<") for i in range(4)]
    assert positions == sorted(positions)
    desc = client.get("/overrides/?sort=-member").get_data(as_text=True)
    positions = [desc.index(f">M0{i}<") for i in range(4)]
    assert positions == sorted(positions, reverse=True)
    expired_row = client.get("/overrides/").get_data(as_text=True)
    assert "expired</span>" in expired_row


def test_review_pagination(client, auth, app):
    gold = make_segment("Gold tier", include=GOLD)
    members = [Member(external_id=f"P{i:03d}") for i in range(55)]
    db.session.add_all(members)
    db.session.flush()
    db.session.add_all(Override(segment_id=gold.id, member_id=m.id, status="add",
                                description="r", actor_label="Ada") for m in members)
    db.session.commit()
    auth.login("support")
    first = client.get("/overrides/?sort=member").get_data(as_text=True)
    assert "Page 1 of 2" in first and ">P049<" in first and ">P050<" not in first
    second = client.get("/overrides/?sort=member&page=2").get_data(as_text=True)
    assert ">P050<" in second and ">P054<" in second and ">P000<" not in second


def test_csv_export_of_the_filtered_list(client, auth, many):
    auth.login("support")
    response = client.get("/overrides/export.csv?author=Ada&sort=member")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["external_id"] for r in rows] == ["M00", "M02"]
    assert rows[0]["status"] == "block" and rows[0]["segment_name"] == "Gold tier"
    assert rows[1]["state"] == "expired" and rows[0]["state"] == "active"
    assert rows[0]["actor"] == "Ada" and rows[0]["description"] == "old fraud"
    everything = list(csv.DictReader(io.StringIO(
        client.get("/overrides/export.csv").get_data(as_text=True))))
    assert len(everything) == 4
    formula = next(r for r in everything if r["external_id"] == "M03")
    assert formula["description"].startswith("'=")


def test_bulk_reset_from_the_review_page(client, auth, many):
    auth.login("admin")
    gold, members = many["gold"], many["members"]
    ids = [o.id for o in db.session.scalars(select(Override).where(
        Override.segment_id == gold.id))]
    response = client.post("/overrides/bulk-reset", data={
        "ids": [str(i) for i in ids], "next": f"/overrides/?segment={gold.id}"})
    assert response.status_code == 303
    assert response.location.endswith(f"/overrides/?segment={gold.id}")
    assert db.session.query(Override).count() == 2
    assert gold.id in segment_ids_of(members[0].id)  # block lifted: rules say in
    assert db.session.query(AuditEntry).filter_by(action="override.reset").count() == 2
    page = client.get(response.location).get_data(as_text=True)
    assert "Reset 2 overrides" in page
    nothing = client.post("/overrides/bulk-reset", data={"next": "https://evil.example/"})
    assert nothing.status_code == 303 and nothing.location.endswith("/overrides/")


def test_set_from_the_review_page(client, auth, world):
    auth.login("admin")
    gold = world["gold"]
    data = {"context": "index", "segment_id": str(gold.id), "member": "GOLD1",
            "status": "block", "description": "Test account"}
    with_htmx = client.post("/overrides/set", data=data, headers=HX)
    assert with_htmx.status_code == 204
    assert with_htmx.headers["HX-Redirect"] == "/overrides/"
    assert "blocked from Gold tier" in client.get("/overrides/").get_data(as_text=True)
    data.update(member="SILVER1", status="add")
    without = client.post("/overrides/set", data=data)
    assert without.status_code == 303 and without.location.endswith("/overrides/")
    assert gold.id in segment_ids_of(world["sm"].id)
    assert gold.id not in segment_ids_of(world["gm"].id)


def test_segment_block_paginates_overrides_and_history(client, auth, app):
    gold = make_segment("Gold tier", include=GOLD)
    members = [Member(external_id=f"Q{i:03d}") for i in range(25)]
    db.session.add_all(members)
    db.session.flush()
    db.session.add_all(Override(segment_id=gold.id, member_id=m.id, status="add",
                                description=f"pinned {m.external_id}", actor_label="Ada")
                       for m in members)
    db.session.add_all(OverrideHistory(segment_id=gold.id, segment_name=gold.name,
                                       member_id=m.id, action="add", description="h",
                                       actor_label="Ada") for m in members)
    db.session.commit()
    auth.login("support")
    first = client.get(f"/overrides/segment/{gold.id}", headers=HX).get_data(as_text=True)
    assert first.count("pinned Q0") == 20
    assert "Page 1 of 2" in first
    second = client.get(f"/overrides/segment/{gold.id}?page=2&hpage=2",
                        headers=HX).get_data(as_text=True)
    assert second.count("pinned Q0") == 5
    assert 'hx-target="#segment-overrides"' in second


def test_malformed_input_is_refused_without_a_crash(client, auth, world):
    auth.login("admin")
    gold = world["gold"]
    base = form_data(gold, "GOLD1")
    cases = [
        {**base, **{f"metadata-{i}-key": f"k{i}" for i in range(30)}},
        {**base, "expires_at": "2026-13-45T99:99"},
        {**base, "status_change_timestamp": "9999-12-31T23:59"},
        {**base, "segment_id": "abc"},
        {**base, "segment_id": "99999999999999999999"},
        {**base, "context": "bogus", "description": ""},
        {**base, "description": "y" * 5000},
        {**base, "member": "\x00"},
        {**base, "segment_id": "1\x00"},
        {**base, "description": "nul \x00 inside"},
        {**base, "reference_id": "R\x00"},
        {**base, "metadata-0-key": "k\x00"},
        {},
    ]
    for data in cases:
        for url in ("/overrides/set", "/overrides/preview"):
            for headers in ({}, HX):
                response = client.post(url, data=data, headers=headers)
                # The preview only needs segment, member and status; saving needs it all.
                expected = (422,) if url.endswith("/set") else (200, 422)
                assert response.status_code in expected, (url, data, response.status_code)
    assert db.session.scalar(select(Override)) is None
    assert client.get("/overrides/member/%00").status_code == 404
    for query in ("?page=-1", "?page=abc&sort=--", "?segment=99999999999", "?member=%00",
                  "?author=%00x"):
        assert client.get("/overrides/" + query).status_code == 200
        assert client.get("/overrides/export.csv" + query).status_code == 200
    bulk = client.post("/overrides/bulk-reset", data={"ids": ["abc", "-1", "9" * 20]})
    assert bulk.status_code == 303
    unsafe = client.post("/overrides/set", data={**base, "next": "//evil.example"})
    assert unsafe.status_code == 303 and "evil" not in unsafe.location


def test_a_segment_whose_rules_cannot_be_read_is_refused_plainly(client, auth, world):
    broken = make_segment("Broken", include=[{"field": "points", "operator": ">",
                                              "value": "abc"}], refresh=False)
    auth.login("admin")
    response = client.post("/overrides/set", data=form_data(broken, "GOLD1"), headers=HX)
    assert response.status_code == 422
    assert "The rules of segment Broken cannot be evaluated" in response.get_data(as_text=True)
    preview_response = client.post("/overrides/preview", data=form_data(broken, "GOLD1"),
                                   headers=HX)
    assert preview_response.status_code == 422
    assert db.session.scalar(select(Override)) is None
    page = client.get(f"/overrides/segment/{broken.id}")
    assert page.status_code == 200
