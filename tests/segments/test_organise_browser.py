"""In Chromium at 1440 and 390 px: the overview's charts with their labels in place, the overlap
view, and archiving from the segment page (refused while used, then archived and restored)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.factories import add_to_list, make_member, make_offer, make_segment

pytestmark = pytest.mark.browser

WIDTHS = ((1440, 900), (390, 844))


def _box(page, selector: str) -> dict:
    return page.locator(selector).first.bounding_box()


def _apart(a: dict, b: dict) -> bool:
    return (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
            or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


@pytest.fixture
def data(app):
    """Two overlapping lists and a dynamic segment an offer uses."""
    people = [make_member(tier="gold" if i % 2 else "silver") for i in range(6)]
    first, second = make_segment("First list", kind="static"), make_segment("Second list",
                                                                             kind="static")
    add_to_list(first, *people[:4])
    add_to_list(second, *people[2:])
    gold = make_segment("Gold", include=[{"field": "tier", "operator": "equals",
                                          "value": "gold"}])
    make_offer("Gold offer", audiences=[("in_any_segment", {"segments": [gold.id]})])
    return {"first": first, "second": second, "gold": gold}


@pytest.mark.parametrize("width,height", WIDTHS)
def test_overview_charts_labels_and_search_in_place(page, login_as, data, width, height):
    page.set_viewport_size({"width": width, "height": height})
    login_as("support")
    page.goto("/")
    expect(page.locator("#changes-per-day-title")).to_have_text(
        "Membership changes per day, last 30 days")
    for chart in ("#changes-chart", "#sizes-chart"):
        ticks = [page.locator(f"{chart} .chart-tick").nth(i).bounding_box() for i in range(3)]
        assert _apart(ticks[0], ticks[1]) and _apart(ticks[1], ticks[2]), chart
        labels = page.locator(f"{chart} .chart-x span")
        boxes = [labels.nth(i).bounding_box() for i in range(labels.count())]
        assert all(_apart(a, b) for a, b in zip(boxes, boxes[1:], strict=False)), chart
        card = _box(page, chart)
        assert card["x"] + card["width"] <= width  # the chart fits the page
    search, button = _box(page, ".overview-search input"), _box(page, ".overview-search button")
    assert abs(search["y"] - button["y"]) < 12  # the Find button stays beside its field
    segments_card = page.locator(".stat", has_text="Segments")
    expect(segments_card).to_contain_text("0 active overrides")
    expect(page.locator(".stat", has_text="Rewards")).not_to_contain_text("override")
    page.click("#changes-chart summary")
    expect(page.locator("#changes-chart table")).to_be_visible()


@pytest.mark.parametrize("width,height", WIDTHS)
def test_overlap_view_in_the_browser(page, login_as, data, width, height):
    page.set_viewport_size({"width": width, "height": height})
    login_as("support")
    page.goto(f"/segments/{data['first'].id}")
    page.click("text=Compare overlap")
    page.fill("#overlap-segment-2", "Second list")
    page.click("button:text('Compare')")
    expect(page.locator("#overlap-result h2")).to_have_text(
        "6 members in at least one, 2 in both")
    assert "segments=Second%20list" in page.url  # the comparison has its own address
    assert page.locator(".venn circle").count() == 2
    venn = _box(page, ".venn")
    assert venn["x"] + venn["width"] <= width
    page.fill("#overlap-segment-3", "nothing like this")
    page.click("button:text('Compare')")
    expect(page.locator("#overlap-result")).to_contain_text(
        "No segment has the id, customer segment id or name “nothing like this”.")


@pytest.mark.parametrize("width,height", WIDTHS)
def test_archive_from_the_segment_page(page, login_as, data, width, height):
    page.set_viewport_size({"width": width, "height": height})
    login_as("marketer")
    page.goto(f"/segments/{data['gold'].id}")
    page.click("button:text('Archive')")
    expect(page.locator("#segment-status")).to_contain_text("Not archived:")
    expect(page.locator("#segment-status")).to_contain_text("Gold offer")
    page.goto(f"/segments/{data['first'].id}")
    page.click("button:text('Archive')")
    expect(page.locator(".archived-note")).to_contain_text("Archived")
    expect(page.locator(".page-header .badge.archived")).to_be_visible()
    page.goto("/segments/")
    expect(page.locator("#segment-list")).not_to_contain_text("First list")
    page.select_option("#segment-status", "archived")
    expect(page.locator("#segment-list")).to_contain_text("First list")
    page.click("text=First list")
    page.click("button:text('Restore')")
    expect(page.locator(".flash").first).to_contain_text("Restored First list")
    expect(page.locator(".archived-note")).to_have_count(0)
