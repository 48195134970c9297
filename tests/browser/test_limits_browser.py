"""The offer page's limits driven in Chromium: a marketer adds a limit with htmx (no reload),
and a support agent reads on the member page why the limit hides the offer."""

from __future__ import annotations

from tests.factories import make_member, make_offer
from webapp.services.offer_activity import fulfill


def test_marketer_adds_a_limit_and_support_reads_why_it_applies(page, login_as):
    member = make_member(external_id="ANA")
    offer = make_offer("Coffee")
    fulfill(member, offer, external_id="o-1", actor="test")
    login_as("marketer")
    page.goto(f"/offers/{offer.id}")
    page.fill("#limits input[name=limit]", "1")
    page.select_option("#limits select[name=limit_type]", "membership_award_count")
    page.select_option("#limits select[name=window]", "month")
    page.click("#limits button[type=submit]:has-text('Add limit')")
    row = page.locator("#limits tr[data-limit]")
    row.wait_for()
    assert "at most 1 award per member per calendar month" in row.inner_text()
    assert "1 member at the limit" in row.inner_text()
    page.context.clear_cookies()
    login_as("support")
    page.goto(f"/members/{member.id}")
    line = page.locator(f"li[data-offer='{offer.id}']")
    assert "member limit" in line.inner_text()
    assert "1 of 1 awards this month; resets 1 " in line.inner_text()
