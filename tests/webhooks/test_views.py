"""The webhooks dashboard: pages, fragments, 422s, the one-time secret, the log and roles."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.factories import add_to_list, make_member, make_segment
from webapp.extensions import db
from webapp.models import AuditEntry, Webhook, WebhookDelivery
from webapp.services.webhook_delivery import deliver
from webapp.services.webhooks import create_webhook

HX = {"HX-Request": "true"}


def form(**overrides):
    data = {"url": "https://crm.example.com/hooks", "description": "CRM",
            "actions": ["ADD", "REMOVE"], "segments": ""}
    data.update(overrides)
    return data


def test_index_lists_webhooks_with_their_state(client, auth):
    auth.login("admin")
    create_webhook({"url": "https://a.example.com/x", "description": "Alpha"}, actor="t")
    create_webhook({"url": "https://b.example.com/y", "active": False}, actor="t")
    page = client.get("/webhooks/").get_data(as_text=True)
    assert "https://a.example.com/x" in page and "Alpha" in page
    assert "inactive" in page and "Verifying a delivery" in page
    assert "<html" in page


def test_index_empty_state(client, auth):
    auth.login("admin")
    page = client.get("/webhooks/").get_data(as_text=True)
    assert "No webhooks yet" in page


def test_create_shows_the_secret_once(client, auth):
    auth.login("admin")
    segment = make_segment(kind="static", customer_segment_id="vip")
    response = client.post("/webhooks/", data=form(actions=["ADD"], segments=f"vip, {segment.id}"))
    assert response.status_code == 201
    webhook = db.session.scalar(select(Webhook))
    assert webhook.event_filter == {"actions": ["ADD"], "segments": [segment.id]}
    assert webhook.active
    page = response.get_data(as_text=True)
    assert webhook.secret in page and "will not be shown again" in page
    assert webhook.secret not in client.get("/webhooks/").get_data(as_text=True)
    assert webhook.secret not in client.get(f"/webhooks/{webhook.id}").get_data(as_text=True)


def test_create_with_htmx_swaps_the_main_region(client, auth):
    auth.login("admin")
    response = client.post("/webhooks/", data=form(), headers=HX)
    assert response.status_code == 201
    assert response.headers["HX-Retarget"] == "#webhooks-main"
    assert "showMessage" in response.headers["HX-Trigger"]
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="webhooks-main">') and "<html" not in body
    assert db.session.scalar(select(Webhook)).secret in body


@pytest.mark.parametrize(("data", "message"), [
    (form(url=""), "Enter the receiver URL."),
    (form(url="ftp://example.com/x"), "Only http:// and https:// URLs are accepted."),
    (form(actions=[]), "Choose at least one action."),
    (form(segments="nope-404"), "No segment has the id &#39;nope-404&#39;."),
])
def test_create_refuses_bad_input_with_422(client, auth, data, message):
    auth.login("admin")
    full = client.post("/webhooks/", data=data)
    assert full.status_code == 422 and "<html" in full.get_data(as_text=True)
    assert message in full.get_data(as_text=True)
    fragment = client.post("/webhooks/", data=data, headers=HX)
    body = fragment.get_data(as_text=True)
    assert fragment.status_code == 422 and "<html" not in body
    assert body.lstrip().startswith('<form id="create-form"') and message in body
    assert db.session.scalar(select(func.count()).select_from(Webhook)) == 0


def test_show_page_and_log_fragment(client, auth, receiver):
    auth.login("admin")
    webhook, secret = create_webhook({"url": receiver.url}, actor="t")
    receiver.secrets[str(webhook.id)] = secret
    segment = make_segment("Gold club", kind="static")
    add_to_list(segment, make_member())
    receiver.statuses = [500]
    deliver()
    page = client.get(f"/webhooks/{webhook.id}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in text
    assert "Gold club" in text and "retrying" in text and "HTTP 500" in text
    assert "Retry now" in text and "Send test event" in text and "Delete" in text
    fragment = client.get(f"/webhooks/{webhook.id}?status=delivered", headers=HX)
    body = fragment.get_data(as_text=True)
    assert body.lstrip().startswith('<section class="card" id="delivery-log">')
    assert "No delivered deliveries" in body and "<html" not in body
    assert client.get("/webhooks/999").status_code == 404


def test_log_is_paginated(client, auth):
    auth.login("admin")
    webhook, _ = create_webhook({"url": "https://e.com/x"}, actor="t")
    db.session.add_all([WebhookDelivery(webhook_id=webhook.id, event_id=i + 1)
                        for i in range(30)])
    db.session.commit()
    first = client.get(f"/webhooks/{webhook.id}").get_data(as_text=True)
    assert "Page 1 of 2" in first and "event 30" in first and "event 5<" not in first
    second = client.get(f"/webhooks/{webhook.id}?page=2", headers=HX).get_data(as_text=True)
    assert "Page 2 of 2" in second and "event 5<" in second


def test_update_full_fragment_and_422(client, auth):
    auth.login("admin")
    webhook, _ = create_webhook({"url": "https://e.com/x"}, actor="t")
    url = f"/webhooks/{webhook.id}"
    response = client.post(url, data=form(url="https://e.com/new", active="y"))
    assert response.status_code == 303 and response.location.endswith(url)
    assert webhook.url == "https://e.com/new" and webhook.active
    response = client.post(url, data=form(url="https://e.com/htmx", active="y"), headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert body.lstrip().startswith('<section class="card" id="settings">')
    assert "showMessage" in response.headers["HX-Trigger"]
    bad = client.post(url, data=form(url="javascript:alert(1)"), headers=HX)
    assert bad.status_code == 422 and "Only http:// and https://" in bad.get_data(as_text=True)
    db.session.refresh(webhook)
    assert webhook.url == "https://e.com/htmx"
    full_bad = client.post(url, data=form(url=""))
    assert full_bad.status_code == 422 and "<html" in full_bad.get_data(as_text=True)


def test_deactivate_rotate_and_delete(client, auth):
    auth.login("admin")
    webhook, secret = create_webhook({"url": "https://e.com/x"}, actor="t")
    assert client.post(f"/webhooks/{webhook.id}/active").status_code == 303
    assert not webhook.active
    client.post(f"/webhooks/{webhook.id}/active")
    assert webhook.active
    rotated = client.post(f"/webhooks/{webhook.id}/rotate")
    db.session.refresh(webhook)
    assert webhook.secret != secret and webhook.secret in rotated.get_data(as_text=True)
    response = client.post(f"/webhooks/{webhook.id}/delete")
    assert response.status_code == 303 and response.location.endswith("/webhooks/")
    assert db.session.scalar(select(func.count()).select_from(Webhook)) == 0
    actions = db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.entity_type == "webhook").order_by(AuditEntry.id)).all()
    assert actions == ["webhook.create", "webhook.update", "webhook.update",
                       "webhook.rotate_secret", "webhook.delete"]


def test_send_test_event_and_retry_now(client, auth, receiver):
    auth.login("admin")
    webhook, secret = create_webhook({"url": receiver.url}, actor="t")
    receiver.secrets[str(webhook.id)] = secret
    receiver.statuses = [500]
    response = client.post(f"/webhooks/{webhook.id}/test", headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="delivery-log"' in body
    assert "Test event queued" in response.headers["HX-Trigger"]
    [row] = db.session.scalars(select(WebhookDelivery)).all()
    assert row.status == "retrying" and receiver.requests[0]["signed"]
    assert receiver.requests[0]["events"][0]["action"] == "TEST"
    response = client.post(f"/webhooks/{webhook.id}/deliveries/{row.id}/retry")
    assert response.status_code == 303
    db.session.refresh(row)
    assert row.status == "delivered" and row.attempts == 2
    assert client.post(f"/webhooks/{webhook.id}/deliveries/{row.id + 1}/retry").status_code == 404


@pytest.mark.parametrize("role", ["marketer", "support"])
def test_only_admins_see_webhooks(client, auth, role):
    webhook, _ = create_webhook({"url": "https://e.com/x"}, actor="t")
    auth.login(role)
    assert client.get("/webhooks/").status_code == 403
    assert client.get(f"/webhooks/{webhook.id}").status_code == 403
    assert client.post("/webhooks/", data=form()).status_code == 403
    assert client.post(f"/webhooks/{webhook.id}/delete").status_code == 403
    assert db.session.scalar(select(func.count()).select_from(Webhook)) == 1
    assert "/webhooks/" not in client.get("/").get_data(as_text=True)


def test_anonymous_is_sent_to_login(client):
    response = client.get("/webhooks/")
    assert response.status_code == 302 and "/login" in response.location


def test_the_documented_verification_recipe_works(client, auth):
    import html
    import re
    import time

    from webapp.services.webhook_delivery import signature_header

    auth.login("admin")
    page = client.get("/webhooks/").get_data(as_text=True)
    snippet = html.unescape(re.search(
        r'<pre class="code-sample"[^>]*><code>(.*?)</code></pre>', page, re.S).group(1))
    namespace: dict = {}
    exec(snippet, namespace)  # the code a receiver would copy from the page
    verify = namespace["verify"]
    body = b'[{"event_id":1,"action":"ADD"}]'
    header = signature_header("whsec_recipe", body, int(time.time()))
    assert verify("whsec_recipe", body, header)
    assert not verify("whsec_other", body, header)
    assert not verify("whsec_recipe", body + b" ", header)
    stale = signature_header("whsec_recipe", body, int(time.time()) - 600)
    assert not verify("whsec_recipe", body, stale)


def test_index_warns_when_no_worker_sends(client, auth):
    from datetime import timedelta

    from webapp.timeutil import utcnow

    auth.login("admin")
    webhook, _ = create_webhook({"url": "https://e.com/x"}, actor="t")
    db.session.add(WebhookDelivery(webhook_id=webhook.id, event_id=1, status="pending",
                                   next_attempt_at=utcnow() - timedelta(seconds=30)))
    db.session.commit()
    assert "Deliveries are waiting" not in client.get("/webhooks/").get_data(as_text=True)
    db.session.add(WebhookDelivery(webhook_id=webhook.id, event_id=2, status="pending",
                                   next_attempt_at=utcnow() - timedelta(minutes=10)))
    db.session.commit()
    page = client.get("/webhooks/").get_data(as_text=True)
    assert "Deliveries are waiting" in page and "events deliver --loop" in page
