"""The explainer pages: search as you type, the member page against the engine, permalinks,
what-if (page, fragment, 422) that saves nothing."""

from __future__ import annotations

import re
from datetime import date, timedelta

from sqlalchemy import func, select

from tests.factories import add_to_list, make_member, make_offer, make_reward, make_segment
from webapp.extensions import db
from webapp.models import AuditEntry, Member, MembershipEvent, Override, SegmentMembership
from webapp.services import decisions as visibility
from webapp.timeutil import utcnow

HX = {"HX-Request": "true"}


def test_search_exact_and_prefix_matches(client, auth):
    auth.login("support")
    alice = make_member(external_id="ALICE-1", email="alice@example.com")
    make_member(external_id="ALICE-2", email="alice.two@example.com")
    make_member(external_id="BOB-1", email="bob@example.com")
    page = client.get("/members/").get_data(as_text=True)
    assert "Who are you looking for?" in page
    for q in (alice.id, "ALICE-1", "Alice@Example.com"):
        body = client.get("/members/", query_string={"q": q}, headers=HX).get_data(as_text=True)
        assert body.startswith('<div id="results"') and "exact match" in body
        assert body.index("ALICE-1") < body.index("exact match")
    body = client.get("/members/?q=ALI", headers=HX).get_data(as_text=True)
    assert "ALICE-1" in body and "ALICE-2" in body and "BOB-1" not in body
    body = client.get("/members/?q=bob@").get_data(as_text=True)
    assert "<html" in body and "BOB-1" in body
    body = client.get("/members/?q=zzz", headers=HX).get_data(as_text=True)
    assert "No member matches “zzz”" in body


def test_enter_on_an_exact_id_or_email_opens_the_member(client, auth):
    auth.login("support")
    alice = make_member(external_id="ALICE-1", email="alice@example.com")
    for q in (alice.id, "ALICE-1", "Alice@Example.com", " alice@example.com "):
        response = client.get("/members/", query_string={"q": q, "go": "1"})
        assert response.status_code == 303, q
        assert response.headers["Location"].endswith(f"/members/{alice.id}"), q
    # typing (htmx) and the pushed history entries (no go=1) stay on the results
    assert client.get("/members/", query_string={"q": "ALICE-1", "go": "1"},
                      headers=HX).status_code == 200
    assert client.get("/members/?q=ALICE-1").status_code == 200
    # no exact match: the results page, not a redirect
    response = client.get("/members/", query_string={"q": "ALI", "go": "1"})
    assert response.status_code == 200 and "ALICE-1" in response.get_data(as_text=True)


def test_a_case_only_mismatch_of_an_external_id_is_offered(client, auth):
    auth.login("support")
    member = make_member(external_id="M0000012", email="m12@example.com")
    for q in ("m0000012", "M0000012".swapcase()):
        body = client.get("/members/", query_string={"q": q, "go": "1"}).get_data(as_text=True)
        assert "Did you mean" in body, q
        assert f'href="/members/{member.id}" class="mono">M0000012</a>' in body
    body = client.get("/members/?q=M0000012", headers=HX).get_data(as_text=True)
    assert "Did you mean" not in body and "exact match" in body
    assert "Did you mean" not in client.get("/members/?q=zzz", headers=HX).get_data(
        as_text=True)


def _statuses(html: str, kind: str) -> dict[int, tuple[str, str]]:
    rows = re.findall(rf'data-{kind}="(\d+)">.*?data-status="([a-z_]+)".*?data-eligible="(\w+)"',
                      html, re.S)
    return {int(i): (status, eligible) for i, status, eligible in rows}


def test_member_page_shows_the_engines_decisions(client, auth):
    auth.login("support")
    today = utcnow().date()
    member = make_member(tier="silver", points=200, birthday=today.replace(year=today.year - 17),
                         custom_fields={"city": "Paris"})
    gold = make_segment("Gold", include=[{"field": "tier", "operator": "equals", "value": "gold"}])
    london = make_segment("Londoners", include=[
        {"field": "custom_fields.city", "operator": "equals", "value": "London"}])
    beta = make_segment("Beta", kind="static")
    add_to_list(beta, member)
    now = utcnow()
    make_offer("Everyone")
    make_offer("Adults", audiences=[("age_within", {"minimum_age": 18, "maximum_age": None})])
    make_offer("London pop-up", audiences=[("in_all_segments", {"segments": [london.id]})])
    make_offer("Beta perks", audiences=[("in_any_segment", {"segments": [gold.id, beta.id]})])
    make_offer("Ended", expire_at=now - timedelta(days=1))
    make_reward("Coffee", points=150)
    make_reward("Cinema", points=900)
    make_reward("Spa", points=0, required=[gold])
    make_reward("Mug", discontinued=True)
    html = client.get(f"/members/{member.external_id}").get_data(as_text=True)
    engine_offers = {o.id: (d.visible_status, str(d.eligible).lower())
                     for o, d in visibility.member_offers(member)}
    engine_rewards = {r.id: (d.visible_status, str(d.eligible).lower())
                      for r, d in visibility.member_rewards(member)}
    assert _statuses(html, "offer") == engine_offers
    assert _statuses(html, "reward") == engine_rewards
    assert sorted(s for s, _ in engine_offers.values()) == [
        "age_restricted", "missing_required_segments", "visible", "visible", "visible"]
    # hidden first, then visible but not eligible, then eligible
    order = [name for name in re.findall(r'class="decision-name">([^<]+)', html)]
    assert order[:2] == ["Adults", "London pop-up"] and order.index("Ended") < order.index(
        "Everyone")
    assert "Londoners: custom field city is &#34;London&#34; (has Paris)" in html
    assert "needs 700 more points" in html and "turns 18 in" in html
    assert "Beta" in html and "on the list" in html  # the member's segments, with how


def test_filters_and_fragment(client, auth):
    auth.login("support")
    member = make_member(points=0)
    make_offer("Everyone")
    make_offer("Retired", discontinued=True)
    make_reward("Coffee", points=150)
    body = client.get(f"/members/{member.id}?show=eligible", headers=HX).get_data(as_text=True)
    assert body.startswith('<section id="decisions"')
    assert "Everyone" in body and "Retired" not in body and "Coffee" not in body
    body = client.get(f"/members/{member.id}?show=not_eligible").get_data(as_text=True)
    assert "Retired" in body and "Coffee" in body and "Everyone" not in body
    assert client.get("/members/no-such-member").status_code == 404


def test_permalinks_show_segment_criterion_and_override(client, auth):
    auth.login("support")
    member = make_member(tier="bronze", points=20)
    gold = make_segment("Gold", include=[{"field": "tier", "operator": "in",
                                          "value": ["gold", "platinum"]}])
    vip = make_segment("VIPs", include=[{"field": "points", "operator": ">=", "value": 0}])
    db.session.add(Override(segment_id=vip.id, member_id=member.id, status="block",
                            description="Chargeback dispute", actor_label="Ada Admin",
                            status_change_timestamp=utcnow()))
    db.session.commit()
    offer = make_offer("Lounge", audiences=[("in_all_segments", {"segments": [gold.id]})])
    reward = make_reward("Trip", points=100, required=[vip])
    body = client.get(f"/members/{member.id}/offers/{offer.id}").get_data(as_text=True)
    assert "does not see this offer" in body and '<span class="label">Gold</span>' in body
    assert "tier is gold or platinum" in body and "has bronze" in body
    assert f"/members/{member.id}/offers/{offer.id}" in body
    fragment = client.get(f"/members/{member.id}/offers/{offer.id}", headers=HX).get_data(
        as_text=True)
    assert fragment.startswith(f'<div id="explanation-offer-{offer.id}"')
    body = client.get(f"/members/{member.external_id}/rewards/{reward.id}").get_data(
        as_text=True)
    assert "VIPs: blocked by override: Chargeback dispute (Ada Admin," in body
    assert "needs 80 more points" in body
    assert client.get(f"/members/{member.id}/rewards/999").status_code == 404


def _state():
    return (db.session.scalar(select(func.count()).select_from(AuditEntry)),
            db.session.scalar(select(func.count()).select_from(MembershipEvent)),
            sorted(db.session.execute(select(SegmentMembership.segment_id,
                                             SegmentMembership.member_id)).all()),
            [m.attributes() for m in db.session.scalars(select(Member))])


def test_what_if_shows_changes_and_saves_nothing(client, auth):
    auth.login("support")
    member = make_member(tier="bronze", points=10, birthday=date(2015, 1, 1), badges=["app_user"])
    gold = make_segment("Gold", include=[{"field": "tier", "operator": "equals", "value": "gold"}])
    make_offer("Lounge", audiences=[("in_all_segments", {"segments": [gold.id]})])
    make_offer("Adults", audiences=[("age_within", {"minimum_age": 18, "maximum_age": None})])
    make_reward("Coffee", points=150)
    make_reward("Free", points=0)
    before = _state()
    data = {"tier": "gold", "points": "500", "birthday": "1990-01-01", "badges": "app_user",
            "custom_fields": '{"city": "London"}'}
    response = client.post(f"/members/{member.id}/what-if", data=data, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.startswith('<section id="what-if"')
    assert "3 decisions would change" in body
    for name in ("Lounge", "Adults", "Coffee"):
        assert name in body
    assert "Free" not in body
    db.session.expire_all()
    assert _state() == before
    # full page without htmx
    response = client.post(f"/members/{member.id}/what-if", data=data)
    assert response.status_code == 200 and "<html" in response.get_data(as_text=True)
    assert "3 decisions would change" in response.get_data(as_text=True)
    # invalid values: 422 with the message
    bad = dict(data, custom_fields="{city: London}", points="-3")
    response = client.post(f"/members/{member.id}/what-if", data=bad, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Not valid JSON (line 1, column 2)" in body and "Points must be 0 or more." in body
    response = client.post(f"/members/{member.id}/what-if", data=dict(data, custom_fields="[1]"))
    assert response.status_code == 422 and "Give a JSON object" in response.get_data(as_text=True)
    db.session.expire_all()
    assert _state() == before


def test_nul_characters_in_searches_find_nothing_instead_of_failing(client, auth):
    auth.login("marketer")
    make_member(external_id="NUL-1")
    offer = make_offer("Lounge")
    reward = make_reward("Spa")
    for url in ("/members/?q=NUL%00", "/offers/?q=%00x", "/rewards/?q=a%00",
                f"/offers/{offer.id}?segment_q=%00", f"/rewards/{reward.id}?segment_q=%00",
                "/members/NUL%001"):
        assert client.get(url).status_code in (200, 404), url
    assert "NUL-1" in client.get("/members/?q=NUL%00").get_data(as_text=True)
    response = client.post("/offers/new", data={"name": "bad\x00name"})
    assert response.status_code == 422
    assert "must not contain NUL characters" in response.get_data(as_text=True)


def _errors(body: str) -> list[str]:
    return re.findall(r'<small class="error" role="alert">(.*?)</small>', body)


def test_what_if_refuses_a_birthday_in_the_future(client, auth):
    auth.login("support")
    member = make_member(points=10)
    before = _state()
    data = {"tier": "bronze", "points": "10", "badges": "", "custom_fields": "{}"}
    tomorrow = utcnow().date() + timedelta(days=1)
    for day in ("2999-01-01", tomorrow.isoformat()):
        response = client.post(f"/members/{member.id}/what-if", data=dict(data, birthday=day),
                               headers=HX)
        body = response.get_data(as_text=True)
        assert response.status_code == 422
        assert _errors(body) == [f"Give a birthday between 1900-01-01 and today "
                                 f"({utcnow().date().isoformat()}); {day} is in the future."]
        assert "turns 18" not in body
    response = client.post(f"/members/{member.id}/what-if",
                           data=dict(data, birthday=utcnow().date().isoformat()), headers=HX)
    assert response.status_code == 200
    db.session.expire_all()
    assert _state() == before


def test_what_if_points_give_one_clear_message_each(client, auth):
    auth.login("support")
    member = make_member(points=10)
    data = {"tier": "bronze", "points": "10", "badges": "", "custom_fields": "{}"}
    cases = {
        "99999999999999999999999": "Points must be at most 9,223,372,036,854,775,807.",
        "abc": "Points must be a whole number (digits only, e.g. 250).",
        "1e5": "Points must be a whole number (digits only, e.g. 250).",
        "2.5": "Points must be a whole number (digits only, e.g. 250).",
        "-3": "Points must be 0 or more.",
        "": "Points is required.",
    }
    for points, message in cases.items():
        response = client.post(f"/members/{member.id}/what-if", data=dict(data, points=points),
                               headers=HX)
        assert response.status_code == 422, points
        assert _errors(response.get_data(as_text=True)) == [message], points
    response = client.post(f"/members/{member.id}/what-if",
                           data=dict(data, points="9223372036854775807"), headers=HX)
    assert response.status_code == 200


def test_explanation_tree_reads_in_words_and_breadcrumb_names_the_item(client, auth):
    auth.login("support")
    member = make_member(tier="bronze", points=20)
    vip = make_segment("VIPs", include=[{"field": "tier", "operator": "equals", "value": "gold"}])
    reward = make_reward("Spa day", points=0, required=[vip])
    body = client.get(f"/members/{member.id}/rewards/{reward.id}").get_data(as_text=True)
    assert '<span class="kind">Reward</span>' in body
    assert '<span class="label">Spa day</span>' in body
    assert '<span class="values">— missing required segments</span>' in body
    assert body.count("missing required segments") == 3  # badge, reason, the tree's root
    assert '<span class="kind">Required segments</span>' in body
    assert '<span class="label">VIPs</span>' in body
    assert "missing_required_segments" not in body.replace(
        'data-status="missing_required_segments"', "")
    assert "reward Spa day" not in body and "status missing" not in body
    crumbs = re.search(r'<div class="breadcrumbs">(.*?)</div>', body).group(1)
    assert crumbs.endswith("/ Spa day")


def test_permalinks_refuse_ids_beyond_64_bits(client, auth):
    auth.login("support")
    member = make_member()
    for kind in ("offers", "rewards"):
        for item_id in ("9223372036854775808", "99999999999999999999"):
            assert client.get(f"/members/{member.id}/{kind}/{item_id}").status_code == 404


def test_member_page_shares_the_catalog_until_it_changes(client, auth):
    """The page reads the process's shared catalog, and a catalog change shows at once."""
    auth.login("support")
    member = make_member(tier="gold")
    gold = make_segment("Gold", include=[{"field": "tier", "operator": "equals",
                                          "value": "gold"}])
    offer = make_offer("Gold brunch", audiences=[("in_any_segment", {"segments": [gold.id]})])
    first = visibility.load_catalog(rows=True)
    assert visibility.load_catalog(rows=True) is first
    assert "Gold brunch" in client.get(f"/members/{member.id}").get_data(as_text=True)
    offer.name = "Gold dinner"
    db.session.commit()
    assert visibility.load_catalog(rows=True) is not first
    page = client.get(f"/members/{member.id}").get_data(as_text=True)
    assert "Gold dinner" in page and "Gold brunch" not in page
    gold.include = [{"field": "tier", "operator": "equals", "value": "silver"}]
    db.session.commit()
    statuses = _statuses(client.get(f"/members/{member.id}").get_data(as_text=True), "offer")
    assert statuses == {offer.id: ("missing_required_segments", "false")}
