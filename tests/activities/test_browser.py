"""In Chromium: import a CSV of activities from the navigation, read the dry run and its
line-level problems, apply it, see the segment that moved and the member's activities."""

from __future__ import annotations

import pytest

from tests.activities.helpers import HEADER, coffee_segment, iso, stored
from tests.factories import make_member

pytestmark = pytest.mark.browser


def test_import_dry_run_apply_and_member_page(page, login_as):
    ana = make_member(external_id="ANA", email="ana@example.com")
    coffee_segment()
    login_as("marketer")
    page.get_by_role("link", name="Activity imports").click()
    page.wait_for_url("**/activities/imports")
    content = (HEADER + "".join(f"ANA,purchase,{iso(i + 1)},3.5,c{i},coffee\n" for i in range(3))
               + f"ana@example.com,purchase,{iso()},1.23456,c9,coffee\n"
               + f"GHOST,visit,{iso()},,v1,\n")
    page.set_input_files("input[name=file]", files=[{
        "name": "till.csv", "mimeType": "text/csv", "buffer": content.encode()}])
    page.get_by_role("button", name="Check the file").click()
    page.wait_for_url("**/activities/imports/*")
    status = page.locator("#import-status")
    assert status.get_by_text("Nothing has been recorded yet").is_visible()
    assert status.locator('[data-count="recorded"]').inner_text() == "3"
    assert status.locator('[data-count="invalid"]').inner_text() == "2"
    problems = status.locator("table.problems")
    assert problems.get_by_text("amount has at most 4 decimal places").is_visible()
    assert problems.get_by_text("no member has the id, external id or email 'GHOST'").is_visible()
    assert stored() == 0

    status.get_by_role("button", name="Record 3 activities").click()
    page.locator("#import-status .flash-success").wait_for()
    assert "3 activities recorded" in page.locator("#import-status .flash-success").inner_text()
    assert page.locator("table.segments-moved").get_by_text("Coffee regulars").is_visible()
    assert stored() == 3

    page.goto(f"/members/{ana.id}")
    section = page.locator("#activities")
    assert "showing 3 of 3" in section.inner_text()
    assert section.locator("tr[data-activity]").count() == 3
    assert section.locator("tr[data-activity]").first.get_by_text("upload").is_visible()
