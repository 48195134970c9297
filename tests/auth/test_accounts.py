"""Password-reset links made by admins, TOTP two-factor sign-in and REQUIRE_ADMIN_TOTP."""

from __future__ import annotations

import re
import time
import types
from datetime import timedelta
from html import unescape

import pyotp
import pytest
from sqlalchemy import select

from tests.factories import PASSWORD, make_user
from webapp import config, login_throttle
from webapp.extensions import db
from webapp.models import AuditEntry, PasswordReset, RecoveryCode, User
from webapp.services import accounts
from webapp.timeutil import utcnow

NEW_PASSWORD = "a brand new passphrase"


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


def sign_in(client, email: str, password: str = PASSWORD, address: str = "198.51.100.7"):
    return client.post("/login", data={"email": email, "password": password},
                       environ_base={"REMOTE_ADDR": address})


def send_code(client, code: str, address: str = "198.51.100.7"):
    return client.post("/login/code", data={"code": code}, environ_base={"REMOTE_ADDR": address})


def actions() -> list[str]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def fresh(user: User) -> User:
    db.session.expire_all()
    return db.session.get(User, user.id)


@pytest.fixture
def otp_clock(monkeypatch):
    """The clock TOTP codes are checked against, moved by hand (30 s per time step)."""
    now = [time.time()]
    monkeypatch.setattr(accounts, "time", types.SimpleNamespace(time=lambda: now[0]))

    class Clock:
        def code(self, secret: str) -> str:
            return pyotp.TOTP(secret).at(now[0])

        def advance(self, seconds: float) -> None:
            now[0] += seconds

    return Clock()


# --- password-reset links -----------------------------------------------------------------

def make_link(client, auth, user: User) -> str:
    auth.login("admin")
    response = client.post(f"/admin/users/{user.id}/reset-link")
    assert response.status_code == 303
    page = text(client.get("/admin/users"))
    assert "copy it now, it will not be shown again" in page
    url = re.search(r"(http://localhost/reset/[\w-]+)", page).group(1)
    assert "it will not be shown again" not in text(client.get("/admin/users"))  # shown once
    auth.logout()
    return url.removeprefix("http://localhost")


def test_reset_link_sets_a_new_password_once_and_ends_sessions(app, client, auth):
    user = make_user("support", email="agent@example.test")
    other_browser = app.test_client()
    assert sign_in(other_browser, user.email).status_code == 303
    path = make_link(client, auth, user)
    raw = path.rsplit("/", 1)[1]
    stored = db.session.scalar(select(PasswordReset))
    assert stored.token_hash != raw and raw not in stored.token_hash  # only the hash is kept
    assert stored.expires_at - stored.created_at == timedelta(hours=24)

    page = client.get(path)
    assert page.status_code == 200 and "Set a new password" in text(page)
    assert "agent@example.test" in text(page)
    mismatch = client.post(path, data={"new": NEW_PASSWORD, "confirm": "something else"})
    assert mismatch.status_code == 422 and "The two new passwords differ." in text(mismatch)
    short = client.post(path, data={"new": "short", "confirm": "short"})
    assert short.status_code == 422 and "10 to 200 characters" in text(short)

    done = client.post(path, data={"new": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 303 and done.location == "/login"
    assert "Your new password is set" in text(client.get("/login"))
    assert other_browser.get("/").status_code == 302  # the user's other session ended
    assert sign_in(client, user.email).status_code == 422  # the old password no longer works
    assert sign_in(client, user.email, NEW_PASSWORD).status_code == 303
    client.post("/logout")

    again = client.get(path)
    assert again.status_code == 404 and "already been used" in text(again)
    reuse = client.post(path, data={"new": "yet another passphrase",
                                    "confirm": "yet another passphrase"})
    assert reuse.status_code == 404 and "already been used" in text(reuse)
    assert sign_in(client, user.email, NEW_PASSWORD).status_code == 303
    assert actions()[-2:] == ["user.reset_link", "user.password_reset"]


def test_reset_link_expires(app, client, auth):
    user = make_user("marketer", email="m@example.test")
    path = make_link(client, auth, user)
    reset = db.session.scalar(select(PasswordReset))
    reset.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    response = client.post(path, data={"new": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 404 and "has expired" in text(response)
    assert sign_in(client, user.email, NEW_PASSWORD).status_code == 422


def test_reset_link_lifetime_is_configurable(app, client, auth):
    app.config["PASSWORD_RESET_HOURS"] = 2
    user = make_user("support", email="s@example.test")
    auth.login("admin")
    client.post(f"/admin/users/{user.id}/reset-link")
    assert "It works once, for 2 hours" in text(client.get("/admin/users"))


def test_a_wrong_or_replaced_token_is_refused_with_a_message(app, client, auth):
    user = make_user("support", email="s@example.test")
    wrong = client.get("/reset/not-a-real-token")
    assert wrong.status_code == 404 and "This password-reset link is not valid" in text(wrong)
    first = make_link(client, auth, user)
    second = make_link(client, auth, user)
    replaced = client.get(first)
    assert replaced.status_code == 404 and "replaced by a newer one" in text(replaced)
    assert client.get(second).status_code == 200


def test_only_admins_make_reset_links(app, client, auth):
    target = make_user("support", email="s@example.test")
    auth.login("marketer")
    assert client.post(f"/admin/users/{target.id}/reset-link").status_code == 403
    assert db.session.scalar(select(PasswordReset)) is None


def test_no_reset_link_for_a_deactivated_user(app, client, auth):
    target = make_user("support", email="gone@example.test", active=False)
    auth.login("admin")
    response = client.post(f"/admin/users/{target.id}/reset-link", follow_redirects=True)
    assert "gone@example.test is deactivated: activate the account first." in text(response)
    assert db.session.scalar(select(PasswordReset)) is None


# --- TOTP two-factor sign-in ----------------------------------------------------------------

def enrol(client, user: User, clock) -> tuple[str, list[str]]:
    """Turn TOTP on through the pages; returns the secret and the recovery codes shown."""
    page = text(client.get("/account/two-factor"))
    assert "<svg" in page and "QR code of the key" in page
    secret = fresh(user).totp_secret
    grouped = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    assert grouped in page
    response = client.post("/account/two-factor", data={"code": clock.code(secret)})
    assert response.status_code == 303
    shown = text(client.get("/account/two-factor"))
    codes = re.findall(r"<li>([a-z0-9]{5}-[a-z0-9]{5})</li>", shown)
    assert len(codes) == 10 and "will not be shown again" in shown
    assert "will not be shown again" not in text(client.get("/account/two-factor"))
    return secret, codes


def test_enrolment_refuses_a_wrong_code(app, client, auth, otp_clock):
    user = auth.login("support")
    client.get("/account/two-factor")
    secret = fresh(user).totp_secret
    wrong = "000000" if otp_clock.code(secret) != "000000" else "111111"
    response = client.post("/account/two-factor", data={"code": wrong})
    assert response.status_code == 422
    assert "That code does not match" in text(response)
    empty = client.post("/account/two-factor", data={"code": ""})
    assert empty.status_code == 422 and "Enter the 6-digit code" in text(empty)
    assert not fresh(user).totp_enabled
    assert fresh(user).totp_secret == secret  # the same key stays on offer


def test_sign_in_asks_for_the_code_and_cannot_be_skipped(app, client, auth, otp_clock):
    user = auth.login("support", email="agent@example.test")
    secret, _ = enrol(client, user, otp_clock)
    stored = db.session.scalars(select(RecoveryCode.code_hash)).all()
    assert len(stored) == 10 and all(len(h) == 64 for h in stored)
    assert "user.totp_on" in actions()
    client.post("/logout")

    response = sign_in(client, user.email)
    assert response.status_code == 303 and response.location == "/login/code"
    assert "Enter the 6-digit code" in text(client.get("/login/code"))
    skipped = client.get("/")  # the password alone signs nobody in
    assert skipped.status_code == 302 and skipped.location.startswith("/login")

    otp_clock.advance(30)
    code = otp_clock.code(secret)
    wrong = "123456" if code != "123456" else "654321"
    refused = send_code(client, wrong)
    assert refused.status_code == 422 and "Wrong or already used code" in text(refused)
    accepted = send_code(client, code)
    assert accepted.status_code == 303 and accepted.location == "/"
    assert client.get("/").status_code == 200

    client.post("/logout")
    sign_in(client, user.email)
    replay = send_code(client, code)  # the same code, still inside its window
    assert replay.status_code == 422 and "already used" in text(replay)
    otp_clock.advance(30)
    assert send_code(client, otp_clock.code(secret)).status_code == 303


def test_codes_one_step_either_side_are_accepted(app, client, auth, otp_clock):
    user = auth.login("support")
    secret, _ = enrol(client, user, otp_clock)
    client.post("/logout")
    otp_clock.advance(90)
    sign_in(client, user.email)
    slow_phone = pyotp.TOTP(secret).at(accounts.time.time() - 30)
    assert send_code(client, slow_phone).status_code == 303
    client.post("/logout")
    otp_clock.advance(120)
    sign_in(client, user.email)
    too_old = pyotp.TOTP(secret).at(accounts.time.time() - 60)
    assert send_code(client, too_old).status_code == 422


def test_wrong_codes_are_throttled_like_wrong_passwords(app, client, auth, otp_clock,
                                                        monkeypatch):
    now = utcnow()
    monkeypatch.setattr(login_throttle, "utcnow", lambda: now)
    app.config["LOGIN_ADDRESS_FREE_FAILURES"] = 3
    user = auth.login("support", email="agent@example.test")
    secret, _ = enrol(client, user, otp_clock)
    client.post("/logout")
    sign_in(client, user.email, address="203.0.113.9")
    otp_clock.advance(30)
    good = otp_clock.code(secret)
    bad = "000000" if good != "000000" else "999999"
    for _ in range(4):  # three free failures, then the fourth starts a wait
        assert send_code(client, bad, "203.0.113.9").status_code == 422
    blocked = send_code(client, good, "203.0.113.9")
    assert blocked.status_code == 422
    assert "Too many failed sign-ins from your network. Try again in 1 second." in text(blocked)
    assert client.get("/").status_code == 302


def test_recovery_code_works_once(app, client, auth, otp_clock):
    user = auth.login("marketer", email="m@example.test")
    _, codes = enrol(client, user, otp_clock)
    client.post("/logout")
    sign_in(client, user.email)
    assert send_code(client, codes[0].upper()).status_code == 303  # case and dash forgiven
    assert "9 unused recovery codes left" in text(client.get("/account/two-factor"))
    client.post("/logout")
    sign_in(client, user.email)
    again = send_code(client, codes[0])
    assert again.status_code == 422 and "Wrong or already used code" in text(again)
    assert send_code(client, codes[1].replace("-", "")).status_code == 303


def test_wrong_answers_to_turn_off_are_throttled(app, client, auth, otp_clock, monkeypatch):
    now = utcnow()
    monkeypatch.setattr(login_throttle, "utcnow", lambda: now)
    app.config["LOGIN_ADDRESS_FREE_FAILURES"] = 2
    user = auth.login("support")
    enrol(client, user, otp_clock)
    for _ in range(3):
        assert client.post("/account/two-factor/off", data={"proof": "guess"}).status_code == 422
    blocked = client.post("/account/two-factor/off", data={"proof": PASSWORD})
    assert blocked.status_code == 422
    assert "Too many wrong answers from your network. Try again in 1 second." in text(blocked)
    assert fresh(user).totp_enabled


def test_required_enrolment_redirects_htmx_requests_whole(app, client, auth):
    app.config["REQUIRE_ADMIN_TOTP"] = True
    make_user("admin", email="boss@example.test")
    sign_in(client, "boss@example.test")
    response = client.get("/segments/", headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == "/account/two-factor"


def test_turning_off_needs_the_password_or_a_code(app, client, auth, otp_clock):
    user = auth.login("support")
    secret, _ = enrol(client, user, otp_clock)
    refused = client.post("/account/two-factor/off", data={"proof": "not my password"})
    assert refused.status_code == 422
    assert "neither your password nor a valid code" in text(refused)
    assert fresh(user).totp_enabled
    done = client.post("/account/two-factor/off", data={"proof": PASSWORD})
    assert done.status_code == 303
    assert "Two-factor sign-in is off." in text(client.get("/account/two-factor"))
    assert not fresh(user).totp_enabled
    assert fresh(user).totp_secret != secret  # enrolling again offers a new key
    assert db.session.scalar(select(RecoveryCode)) is None
    assert actions()[-1] == "user.totp_off"
    client.post("/logout")
    assert sign_in(client, user.email).location == "/"  # no code asked any more

    enrol(client, user, otp_clock)
    otp_clock.advance(30)
    code = otp_clock.code(fresh(user).totp_secret)
    assert client.post("/account/two-factor/off", data={"proof": code}).status_code == 303
    assert not fresh(user).totp_enabled


def test_the_code_step_expires(app, client, auth, otp_clock, monkeypatch):
    from webapp.auth import views

    user = auth.login("support")
    secret, _ = enrol(client, user, otp_clock)
    client.post("/logout")
    sign_in(client, user.email)
    monkeypatch.setattr(views, "PENDING_SECONDS", -1)
    otp_clock.advance(30)
    response = send_code(client, otp_clock.code(secret))
    assert response.status_code == 303 and response.location == "/login"
    assert "Sign in with your email and password first" in text(client.get("/login"))
    assert client.get("/").status_code == 302


# --- REQUIRE_ADMIN_TOTP ---------------------------------------------------------------------

def test_required_admin_totp_sends_admins_to_enrolment(app, client, auth, otp_clock):
    app.config["REQUIRE_ADMIN_TOTP"] = True
    admin = make_user("admin", email="boss@example.test")
    response = sign_in(client, admin.email)
    assert response.status_code == 303 and response.location == "/account/two-factor"
    for path in ("/", "/admin/users", "/segments/"):
        blocked = client.get(path)
        assert blocked.status_code == 303 and blocked.location == "/account/two-factor", path
    assert client.post(f"/admin/users/{admin.id}/reset-link").status_code == 303
    assert db.session.scalar(select(PasswordReset)) is None
    page = text(client.get("/account/two-factor"))
    assert "Administrators must turn on two-factor sign-in" in page
    enrol(client, admin, otp_clock)
    assert client.get("/admin/users").status_code == 200
    page = text(client.get("/account/two-factor"))
    assert "Administrators must keep two-factor sign-in on." in page
    kept = client.post("/account/two-factor/off", data={"proof": PASSWORD})
    assert kept.status_code == 303 and fresh(admin).totp_enabled


def test_required_admin_totp_leaves_other_roles_alone(app, client, auth):
    app.config["REQUIRE_ADMIN_TOTP"] = True
    auth.login("support")
    assert client.get("/").status_code == 200


def test_the_setting_is_read_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SECRET_KEY", "x")
    assert config.load(str(tmp_path))["REQUIRE_ADMIN_TOTP"] is False
    assert config.load(str(tmp_path))["PASSWORD_RESET_HOURS"] == 24
    monkeypatch.setenv("REQUIRE_ADMIN_TOTP", "1")
    monkeypatch.setenv("PASSWORD_RESET_HOURS", "48")
    loaded = config.load(str(tmp_path))
    assert loaded["REQUIRE_ADMIN_TOTP"] is True and loaded["PASSWORD_RESET_HOURS"] == 48
    monkeypatch.setenv("REQUIRE_ADMIN_TOTP", "maybe")
    with pytest.raises(RuntimeError, match="REQUIRE_ADMIN_TOTP must be 1 or 0"):
        config.load(str(tmp_path))


def test_an_admin_turns_off_a_users_two_factor_sign_in(app, client, auth, otp_clock):
    user = auth.login("support", email="lost.phone@example.test")
    enrol(client, user, otp_clock)
    client.post("/logout")
    before = fresh(user).last_login_at
    sign_in(client, user.email)  # the password step alone is not a sign-in
    assert fresh(user).last_login_at == before
    admin_browser = app.test_client()
    assert sign_in(admin_browser, make_user("admin", email="boss@example.test").email) \
        .location == "/"
    page = text(admin_browser.get("/admin/users"))
    assert "Turn off two-factor sign-in for lost.phone@example.test" in page
    response = admin_browser.post(f"/admin/users/{user.id}/two-factor-off",
                                  follow_redirects=True)
    assert "Two-factor sign-in is off for lost.phone@example.test" in text(response)
    assert not fresh(user).totp_enabled
    assert actions()[-1] == "user.totp_off"
    again = admin_browser.post(f"/admin/users/{user.id}/two-factor-off", follow_redirects=True)
    assert "already off for lost.phone@example.test" in text(again)
    assert sign_in(client, user.email).location == "/"
