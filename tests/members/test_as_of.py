"""The member page at a past moment (a picker, a permalink) and "what changed" between two
moments: the offers whose decision differs, with the changes that made it differ, in order."""

from __future__ import annotations

import time

from tests.factories import make_member, make_offer, make_segment
from webapp.extensions import db
from webapp.models import Member
from webapp.timeutil import utcnow


def _pause() -> None:
    time.sleep(0.003)  # the history is stamped to the millisecond (SQLite)


def test_a_support_agent_reads_a_past_moment_and_what_changed_since(client, auth, app):
    gold = make_segment("Gold", include=[{"field": "points", "operator": ">=", "value": 1000}])
    make_offer("Double points", audiences=[("in_any_segment", {"segments": [gold.id]})])
    ana = make_member(external_id="ANA", points=950)
    db.session.commit()
    _pause()
    tuesday = utcnow()
    _pause()
    from webapp.services.members import update_member
    update_member(db.session.get(Member, ana.id), {"points": 1020}, actor="crm-sync")
    auth.login("support")
    then = client.get(f"/members/{ana.id}?as_of={tuesday.isoformat()}Z")
    assert then.status_code == 200
    page = then.get_data(as_text=True)
    assert "Decisions and reasons as they were at" in page and "950 points then" in page
    assert "needs 50 more points" in page  # why it was hidden then
    now = client.get(f"/members/{ana.id}").get_data(as_text=True)
    assert "needs 50 more points" not in now
    changed = client.get(f"/members/{ana.id}/changes?from={tuesday.isoformat()}Z")
    assert changed.status_code == 200
    text = changed.get_data(as_text=True)
    assert "Offer Double points" in text and "points 950 → 1,020" in text
    assert "by crm-sync" in text
    assert 'data-status="missing_required_segments"' in text and 'data-status="visible"' in text


def test_a_moment_before_the_history_is_refused_on_the_page(client, auth):
    ana = make_member(external_id="ANA")
    auth.login("support")
    page = client.get(f"/members/{ana.id}?as_of=2001-01-01T00:00")
    assert page.status_code == 400
    assert "before the history begins" in page.get_data(as_text=True)
    changes = client.get(f"/members/{ana.id}/changes?from=not-a-time")
    assert changes.status_code == 400 and "is not a moment" in changes.get_data(as_text=True)


def test_one_decision_then_has_its_own_permalink(client, auth):
    gold = make_segment("Gold", include=[{"field": "points", "operator": ">=", "value": 1000}])
    offer = make_offer("Double points", audiences=[("in_any_segment", {"segments": [gold.id]})])
    ana = make_member(external_id="ANA", points=950)
    db.session.commit()
    _pause()
    then = utcnow()
    _pause()
    db.session.get(Member, ana.id).points = 2000
    db.session.commit()
    auth.login("support")
    page = client.get(f"/members/{ana.id}/offers/{offer.id}?as_of={then.isoformat()}Z")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "did not see" in text and "needs 50 more points" in text
    assert "as_of=" in text, text[text.find("permalink"):][:600]
    missing = client.get(f"/members/{ana.id}/offers/999999?as_of={then.isoformat()}Z")
    assert missing.status_code == 404


def test_each_version_in_the_span_comes_with_the_one_before_it(app):
    """A rule edited before the span and twice inside it: each version inside is paired with
    its predecessor, the first with the version from before the span."""
    from webapp.services.replay import _history_changes

    segment = make_segment(name="First")
    other = make_segment(name="Other one")
    _pause()
    start = utcnow()
    _pause()
    for name in ("Second", "Third"):
        segment.name = name
        db.session.commit()
        _pause()
    other.name = "Other two"
    db.session.commit()
    _pause()
    changes = _history_changes(start, utcnow(), tables=["segments"])
    assert [(c["key"], c["before"]["name"], c["after"]["name"]) for c in changes] == [
        (str(segment.id), "First", "Second"), (str(segment.id), "Second", "Third"),
        (str(other.id), "Other one", "Other two")]
