"""Offer service: validation, audit, audiences with where-used links, exact reach in SQL."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import func, select

from tests.factories import add_to_list, make_member, make_segment
from webapp.extensions import db
from webapp.models import AudienceSegment, AuditEntry, Offer
from webapp.services import decisions as visibility
from webapp.services.offers import (
    OfferError,
    add_audience,
    delete_offer,
    offer_reach,
    remove_audience,
    save_offer,
    state_condition,
)
from webapp.timeutil import utcnow


def _audits(action: str) -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == action))


def test_save_offer_creates_updates_and_audits(app):
    offer = save_offer({"name": " Spring sale ", "external_id": "SP-1", "category": "discount",
                        "publish_at": "2026-03-01T00:00:00Z", "expire_at": "2026-04-01"},
                       actor="Mira")
    assert (offer.name, offer.publish_at, offer.expire_at) == (
        "Spring sale", datetime(2026, 3, 1), datetime(2026, 4, 1))
    save_offer({"discontinued": True}, offer=offer, actor="Mira")
    assert offer.discontinued and offer.name == "Spring sale"
    assert (_audits("offer.create"), _audits("offer.update")) == (1, 1)
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "offer.update"))
    assert (entry.before["discontinued"], entry.after["discontinued"]) == (False, True)


@pytest.mark.parametrize(("data", "field"), [
    ({"name": ""}, "name"),
    ({"name": "x", "publish_at": "2026-05-01", "expire_at": "2026-04-01"}, "expire_at"),
    ({"name": "x", "publish_at": "next tuesday"}, "publish_at"),
    ({"name": "x", "discontinued": "yes"}, "discontinued"),
    ({"name": "x", "colour": "red"}, "colour"),
    ({"name": "x" * 201}, "name"),
])
def test_save_offer_refuses_bad_input_and_changes_nothing(app, data, field):
    with pytest.raises(OfferError) as err:
        save_offer(data, actor="Mira")
    assert field in err.value.errors
    assert db.session.scalar(select(func.count()).select_from(Offer)) == 0


def test_external_id_is_unique(app):
    first = save_offer({"name": "A", "external_id": "X-1"}, actor="t")
    with pytest.raises(OfferError) as err:
        save_offer({"name": "B", "external_id": "X-1"}, actor="t")
    assert "already used" in err.value.errors["external_id"]
    save_offer({"name": "A again", "external_id": "X-1"}, offer=first, actor="t")


@pytest.mark.parametrize(("audience_type", "config", "key"), [
    ("age_within", {"minimum_age": None, "maximum_age": None}, "configuration.minimum_age"),
    ("age_within", {"minimum_age": 30, "maximum_age": 20}, "configuration.minimum_age"),
    ("age_within", {"minimum_age": -1}, "configuration.minimum_age"),
    ("age_within", {"maximum_age": "old"}, "configuration.maximum_age"),
    ("in_all_segments", {"segments": []}, "configuration.segments"),
    ("in_any_segment", {"segments": [999]}, "configuration.segments"),
    ("in_any_segment", {"segments": ["1"]}, "configuration.segments"),
    ("in_any_segment", {"segments": [2**63]}, "configuration.segments"),
    ("in_all_segments", {"segments": [10**20]}, "configuration.segments"),
    ("everyone", {}, "audience_type"),
])
def test_add_audience_validates_per_spec(app, audience_type, config, key):
    offer = save_offer({"name": "O"}, actor="t")
    with pytest.raises(OfferError) as err:
        add_audience(offer, audience_type, config, actor="t")
    assert key in err.value.errors, err.value.errors
    assert offer.audiences == []


def test_duplicate_segment_is_refused(app):
    offer = save_offer({"name": "O"}, actor="t")
    seg = make_segment("S")
    with pytest.raises(OfferError, match="listed twice"):
        add_audience(offer, "in_any_segment", {"segments": [seg.id, seg.id]}, actor="t")


def test_audiences_write_where_used_links_and_audit(app):
    a, b = make_segment("A"), make_segment("B")
    offer = save_offer({"name": "O"}, actor="t")
    audience = add_audience(offer, "in_all_segments", {"segments": [a.id, b.id]}, actor="Mira")
    links = set(db.session.scalars(select(AudienceSegment.segment_id)))
    assert links == {a.id, b.id}
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "audience.create"))
    assert entry.summary == "Added audience to offer O: in all of: A, B"
    remove_audience(audience, actor="Mira")
    assert db.session.scalar(select(func.count()).select_from(AudienceSegment)) == 0
    add_audience(offer, "age_within", {"minimum_age": 18}, actor="t")
    delete_offer(offer, actor="t")
    assert db.session.scalar(select(func.count()).select_from(Offer)) == 0
    assert _audits("offer.delete") == 1


def test_offer_reach_matches_the_engine_for_every_member(app):
    today = utcnow().date()
    members = [
        make_member(birthday=date(today.year - 18, today.month, min(today.day, 28)),
                    tier="gold"),
        make_member(birthday=date(today.year - 30, 1, 1), tier="gold", points=5000),
        make_member(birthday=None, tier="gold"),
        make_member(birthday=date(today.year - 70, 1, 1), tier="bronze"),
        make_member(birthday=date(today.year - 10, 1, 1), tier="silver"),
    ]
    gold = make_segment("Gold", include=[{"field": "tier", "operator": "equals",
                                          "value": "gold"}])
    rich = make_segment("Rich", include=[{"field": "points", "operator": ">=", "value": 1000}])
    beta = make_segment("Beta", kind="static")
    add_to_list(beta, members[3], members[4])
    cases = [
        [],
        [("age_within", {"minimum_age": 18, "maximum_age": None})],
        [("age_within", {"minimum_age": None, "maximum_age": 18})],
        [("age_within", {"minimum_age": 18, "maximum_age": 65})],
        [("in_all_segments", {"segments": [gold.id, rich.id]})],
        [("in_any_segment", {"segments": [rich.id, beta.id]})],
        [("in_any_segment", {"segments": [gold.id, beta.id]}),
         ("age_within", {"minimum_age": 18, "maximum_age": None})],
    ]
    for audiences in cases:
        offer = Offer(name="probe")
        db.session.add(offer)
        db.session.commit()
        for kind, config in audiences:
            add_audience(offer, kind, config, actor="t")
        expected = sum(visibility.offer_decision(m, offer).visible_status == "visible"
                       for m in members)
        assert offer_reach(audiences) == expected, audiences
        delete_offer(offer, actor="t")


def test_offer_reach_refuses_an_invalid_audience(app):
    with pytest.raises(OfferError):
        offer_reach([("age_within", {"minimum_age": 5, "maximum_age": 1})])


def test_state_filters(app):
    now = utcnow()
    from datetime import timedelta

    day = timedelta(days=1)
    rows = {"active": dict(publish_at=now - day), "scheduled": dict(publish_at=now + day),
            "expired": dict(expire_at=now - day), "discontinued": dict(discontinued=True)}
    for name, kw in rows.items():
        db.session.add(Offer(name=name, **kw))
    db.session.commit()
    for state in rows:
        names = list(db.session.scalars(select(Offer.name).where(
            state_condition(Offer, state, now))))
        assert names == [state]
