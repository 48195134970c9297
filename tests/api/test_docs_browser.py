"""The API reference page in a real browser: reachable from the navigation, styled, CSP-clean."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_support_reads_the_api_reference(page, login_as):  # noqa: F811
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    login_as("support")
    page.locator("aside.sidebar nav").get_by_role("link", name="API reference").click()
    page.wait_for_url("**/api/v1/docs")
    assert page.get_by_role("heading", name="API reference", level=1).is_visible()
    page.locator(".api-toc").get_by_role(
        "link", name="POST /segments/{segment_ref}/relationships/members").click()
    section = page.locator("#segment_members_add")
    assert section.get_by_text("Add members to a static segment").is_visible()
    assert "write" in section.locator(".api-op-head .badge").inner_text()
    colour = section.locator(".api-method").evaluate(
        "element => getComputedStyle(element).backgroundColor")
    assert colour == "rgb(36, 115, 71)"  # static/css/api.css loaded under the CSP
    assert not [m for m in console if "Content Security Policy" in m]


def test_the_coming_from_page_is_reachable_and_links_each_beacon_request(page, login_as):
    login_as("support")
    page.goto(page.url.split("/", 3)[0] + "//" + page.url.split("/")[2] + "/api/v1/docs")
    page.locator(".api-toc").get_by_role(
        "link", name="Coming from Hatch / CleverTap / Village / Monterosa").click()
    village = page.locator("#coming-from table").nth(2)
    assert village.is_visible()
    village.get_by_role("link", name="GET /segments/{segment_ref}/overrides").click()
    page.wait_for_url("**/api/v1/docs#segment_override_list")
    assert page.locator("#segment_override_list").get_by_text(
        "List a segment's overrides").is_visible()
