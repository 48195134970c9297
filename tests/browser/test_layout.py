"""Every main page on a phone (390x844) and a desktop (1440x900), with 200-character names and
10,000-character descriptions in the data: no page is wider than the window, long values fold
away, the phone's Menu button opens the navigation, and Enter in the member search opens the
member."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.factories import add_to_list, make_member, make_offer, make_reward, make_segment
from webapp.extensions import db
from webapp.models import Override, Webhook
from webapp.services.audit import record

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
NAME = ("Supercalifragilistic" * 10)[:200]  # one unbroken 200-character word
DESCRIPTION = ("Loremipsumdolorsitamet" * 460)[:10_000]


@pytest.fixture
def long_data(app):
    """A segment, offer, reward, override and audit entries with names and descriptions as
    long as Beacon allows, and a member in all of them; returns the page addresses."""
    member = make_member(external_id="LONG-1", email="long.one@example.com",
                         custom_fields={"note": "x" * 500})
    segment = make_segment(NAME, description=DESCRIPTION, customer_segment_id="c" * 255,
                           include=[{"field": "points", "operator": ">=", "value": 0}])
    listed = make_segment(NAME[:-1] + "L", kind="static", description=DESCRIPTION)
    add_to_list(listed, member)
    offer = make_offer(NAME[:-1] + "O", description=DESCRIPTION, category="C" * 100,
                       external_id="E" * 255,
                       audiences=[("in_all_segments", {"segments": [segment.id]}),
                                  ("age_within", {"minimum_age": 25, "maximum_age": 40})])
    reward = make_reward(NAME[:-1] + "R", description=DESCRIPTION, category="C" * 100,
                         external_id="R" * 255, required=[segment], points=10)
    db.session.add(Override(segment_id=segment.id, member_id=member.id, status="add",
                            description=DESCRIPTION[:2000], reference_id="T" * 255,
                            actor_label="Ada Admin"))
    db.session.add(Webhook(url="https://example.com/" + "h" * 1900, secret="s" * 32,
                           description=NAME, event_filter={}))
    for kind, item in (("segment", segment), ("offer", offer), ("reward", reward)):
        record("Ada Admin", f"{kind}.update", kind, item.id, f"Changed {kind} {item.name}",
               {"name": "Old", "description": ""},
               {"name": item.name, "description": DESCRIPTION})
    db.session.commit()
    return {
        "dashboard": "/", "segments": "/segments/", "segment new": "/segments/new",
        "segment": f"/segments/{segment.id}", "segment edit": f"/segments/{segment.id}/edit",
        "uploads": f"/segments/{listed.id}/uploads", "overrides": "/overrides/",
        "members": "/members/?q=LONG", "member": f"/members/{member.id}",
        "explainer": f"/members/{member.id}/offers/{offer.id}",
        "offers": "/offers/", "offer new": "/offers/new", "offer": f"/offers/{offer.id}",
        "offer edit": f"/offers/{offer.id}/edit", "rewards": "/rewards/",
        "reward new": "/rewards/new", "reward": f"/rewards/{reward.id}",
        "reward edit": f"/rewards/{reward.id}/edit", "webhooks": "/webhooks/",
        "users": "/admin/users", "tokens": "/admin/tokens", "audit": "/admin/audit",
        "api docs": "/api/v1/docs",
    }


def _size(page) -> dict:
    return page.evaluate("() => ({width: document.documentElement.scrollWidth, "
                         "window: window.innerWidth, "
                         "height: document.documentElement.scrollHeight})")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_no_page_is_wider_than_the_window(page, login_as, long_data, viewport):
    page.set_viewport_size(viewport)
    page.goto("/login")
    assert _size(page)["width"] <= viewport["width"], "login"
    login_as("admin")
    too_wide = {}
    for name, url in long_data.items():
        response = page.goto(url)
        assert response is not None and response.ok, name
        page.wait_for_load_state("networkidle")
        size = _size(page)
        if size["width"] > size["window"]:
            too_wide[name] = size["width"]
    assert too_wide == {}, f"pages wider than {viewport['width']} px: {too_wide}"


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_long_descriptions_fold_behind_show_all(page, login_as, long_data, viewport):
    page.set_viewport_size(viewport)
    login_as("admin")
    page.goto(long_data["audit"])
    # three entries, each with a 10,000-character value: folded, the page stays short
    assert _size(page)["height"] < 3000
    folded = page.locator(".long-text").first
    expect(folded).to_contain_text("show all")
    folded.locator("summary").click()
    expect(folded.locator(".whole")).to_be_visible()
    expect(folded.locator(".whole")).to_contain_text(DESCRIPTION[-40:])
    page.goto(long_data["segment"])
    assert _size(page)["height"] < 12_000


def test_menu_button_opens_the_navigation_on_a_phone(page, login_as):
    page.set_viewport_size(PHONE)
    login_as("marketer")
    nav = page.locator("aside.sidebar nav")
    menu = page.locator("label.menu-button")
    expect(menu).to_be_visible()
    expect(nav.get_by_role("link", name="Segments")).to_be_hidden()
    menu.click()
    expect(nav.get_by_role("link", name="Segments")).to_be_visible()
    nav.get_by_role("link", name="Segments").click()
    page.wait_for_url("**/segments/")
    # a new page starts with the menu folded again
    expect(nav.get_by_role("link", name="Segments")).to_be_hidden()
    # no dark sidebar stripe behind the content
    background = page.evaluate(
        "() => getComputedStyle(document.querySelector('.shell')).backgroundImage")
    assert background == "none"


def test_menu_works_without_javascript(_playwright, live_server):
    from tests.factories import PASSWORD, make_user

    user = make_user(role="support", email="nojs@example.test")
    context = _playwright.new_context(base_url=live_server, viewport=PHONE,
                                      java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto("/login")
        page.fill("input[name=email]", user.email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/")
        link = page.locator("aside.sidebar nav").get_by_role("link", name="Members")
        expect(link).to_be_hidden()
        page.locator("label.menu-button").click()
        expect(link).to_be_visible()
    finally:
        context.close()


def test_desktop_shows_the_sidebar_without_a_menu_button(page, login_as):
    page.set_viewport_size(DESKTOP)
    login_as("support")
    expect(page.locator("label.menu-button")).to_be_hidden()
    expect(page.locator("aside.sidebar nav").get_by_role("link", name="Members")).to_be_visible()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_enter_in_the_member_search_opens_the_member(page, login_as, viewport):
    page.set_viewport_size(viewport)
    member = make_member(external_id="M0000012", email="olivia@example.com")
    make_member(external_id="M0000013")
    login_as("support")
    for typed in ("M0000012", "olivia@example.com", member.id):
        page.goto("/members/")
        page.fill("#member-q", typed)
        page.press("#member-q", "Enter")
        page.wait_for_url(f"**/members/{member.id}")
        expect(page.locator("h1")).to_contain_text("M0000012")
    page.goto("/")
    page.get_by_label("Find a member").fill("M0000012")
    page.get_by_label("Find a member").press("Enter")
    page.wait_for_url(f"**/members/{member.id}")
    page.goto("/members/")
    page.fill("#member-q", "m0000012")
    page.press("#member-q", "Enter")
    suggestion = page.locator(".did-you-mean")
    expect(suggestion).to_contain_text("Did you mean M0000012")
    suggestion.get_by_role("link", name="M0000012").click()
    page.wait_for_url(f"**/members/{member.id}")
