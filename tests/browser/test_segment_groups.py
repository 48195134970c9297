"""The builder's groups in a real browser (htmx): a marketer builds
(tier = gold AND points >= 1000) OR (VIP AND joined in the last 90 days) and sees the count."""

from __future__ import annotations

import os
from datetime import timedelta

from playwright.sync_api import expect
from sqlalchemy import select

from tests.browser.test_accessibility import axe_violations, blocking
from tests.factories import make_member
from webapp.extensions import db
from webapp.models import Segment
from webapp.timeutil import utcnow

SHOTS = os.environ.get("BUILDER_SCREENSHOTS")  # a folder to keep screenshots in, if set


def _settled(page) -> None:
    """Wait until htmx has swapped in what it asked for and wired up the new inputs."""
    expect(page.locator(".htmx-request, .htmx-settling, .htmx-swapping, .htmx-added")
           ).to_have_count(0)
    page.wait_for_timeout(150)


def _choose(page, selector: str, value: str) -> None:
    """Choose in a select of a row and wait for the row to come back from the server."""
    _settled(page)
    with page.expect_response("**/segments/builder/row"):
        page.select_option(selector, value)
    _settled(page)


def _fill(page, row, field: str, operator: str, value: str | None = None, **extra: str):
    """Choose a row's field (the row comes back with its operators), then the rest."""
    row_id = row.get_attribute("id")
    _choose(page, f"#{row_id} select.criterion-field", field)
    if "key" in extra:
        page.fill(f"#{row_id} input.criterion-key", extra["key"])
    if "json_type" in extra:
        _choose(page, f"#{row_id} select.criterion-type", extra["json_type"])
    _choose(page, f"#{row_id} select.criterion-operator", operator)
    if "date_mode" in extra:
        _choose(page, f"#{row_id} select.criterion-mode", extra["date_mode"])
    if value is not None:
        box = page.locator(f"#{row_id} .criterion-value")
        if box.evaluate("e => e.tagName") == "SELECT":
            _choose(page, f"#{row_id} .criterion-value", value)
        else:
            with page.expect_response("**/segments/builder/row"):
                box.fill(value)
                box.dispatch_event("change")


def test_marketer_builds_a_nested_or_and_sees_the_count(page, login_as):
    make_member(tier="gold", points=1200)
    make_member(tier="gold", points=10)
    make_member(tier="bronze", custom_fields={"vip": True})
    old = make_member(tier="bronze", custom_fields={"vip": True})
    old.created_at = utcnow() - timedelta(days=400)
    db.session.commit()
    login_as("marketer")
    page.goto("/segments/new")
    page.fill("input[name=name]", "Gold or new VIP")
    page.click("button.add-group[value=include]")
    outer = page.locator("div.criteria-box.depth-1")
    outer.wait_for()
    outer.locator(".criterion-row button.remove-row").click()
    page.wait_for_selector("div.criteria-box.depth-1 .criterion-row", state="detached")
    for _ in range(2):
        count = page.locator("div.criteria-box.depth-2").count()
        page.locator("div.criteria-box.depth-1 > .box-actions .add-group-in-box").click()
        expect(page.locator("div.criteria-box.depth-2")).to_have_count(count + 1)
    inner = page.locator("div.criteria-box.depth-2")
    assert inner.nth(0).locator("select.box-mode").input_value() == "all"
    for n in range(2):
        inner.nth(n).locator(".add-to-box").click()
        expect(inner.nth(n).locator(".criterion-row")).to_have_count(2)
    _settled(page)
    rows = page.locator("div.criteria-box.depth-2 .criterion-row")
    _fill(page, rows.nth(0), "tier", "equals", "gold")
    _fill(page, rows.nth(1), "points", ">=", "1000")
    _fill(page, rows.nth(2), "custom_fields", "equals", "true", key="vip",
          json_type="boolean")
    row = rows.nth(3)
    _fill(page, row, "created_at", ">=", None, date_mode="days_ago")
    days = page.locator(f"#{row.get_attribute('id')} input[type=number]")
    with page.expect_response("**/segments/builder/row"):
        days.fill("90")
        days.dispatch_event("change")
    expect(page.locator("#preview-count")).to_have_attribute("data-count", "2")
    assert blocking(axe_violations(page)) == []
    words = page.locator("#preview-panel .definition-words").inner_text()
    assert "(tier is gold and points at least 1,000) or (custom field vip is true" in words
    if SHOTS:
        page.set_viewport_size({"width": 1440, "height": 900})
        page.screenshot(path=f"{SHOTS}/groups-1440.png", full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=f"{SHOTS}/groups-390.png", full_page=True)
        page.set_viewport_size({"width": 1440, "height": 900})
    page.click("button.primary[name=save]")
    page.wait_for_url("**/segments/*")
    segment = db.session.scalar(select(Segment))
    assert segment.size == 2
    assert segment.include[0]["any"][1]["all"][0] == {
        "field": "custom_fields.vip", "operator": "equals", "value": True}
