"""Accessibility: axe-core finds no critical or serious violation on any main page, for each
role that can see it, and the segment and sign-in forms work with the keyboard alone.

axe-core comes from the npm registry (package.json) and is read from node_modules; it is
injected through the DevTools protocol, so the pages keep their Content-Security-Policy.
"""

from __future__ import annotations

import json
import os
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.factories import (
    PASSWORD,
    add_to_list,
    make_member,
    make_offer,
    make_reward,
    make_segment,
    make_user,
)
from webapp.extensions import db
from webapp.models import Segment
from webapp.timeutil import utcnow

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("critical", "serious")
ROLES = ("admin", "marketer", "support")


def axe_violations(page) -> list[dict]:
    """Run axe-core (WCAG 2.1 A/AA and best practices) on the page; its violations."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
    }""")
    return result


def keep_report(role: str, path: str, violations: list[dict]) -> None:
    """With AXE_REPORT=<file>, append every violation (any impact) as one JSON line."""
    target = os.environ.get("AXE_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(json.dumps({"role": role, "page": path, "violations": violations}) + "\n")


def blocking(violations: list[dict]) -> list[dict]:
    """The violations that fail the test."""
    return [v for v in violations if v["impact"] in BLOCKING]


@pytest.fixture
def catalog(app):
    """One of everything a main page shows, so that every page is populated."""
    from webapp.services.overrides import set_override
    from webapp.services.tokens import create_token
    from webapp.services.uploads import create_upload, new_file_path, start_dry_run
    from webapp.services.webhooks import create_webhook

    members = [make_member(external_id=f"A11Y-{n}", tier="gold" if n % 2 else "silver",
                           points=100 * n, birthday=date(1990, 1, 1 + n),
                           custom_fields={"city": "Lyon"}) for n in range(4)]
    vip = make_segment("VIP list", kind="static", customer_segment_id="vip",
                       description="Hand-picked members")
    add_to_list(vip, *members[:2])
    gold = make_segment("Gold members", include=[
        {"field": "tier", "operator": "equals", "value": "gold"}])
    set_override(gold, members[0], "block", description="Asked to be left out",
                 actor="test", expires_at=utcnow() + timedelta(days=30))
    offer = make_offer("Summer double points", category="seasonal", audiences=[
        ("age_within", {"minimum_age": 18, "maximum_age": None}),
        ("in_any_segment", {"segments": [gold.id, vip.id]})])
    reward = make_reward("Free coffee", required=[gold], points=300, category="drinks")
    create_webhook({"url": "https://crm.example.com/hooks", "description": "CRM"},
                   actor="test")
    admin = make_user("admin", email="owner@example.test")
    create_token("crm-sync", "marketer", admin)
    path = new_file_path(vip.id)
    path.write_text("external_id\nA11Y-2\nA11Y-3\nnobody\n")
    upload = create_upload(vip, stored_path=path, filename="vips.csv", mode="add",
                           actor_label="test")
    start_dry_run(upload)
    return {"member": members[1], "static": vip, "dynamic": gold, "offer": offer,
            "reward": reward, "upload": upload}


def main_pages(c: dict) -> list[tuple[str, str]]:
    """(access level, path) of every main page."""
    member, static, dynamic = c["member"], c["static"], c["dynamic"]
    offer, reward, upload = c["offer"], c["reward"], c["upload"]
    from webapp.models import Webhook

    webhook_id = db.session.scalar(select(Webhook.id))
    return [
        ("read", "/"),
        ("read", "/segments/"),
        ("write", "/segments/new"),
        ("read", f"/segments/{dynamic.id}"),
        ("read", f"/segments/{static.id}"),
        ("write", f"/segments/{dynamic.id}/edit"),
        ("read", f"/segments/{static.id}/uploads"),
        ("read", f"/segments/{static.id}/uploads/{upload.id}"),
        ("read", "/overrides/"),
        ("read", f"/overrides/segment/{dynamic.id}"),
        ("read", "/members/"),
        ("read", f"/members/{member.id}"),
        ("read", f"/members/{member.id}/offers/{offer.id}"),
        ("read", f"/members/{member.id}/rewards/{reward.id}"),
        ("read", "/offers/"),
        ("write", "/offers/new"),
        ("write", f"/offers/{offer.id}/edit"),
        ("read", f"/offers/{offer.id}"),
        ("read", "/rewards/"),
        ("write", "/rewards/new"),
        ("write", f"/rewards/{reward.id}/edit"),
        ("read", f"/rewards/{reward.id}"),
        ("admin", "/webhooks/"),
        ("admin", f"/webhooks/{webhook_id}"),
        ("admin", "/admin/users"),
        ("admin", "/admin/tokens"),
        ("admin", "/admin/audit"),
        ("read", "/api/v1/docs"),
        ("read", "/account/password"),
    ]


LEVELS = {"admin": {"read", "write", "admin"}, "marketer": {"read", "write"},
          "support": {"read"}}


def _report(found: dict[str, list[dict]]) -> str:
    return json.dumps(found, indent=1)


@pytest.mark.parametrize("role", ROLES)
def test_every_main_page_has_no_serious_axe_violation(page, login_as, catalog, role):
    login_as(role)
    found: dict[str, list[dict]] = {}
    for level, path in main_pages(catalog):
        if level not in LEVELS[role]:
            continue
        response = page.goto(path)
        assert response.status == 200, path
        page.wait_for_load_state("networkidle")
        everything = axe_violations(page)
        keep_report(role, path, everything)
        violations = blocking(everything)
        if violations:
            found[path] = violations
    assert found == {}, _report(found)


def test_the_sign_in_page_has_no_serious_axe_violation(page):
    page.goto("/login")
    everything = axe_violations(page)
    keep_report("anonymous", "/login", everything)
    assert blocking(everything) == []
    page.fill("input[name=email]", "nobody@example.test")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    page.get_by_text("Wrong email or password.").wait_for()
    everything = axe_violations(page)
    keep_report("anonymous", "/login (error shown)", everything)
    assert blocking(everything) == []


def _tab_to(page, selector: str, limit: int = 80) -> None:
    """Press Tab until the element matching `selector` has the focus."""
    target = page.locator(selector)
    for _ in range(limit):
        if target.evaluate("el => el === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} cannot be reached with the Tab key")


def test_sign_in_with_the_keyboard_alone(page):
    make_user("support", email="keys@example.test")
    page.goto("/login")
    _tab_to(page, "input[name=email]")
    page.keyboard.type("keys@example.test")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Sign in"
    page.keyboard.press("Enter")
    page.wait_for_url("**/")
    assert page.get_by_role("heading", level=1).count() == 1


def _focused(page) -> str:
    """The focused element, for messages: tag#id[name]."""
    return page.evaluate("""() => { const e = document.activeElement;
        return e ? (e.tagName + '#' + (e.id || '') + '[' + (e.name || '') + ']') : ''; }""")


def test_the_skip_link_is_the_first_tab_stop_and_moves_to_the_content(page, login_as):
    login_as("support")
    page.goto("/segments/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the main content"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.querySelector('main').contains(document.activeElement)")


def test_create_a_segment_with_the_keyboard_alone(page, login_as):
    make_member(tier="gold", points=10)
    make_member(tier="silver")
    login_as("marketer")
    page.goto("/segments/new")
    _tab_to(page, "input[name=name]")
    page.keyboard.type("Keyboard gold")
    _tab_to(page, "button[name=add_include]")  # a new segment starts without rows
    page.keyboard.press("Enter")
    page.locator("select[name='include-0-field']").wait_for()
    _tab_to(page, "select[name='include-0-field']")
    page.keyboard.press("t")  # type-ahead picks "Tier"; the row is redrawn for that field
    page.locator("select[name='include-0-operator']").wait_for()
    assert _focused(page) == "SELECT#include-0-field[include-0-field]"  # focus kept
    page.keyboard.press("Tab")
    assert _focused(page) == "SELECT#include-0-operator[include-0-operator]"
    page.keyboard.press("Tab")
    assert _focused(page) == "INPUT#include-0-value[include-0-value]"
    page.keyboard.type("gold")
    page.keyboard.press("Enter")  # submits with the form's default button: Save

    page.wait_for_url(re.compile(r".*/segments/\d+$"))
    assert page.get_by_role("heading", level=1).inner_text().startswith("Keyboard gold")
    segment = db.session.scalar(select(Segment).where(Segment.name == "Keyboard gold"))
    assert segment.include == [{"field": "tier", "operator": "equals", "value": "gold"}]
    assert segment.size == 1
