"""In Chromium: turning on two-factor sign-in, then signing in with a code from the app."""

from __future__ import annotations

import time

import pyotp
import pytest

from tests.browser.test_accessibility import axe_violations, blocking
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(("width", "height"), [(1440, 900), (390, 844)])
def test_enrol_then_sign_in_with_a_code(page, login_as, width, height):
    page.set_viewport_size({"width": width, "height": height})
    user = login_as("support", email=f"phone{width}@example.test")
    page.goto("/account/two-factor")
    qr = page.locator(".qr svg")
    assert qr.is_visible()
    box = qr.bounding_box()
    assert box["width"] >= 120 and box["x"] + box["width"] <= width  # whole code on screen
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    assert blocking(axe_violations(page)) == []

    page.fill("input[name=code]", "000000" if pyotp.TOTP(secret).now() != "000000"
              else "111111")
    page.click("button:has-text('Turn on two-factor sign-in')")
    assert page.get_by_text("That code does not match").is_visible()

    page.fill("input[name=code]", pyotp.TOTP(secret).now())
    page.click("button:has-text('Turn on two-factor sign-in')")
    assert page.get_by_text("Two-factor sign-in is on.").is_visible()
    codes = page.locator(".code-list li")
    assert codes.count() == 10
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    if width < 800:  # the sign-out button sits in the collapsible navigation on phones
        page.set_viewport_size({"width": 1440, "height": 900})
    page.click("button:has-text('Sign out')")
    page.set_viewport_size({"width": width, "height": height})
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/login/code")
    assert page.get_by_text("Enter the 6-digit code your authenticator app shows").is_visible()
    assert blocking(axe_violations(page)) == []

    # The next time step: the enrolment code's own step cannot be used again.
    page.fill("input[name=code]", pyotp.TOTP(secret).at(time.time() + 30))
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: url.endswith("/"))
    assert page.locator("h1").first.is_visible()
    assert "/login" not in page.url
