"""The membership event feed (cursor polling, filters) and webhook subscriptions over the API."""

from __future__ import annotations

from tests.api.conftest import errors_of
from tests.factories import make_member, make_segment


def _add(api, segment_id, *refs):
    return api.post(f"/segments/{segment_id}/relationships/members",
                    {"data": [{"type": "members", "id": r} for r in refs]})


def test_feed_is_followed_with_its_cursor(api):
    segment = make_segment("Feed", kind="static")
    for n in range(5):
        make_member(external_id=f"F{n}")
    _add(api, segment.id, "F0", "F1", "F2")
    first = api.get("/events?page[size]=2").get_json()
    assert [e["attributes"]["member_external_id"] for e in first["data"]] == ["F0", "F1"]
    assert first["meta"]["more"] is True
    second = api.get(first["links"]["next"]).get_json()
    assert [e["attributes"]["member_external_id"] for e in second["data"]] == ["F2"]
    assert second["meta"]["more"] is False and "next" not in second["links"]
    idle = api.get(f"/events?page[cursor]={second['meta']['cursor']}").get_json()
    assert idle["data"] == [] and idle["meta"]["cursor"] == second["meta"]["cursor"]
    _add(api, segment.id, "F3")
    new = api.get(f"/events?page[cursor]={second['meta']['cursor']}").get_json()
    assert [e["attributes"]["member_external_id"] for e in new["data"]] == ["F3"]
    last_id = new["data"][0]["id"]
    assert api.get(f"/events?filter[after]={last_id}").get_json()["data"] == []
    assert len(api.get("/events?filter[source]=api").get_json()["data"]) == 4
    assert len(api.get("/events?filter[since]=2000-01-01").get_json()["data"]) == 4
    for bad in ("filter[action]=MOVE", "filter[after]=x", "filter[source]=magic",
                "filter[since]=yesterday"):
        response = api.get(f"/events?{bad}")
        assert response.status_code == 400
        assert errors_of(response)[0]["source"]["parameter"] == bad.split("=")[0]


def test_event_resource_carries_segment_and_member_relationships(api):
    segment = make_segment("Rel", kind="static", customer_segment_id="REL")
    member = make_member(external_id="R1")
    _add(api, "REL", "R1")
    event = api.get("/events").get_json()["data"][0]
    assert event["type"] == "membership-events"
    assert event["relationships"]["segment"]["data"] == {"type": "segments",
                                                         "id": str(segment.id)}
    assert event["relationships"]["member"]["data"] == {"type": "members", "id": member.id}
    assert event["attributes"]["time"].endswith("Z")


def test_webhook_subscriptions_over_the_api(api, api_as):
    make_segment("Hooked", kind="static", customer_segment_id="HOOK")
    body = {"data": {"type": "webhooks", "attributes": {
        "url": "https://crm.example.com/in", "description": "CRM",
        "event_filter": {"actions": ["ADD"], "segments": ["HOOK"]}}}}
    assert api_as("marketer").post("/webhooks", body).status_code == 403
    created = api.post("/webhooks", body)
    assert created.status_code == 201, created.get_json()
    webhook = created.get_json()["data"]
    assert webhook["attributes"]["secret"].startswith("whsec_")
    shown = api.get(f"/webhooks/{webhook['id']}").get_json()["data"]
    assert "secret" not in shown["attributes"]
    assert [w["id"] for w in api.get("/webhooks").get_json()["data"]] == [webhook["id"]]
    bad = api.patch(f"/webhooks/{webhook['id']}", {"data": {"type": "webhooks", "attributes": {
        "url": "not a url"}}})
    assert bad.status_code == 422
    assert errors_of(bad)[0]["source"]["pointer"] == "/data/attributes/url"
    off = api.patch(f"/webhooks/{webhook['id']}", {"data": {"type": "webhooks", "attributes": {
        "active": False}}})
    assert off.get_json()["data"]["attributes"]["active"] is False
    assert api.delete(f"/webhooks/{webhook['id']}").status_code == 204
    assert api.get(f"/webhooks/{webhook['id']}").status_code == 404


def test_tokens_over_the_api(api, api_as, client, jsonapi_validator):
    from tests.api.conftest import ApiClient

    assert api_as("marketer").get("/tokens").status_code == 403
    created = api.post("/tokens", {"data": {"type": "tokens", "attributes": {
        "name": "crm-sync", "role": "support"}}})
    assert created.status_code == 201, created.get_json()
    token = created.get_json()["data"]
    raw = token["attributes"]["token"]
    assert raw.startswith(token["attributes"]["prefix"])
    listed = api.get("/tokens").get_json()["data"]
    assert all("token" not in t["attributes"] for t in listed)
    assert "crm-sync" in [t["attributes"]["name"] for t in listed]
    crm = ApiClient(client, raw, jsonapi_validator)
    assert crm.get("/segments").status_code == 200
    assert crm.post("/segments", {"data": {"type": "segments", "attributes": {
        "name": "x", "kind": "static"}}}).status_code == 403
    bad = api.post("/tokens", {"data": {"type": "tokens", "attributes": {"name": "",
                                                                        "role": "owner"}}})
    assert {e["source"]["pointer"] for e in errors_of(bad)} == {
        "/data/attributes/name", "/data/attributes/role"}
    assert api.delete(f"/tokens/{token['id']}").status_code == 204
    assert crm.get("/segments").status_code == 401


def test_events_of_a_deleted_segment_stay_readable(api):
    make_member(external_id="G1")
    created = api.post("/segments", {"data": {"type": "segments", "attributes": {
        "name": "Gone soon", "kind": "static", "customer_segment_id": "GONE"}}})
    segment_id = created.get_json()["data"]["id"]
    _add(api, "GONE", "G1")
    assert api.delete(f"/segments/{segment_id}").status_code == 204
    for ref in ("GONE", segment_id):
        actions = [e["attributes"]["action"] for e in
                   api.get(f"/events?filter[segment]={ref}").get_json()["data"]]
        assert actions == ["ADD", "REMOVE"], ref


def test_segment_filter_names_one_segment_never_both(api):
    """A number is a segment id first; only without events of that id is it a customer id."""
    make_member(external_id="E1")
    make_member(external_id="E2")
    first = make_segment("First", kind="static")
    _add(api, first.id, "E1")
    first_id = first.id
    # A segment saved before customer ids were checked, whose customer id is the first's number.
    legacy = make_segment("Legacy", kind="static", customer_segment_id=str(first_id))
    _add(api, legacy.id, "E2")
    assert api.delete(f"/segments/{first_id}").status_code == 204
    # Segment #first_id is gone: the number still means its events, not the legacy segment's.
    for ref, expected, count in ((first_id, first_id, 2), (legacy.id, legacy.id, 1),
                                 ("LEGACY-NONE", None, 0)):
        data = api.get(f"/events?filter[segment]={ref}").get_json()["data"]
        assert len(data) == count, ref
        assert {e["relationships"]["segment"]["data"]["id"] for e in data} <= {str(expected)}
