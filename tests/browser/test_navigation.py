"""Each role signs in, sees the navigation it may use, and signs out."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

ADMIN_ONLY = ("Users", "API tokens", "Audit log")


@pytest.mark.parametrize("role", ("admin", "marketer", "support"))
def test_role_sees_its_navigation_and_signs_out(page, login_as, role):
    login_as(role)
    nav = page.locator("aside.sidebar nav")
    assert nav.get_by_role("link", name="Overview").is_visible()
    for label in ADMIN_ONLY:
        assert (nav.get_by_role("link", name=label).count() == 1) == (role == "admin"), label
    assert page.locator(".whoami .badge").inner_text() == role
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    assert page.get_by_text("You have been signed out.").is_visible()


def test_wrong_password_shows_message(page, live_server):
    page.goto("/login")
    page.fill("input[name=email]", "nobody@example.test")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    assert page.get_by_text("Wrong email or password.").is_visible()
