"""A support agent finds a member and learns why an offer is hidden, then shares the permalink."""

from __future__ import annotations

import pytest

from tests.factories import make_member, make_offer, make_segment

pytestmark = pytest.mark.browser


def test_support_agent_explains_a_hidden_offer(page, login_as):  # noqa: F811
    member = make_member(external_id="CUST-4711", email="nora.kim@example.com", tier="bronze",
                         points=300)
    make_member(external_id="CUST-4712", tier="gold")
    gold = make_segment("Gold and platinum", include=[
        {"field": "tier", "operator": "in", "value": ["gold", "platinum"]}])
    lounge = make_offer("Gold lounge access",
                        audiences=[("in_all_segments", {"segments": [gold.id]})])
    make_offer("Double points weekend")
    login_as("support")

    page.get_by_role("link", name="Members").click()
    page.get_by_label("Member id, external id or email").fill("nora.kim@")
    result = page.locator("#results").get_by_role("link", name="CUST-4711")
    result.wait_for()
    assert page.locator("#results").get_by_text("CUST-4712").count() == 0
    result.click()
    page.wait_for_url(f"**/members/{member.id}")

    row = page.locator(f'li[data-offer="{lounge.id}"]')
    assert row.locator("[data-status]").inner_text() == "missing required segments"
    assert "Gold and platinum: tier is gold or platinum (has bronze)" in row.inner_text()
    row.locator("summary").click()
    explanation = page.locator(f"#explanation-offer-{lounge.id}")
    explanation.wait_for()
    failed = explanation.locator(".is-fail.kind-segment > .node .label")
    assert failed.first.inner_text() == "Gold and platinum"
    criterion = explanation.locator(".is-fail.kind-criterion > .node")
    assert "tier is gold or platinum" in criterion.inner_text()
    assert "has bronze" in criterion.inner_text()

    permalink = explanation.locator(".permalink-line a")
    assert permalink.inner_text() == f"/members/{member.id}/offers/{lounge.id}"
    permalink.click()
    page.wait_for_url(f"**/members/{member.id}/offers/{lounge.id}")
    assert page.locator("h1").inner_text() == "Gold lounge access"
    assert "does not see this offer" in page.locator(".page-header").inner_text()
    assert page.locator("#permalink").input_value().endswith(
        f"/members/{member.id}/offers/{lounge.id}")
