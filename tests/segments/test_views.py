"""Segment pages: list, builder (page, htmx fragment, invalid submit), preview, page, delete."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.factories import add_to_list, make_member, make_offer, make_reward, make_segment
from webapp.extensions import db
from webapp.models import Segment, SegmentMembership

HX = {"HX-Request": "true"}
GOLD = [{"field": "tier", "operator": "equals", "value": "gold"}]


def _text(response) -> str:
    return response.get_data(as_text=True)


def _form(**extra) -> dict:
    data = {"name": "Rich gold", "kind": "dynamic", "description": "", "url": "",
            "customer_segment_id": "",
            "include-0-field": "tier", "include-0-operator": "equals",
            "include-0-value": "gold",
            "include-1-field": "points", "include-1-operator": ">=",
            "include-1-value": "500"}
    data.update(extra)
    return data


@pytest.fixture
def members(app):
    """Five members across tiers and points."""
    return {
        "rich_gold": make_member(tier="gold", points=900, badges=["vip"]),
        "poor_gold": make_member(tier="gold", points=100),
        "banned_gold": make_member(tier="gold", points=800, badges=["banned"]),
        "silver": make_member(tier="silver", points=950),
        "bronze": make_member(tier="bronze", points=5),
    }


# --- list ---------------------------------------------------------------------------------

def test_index_full_page_fragment_search_and_sort(client, auth, members):
    auth.login("support")
    make_segment("Gold", include=GOLD, customer_segment_id="crm-gold")
    make_segment("Everyone")
    make_segment("Staff list", kind="static")
    page = client.get("/segments/")
    assert page.status_code == 200
    body = _text(page)
    assert "<html" in body and 'id="segment-list"' in body
    assert "New segment" not in body  # support cannot write
    fragment = client.get("/segments/?q=gold", headers=HX)
    text = _text(fragment)
    assert fragment.status_code == 200 and "<html" not in text
    assert text.lstrip().startswith('<section id="segment-list"')
    assert "Gold" in text and "Everyone" not in text
    assert "Gold" in _text(client.get("/segments/?q=crm-gold"))
    static_only = _text(client.get("/segments/?kind=static"))
    assert "Staff list" in static_only and "Everyone" not in static_only
    by_size = _text(client.get("/segments/?sort=size&dir=desc"))
    assert by_size.index("Everyone") < by_size.index("Gold") < by_size.index("Staff list")
    assert "No segment matches" in _text(client.get("/segments/?q=nothing-like-this"))
    assert client.get("/segments/?sort=bogus&dir=sideways&page=x").status_code == 200


def test_index_shows_new_button_to_marketers(client, auth):
    auth.login("marketer")
    body = _text(client.get("/segments/"))
    assert "New segment" in body and "No segments yet" in body


# --- create -------------------------------------------------------------------------------

def test_new_page_and_save(client, auth, members):
    auth.login("marketer")
    page = client.get("/segments/new")
    assert page.status_code == 200
    # a new segment starts without a stray empty row; the add button adds the first
    assert 'class="criterion-row' not in _text(page)
    assert "+ Add include criterion" in _text(page)
    response = client.post("/segments/new", data=_form(
        **{"exclude-2-field": "badges", "exclude-2-operator": "contains",
           "exclude-2-value": "banned"}))
    assert response.status_code == 303
    segment = db.session.scalar(select(Segment).where(Segment.name == "Rich gold"))
    assert segment.include == [{"field": "tier", "operator": "equals", "value": "gold"},
                               {"field": "points", "operator": ">=", "value": 500}]
    assert segment.exclude == [{"field": "badges", "operator": "contains", "value": "banned"}]
    assert segment.size == 1
    assert response.location.endswith(f"/segments/{segment.id}")
    assert segment.updated_by_label


def test_builder_quotes_custom_field_keys_for_the_user(client, auth):
    """Issue 14.7: a key with a space, a slash or a dot is written in quotes by the builder,
    selects its members, and shows again as typed when the segment is edited."""
    auth.login("marketer")
    retail = make_member(custom_fields={"Customer Type": "retail", "a.b": {"attr/a": 1}})
    make_member(custom_fields={"Customer Type": "trade", "a": {"b": {"attr/a": 1}}})
    response = client.post("/segments/new", data=_form(**{
        "include-0-field": "custom_fields", "include-0-key": "Customer Type",
        "include-0-json_type": "string", "include-0-value": "retail",
        "include-1-field": "custom_fields", "include-1-key": '["a.b"]["attr/a"]',
        "include-1-json_type": "number", "include-1-operator": "equals",
        "include-1-value": "1"}))
    assert response.status_code == 303, _text(response)
    segment = db.session.scalar(select(Segment).where(Segment.name == "Rich gold"))
    assert [c["field"] for c in segment.include] == [
        'custom_fields["Customer Type"]', 'custom_fields["a.b"]["attr/a"]']
    assert segment.size == 1
    assert db.session.scalar(select(SegmentMembership.member_id).where(
        SegmentMembership.segment_id == segment.id)) == retail.id
    edit = _text(client.get(f"/segments/{segment.id}/edit"))
    assert 'value="Customer Type"' in edit
    assert 'value="[&#34;a.b&#34;][&#34;attr/a&#34;]"' in edit


def test_invalid_save_is_422_with_messages_next_to_fields_and_rows(client, auth, members):
    auth.login("marketer")
    response = client.post("/segments/new", data=_form(
        name="", url="ftp://x", **{"include-1-value": "lots"}))
    assert response.status_code == 422
    body = _text(response)
    assert "Name is required." in body
    assert "http:// or https://" in body
    assert "points takes a number" in body
    assert db.session.scalar(select(Segment)) is None


def test_unfinished_row_refused_on_save(client, auth, members):
    auth.login("marketer")
    response = client.post("/segments/new", data=_form(**{"include-1-value": ""}))
    assert response.status_code == 422
    assert "enter a value" in _text(response)


def test_an_over_long_criterion_value_is_refused_next_to_its_row(client, auth, members):
    auth.login("marketer")
    response = client.post("/segments/new", data=_form(**{
        "include-0-field": "email", "include-0-operator": "equals",
        "include-0-value": "a" * 10_001}))
    assert response.status_code == 422
    assert "Value must be at most 10,000 characters (10,001 given)." in _text(response)
    assert db.session.scalar(select(Segment)) is None


def test_builder_buttons_work_without_javascript(client, auth, members):
    auth.login("marketer")
    added = client.post("/segments/new", data=_form(add_exclude="1"))
    assert added.status_code == 200
    assert 'id="row-exclude-2"' in _text(added)
    removed = client.post("/segments/new", data=_form(remove_row="include-1"))
    assert 'id="row-include-1"' not in _text(removed)
    assert 'id="row-include-0"' in _text(removed)
    previewed = client.post("/segments/new", data=_form(preview="1"))
    assert 'data-count="2"' in _text(previewed)
    assert db.session.scalar(select(Segment)) is None


def test_static_segment_saved_without_criteria(client, auth):
    auth.login("marketer")
    response = client.post("/segments/new", data=_form(name="List", kind="static"))
    assert response.status_code == 303
    segment = db.session.scalar(select(Segment))
    assert segment.kind == "static" and segment.include == []


def test_custom_field_and_relative_date_rows(client, auth, members):
    auth.login("marketer")
    response = client.post("/segments/new", data={
        "name": "Custom", "kind": "dynamic",
        "include-0-field": "custom_fields", "include-0-key": "city",
        "include-0-json_type": "string", "include-0-operator": "equals",
        "include-0-value": "London", "include-0-ci": "1",
        "include-1-field": "created_at", "include-1-operator": ">=",
        "include-1-date_mode": "days_ago", "include-1-days": "30",
        "include-2-field": "custom_fields", "include-2-key": "visits",
        "include-2-json_type": "number", "include-2-operator": ">", "include-2-value": "3"})
    assert response.status_code == 303, _text(response)
    segment = db.session.scalar(select(Segment))
    assert segment.include == [
        {"field": "custom_fields.city", "operator": "equals", "value": "London",
         "case_insensitive": True},
        {"field": "created_at", "operator": ">=", "value": {"days_ago": 30}},
        {"field": "custom_fields.visits", "operator": ">", "value": 3}]
    edit = _text(client.get(f"/segments/{segment.id}/edit"))
    assert 'value="city"' in edit and 'value="30"' in edit


def test_segment_limit_shown_on_the_form(app, client, auth):
    auth.login("marketer")
    app.config["LIMIT_SEGMENTS"] = 1
    make_segment("Only one")
    response = client.post("/segments/new", data=_form())
    assert response.status_code == 422
    assert "The limit is 1 segment and" in _text(response)
    assert "LIMIT_SEGMENTS" not in _text(response)


def test_criteria_limit_shown_on_the_form(app, client, auth, members):
    auth.login("marketer")
    app.config["LIMIT_CRITERIA"] = 1
    response = client.post("/segments/new", data=_form())
    assert response.status_code == 422
    assert "the limit is 1 include criterion per segment" in _text(response)
    assert "LIMIT_CRITERIA" not in _text(response)


# --- row endpoint ---------------------------------------------------------------------------

def test_row_endpoint_full_page_fragment_and_invalid(client, auth, members):
    auth.login("marketer")
    full = client.post("/segments/builder/row", data=_form(row="include-1"))
    assert full.status_code == 200 and "<html" in _text(full)
    fragment = client.post("/segments/builder/row", data=_form(row="include-1"), headers=HX)
    body = _text(fragment)
    assert fragment.status_code == 200 and "<html" not in body
    assert body.startswith('<div class="criterion-row" id="row-include-1"')
    invalid = client.post("/segments/builder/row",
                          data=_form(row="include-1", **{"include-1-value": "lots"}), headers=HX)
    assert invalid.status_code == 422
    assert "points takes a number" in _text(invalid)
    invalid_full = client.post("/segments/builder/row",
                               data=_form(row="include-1", **{"include-1-value": "lots"}))
    assert invalid_full.status_code == 422 and "<html" in _text(invalid_full)


def test_row_operators_follow_the_field_and_value_resets(client, auth):
    auth.login("marketer")
    response = client.post("/segments/builder/row", headers=HX, data={
        "row": "include-0", "include-0-field": "badges", "include-0-previous_field": "points",
        "include-0-operator": ">", "include-0-value": "500"})
    body = _text(response)
    assert response.status_code == 200
    assert 'value="contains"' in body and 'value="&gt;"' not in body
    assert 'value="500"' not in body


def test_row_add_and_remove_fragments(client, auth, members):
    auth.login("marketer")
    added = client.post("/segments/builder/row", data=_form(add_include="1"), headers=HX)
    assert added.status_code == 200
    assert 'id="row-include-2"' in _text(added)
    assert added.headers["HX-Trigger"] == "criteria-changed"
    removed = client.post("/segments/builder/row", data=_form(remove_row="include-1"),
                          headers=HX)
    assert removed.status_code == 200 and "criterion-row" not in _text(removed)
    assert 'id="include-add" class="add-row-region" hx-swap-oob="outerHTML"' in _text(removed)
    assert "+ Add include criterion" in _text(removed)
    assert removed.headers["HX-Trigger"] == "criteria-changed"


def test_add_button_gives_way_to_the_limit_note_at_the_criteria_limit(app, client, auth):
    auth.login("marketer")
    app.config["LIMIT_CRITERIA"] = 2
    one = _form()
    del one["include-1-field"], one["include-1-operator"], one["include-1-value"]
    page = _text(client.post("/segments/new", data=one | {"preview": "1"}))
    assert "+ Add include criterion" in page
    added = client.post("/segments/builder/row", data=one | {"add_include": "1"}, headers=HX)
    body = _text(added)
    assert 'id="row-include-1"' in body
    assert "+ Add include criterion" not in body
    assert "The limit is 2 include criteria per segment" in body
    full = _text(client.post("/segments/new", data=_form(preview="1")))
    assert "+ Add include criterion" not in full and "+ Add exclude criterion" in full
    assert "The limit is 2 include criteria per segment" in full
    # A page opened before the group filled up: the add is refused, nothing is added.
    stale = client.post("/segments/builder/row", data=_form(add_include="1"), headers=HX)
    assert stale.status_code == 200 and "criterion-row" not in _text(stale)
    assert "The limit is 2 include criteria" in stale.headers["HX-Trigger"]
    no_js = _text(client.post("/segments/new", data=_form(add_include="1")))
    assert 'id="row-include-2"' not in no_js and "remove one to add another" in no_js


def test_row_refuses_a_bad_custom_field_path_before_a_value_is_typed(client, auth):
    auth.login("marketer")
    data = {"row": "include-0", "include-0-field": "custom_fields",
            "include-0-previous_field": "custom_fields", "include-0-key": "a..b",
            "include-0-operator": "equals", "include-0-value": ""}
    response = client.post("/segments/builder/row", data=data, headers=HX)
    assert response.status_code == 422
    assert "a custom field path is keys of letters" in _text(response)
    ok = client.post("/segments/builder/row", data={**data, "include-0-key": "address.city"},
                     headers=HX)
    assert ok.status_code == 200 and "custom field path" not in _text(ok)


def test_row_refuses_a_segment_listed_twice(client, auth):
    auth.login("marketer")
    gold = make_segment("Gold club", include=GOLD)
    data = {"row": "include-0", "include-0-field": "segment",
            "include-0-previous_field": "segment", "include-0-operator": "in",
            "include-0-value": f"{gold.id}, {gold.id}, {gold.id}"}
    response = client.post("/segments/builder/row", data=data, headers=HX)
    assert response.status_code == 422
    assert f"segment #{gold.id} is listed more than once" in _text(response)


def test_segment_picker_search_pick_and_unknown_id(client, auth, members):
    auth.login("marketer")
    gold = make_segment("Gold club", include=GOLD)
    make_segment("Silver club")
    data = {"row": "include-0", "include-0-field": "segment",
            "include-0-previous_field": "segment", "include-0-operator": "in",
            "include-0-value": "", "include-0-segment_q": "gold"}
    found = _text(client.post("/segments/builder/row", data=data, headers=HX))
    assert f'value="include-0:{gold.id}"' in found and "Silver club" not in found
    picked = client.post("/segments/builder/row", headers=HX,
                         data={**data, "pick_segment": f"include-0:{gold.id}"})
    body = _text(picked)
    assert picked.status_code == 200
    assert f'value="{gold.id}"' in body and "Gold club" in body
    unknown = client.post("/segments/builder/row", headers=HX,
                          data={**data, "include-0-value": "9999"})
    assert unknown.status_code == 422 and "#9999" in _text(unknown)


# --- preview --------------------------------------------------------------------------------

def test_preview_full_page_fragment_and_invalid(client, auth, members):
    auth.login("marketer")
    full = client.post("/segments/builder/preview", data=_form())
    assert full.status_code == 200 and "<html" in _text(full)
    fragment = client.post("/segments/builder/preview", data=_form(), headers=HX)
    body = _text(fragment)
    assert fragment.status_code == 200
    assert body.lstrip().startswith('<aside id="preview-panel"')
    assert 'data-count="2"' in body
    assert members["rich_gold"].email in body
    invalid = client.post("/segments/builder/preview", headers=HX,
                          data=_form(**{"include-1-value": "lots"}))
    assert invalid.status_code == 422
    assert "points takes a number" in _text(invalid)


def test_preview_skips_unfinished_rows_and_warns(client, auth, members):
    auth.login("marketer")
    response = client.post("/segments/builder/preview", headers=HX, data=_form(**{
        "include-2-field": "points", "include-2-operator": "<", "include-2-value": "100",
        "include-3-field": "xp", "include-3-operator": ">", "include-3-value": ""}))
    body = _text(response)
    assert response.status_code == 200
    assert 'data-count="0"' in body
    assert "contradict" in body
    assert "Leaving out 1 unfinished criterion" in body
    assert "Include criterion 4: enter a value" in body
    # without JavaScript ("Update preview" reloads the page) the row is marked where it is
    page = _text(client.post("/segments/new", data=_form(preview="1", **{
        "include-3-field": "xp", "include-3-operator": ">", "include-3-value": ""})))
    row = page.split('id="row-include-3"', 1)[1].split('class="criterion-row', 1)[0]
    assert "Unfinished: enter a value. The preview leaves this criterion out" in row


def test_a_blank_row_is_marked_and_left_out_not_read_as_no_criteria(client, auth, members):
    auth.login("marketer")
    data = _form()
    for key in [k for k in data if k.startswith("include-")]:
        del data[key]
    data["include-0-field"] = ""
    response = client.post("/segments/builder/preview", headers=HX, data=data)
    body = _text(response)
    assert response.status_code == 200
    assert "Leaving out 1 unfinished criterion" in body
    assert "Include criterion 1: choose a field" in body
    # the row itself says so where it is (a fresh row from the add button too)
    added = _text(client.post("/segments/builder/row", headers=HX,
                              data={**data, "add_include": "1"}))
    assert 'id="row-include-1"' in added
    assert "Unfinished: choose a field. The preview leaves this criterion out" in added


def test_preview_of_an_edit_shows_impact_and_affected_offers(client, auth, members):
    auth.login("marketer")
    segment = make_segment("Gold", include=GOLD)
    make_offer("Lounge pass", audiences=[("in_any_segment", {"segments": [segment.id]})])
    make_reward("Upgrade", required=[segment])
    response = client.post("/segments/builder/preview", headers=HX, data=_form(
        segment_id=str(segment.id), **{"include-0-value": "silver", "include-1-value": "900"}))
    body = _text(response)
    assert 'data-count="1"' in body
    assert "+1 would join" in body and "−3 would leave" in body
    assert "Lounge pass" in body and "Upgrade" in body
    assert members["silver"].email in body and members["poor_gold"].email in body


# --- edit ---------------------------------------------------------------------------------

def test_edit_saves_and_stale_version_is_refused(client, auth, members):
    user = auth.login("marketer")
    segment = make_segment("Gold", include=GOLD)
    page = _text(client.get(f"/segments/{segment.id}/edit"))
    assert 'name="version" type="hidden" value="1"' in page
    saved = client.post(f"/segments/{segment.id}/edit", data=_form(name="Gold", version="1"))
    assert saved.status_code == 303
    db.session.refresh(segment)
    assert segment.version == 2 and segment.size == 2
    assert segment.updated_by_label == user.label
    stale = client.post(f"/segments/{segment.id}/edit",
                        data=_form(name="Overwritten", version="1"))
    assert stale.status_code == 422
    body = _text(stale)
    assert "someone else changed this segment" in body
    assert "Current version 2" in body
    db.session.refresh(segment)
    assert segment.name == "Gold" and segment.version == 2


def test_edit_of_missing_segment_is_404(client, auth):
    auth.login("marketer")
    assert client.get("/segments/999/edit").status_code == 404
    assert client.post("/segments/builder/preview", data={"segment_id": "999"}).status_code == 404
    assert client.post("/segments/builder/preview",
                       data={"segment_id": "abc"}).status_code == 400


def test_support_cannot_use_the_builder(client, auth):
    auth.login("support")
    assert client.get("/segments/new").status_code == 403
    assert client.post("/segments/builder/row", data={}).status_code == 403
    assert client.post("/segments/builder/preview", data={}).status_code == 403


# --- segment page -------------------------------------------------------------------------

def test_show_page_members_fragment_and_search(client, auth, members):
    auth.login("support")
    segment = make_segment("Gold", include=GOLD, exclude=[
        {"field": "badges", "operator": "contains", "value": "banned"}])
    page = client.get(f"/segments/{segment.id}")
    body = _text(page)
    assert page.status_code == 200
    assert "Tier is gold, except members with badge banned." in body
    assert members["rich_gold"].email in body and "matches the rules" in body
    assert "<svg" in body  # size over time
    assert "Edit" not in body.split("</header>")[1].split("<h2>")[0]
    assert 'href="/segments/' + str(segment.id) + '/edit"' not in body
    fragment = client.get(f"/segments/{segment.id}?q={members['poor_gold'].external_id}",
                          headers=HX)
    text = _text(fragment)
    assert text.lstrip().startswith('<section id="segment-members"')
    assert members["poor_gold"].email in text and members["rich_gold"].email not in text
    missing = _text(client.get(f"/segments/{segment.id}?q=nobody@example.com", headers=HX))
    assert "Not in this segment" in missing
    assert client.get("/segments/12345").status_code == 404


def test_show_page_history_diff_and_events(client, auth, members):
    auth.login("marketer")
    segment = make_segment("Gold", include=GOLD)
    client.post(f"/segments/{segment.id}/edit", data=_form(name="Gold", version="1"))
    body = _text(client.get(f"/segments/{segment.id}"))
    assert "+ points at least 500" in body
    assert "ADD" in body and "REMOVE" in body


def test_static_page_links_uploads_and_shows_list_members(client, auth, members):
    auth.login("marketer")
    segment = make_segment("Staff", kind="static")
    add_to_list(segment, members["bronze"])
    body = _text(client.get(f"/segments/{segment.id}"))
    assert "on the list" in body and members["bronze"].email in body
    assert "Exactly the members on its list" in body


# --- delete -------------------------------------------------------------------------------

def test_delete_refused_while_in_use(client, auth, members):
    auth.login("admin")
    segment = make_segment("Gold", include=GOLD)
    make_offer("Lounge pass", audiences=[("in_all_segments", {"segments": [segment.id]})])
    make_reward("Upgrade", required=[segment])
    page = _text(client.get(f"/segments/{segment.id}"))
    assert "cannot be deleted" in page and "Lounge pass" in page
    response = client.post(f"/segments/{segment.id}/delete")
    assert response.status_code == 409
    body = _text(response)
    assert "Not deleted" in body and "Lounge pass" in body and "Upgrade" in body
    assert db.session.get(Segment, segment.id) is not None


def test_delete_unused_segment_by_admin_only(client, auth, members):
    segment = make_segment("Gold", include=GOLD)
    auth.login("marketer")
    assert client.post(f"/segments/{segment.id}/delete").status_code == 403
    assert "data-confirm" not in _text(client.get(f"/segments/{segment.id}"))
    auth.logout()
    auth.login("admin")
    page = _text(client.get(f"/segments/{segment.id}"))
    assert "data-confirm" in page
    response = client.post(f"/segments/{segment.id}/delete")
    assert response.status_code == 303
    assert db.session.get(Segment, segment.id) is None
    assert "Deleted segment Gold" in _text(client.get("/segments/"))


def test_segment_picker_without_javascript(client, auth):
    auth.login("marketer")
    gold = make_segment("Gold club", include=GOLD)
    data = {"name": "Not gold", "kind": "dynamic", "include-0-field": "segment",
            "include-0-previous_field": "segment", "include-0-operator": "not_in",
            "include-0-value": "", "include-0-segment_q": "club"}
    found = client.post("/segments/new", data={**data, "find_segments": "include-0"})
    assert found.status_code == 200 and "<html" in _text(found)
    assert f'value="include-0:{gold.id}"' in _text(found)
    picked = client.post("/segments/new", data={**data, "pick_segment": f"include-0:{gold.id}"})
    assert f'name="include-0-value" id="include-0-value" value="{gold.id}"' in _text(picked)
    saved = client.post("/segments/new", data={**data, "include-0-value": str(gold.id)})
    assert saved.status_code == 303
    segment = db.session.scalar(select(Segment).where(Segment.name == "Not gold"))
    assert segment.include == [{"field": "segment", "operator": "not_in", "value": [gold.id]}]
    assert "Not gold" in _text(client.get(f"/segments/{gold.id}"))  # where used


def test_list_search_by_customer_segment_id_ignores_case(client, auth):
    auth.login("support")
    make_segment("VIP customers", kind="static", customer_segment_id="crm-vip")
    make_segment("Other", kind="static", customer_segment_id="crm-other")
    for q in ("CRM-VIP", "crm-vip", "Crm-Vip"):
        body = _text(client.get(f"/segments/?q={q}"))
        assert "VIP customers" in body and "Other" not in body, q


def test_static_page_offers_one_upload_button(client, auth, members):
    auth.login("marketer")
    segment = make_segment("Staff", kind="static")
    page = _text(client.get(f"/segments/{segment.id}"))
    assert "Upload list" not in page
    history = page.split('id="upload-history" hx-get="')[1].split('"')[0]
    fragment = _text(client.get(history, headers=HX))
    assert fragment.count("Upload a list") == 1


def test_kind_is_fixed_text_once_the_segment_has_members(client, auth, members):
    auth.login("marketer")
    staff = make_segment("Staff", kind="static")
    empty = _text(client.get(f"/segments/{staff.id}/edit"))
    assert 'class="kind-radio"' in empty and "The kind cannot change" not in empty
    add_to_list(staff, members["bronze"])
    edit = _text(client.get(f"/segments/{staff.id}/edit"))
    assert 'class="kind-radio"' not in edit and 'value="dynamic"' not in edit.split(
        "<legend>Kind</legend>")[1].split("</fieldset>")[0]
    assert "The kind cannot change: this segment already has members" in edit
    assert '<input type="hidden" name="kind" value="static">' in edit
    saved = client.post(f"/segments/{staff.id}/edit", data={
        "name": "Staff 2", "kind": "static", "version": "1", "customer_segment_id": "",
        "description": "", "url": ""})
    assert saved.status_code == 303
    db.session.refresh(staff)
    assert staff.name == "Staff 2" and staff.kind == "static"


def test_breadcrumbs_name_the_segment_on_its_page_and_edit_page(client, auth, members):
    auth.login("marketer")
    segment = make_segment("Gold club", include=GOLD)
    for url in (f"/segments/{segment.id}", f"/segments/{segment.id}/edit"):
        crumbs = _text(client.get(url)).split('class="breadcrumbs"')[1].split("</div>")[0]
        assert "Gold club" in crumbs and f"#{segment.id}" not in crumbs, url
