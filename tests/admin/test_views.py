"""Admin pages: users, API tokens, audit log."""

from __future__ import annotations

from sqlalchemy import select

from tests.factories import make_user
from webapp.extensions import db
from webapp.models import ApiToken, User


def test_admin_creates_a_user(client, auth):
    auth.login("admin")
    response = client.post("/admin/users", data={"email": "new@example.test", "name": "New",
                                                 "role": "support",
                                                 "password": "a long enough password"})
    assert response.status_code == 303
    assert db.session.scalar(select(User).where(User.email == "new@example.test")).role == \
        "support"


def test_invalid_user_form_is_422_with_message(client, auth):
    auth.login("admin")
    response = client.post("/admin/users", data={"email": "not-an-email", "role": "support",
                                                 "password": "short"})
    assert response.status_code == 422
    assert b"Email must be an email address" in response.data
    assert b"Initial password must be at least 10 characters." in response.data


def test_duplicate_user_is_refused(client, auth):
    auth.login("admin")
    make_user("support", email="taken@example.test")
    response = client.post("/admin/users", data={"email": "taken@example.test",
                                                 "role": "support",
                                                 "password": "a long enough password"})
    assert response.status_code == 422 and b"already exists" in response.data


def test_change_role_and_deactivate(client, auth):
    auth.login("admin")
    other = make_user("support", email="other@example.test")
    client.post(f"/admin/users/{other.id}", data={"role": "marketer"})
    db.session.refresh(other)
    assert other.role == "marketer" and other.active is False


def test_admin_cannot_demote_themself(client, auth):
    me = auth.login("admin")
    response = client.post(f"/admin/users/{me.id}", data={"role": "support", "active": "y"},
                           follow_redirects=True)
    assert b"cannot remove your own admin role" in response.data
    db.session.refresh(me)
    assert me.role == "admin"


def test_token_is_shown_once_and_can_be_revoked(client, auth):
    auth.login("admin")
    response = client.post("/admin/tokens", data={"name": "CRM", "role": "marketer"})
    assert response.status_code == 303
    shown = client.get("/admin/tokens")
    token = db.session.scalar(select(ApiToken))
    assert token.prefix.encode() in shown.data and b"will not be shown again" in shown.data
    again = client.get("/admin/tokens")
    assert b"will not be shown again" not in again.data
    assert len(db.session.scalars(select(ApiToken)).all()) == 1
    client.post(f"/admin/tokens/{token.id}/revoke")
    db.session.refresh(token)
    assert token.revoked_at is not None


def test_audit_log_lists_changes(client, auth):
    auth.login("admin")
    client.post("/admin/tokens", data={"name": "CRM", "role": "marketer"})
    page = client.get("/admin/audit")
    assert b"Created API token CRM" in page.data
