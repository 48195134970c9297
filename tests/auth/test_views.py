"""Sign-in, sign-out, throttling, safe redirects, cookies and security headers."""

from __future__ import annotations

from tests.factories import PASSWORD, make_user


def test_login_page_renders(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert b"Sign in" in response.data


def test_login_and_logout(client):
    make_user("support", email="s@example.test")
    response = client.post("/login", data={"email": "S@Example.test", "password": PASSWORD})
    assert response.status_code == 303
    assert response.location == "/"
    assert client.get("/").status_code == 200
    client.post("/logout")
    assert client.get("/").status_code == 302


def test_wrong_password_is_422_with_message(client):
    make_user("support", email="s@example.test")
    response = client.post("/login", data={"email": "s@example.test", "password": "nope"})
    assert response.status_code == 422
    assert b"Wrong email or password." in response.data


def test_deactivated_user_cannot_sign_in(client):
    make_user("support", email="s@example.test", active=False)
    response = client.post("/login", data={"email": "s@example.test", "password": PASSWORD})
    assert response.status_code == 422
    assert b"deactivated" in response.data


def test_next_redirect_is_local_only(client):
    make_user("admin", email="a@example.test")
    for target, expected in (("/admin/users", "/admin/users"), ("https://evil.example/", "/"),
                             ("//evil.example/x", "/"), ("/\\evil.example", "/")):
        client.post("/logout")
        response = client.post("/login", data={"email": "a@example.test", "password": PASSWORD,
                                               "next": target})
        assert response.status_code == 303
        assert response.location == expected, target


def test_anonymous_is_sent_to_login_with_next(client):
    response = client.get("/admin/users")
    assert response.status_code == 302
    assert response.location.startswith("/login?next=")


def test_security_headers_and_vary(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "HX-Request" in response.headers["Vary"]


def test_session_cookie_is_httponly_and_samesite(client):
    make_user("support", email="s@example.test")
    response = client.post("/login", data={"email": "s@example.test", "password": PASSWORD})
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_csrf_is_required_when_enabled(app, client):
    app.config["WTF_CSRF_ENABLED"] = True
    make_user("support", email="s@example.test")
    response = client.post("/login", data={"email": "s@example.test", "password": PASSWORD})
    assert response.status_code in (400, 422)
    assert b"Wrong" not in response.data


def test_errors_are_full_pages_and_fragments(client, auth):
    auth.login("support")
    page = client.get("/admin/users")
    assert page.status_code == 403 and b"<html" in page.data and b"Not allowed" in page.data
    fragment = client.get("/admin/users", headers={"HX-Request": "true"})
    assert fragment.status_code == 403 and b"<html" not in fragment.data
    missing = client.get("/no/such/page")
    assert missing.status_code == 404 and b"Not found" in missing.data
