"""In a browser at 1366x900: the review table fits its card, long reasons wrap, and
"Reset selected" waits for a selection."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.factories import make_member, make_segment
from webapp.services.overrides import set_override
from webapp.timeutil import utcnow

pytestmark = pytest.mark.browser

GOLD = [{"field": "tier", "operator": "equals", "value": "gold"}]
WAIT = 15_000
MEASURE = """() => {
  const table = document.querySelector('.overrides-table');
  return {page: document.documentElement.scrollWidth,
          table: Math.ceil(table.getBoundingClientRect().width),
          wrap: table.closest('.table-wrap').clientWidth,
          reset: Math.ceil(table.querySelector('td.actions-cell button')
            .getBoundingClientRect().right),
          wrapRight: Math.floor(table.closest('.table-wrap').getBoundingClientRect().right)};
}"""


def test_review_table_fits_and_long_reasons_wrap(page, login_as, tmp_path):
    page.set_viewport_size({"width": 1366, "height": 900})
    segment = make_segment("Marketable gold customers", include=GOLD)
    for i in range(3):
        member = make_member(tier="gold", external_id=f"M00000{i}", email=f"m{i}@example.com")
        set_override(segment, member, "block", description="Chargeback dispute under review",
                     reference_id="TICKET-1077", actor="Ada Admin",
                     expires_at=utcnow() + timedelta(days=14) if i == 0 else None)
    long_one = make_member(tier="gold", external_id="M0000LONG")
    set_override(segment, long_one, "block", description="x" * 2000,
                 reference_id="R" * 200, metadata={"k" * 90: "v" * 900}, actor="Ada Admin")
    segment_id, member_id = segment.id, long_one.id
    login_as("admin")

    page.goto("/overrides/")
    expect(page.locator(".overrides-table")).to_be_visible(timeout=WAIT)
    size = page.evaluate(MEASURE)
    page.screenshot(path=str(tmp_path / "overrides-1366.png"), full_page=True)
    assert size["page"] <= 1366, size
    assert size["table"] <= size["wrap"], size
    assert size["reset"] <= size["wrapRight"], size

    for path in (f"/overrides/segment/{segment_id}", f"/overrides/member/{member_id}"):
        page.goto(path)
        expect(page.locator(".overrides-table")).to_be_visible(timeout=WAIT)
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366, path


def test_reset_selected_is_disabled_until_something_is_selected(page, login_as):
    segment = make_segment("Gold tier", include=GOLD)
    member = make_member(tier="gold", external_id="G-ONE")
    set_override(segment, member, "block", description="Fraud", actor="Ada Admin")
    login_as("admin")
    asked = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))

    page.goto("/overrides/")
    button = page.locator("#bulk-reset-form button[type=submit]")
    expect(button).to_be_disabled(timeout=WAIT)
    page.locator('input[name="ids"]').check()
    expect(button).to_be_enabled(timeout=WAIT)
    page.locator('input[name="ids"]').uncheck()
    expect(button).to_be_disabled(timeout=WAIT)
    page.locator("input[data-select-all]").check()
    expect(button).to_be_enabled(timeout=WAIT)
    page.locator("input[data-select-all]").uncheck()
    expect(button).to_be_disabled(timeout=WAIT)
    page.evaluate("document.getElementById('bulk-reset-form').requestSubmit()")
    expect(page.locator("#toast")).to_contain_text("Select at least one", timeout=WAIT)
    assert asked == []
