"""In Chromium: upload a file, read the dry-run report, apply it, see the new list size."""

from __future__ import annotations

import pytest

from tests.factories import add_to_list, make_member, make_segment
from tests.uploads.helpers import list_ids

pytestmark = pytest.mark.browser


def test_upload_dry_run_apply_and_new_size(page, login_as):  # noqa: F811
    people = [make_member(external_id=f"B-{i}", email=f"browser{i}@example.com")
              for i in range(3)]
    segment = make_segment("Browser VIPs", kind="static")
    add_to_list(segment, people[0])
    login_as("marketer")
    page.goto(f"/segments/{segment.id}/uploads")
    assert page.locator("#segment-size").inner_text() == "1"
    content = (f"email,name\r\n{people[0].email},Ada\r\n{people[1].email.upper()},Grace\r\n"
               f"ghost@example.com,Nobody\r\n\r\n{people[2].external_id},Linus\r\n")
    page.set_input_files("input[name=file]", files=[{
        "name": "vips.csv", "mimeType": "text/csv", "buffer": content.encode()}])
    page.get_by_role("button", name="Check the file").click()
    page.wait_for_url(f"**/segments/{segment.id}/uploads/*")
    report = page.locator("#upload-status")
    assert report.get_by_text("Nothing has changed yet").is_visible()
    assert report.locator('[data-count="added"]').inner_text() == "+2"
    assert report.locator('[data-count="unknown"]').inner_text() == "1"
    assert report.locator('[data-count="on_list"]').inner_text() == "1"
    assert report.locator('[data-count="invalid"]').inner_text() == "0"
    assert report.locator("table.problems").get_by_text("ghost@example.com").is_visible()
    # The external id in the email column is still a known member (identifiers are tried
    # in order), so only the ghost is a problem.
    assert list_ids(segment.id) == {people[0].id}

    assert report.locator('[data-count="new_size"]').inner_text() == "3"
    report.get_by_role("button", name="Apply: +2 / −0").click()
    page.locator("#upload-status .new-size").wait_for()
    assert page.locator("#upload-status .new-size").inner_text() == "3"
    assert list_ids(segment.id) == {p.id for p in people}
    page.goto(f"/segments/{segment.id}/uploads")
    assert page.locator("#segment-size").inner_text() == "3"
    assert page.locator("#upload-history").get_by_text("vips.csv").is_visible()
