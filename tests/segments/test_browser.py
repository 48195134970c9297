"""A marketer builds a segment in the browser: criteria rows via htmx, live preview, save, list."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.factories import make_member

pytestmark = pytest.mark.browser


@pytest.fixture
def people(app):
    """Eight members: who matches is easy to count by hand."""
    make_member(tier="gold", points=900)
    make_member(tier="gold", points=800, badges=["banned"])
    make_member(tier="gold", points=100)
    make_member(tier="platinum", points=2000)
    make_member(tier="platinum", points=50, badges=["banned"])
    make_member(tier="silver", points=950)
    make_member(tier="bronze", points=10)
    make_member(tier="bronze", points=600)


def _count(page):
    return expect(page.locator("#preview-count"))


def _row_response(response) -> bool:
    return "/segments/builder/row" in response.url


def settle(page) -> None:
    """Wait until htmx has swapped and settled what it received."""
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")


def choose(page, name: str, value: str) -> None:
    """Pick an option in a builder select and wait for the row to re-render."""
    with page.expect_response(_row_response):
        page.select_option(f"select[name='{name}']", value)
    settle(page)


def type_value(page, name: str, value: str) -> None:
    """Type into a builder input and leave it (the row is validated on change)."""
    with page.expect_response(_row_response):
        page.fill(f"input[name='{name}']", value)
        page.press(f"input[name='{name}']", "Tab")
    settle(page)


def add_row(page, button: str, row_id: str) -> None:
    """Press an add-criterion button and wait for the new row."""
    page.get_by_role("button", name=button).click()
    page.locator(f"#row-{row_id}").wait_for()
    settle(page)


def test_marketer_builds_a_segment_with_live_preview(page, login_as, people):
    login_as("marketer")
    page.goto("/segments/")
    page.get_by_role("link", name="+ New segment").click()
    page.wait_for_url("**/segments/new")
    page.fill("input[name=name]", "Rich top tiers")
    _count(page).to_have_attribute("data-count", "8")  # no criteria yet: everyone
    expect(page.locator(".criterion-row")).to_have_count(0)  # no stray empty row

    add_row(page, "+ Add include criterion", "include-0")
    # the new row is marked unfinished where it is, and the preview says it leaves it out
    expect(page.locator("#row-include-0 .row-unfinished")).to_contain_text("choose a field")
    expect(page.locator("#preview-panel")).to_contain_text("Leaving out 1 unfinished criterion")
    expect(page.locator("#preview-panel")).to_contain_text("Include criterion 1: choose a field")
    choose(page, "include-0-field", "tier")
    choose(page, "include-0-operator", "in")
    type_value(page, "include-0-value", "gold, platinum")
    _count(page).to_have_attribute("data-count", "5")
    expect(page.locator("#row-include-0 .tag")).to_have_count(2)

    add_row(page, "+ Add include criterion", "include-1")
    choose(page, "include-1-field", "points")
    choose(page, "include-1-operator", ">=")
    type_value(page, "include-1-value", "500")
    _count(page).to_have_attribute("data-count", "3")

    add_row(page, "+ Add exclude criterion", "exclude-2")
    choose(page, "exclude-2-field", "badges")
    choose(page, "exclude-2-operator", "contains")
    type_value(page, "exclude-2-value", "banned")
    _count(page).to_have_attribute("data-count", "2")
    expect(page.locator("#preview-panel")).to_contain_text("except members with badge banned")
    previewed = page.locator("#preview-count").get_attribute("data-count")
    assert previewed == "2"

    page.get_by_role("button", name="Create segment").click()
    page.wait_for_url(re.compile(r".*/segments/\d+$"))
    expect(page.locator("#segment-size")).to_have_text(previewed)

    page.goto("/segments/?q=Rich")
    row = page.locator("#segment-list tbody tr", has_text="Rich top tiers")
    expect(row).to_have_count(1)
    expect(row.locator("td[data-size]")).to_have_attribute("data-size", previewed)


def test_row_error_appears_next_to_the_row(page, login_as, people):
    login_as("marketer")
    page.goto("/segments/new")
    add_row(page, "+ Add include criterion", "include-0")
    choose(page, "include-0-field", "custom_fields")
    page.locator("input[name='include-0-key']").wait_for()
    type_value(page, "include-0-key", "a..b")
    choose(page, "include-0-operator", "exists")
    expect(page.locator("#row-include-0 .row-error")).to_contain_text("custom field path")
    expect(page.locator("#preview-panel")).to_contain_text("Fix the marked criteria")
    page.get_by_role("button", name="Remove this criterion").click()
    expect(page.locator("#row-include-0")).to_have_count(0)
    _count(page).to_have_attribute("data-count", "8")
