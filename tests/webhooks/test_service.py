"""The webhook subscription service: validation, secrets, audit, serialization."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.factories import make_member, make_segment
from webapp.extensions import db
from webapp.models import AuditEntry, MembershipEvent, Webhook, WebhookDelivery
from webapp.services.webhooks import (
    WebhookError,
    create_webhook,
    delete_webhook,
    rotate_secret,
    serialize_webhook,
    update_webhook,
)


def test_create_generates_a_secret_and_audits_without_it(app):
    webhook, secret = create_webhook({"url": "https://example.com/hook",
                                      "description": "CRM"}, actor="ada")
    assert secret.startswith("whsec_") and len(secret) > 40
    assert webhook.secret == secret and webhook.active
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.entity_type == "webhook"))
    assert entry.action == "webhook.create" and entry.actor_label == "ada"
    assert secret not in str(entry.after)
    attrs = serialize_webhook(webhook)
    assert "secret" not in attrs
    assert attrs["url"] == "https://example.com/hook"
    assert attrs["event_filter"] == {"actions": None, "segments": None}
    assert attrs["deliveries"]["pending"] == 0
    assert serialize_webhook(webhook, include_secret=True)["secret"] == secret


def test_create_keeps_a_given_secret_and_starts_after_existing_events(app):
    segment = make_segment(kind="dynamic")
    make_member()
    from webapp.services.membership import Cause, refresh_segment
    refresh_segment(segment, Cause("rule", "test"))
    db.session.commit()
    latest = db.session.scalar(select(func.max(MembershipEvent.id)))
    assert latest
    webhook, secret = create_webhook({"url": "http://127.0.0.1:9/x",
                                      "secret": "s" * 20}, actor="ada")
    assert secret == "s" * 20
    assert webhook.last_event_id == latest


@pytest.mark.parametrize(("data", "key", "words"), [
    ({}, "url", "Enter the URL"),
    ({"url": "ftp://example.com/x"}, "url", "http"),
    ({"url": "https:///nohost"}, "url", "host"),
    ({"url": "https://exa mple.com"}, "url", "spaces"),
    ({"url": 12}, "url", "Enter the URL"),
    ({"url": "https://example.com:99999/"}, "url", "not a valid URL"),
    ({"url": "https://e.com", "description": "x" * 201}, "description", "200"),
    ({"url": "https://e.com", "active": "yes"}, "active", "true or false"),
    ({"url": "https://e.com", "secret": "short"}, "secret", "16 to 128"),
    ({"url": "https://e.com", "event_filter": []}, "event_filter", "object"),
    ({"url": "https://e.com", "event_filter": {"actions": ["JOIN"]}},
     "event_filter.actions", "'JOIN'"),
    ({"url": "https://e.com", "event_filter": {"actions": []}}, "event_filter.actions",
     "non-empty"),
    ({"url": "https://e.com", "event_filter": {"segments": [999]}},
     "event_filter.segments", "999"),
    ({"url": "https://e.com", "event_filter": {"segment": [1]}}, "event_filter", "'segment'"),
    ({"url": "https://e.com", "colour": "red"}, "colour", "Unknown attribute"),
])
def test_bad_input_is_refused_naming_the_attribute(app, data, key, words):
    with pytest.raises(WebhookError) as info:
        create_webhook(data, actor="ada")
    assert words in info.value.errors[key]
    assert db.session.scalar(select(func.count()).select_from(Webhook)) == 0


def test_filter_accepts_ids_and_customer_segment_ids(app):
    a = make_segment(kind="static", customer_segment_id="vip-2026")
    b = make_segment(kind="static")
    webhook, _ = create_webhook({"url": "https://e.com", "event_filter": {
        "actions": ["REMOVE", "ADD", "ADD"], "segments": ["vip-2026", b.id, str(b.id)]}},
        actor="ada")
    assert webhook.event_filter == {"actions": ["ADD", "REMOVE"], "segments": [a.id, b.id]}


def test_update_is_partial_audited_and_refusal_changes_nothing(app):
    webhook, secret = create_webhook({"url": "https://e.com/a"}, actor="ada")
    with pytest.raises(WebhookError):
        update_webhook(webhook, {"description": "new", "url": "nope"}, actor="ada")
    db.session.refresh(webhook)
    assert webhook.description == "" and webhook.url == "https://e.com/a"
    update_webhook(webhook, {"description": "new", "created_at": "ignored"}, actor="bob")
    assert webhook.description == "new" and webhook.url == "https://e.com/a"
    assert webhook.secret == secret
    entry = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert entry.action == "webhook.update" and entry.actor_label == "bob"
    assert entry.before["description"] == "" and entry.after["description"] == "new"


def test_reactivation_skips_events_of_the_inactive_period(app):
    webhook, _ = create_webhook({"url": "https://e.com/a", "active": False}, actor="ada")
    assert webhook.last_event_id == 0
    make_member()
    make_segment(kind="dynamic")  # everyone matches: an ADD event
    latest = db.session.scalar(select(func.max(MembershipEvent.id)))
    update_webhook(webhook, {"active": True}, actor="ada")
    assert webhook.active and webhook.last_event_id == latest


def test_rotate_and_delete(app):
    webhook, secret = create_webhook({"url": "https://e.com/a"}, actor="ada")
    db.session.add(WebhookDelivery(webhook_id=webhook.id, event_id=1))
    db.session.commit()
    new = rotate_secret(webhook, actor="ada")
    assert new != secret and webhook.secret == new
    delete_webhook(webhook, actor="ada")
    assert db.session.scalar(select(func.count()).select_from(Webhook)) == 0
    assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
    actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["webhook.create", "webhook.rotate_secret", "webhook.delete"]
