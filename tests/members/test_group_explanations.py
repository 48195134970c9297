"""Groups in the support agent's view: the decision tree shows each group, the branches that
hold, and the near misses name what stands in the way."""

from __future__ import annotations

from datetime import datetime

from tests.factories import make_member, make_offer, make_segment
from webapp.services import decisions as visibility

NOW = datetime(2026, 6, 15, 12, 0)
GOLD = {"field": "tier", "operator": "equals", "value": "gold"}
RICH = {"field": "points", "operator": ">=", "value": 1000}
VIP = {"field": "custom_fields.vip", "operator": "equals", "value": True}


def test_near_misses_inside_groups(app):
    member = make_member(tier="gold", points=400)
    either = make_segment("Gold rich or VIP", include=[{"any": [{"all": [GOLD, RICH]}, VIP]}])
    offer = make_offer(audiences=[("in_all_segments", {"segments": [either.id]})])
    misses = visibility.near_misses(visibility.offer_decision(member, offer,
                                                              now=NOW).explanation)
    assert "Gold rich or VIP: needs 600 more points" in misses
    assert "Gold rich or VIP: has no value for custom_fields.vip" in misses
    not_gold = make_segment("Not gold", include=[{"none": [GOLD, VIP]}])
    offer = make_offer(audiences=[("in_all_segments", {"segments": [not_gold.id]})])
    misses = visibility.near_misses(visibility.offer_decision(member, offer,
                                                              now=NOW).explanation)
    assert misses == ["Not gold: tier is gold (it must not)"]
    excluded = make_segment("Everyone but gold", exclude=[{"any": [GOLD, VIP]}])
    offer = make_offer(audiences=[("in_all_segments", {"segments": [excluded.id]})])
    misses = visibility.near_misses(visibility.offer_decision(member, offer,
                                                              now=NOW).explanation)
    assert misses == ["Everyone but gold: tier is gold (it must not)"]


def test_explainer_page_shows_group_nodes(client, auth):
    auth.login("support")
    member = make_member(external_id="m-groups", tier="gold", points=1500)
    segment = make_segment("Gold rich or VIP", include=[{"any": [{"all": [GOLD, RICH]}, VIP]}])
    offer = make_offer("Lounge", audiences=[("in_all_segments", {"segments": [segment.id]})])
    html = client.get(f"/members/{member.external_id}/offers/{offer.id}").get_data(as_text=True)
    assert "kind-group" in html
    assert "at least one of these holds: branch 1 of 2 holds" in html
    assert "all of these hold: all 2 branches hold" in html
