"""Delivery: signed batches to a local receiver, retries with backoff, filters, the worker."""

from __future__ import annotations

import hashlib
import hmac
import socket
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from tests.factories import add_to_list, make_member, make_segment
from webapp.extensions import db
from webapp.models import MembershipEvent, WebhookDelivery
from webapp.services import webhook_delivery as delivery_module
from webapp.services.membership import Cause, apply_delta
from webapp.services.webhook_delivery import (
    deliver,
    queue_test_event,
    retry_delivery,
    sign,
    signature_header,
    verify_signature,
)
from webapp.services.webhooks import create_webhook, update_webhook
from webapp.timeutil import utcnow


def subscribe(receiver, **data):
    """A webhook pointing at the receiver, its secret registered there."""
    webhook, secret = create_webhook({"url": receiver.url, **data}, actor="test")
    receiver.secrets[str(webhook.id)] = secret
    return webhook


def remove_from_list(segment, *members):
    apply_delta(segment, remove=[m.id for m in members], via="list",
                cause=Cause("static_list", "test", {}))
    db.session.commit()


def deliveries(webhook):
    return db.session.scalars(select(WebhookDelivery).where(
        WebhookDelivery.webhook_id == webhook.id).order_by(WebhookDelivery.id)).all()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def test_signature_recipe():
    header = signature_header("whsec_test", b'[{"a":1}]', 1_700_000_000)
    expected = hmac.new(b"whsec_test", b'1700000000.[{"a":1}]', hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert sign("whsec_test", 1_700_000_000, b'[{"a":1}]') == expected
    assert verify_signature("whsec_test", b'[{"a":1}]', header, now=1_700_000_100)
    assert not verify_signature("whsec_other", b'[{"a":1}]', header, now=1_700_000_100)
    assert not verify_signature("whsec_test", b'[{"a":2}]', header, now=1_700_000_100)
    assert not verify_signature("whsec_test", b'[{"a":1}]', header, now=1_700_000_400)
    assert not verify_signature("whsec_test", b"[]", "garbage", now=1_700_000_000)


def test_an_event_is_delivered_signed_with_its_details(app, receiver):
    segment = make_segment("VIP", kind="static", customer_segment_id="vip-2026")
    webhook = subscribe(receiver)
    member = make_member(external_id="CRM-42")
    add_to_list(segment, member)

    result = deliver()

    assert (result.created, result.posts, result.delivered) == (1, 1, 1)
    [request] = receiver.requests
    assert request["signed"] and request["clock_skew"] < 60
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["headers"]["Beacon-Event-Count"] == "1"
    [event] = request["events"]
    assert event["action"] == "ADD"
    assert (event["segment_id"], event["segment_name"], event["customer_segment_id"]) == (
        segment.id, "VIP", "vip-2026")
    assert (event["member_id"], event["member_external_id"]) == (member.id, "CRM-42")
    assert event["source"] == "static_list" and event["cause"]["actor"] == "test"
    assert event["event_id"] > 0 and event["time"].endswith("Z")
    [row] = deliveries(webhook)
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 1, 200)
    assert row.delivered_at is not None and row.next_attempt_at is None

    assert deliver().posts == 0  # nothing new, nothing resent


def test_a_failure_is_retried_with_backoff(app, receiver):
    segment = make_segment(kind="static")
    webhook = subscribe(receiver)
    add_to_list(segment, make_member())
    receiver.statuses = [500]
    t0 = utcnow()

    first = deliver(now=t0)
    assert (first.posts, first.retrying) == (1, 1)
    [row] = deliveries(webhook)
    assert (row.status, row.attempts, row.last_status_code) == ("retrying", 1, 500)
    assert "HTTP 500" in row.last_error and "receiver says no" in row.last_error
    assert row.next_attempt_at == t0 + timedelta(seconds=30)

    assert deliver(now=t0 + timedelta(seconds=10)).posts == 0
    second = deliver(now=t0 + timedelta(seconds=31))
    assert (second.posts, second.delivered) == (1, 1)
    db.session.refresh(row)
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 2, 200)
    assert row.last_error is None
    assert len(receiver.requests) == 2
    assert all(r["signed"] for r in receiver.requests)
    assert receiver.requests[0]["body"] == receiver.requests[1]["body"]


def test_backoff_grows_and_ends_in_failed(app):
    app.config["WEBHOOK_MAX_ATTEMPTS"] = 3
    segment = make_segment(kind="static")
    webhook, _ = create_webhook({"url": closed_port_url()}, actor="test")
    add_to_list(segment, make_member())
    t0 = utcnow()
    deliver(now=t0)
    [row] = deliveries(webhook)
    assert row.status == "retrying" and row.last_status_code is None
    assert row.last_error.startswith("Connection failed")
    assert row.next_attempt_at == t0 + timedelta(seconds=30)
    t1 = t0 + timedelta(seconds=30)
    deliver(now=t1)
    db.session.refresh(row)
    assert row.attempts == 2 and row.next_attempt_at == t1 + timedelta(seconds=120)
    result = deliver(now=t1 + timedelta(seconds=120))
    db.session.refresh(row)
    assert result.failed == 1
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 3, None)
    assert deliver(now=t1 + timedelta(days=1)).posts == 0


def test_a_slow_receiver_times_out(app, receiver):
    app.config["WEBHOOK_TIMEOUT"] = 0.2
    receiver.delay = 0.6
    segment = make_segment(kind="static")
    webhook = subscribe(receiver)
    add_to_list(segment, make_member())
    deliver()
    [row] = deliveries(webhook)
    assert row.status == "retrying" and "Timed out after 0.2 s" in row.last_error


def test_a_redirect_is_not_followed(app, receiver):
    receiver.statuses = [302]
    segment = make_segment(kind="static")
    webhook = subscribe(receiver)
    add_to_list(segment, make_member())
    deliver()
    [row] = deliveries(webhook)
    assert (row.status, row.last_status_code) == ("retrying", 302)
    assert len(receiver.requests) == 1


def test_filters_by_action_and_segment(app, receiver):
    one = make_segment("One", kind="static", customer_segment_id="one")
    two = make_segment("Two", kind="static")
    removals = subscribe(receiver, event_filter={"actions": ["REMOVE"]})
    only_one = subscribe(receiver, event_filter={"segments": ["one"]})
    adds_in_two = subscribe(receiver, event_filter={"actions": ["ADD"], "segments": [two.id]})
    everything = subscribe(receiver)
    a, b = make_member(), make_member()
    add_to_list(one, a)
    add_to_list(two, b)
    remove_from_list(one, a)

    deliver()

    def seen(webhook):
        return [(e["action"], e["segment_name"]) for e in receiver.events(webhook.id)]

    assert seen(removals) == [("REMOVE", "One")]
    assert seen(only_one) == [("ADD", "One"), ("REMOVE", "One")]
    assert seen(adds_in_two) == [("ADD", "Two")]
    assert seen(everything) == [("ADD", "One"), ("ADD", "Two"), ("REMOVE", "One")]
    assert all(r["signed"] for r in receiver.requests)


def test_deactivated_webhooks_get_nothing(app, receiver):
    segment = make_segment(kind="static")
    webhook = subscribe(receiver, active=False)
    add_to_list(segment, make_member())
    assert deliver().posts == 0
    update_webhook(webhook, {"active": True}, actor="test")
    assert deliver().posts == 0  # the inactive period is not replayed
    add_to_list(segment, make_member(external_id="LATER"))
    update_webhook(webhook, {"active": False}, actor="test")
    assert deliver().posts == 0
    assert receiver.requests == []
    update_webhook(webhook, {"active": True}, actor="test")
    add_to_list(segment, make_member(external_id="AFTER"))
    deliver()
    assert [e["member_external_id"] for e in receiver.events()] == ["AFTER"]


def test_events_are_batched_in_order(app, receiver):
    app.config["WEBHOOK_BATCH_SIZE"] = 2
    segment = make_segment(kind="static")
    subscribe(receiver)
    members = [make_member() for _ in range(5)]
    add_to_list(segment, *members)
    result = deliver()
    assert (result.created, result.posts, result.delivered) == (5, 3, 5)
    assert [len(r["events"]) for r in receiver.requests] == [2, 2, 1]
    ids = [e["event_id"] for e in receiver.events()]
    assert ids == sorted(ids) and len(set(ids)) == 5


def test_a_failing_receiver_holds_newer_events_until_the_retry(app, receiver):
    segment = make_segment(kind="static")
    webhook = subscribe(receiver)
    add_to_list(segment, make_member(external_id="FIRST"))
    receiver.statuses = [503]
    t0 = utcnow()
    deliver(now=t0)
    add_to_list(segment, make_member(external_id="SECOND"))
    assert deliver(now=t0 + timedelta(seconds=5)).posts == 0
    assert [d.status for d in deliveries(webhook)] == ["retrying", "pending"]
    result = deliver(now=t0 + timedelta(seconds=30))
    assert (result.posts, result.delivered) == (1, 2)
    assert [e["member_external_id"] for e in receiver.requests[-1]["events"]] == [
        "FIRST", "SECOND"]


def test_test_event_and_retry_now(app, receiver):
    app.config["WEBHOOK_MAX_ATTEMPTS"] = 1
    webhook = subscribe(receiver)
    receiver.statuses = [500]
    queue_test_event(webhook, actor="test")
    deliver()
    [row] = deliveries(webhook)
    assert (row.event_id, row.status) == (0, "failed")
    assert receiver.requests[0]["events"][0]["action"] == "TEST"
    assert receiver.requests[0]["signed"]
    retry_delivery(row, actor="test")
    assert row.status == "retrying"
    deliver()
    db.session.refresh(row)
    assert (row.status, row.attempts) == ("delivered", 2)


def test_deliveries_are_created_once_per_event(app, receiver):
    segment = make_segment(kind="static")
    webhook = subscribe(receiver)
    add_to_list(segment, make_member(), make_member())
    assert delivery_module.collect() == 2
    assert delivery_module.collect() == 0
    count = db.session.scalar(select(func.count()).select_from(WebhookDelivery).where(
        WebhookDelivery.webhook_id == webhook.id))
    assert count == 2


def test_cli_deliver_runs_one_pass(app, runner, receiver):
    segment = make_segment(kind="static")
    subscribe(receiver)
    add_to_list(segment, make_member())
    result = runner.invoke(args=["events", "deliver"])
    assert result.exit_code == 0, result.output
    assert "1 new deliveries; 1 POSTs: 1 delivered" in result.output
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(("redis_url", "jobs_sync", "expected"), [
    ("redis://127.0.0.1:1/0", False, 1),
    (None, False, 0),
    ("redis://127.0.0.1:1/0", True, 0),
])
def test_a_commit_with_events_schedules_delivery_only_with_redis(
        app, monkeypatch, redis_url, jobs_sync, expected):
    calls = []
    monkeypatch.setattr(delivery_module, "schedule_after_commit", lambda: calls.append(1))
    app.config.update(REDIS_URL=redis_url, JOBS_SYNC=jobs_sync)
    segment = make_segment(kind="static")
    member = make_member()
    assert calls == []  # commits without events schedule nothing
    add_to_list(segment, member)  # events written through the session
    assert len(calls) == expected
    make_segment(kind="dynamic")  # set-based events written through the connection
    assert len(calls) == 2 * expected
    db.session.rollback()
    make_member()
    assert len(calls) == 2 * expected


def test_a_scheduling_failure_never_breaks_the_commit(app, monkeypatch):
    def broken():
        raise ConnectionError("redis is down")

    monkeypatch.setattr(delivery_module, "schedule_after_commit", broken)
    app.config.update(REDIS_URL="redis://127.0.0.1:1/0", JOBS_SYNC=False)
    segment = make_segment(kind="static")
    add_to_list(segment, make_member())
    assert segment.size == 1


def test_events_committed_late_are_not_skipped(app, receiver):
    """PostgreSQL: an open transaction holding an older event id holds collection back."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: event ids commit in order")
    segment = make_segment(kind="static")
    subscribe(receiver)
    slow, quick = make_member(external_id="SLOW"), make_member(external_id="QUICK")
    # A concurrent membership transaction, on a connection of its own, that takes an event id
    # and commits after a later event has been committed.
    other = db.engine.connect()
    transaction = other.begin()
    other.execute(insert(MembershipEvent.__table__).values(
        action="ADD", segment_id=segment.id, segment_name=segment.name, member_id=slow.id,
        source="upload", cause={}, actor_label="slow upload", created_at=utcnow()))
    try:
        add_to_list(segment, quick)
        assert deliver().created == 0
        assert receiver.requests == []
    finally:
        transaction.commit()
        other.close()
    deliver()
    assert [e["member_external_id"] for e in receiver.events()] == ["SLOW", "QUICK"]


def test_cli_loop_survives_a_failed_pass(app, runner, receiver, monkeypatch):
    from webapp.webhooks import cli

    segment = make_segment(kind="static")
    subscribe(receiver)
    add_to_list(segment, make_member())
    real_deliver, calls = delivery_module.deliver, []

    def flaky_deliver(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return real_deliver(**kwargs)

    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(delivery_module, "deliver", flaky_deliver)
    monkeypatch.setattr(cli.time, "sleep", sleep)
    result = runner.invoke(args=["events", "deliver", "--loop", "--interval", "0.5"])
    assert result.exit_code == 0, result.output
    assert "Delivery pass failed (RuntimeError: database went away)" in result.output
    assert "1 new deliveries; 1 POSTs: 1 delivered" in result.output
    assert sleeps == [0.5, 0.5] and len(receiver.requests) == 1


def test_prune_keeps_the_queue_and_recent_log_and_deletes_the_old_log(app, runner, receiver):
    segment = make_segment(kind="static")
    webhook = subscribe(receiver)
    add_to_list(segment, *[make_member() for _ in range(4)])
    t0 = utcnow()
    receiver.statuses = [200]
    app.config["WEBHOOK_BATCH_SIZE"] = 1
    app.config["WEBHOOK_MAX_ATTEMPTS"] = 1
    receiver.statuses = [200, 500, 200]
    deliver(now=t0)  # one delivered, one failed; the other two wait behind the failure
    rows = deliveries(webhook)
    assert [r.status for r in rows[:2]] == ["delivered", "failed"]

    # 29 days later nothing is old enough; 31 days later the delivered and failed rows are.
    assert delivery_module.prune(now=t0 + timedelta(days=29)) == 0
    assert delivery_module.prune(now=t0 + timedelta(days=31)) == 2
    left = deliveries(webhook)
    assert len(left) == 2 and all(r.status in ("pending", "retrying") for r in left)
    assert delivery_module.prune(now=t0 + timedelta(days=400)) == 0  # never the queue

    app.config["WEBHOOK_LOG_RETENTION_DAYS"] = 0
    assert delivery_module.prune(now=t0 + timedelta(days=400)) == 0
    result = runner.invoke(args=["events", "prune"])
    assert result.exit_code == 0 and "kept forever" in result.output
    result = runner.invoke(args=["events", "prune", "--days", "-1"])
    assert result.exit_code == 2 and "-1" in result.output


def test_a_delivery_pass_prunes_at_most_hourly(app, receiver, monkeypatch):
    calls = []
    monkeypatch.setattr(delivery_module, "prune", lambda now=None: calls.append(now) or 0)
    monkeypatch.setattr(delivery_module, "_last_prune", [-1e9])
    deliver()
    deliver()
    assert len(calls) == 1
