"""In a browser: an admin blocks a member who matches the rules, sees them leave, resets it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.factories import make_member, make_segment
from webapp.extensions import db
from webapp.services.membership import segment_ids_of

pytestmark = pytest.mark.browser

GOLD = [{"field": "tier", "operator": "equals", "value": "gold"}]
WAIT = 15_000  # generous: CI runs this on a busy 2-core machine


def test_admin_blocks_a_matching_member_and_resets_it(page, login_as):
    member = make_member(tier="gold", external_id="GOLD-ANA", email="ana@example.com")
    make_member(tier="gold", external_id="GOLD-BEN")
    segment = make_segment("Gold tier", include=GOLD)
    segment_id = segment.id
    login_as("admin")

    page.goto(f"/overrides/segment/{segment_id}")
    block = page.locator("#segment-overrides")
    expect(block.locator(".segment-size")).to_have_text("2", timeout=WAIT)

    # Before saving, the form says what the override will do.
    page.fill("input[name=member]", "ana@example.com")
    page.locator("input[name=member]").press("Tab")
    page.get_by_label("Block — keep the member out").check()
    effect = page.locator("#override-effect")
    expect(effect).to_contain_text("the rules say in; the override says out", timeout=WAIT)
    expect(effect).to_contain_text("Saving removes GOLD-ANA", timeout=WAIT)
    page.fill("textarea[name=description]", "Account under fraud review")
    page.fill("input[name=reference_id]", "CASE-99")
    page.get_by_role("button", name="Save override").click()

    # After: the member has left the segment, and the override, its reason and effect show.
    expect(block.locator(".segment-size")).to_have_text("1", timeout=WAIT)
    row = block.locator("tr", has_text="GOLD-ANA").first
    expect(row).to_contain_text("Account under fraud review", timeout=WAIT)
    expect(row).to_contain_text("the rules say in; the override says out", timeout=WAIT)
    expect(row.locator(".in-now")).to_have_text("out", timeout=WAIT)
    expect(page.locator("#toast")).to_contain_text("blocked from Gold tier", timeout=WAIT)
    db.session.rollback()  # see the live server's commits
    assert segment_id not in segment_ids_of(member.id)

    # Reset (after the confirmation): the rules decide again and the member is back.
    questions: list[str] = []
    page.on("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    row.get_by_role("button", name=re.compile("Reset")).click()
    expect(block.locator(".segment-size")).to_have_text("2", timeout=WAIT)
    assert len(questions) == 1 and "Reset the block override of GOLD-ANA" in questions[0]
    expect(block).to_contain_text("No member is pinned in or out", timeout=WAIT)
    history = block.locator(".history-table")
    expect(history).to_contain_text("reset", timeout=WAIT)
    expect(history).to_contain_text("Account under fraud review", timeout=WAIT)
    db.session.rollback()
    assert segment_id in segment_ids_of(member.id)
