"""Sessions end on the server: a session cookie copied before a sign-out, a password change or
a deactivation does not work after it."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.factories import PASSWORD, make_user
from webapp.extensions import db
from webapp.models import AuditEntry, Segment, User
from webapp.passwords import verify_password

NEW_PASSWORD = "a much newer passphrase"


def sign_in(app, email: str, password: str = PASSWORD):
    client = app.test_client()
    response = client.post("/login", data={"email": email, "password": password})
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


def copy_of(app, client):
    """A second client holding a copy of the first one's session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def create_segment(client, name: str):
    return client.post("/segments/new", data={"name": name, "kind": "static"})


def segment_names() -> list[str]:
    return list(db.session.scalars(select(Segment.name).order_by(Segment.name)))


def test_a_copied_cookie_works_until_sign_out_and_not_after(app):
    make_user("marketer", email="m@example.test")
    browser = sign_in(app, "m@example.test")
    thief = copy_of(app, browser)
    assert create_segment(thief, "Before").status_code == 303  # the copy is a real session

    browser.post("/logout")
    refused = create_segment(thief, "After sign-out")

    assert refused.status_code == 302 and refused.location.startswith("/login")
    assert segment_names() == ["Before"]
    assert thief.get("/segments/").status_code == 302


def test_signing_out_ends_the_users_sessions_in_other_browsers_too(app):
    make_user("marketer", email="m@example.test")
    laptop = sign_in(app, "m@example.test")
    phone = sign_in(app, "m@example.test")
    laptop.post("/logout")
    assert phone.get("/segments/").status_code == 302
    again = sign_in(app, "m@example.test")  # signing in again starts a new, working session
    assert create_segment(again, "Fresh").status_code == 303
    assert segment_names() == ["Fresh"]


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(app):
    make_user("marketer", email="m@example.test")
    browser = sign_in(app, "m@example.test")
    thief = copy_of(app, browser)
    other = sign_in(app, "m@example.test")

    page = browser.get("/account/password")
    assert page.status_code == 200 and "Change password" in page.get_data(as_text=True)
    changed = browser.post("/account/password", data={
        "current": PASSWORD, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert changed.status_code == 303
    assert "You were signed out everywhere else" in browser.get(
        changed.location).get_data(as_text=True)

    assert create_segment(thief, "Stolen").status_code == 302
    assert other.get("/segments/").status_code == 302
    assert create_segment(browser, "Mine").status_code == 303
    assert segment_names() == ["Mine"]
    user = db.session.scalar(select(User).where(User.email == "m@example.test"))
    db.session.refresh(user)
    assert verify_password(user.password_hash, NEW_PASSWORD)
    sign_in(app, "m@example.test", NEW_PASSWORD)
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "user.password"))
    assert audit is not None and NEW_PASSWORD not in (audit.summary or "")


def test_a_password_change_is_refused_with_reasons(app):
    make_user("support", email="s@example.test")
    browser = sign_in(app, "s@example.test")
    cases = [
        ({"current": "wrong password", "new": NEW_PASSWORD, "confirm": NEW_PASSWORD},
         "The current password is wrong."),
        ({"current": PASSWORD, "new": "short", "confirm": "short"}, "10 to 200 characters"),
        ({"current": PASSWORD, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD + "x"},
         "The two new passwords differ."),
        ({"current": PASSWORD, "new": PASSWORD, "confirm": PASSWORD},
         "The new password is the same as the current one."),
    ]
    for data, message in cases:
        response = browser.post("/account/password", data=data)
        assert response.status_code == 422, message
        assert message in response.get_data(as_text=True)
    assert browser.get("/segments/").status_code == 200  # refused changes end nothing
    assert app.test_client().get("/account/password").status_code == 302


def test_deactivating_a_user_ends_their_sessions(app):
    make_user("admin", email="a@example.test")
    marketer = make_user("marketer", email="m@example.test")
    admin = sign_in(app, "a@example.test")
    browser = sign_in(app, "m@example.test")
    thief = copy_of(app, browser)

    response = admin.post(f"/admin/users/{marketer.id}", data={"role": "marketer"})
    assert response.status_code == 303

    for client in (browser, thief):
        refused = create_segment(client, "Disabled")
        assert refused.status_code == 302 and refused.location.startswith("/login")
    assert db.session.scalar(select(func.count()).select_from(Segment)) == 0
    # Activated again, the old cookies stay dead: the person signs in anew.
    admin.post(f"/admin/users/{marketer.id}", data={"role": "marketer", "active": "y"})
    assert create_segment(thief, "Revived").status_code == 302
    assert create_segment(sign_in(app, "m@example.test"), "New").status_code == 303
