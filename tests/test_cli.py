"""Command-line tools: users, tokens, demo data, refresh and verify."""

from __future__ import annotations

from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import (
    Activity,
    ApiToken,
    Audience,
    Member,
    Offer,
    Override,
    Reward,
    Segment,
    User,
)
from webapp.services.tokens import hash_token


def test_users_create_reads_password_from_stdin(runner):
    result = runner.invoke(args=["users", "create", "New@Example.test", "--role", "marketer"],
                           input="a long enough password\n")
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.email == "new@example.test"))
    assert user.role == "marketer"
    again = runner.invoke(args=["users", "create", "new@example.test", "--role", "admin"],
                          input="a long enough password\n")
    assert again.exit_code != 0 and "already exists" in again.output


def test_users_create_refuses_short_password(runner):
    result = runner.invoke(args=["users", "create", "x@example.test", "--role", "support"],
                           input="short\n")
    assert result.exit_code != 0 and "at least 10 characters" in result.output


def test_tokens_create_prints_a_token_stored_hashed(runner):
    result = runner.invoke(args=["tokens", "create", "CRM sync", "--role", "support"])
    assert result.exit_code == 0
    raw = result.output.strip()
    token = db.session.scalar(select(ApiToken))
    assert token.token_hash == hash_token(raw) and raw not in token.token_hash


def test_demo_seed_is_deterministic_and_complete(runner):
    result = runner.invoke(args=["demo", "seed", "--members", "600"])
    assert result.exit_code == 0, result.output
    count = lambda model: db.session.scalar(select(func.count()).select_from(model))  # noqa: E731
    assert count(Member) == 600
    assert count(Segment) >= 12 and count(Offer) >= 10 and count(Reward) >= 8
    assert count(Override) >= 3
    kinds = set(db.session.scalars(select(Segment.kind)))
    assert kinds == {"static", "dynamic"}
    assert db.session.scalar(select(func.count()).where(
        func.extract("month", Member.birthday) == 2, func.extract("day", Member.birthday) == 29))
    first = db.session.scalar(select(Member).where(Member.external_id == "M0000001"))
    snapshot = (first.id, first.tier, first.points, first.birthday)
    assert runner.invoke(args=["demo", "seed", "--if-empty"]).output.startswith(
        "The database already has data")
    verify = runner.invoke(args=["segments", "verify"])
    assert verify.exit_code == 0, verify.output
    for table in ("membership_events", "segment_memberships", "audience_segments",
                  "reward_required_segments", "override_history", "overrides", "audiences",
                  "segment_size_snapshots", "segment_dependencies", "offers", "rewards",
                  "segments", "audit_entries", "members"):
        db.session.execute(db.metadata.tables[table].delete())
    db.session.commit()
    runner.invoke(args=["demo", "seed", "--members", "600"])
    again = db.session.scalar(select(Member).where(Member.external_id == "M0000001"))
    assert (again.id, again.tier, again.points, again.birthday) == snapshot


def test_demo_seed_has_activities_and_behavioural_segments(runner):
    """Purchases and visits for the demo members, segments on them materialized, and an
    offer for the coffee regulars."""
    assert runner.invoke(args=["demo", "seed", "--members", "600"]).exit_code == 0
    kinds = dict(db.session.execute(select(Activity.type, func.count()).group_by(
        Activity.type)).tuples().all())
    assert kinds.get("purchase", 0) > 600 and kinds.get("visit", 0) > 300
    coffees = db.session.scalar(select(func.count()).select_from(Activity).where(
        Activity.type == "purchase", Activity.properties["item"].as_string() == "coffee"))
    assert coffees > 100
    segments = {s.name: s for s in db.session.scalars(select(Segment))}
    for name in ("Coffee regulars", "Lapsed visitors", "Big spenders this month"):
        assert segments[name].kind == "dynamic"
        assert segments[name].include[0]["field"].startswith("activity.")
        assert segments[name].size < 600
    assert segments["Coffee regulars"].size > 0 and segments["Lapsed visitors"].size > 0
    pastry = db.session.scalar(select(Offer).where(Offer.name == "Free pastry with your coffee"))
    audience = db.session.scalar(select(Audience).where(Audience.offer_id == pastry.id))
    assert audience.configuration == {"segments": [segments["Coffee regulars"].id]}
    verify = runner.invoke(args=["segments", "verify"])
    assert verify.exit_code == 0, verify.output


def test_demo_users_prints_logins(runner):
    result = runner.invoke(args=["demo", "users"])
    assert result.exit_code == 0
    assert "admin@beacon.test" in result.output and "support@beacon.test" in result.output


def test_the_demo_has_a_past_that_as_of_decisions_replay(runner, app):
    """Three demo members went from silver to gold 3 days ago: a week ago the gold offers
    were hidden from them, and What changed names the profile change."""
    from datetime import timedelta

    from webapp.services.replay import changes_between, explainer_at
    from webapp.timeutil import utcnow

    result = runner.invoke(args=["demo", "seed", "--members", "600"])
    assert result.exit_code == 0, result.output
    assert "went from silver to gold 3 days ago" in result.output
    story = result.output.split("history: ")[1].split(" went")[0].split(", ")
    member = db.session.scalar(select(Member).where(Member.external_id == story[0]))
    week_ago = utcnow() - timedelta(days=7)
    then = explainer_at(member.id, week_ago)
    assert then.attributes["tier"] == "silver"
    assert then.attributes["points"] == member.points - 600
    changed = changes_between(member.id, week_ago, utcnow())
    assert changed, "some offer or reward changed its decision"
    assert any("tier silver → gold" in c["what"] for item in changed for c in item["changes"])
