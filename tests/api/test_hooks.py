"""What the app-wide hooks do to API requests: bearer requests leave the session cookie alone
(people keep their sessions), and every response carries the security headers."""

from __future__ import annotations

from flask import g

from tests.api.conftest import ApiClient, errors_of


def _cookie_headers(response) -> list[str]:
    return response.headers.getlist("Set-Cookie")


def test_bearer_requests_neither_read_nor_write_the_session(client, auth, token_for,
                                                            jsonapi_validator):
    auth.login("admin")  # the client now carries a signed-in session cookie
    api = ApiClient(client, token_for("support"), jsonapi_validator)
    response = api.get("/segments")
    assert response.status_code == 200
    assert _cookie_headers(response) == []
    assert "Cookie" not in response.headers.get("Vary", "")
    # The token's role decides, not the signed-in admin's: support may not write.
    refused = api.post("/segments", {"data": {"type": "segments", "attributes": {
        "name": "x", "kind": "static"}}})
    assert refused.status_code == 403


def test_a_bad_token_is_not_rescued_by_a_session(client, auth, jsonapi_validator):
    auth.login("admin")
    response = ApiClient(client, "bcn_not-a-token", jsonapi_validator).get("/segments")
    assert response.status_code == 401
    assert errors_of(response)[0]["code"] == "unauthorized"
    assert _cookie_headers(response) == []


def test_signed_in_people_still_use_the_api_and_the_dashboard(client, auth,
                                                               jsonapi_validator):
    auth.login("support")
    assert ApiClient(client, None, jsonapi_validator).get("/segments").status_code == 200
    page = client.get("/segments/")
    assert page.status_code == 200
    assert "Cookie" in page.headers.get("Vary", "")
    auth.logout()
    assert client.get("/segments/").status_code == 302
    assert ApiClient(client, None, jsonapi_validator).get("/segments").status_code == 401


def test_sessions_follow_the_secret_key(app, client, auth):
    def page() -> int:
        g.pop("_login_user", None)  # the test app context outlives requests: reload the user
        return client.get("/segments/").status_code

    auth.login("support")
    assert page() == 200
    old = app.secret_key
    app.secret_key = "rotated-" + old
    assert page() == 302  # the cookie is signed with a key no longer valid
    app.config["SECRET_KEY_FALLBACKS"] = [old]
    assert page() == 200  # the old key is accepted again


def test_every_api_response_carries_the_security_headers(api):
    for response in (api.get("/segments"), api.get("/segments/nope")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers.getlist("Vary") == ["HX-Request"]


def test_security_headers_keep_what_a_view_set():
    from flask import Response

    from webapp import _security_headers

    response = Response("x", headers={"Vary": "Cookie", "X-Frame-Options": "SAMEORIGIN"})
    _security_headers(response)
    assert set(response.vary) == {"Cookie", "HX-Request"}
    assert response.headers.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
