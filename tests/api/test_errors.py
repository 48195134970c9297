"""Every error status of the API is a JSON:API error document naming what is wrong."""

from __future__ import annotations

import base64
import json
import re

from sqlalchemy import func, select

from tests.api.conftest import MEDIA, ApiClient, errors_of
from tests.factories import make_member, make_segment
from webapp.extensions import db
from webapp.models import Member


def test_401_without_or_with_a_bad_token(client, jsonapi_validator):
    for token in (None, "bcn_not-a-token"):
        anonymous = ApiClient(client, token, jsonapi_validator)
        response = anonymous.get("/members")
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert errors_of(response)[0]["code"] == "unauthorized"


def test_revoked_token_is_refused(app, client, jsonapi_validator):
    from webapp.models import ApiToken
    from webapp.services.tokens import create_token
    from webapp.timeutil import utcnow

    token, raw = create_token("old", "admin")
    api = ApiClient(client, raw, jsonapi_validator)
    assert api.get("/members").status_code == 200
    db.session.get(ApiToken, token.id).revoked_at = utcnow()
    db.session.commit()
    assert api.get("/members").status_code == 401


def test_403_for_a_role_below_the_route(api_as):
    support = api_as("support")
    assert support.get("/segments").status_code == 200
    response = support.post("/segments", {"data": {"type": "segments",
                                                   "attributes": {"name": "x"}}})
    assert response.status_code == 403
    assert errors_of(response)[0]["code"] == "forbidden"
    assert api_as("marketer").get("/webhooks").status_code == 403


def test_404_unknown_resource_and_unknown_route(api):
    response = api.get("/members/nobody@example.com")
    assert response.status_code == 404 and errors_of(response)[0]["code"] == "member_not_found"
    assert api.get("/segments/NOPE").status_code == 404
    assert api.get("/no-such-thing").status_code == 404


def test_405_lists_allowed_methods(api):
    response = api.request("PUT", "/segments")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"] and "POST" in response.headers["Allow"]


def test_415_without_the_jsonapi_media_type(api):
    response = api.post("/members", {"data": {"type": "members",
                                              "attributes": {"external_id": "A"}}},
                        content_type="application/json")
    assert response.status_code == 415
    response = api.post("/members", raw="external_id=A",
                        content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    response = api.post("/members", {"data": {}}, content_type=MEDIA + "; ext=bulk")
    assert response.status_code == 415
    assert db.session.scalar(select(func.count()).select_from(Member)) == 0


def test_400_malformed_json_and_documents(api):
    response = api.post("/members", raw='{"data": {"type": "members",')
    assert response.status_code == 400
    error = errors_of(response)[0]
    assert error["code"] == "invalid_json" and "line 1" in error["detail"]
    assert api.post("/members", raw="[1, 2]").status_code == 400
    missing = api.post("/members", {"meta": {}})
    assert errors_of(missing)[0]["source"]["pointer"] == "/data"
    nan = api.post("/members", raw='{"data": {"type": "members", "attributes": '
                                   '{"external_id": "N", "points": NaN}}}')
    assert nan.status_code == 400
    nul = api.post("/members", {"data": {"type": "members",
                                         "attributes": {"external_id": "a\u0000b"}}})
    assert nul.status_code == 400
    assert errors_of(nul)[0]["source"]["pointer"] == "/data/attributes/external_id"
    cursor = api.get("/members?page[cursor]=garbage!")
    assert cursor.status_code == 400
    assert errors_of(cursor)[0]["source"] == {"parameter": "page[cursor]"}
    for path, key in (("/members", "a\u0000"), ("/events", 10**30), ("/segments", "x")):
        forged = base64.urlsafe_b64encode(json.dumps(key).encode()).decode()
        assert api.get(f"{path}?page[cursor]={forged}").status_code == 400
    assert db.session.scalar(select(func.count()).select_from(Member)) == 0


def test_409_type_and_id_mismatch(api):
    make_member(external_id="M")
    response = api.post("/members", {"data": {"type": "people",
                                              "attributes": {"external_id": "B"}}})
    assert response.status_code == 409
    assert errors_of(response)[0]["source"]["pointer"] == "/data/type"
    response = api.patch("/members/M", {"data": {"type": "members", "id": "other",
                                                 "attributes": {"points": 1}}})
    assert response.status_code == 409
    assert errors_of(response)[0]["source"]["pointer"] == "/data/id"


def test_413_too_many_items_and_too_large_body(app, api):
    segment = make_segment("S", kind="static")
    app.config["LIMIT_BATCH"] = 2
    response = api.post(f"/segments/{segment.id}/relationships/members", {"data": [
        {"type": "members", "id": str(n)} for n in range(3)]})
    assert response.status_code == 413
    assert errors_of(response)[0]["source"]["pointer"] == "/data"
    app.config["API_MAX_BODY_BYTES"] = 100
    big = api.post("/members", {"data": {"type": "members", "attributes": {
        "external_id": "x" * 200}}})
    assert big.status_code == 413


def test_422_names_each_attribute(api):
    response = api.post("/segments", {"data": {"type": "segments", "attributes": {
        "kind": "sometimes", "url": "ftp://x", "colour": "red"}}})
    assert response.status_code == 422
    assert errors_of(response)[0]["source"]["pointer"] == "/data/attributes/colour"
    response = api.post("/segments", {"data": {"type": "segments", "attributes": {
        "kind": "sometimes", "url": "ftp://x"}}})
    pointers = {e["source"]["pointer"] for e in errors_of(response)}
    assert {"/data/attributes/name", "/data/attributes/kind", "/data/attributes/url"} <= pointers


def test_docs_page_needs_a_signed_in_user(client, auth):
    response = client.get("/api/v1/docs")
    assert response.status_code == 401
    assert b"Sign in" in response.data
    auth.login("support")
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for route in ("/members/{member_ref}/offers", "/segments/{segment_ref}/relationships/members",
                  "/events", "/rewards/{reward_id}/relationships/required_segments"):
        assert route in text
    assert "source.pointer" in text and "Bearer" in text and "Beacon-Signature" in text
    assert "unknown_member" in text and "already_member" in text


def test_openapi_is_public_and_describes_every_route(app, client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"].startswith("3.1")
    described = {(path, method.upper()) for path, methods in spec["paths"].items()
                 for method in methods}
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule[len("/api/v1"):])
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((path, method))
    assert routes == described
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            if op["operationId"] in ("docs", "openapi_document"):
                continue
            assert op["x-access"] == app.view_functions[f"api.{op['operationId']}"].access_level
            if method in ("post", "patch"):
                assert "requestBody" in op, (path, method)
            assert any(code < "300" for code in op["responses"]), (path, method)


def test_client_generated_ids_are_refused(api):
    response = api.post("/segments", {"data": {"type": "segments", "id": "7", "attributes": {
        "name": "Mine", "kind": "static"}}})
    assert response.status_code == 403
    assert errors_of(response)[0]["source"]["pointer"] == "/data/id"
    assert api.get("/segments").get_json()["data"] == []


def test_numbers_the_databases_cannot_hold_are_refused_with_pointers(api):
    too_big = 10**20
    cases = [
        ("/segments", {"data": {"type": "segments", "attributes": {
            "name": "x", "kind": "dynamic",
            "include": [{"field": "segment", "operator": "in", "value": [too_big]}]}}},
         "/data/attributes/include/0/value/0"),
        ("/members/search", {"data": {"type": "member-searches", "attributes": {
            "include": [{"field": "segment", "operator": "in", "value": [too_big]}]}}},
         "/data/attributes/include/0/value/0"),
        ("/webhooks", {"data": {"type": "webhooks", "attributes": {
            "url": "https://example.com/x", "event_filter": {"segments": [too_big]}}}},
         "/data/attributes/event_filter/segments/0"),
    ]
    for path, body, pointer in cases:
        response = api.post(path, body)
        assert response.status_code == 422, (path, response.get_json())
        assert errors_of(response)[0]["source"]["pointer"] == pointer
    infinite = api.post("/members", raw='{"data": {"type": "members", "attributes": '
                                        '{"external_id": "I", "custom_fields": {"x": 1e999}}}}')
    assert infinite.status_code == 422
    assert errors_of(infinite)[0]["source"]["pointer"] == "/data/attributes/custom_fields/x"
    assert db.session.scalar(select(func.count()).select_from(Member)) == 0


def test_deeply_nested_documents_are_refused(api):
    deep = '{"data": {"type": "members", "attributes": {"external_id": "D", "custom_fields": ' \
        + '{"a": ' * 900 + "1" + "}" * 900 + "}}}"
    response = api.post("/members", raw=deep)
    assert response.status_code == 400
    assert errors_of(response)[0]["code"] in ("too_deep", "invalid_json")


def test_revoked_token_is_refused_at_once_even_after_a_cached_success(client, app):
    from webapp.extensions import db as database
    from webapp.models import ApiToken as Token
    from webapp.services.tokens import create_token
    from webapp.timeutil import utcnow as now

    token, raw = create_token("cached", "admin")
    headers = {"Authorization": f"Bearer {raw}"}
    assert client.get("/api/v1/segments", headers=headers).status_code == 200
    database.session.get(Token, token.id).revoked_at = now()
    database.session.commit()
    assert client.get("/api/v1/segments", headers=headers).status_code == 401
