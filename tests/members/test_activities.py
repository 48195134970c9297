"""The member page's activities: newest first with type, when, amount, properties and
source, an empty state, "showing 20 of N" with the list of all, for every role."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.factories import make_member
from webapp.members.views import amount_text
from webapp.services.activities import record
from webapp.timeutil import utcnow


def activity(member, n, *, kind="purchase", days_ago=1, **extra):
    attrs = {"member": member.external_id, "activity_type": kind, "external_id": f"a{n}",
             "occurred_at": (utcnow() - timedelta(days=days_ago)).isoformat() + "Z"}
    attrs.update(extra)
    return attrs


@pytest.mark.parametrize("role", ["support", "marketer", "admin"])
def test_empty_state_for_every_role(client, auth, role):
    member = make_member(external_id="NEW")
    auth.login(role)
    page = client.get(f"/members/{member.id}").get_data(as_text=True)
    assert 'id="activities"' in page and "No activities recorded." in page
    assert client.get(f"/members/{member.id}/activities").status_code == 200


def test_recent_activities_newest_first_with_their_details(client, auth):
    member = make_member(external_id="ANA")
    record([activity(member, 1, days_ago=5, amount=4.5, properties={"item": "coffee"}),
            activity(member, 2, kind="visit", days_ago=1)], actor="test")
    record([activity(member, 3, days_ago=3, amount=1200)], actor="t", source="upload")
    auth.login("support")
    page = client.get(f"/members/{member.id}").get_data(as_text=True)
    section = page[page.index('id="activities"'):page.index('id="decisions"')]
    assert "showing 3 of 3, newest first" in section and "See all" not in section
    rows = re.findall(r'<tr data-activity="\d+">(.*?)</tr>', section, re.S)
    assert [re.search(r'<span class="badge">(\w+)</span>', r).group(1) for r in rows] == [
        "visit", "purchase", "purchase"]
    assert ">1,200<" in rows[1] and "source-upload" in rows[1]
    assert ">4.5<" in rows[2] and "coffee" in rows[2] and "source-api" in rows[2]


def test_showing_20_of_all_and_the_list_of_all(client, auth):
    member = make_member(external_id="BUSY")
    record([activity(member, n, days_ago=n % 300 + 1) for n in range(75)], actor="test")
    auth.login("marketer")
    page = client.get(f"/members/{member.id}").get_data(as_text=True)
    assert "showing 20 of 75, newest first" in page
    assert f'href="/members/{member.id}/activities">See all 75</a>' in page
    assert page.count("<tr data-activity=") == 20
    first = client.get(f"/members/{member.id}/activities").get_data(as_text=True)
    assert "75 activities, newest first." in first and first.count("<tr data-activity=") == 50
    assert "Page 1 of 2" in first
    second = client.get(f"/members/{member.id}/activities?page=2").get_data(as_text=True)
    assert second.count("<tr data-activity=") == 25


def test_unknown_member_is_404(client, auth):
    auth.login("support")
    assert client.get("/members/nobody/activities").status_code == 404


@pytest.mark.parametrize(("e4", "text"), [(None, "—"), (45000, "4.5"), (12_000_000, "1,200"),
                                          (1, "0.0001"), (-25000, "-2.5"), (0, "0")])
def test_amount_text_is_exact(e4, text):
    assert amount_text(e4) == text
