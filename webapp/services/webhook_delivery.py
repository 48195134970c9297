"""Webhook delivery: signed POSTs of membership events, retried with backoff, by a worker.

Nothing here runs inside a web request. A worker does it: `flask events deliver` (one pass;
`--loop` keeps going), or with `REDIS_URL` set an RQ job that a commit writing membership
events schedules (at most one queued job at a time), so a slow receiver never slows a request.

One pass (`deliver`):

1. **Collect.** For each active webhook, every event after its `last_event_id` that matches its
   filter (actions, segments) becomes a `pending` delivery row, in one INSERT … SELECT; then
   `last_event_id` moves to the newest event. A 1,000,000-member upload is one statement here,
   not a million of anything.
2. **Send.** Each webhook's due deliveries go out in order of event id, up to
   `WEBHOOK_BATCH_SIZE` (default 100) events per POST. The body is a JSON **array** of events:

       [{"event_id": 41, "action": "ADD", "segment_id": 7, "segment_name": "VIP",
         "customer_segment_id": "vip-2026", "member_id": "…uuid…",
         "member_external_id": "CRM-0042", "source": "upload",
         "cause": {"actor": "Ada Admin", "upload_id": 3}, "time": "2026-11-22T10:15:02.117Z"}]

   A 2xx answer marks every delivery of the batch delivered. Anything else (another status, a
   redirect, a timeout after `WEBHOOK_TIMEOUT` seconds (default 5), a refused connection) marks
   them for a retry after 30 s, 2 min, 10 min, 30 min, 1 h, 3 h, then 6 h; after
   `WEBHOOK_MAX_ATTEMPTS` (default 8) attempts a delivery is `failed` and stays in the log,
   where an admin can retry it. While a webhook's oldest undelivered event waits for its retry,
   its newer events wait behind it: a failing receiver is backed off as a whole and events stay
   in order. Delivery is at least once: receivers should ignore an `event_id` they have seen.

   Before each POST the URL's host is resolved once and every address checked
   (`webapp.services.webhook_addresses`); the connection goes to a checked address. A host that now
   resolves to an internal address is not contacted: the attempt fails with the reason.

Signature. Every POST carries

    Beacon-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>
    Beacon-Webhook-Id: <webhook id>
    Beacon-Event-Count: <events in the body>

where `v1 = HMAC-SHA256(key = the webhook secret (UTF-8), message = "<t>.<raw body>")`.
To verify: take the raw request body bytes before any JSON parsing; split the header on `,`
and `=`; compute the HMAC over `t + "." + body`; compare it with `v1` in constant time
(`hmac.compare_digest`); refuse the request when `t` is more than 5 minutes from your clock
(replays). `verify_signature` below is that recipe in Python.

A test event (the dashboard's "Send test event") is a delivery with `event_id` 0 whose body is
one event with `"action": "TEST"`; it is sent on its own, never batched with real events.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import http.client
import json
import logging
import socket
import ssl
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, has_app_context
from sqlalchemy import (
    DateTime,
    Integer,
    String,
    delete,
    event,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from webapp.config import DEFAULTS
from webapp.extensions import db
from webapp.models import Member, MembershipEvent, Webhook, WebhookDelivery
from webapp.services.membership import EVENTS_WRITTEN
from webapp.services.webhook_addresses import BlockedDestination, check_url
from webapp.services.webhooks import event_payload
from webapp.timeutil import utcnow

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Beacon-Signature"
TOLERANCE_SECONDS = 300
BACKOFF_SECONDS = (30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600)
# Outside an application (signing helpers, scripts) the settings keep config.py's defaults.
DEFAULT_BATCH_SIZE = DEFAULTS["WEBHOOK_BATCH_SIZE"]
DEFAULT_MAX_ATTEMPTS = DEFAULTS["WEBHOOK_MAX_ATTEMPTS"]
DEFAULT_TIMEOUT = DEFAULTS["WEBHOOK_TIMEOUT"]
DEFAULT_RETENTION_DAYS = DEFAULTS["WEBHOOK_LOG_RETENTION_DAYS"]
PRUNE_EVERY_SECONDS = 3600
DUE = ("pending", "retrying")
TEST_EVENT_ID = 0
USER_AGENT = "Beacon-Webhooks/1.0"
SCHEDULE_KEY = "beacon:webhooks:delivery-scheduled"
JOB_SECONDS = 60
LOCK_TRIES = 5

deliveries_t = WebhookDelivery.__table__
events_t = MembershipEvent.__table__


@dataclass
class PassResult:
    """What one delivery pass did."""

    created: int = 0
    posts: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    pruned: int = 0

    def add(self, other: PassResult) -> None:
        """Accumulate another pass's counts."""
        for key, value in asdict(other).items():
            setattr(self, key, getattr(self, key) + value)


# --- signing ----------------------------------------------------------------------------

def unix_time(now: datetime) -> int:
    """A naive UTC datetime as Unix seconds."""
    return calendar.timegm(now.utctimetuple())


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of "<timestamp>.<body>" with the secret."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    """The Beacon-Signature header value: t=<unix>,v1=<hex>."""
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def verify_signature(secret: str, body: bytes, header: str, *, now: float | None = None,
                     tolerance: int = TOLERANCE_SECONDS) -> bool:
    """The receiver's check: a v1 signature matches and the timestamp is recent enough."""
    timestamp, candidates = None, []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body)
    return any(hmac.compare_digest(expected, c) for c in candidates)


# --- configuration ----------------------------------------------------------------------

def _setting(name: str, default: Any) -> Any:
    value = current_app.config.get(name) if has_app_context() else None
    return default if value is None else value


def settings() -> dict[str, Any]:
    """The delivery settings in force (batch size, attempts, timeout, backoff in seconds)."""
    return {"batch_size": int(_setting("WEBHOOK_BATCH_SIZE", DEFAULT_BATCH_SIZE)),
            "max_attempts": int(_setting("WEBHOOK_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)),
            "timeout": float(_setting("WEBHOOK_TIMEOUT", DEFAULT_TIMEOUT)),
            "retention_days": int(_setting("WEBHOOK_LOG_RETENTION_DAYS",
                                           DEFAULT_RETENTION_DAYS)),
            "backoff": BACKOFF_SECONDS}


def backoff(attempts: int) -> timedelta:
    """How long to wait after the given number of failed attempts."""
    index = min(max(attempts, 1), len(BACKOFF_SECONDS)) - 1
    return timedelta(seconds=BACKOFF_SECONDS[index])


# --- collect ----------------------------------------------------------------------------

def stable_latest_event_id() -> int | None:
    """The newest event id below which no event can still appear; None when unknown now.

    On PostgreSQL a transaction can take event ids and commit after a later one (a long
    upload next to a quick API call); moving a webhook's `last_event_id` past its ids would
    lose those events. SHARE mode waits for no one here (NOWAIT) but is only granted when no
    transaction that wrote events is still open, so the maximum read under it is final; new
    writers are never held up. SQLite has one writer at a time, so ids commit in order.
    """
    if db.session.get_bind().dialect.name != "postgresql":
        return db.session.scalar(select(func.max(events_t.c.id))) or 0
    for attempt in range(LOCK_TRIES):
        try:
            db.session.execute(text("LOCK TABLE membership_events IN SHARE MODE NOWAIT"))
            latest = db.session.scalar(select(func.max(events_t.c.id))) or 0
            db.session.commit()
            return latest
        except OperationalError:
            db.session.rollback()
            if attempt + 1 < LOCK_TRIES:
                time.sleep(0.05)
    return None


def collect(now: datetime | None = None, webhook_id: int | None = None) -> int:
    """Create pending deliveries for new matching events of each active webhook; commits."""
    now = now or utcnow()
    latest = stable_latest_event_id()
    if latest is None:  # events are being written right now: the next pass collects them
        return 0
    query = select(Webhook.id, Webhook.last_event_id, Webhook.event_filter).where(
        Webhook.active.is_(True), Webhook.last_event_id < latest)
    if webhook_id is not None:
        query = query.where(Webhook.id == webhook_id)
    rows = db.session.execute(query.order_by(Webhook.id)).all()
    db.session.commit()
    created = 0
    for wid, last, event_filter in rows:
        # Claim the range first: a second worker doing the same finds last_event_id moved
        # and skips, so no event is collected twice.
        claimed = db.session.execute(
            update(Webhook).where(Webhook.id == wid, Webhook.last_event_id == last,
                                  Webhook.active.is_(True))
            .values(last_event_id=latest).execution_options(synchronize_session=False))
        if claimed.rowcount != 1:
            db.session.rollback()
            continue
        conditions = [events_t.c.id > last, events_t.c.id <= latest]
        event_filter = event_filter or {}
        if event_filter.get("actions"):
            conditions.append(events_t.c.action.in_(event_filter["actions"]))
        if event_filter.get("segments"):
            conditions.append(events_t.c.segment_id.in_(event_filter["segments"]))
        matching = select(
            literal(wid, Integer), events_t.c.id, literal("pending", String),
            literal(0, Integer), literal(now, DateTime), literal(now, DateTime),
        ).where(*conditions).order_by(events_t.c.id)
        result = db.session.execute(insert(deliveries_t).from_select(
            ["webhook_id", "event_id", "status", "attempts", "next_attempt_at", "created_at"],
            matching))
        count = result.rowcount
        if count is None or count < 0:  # psycopg reports -1 for INSERT ... SELECT
            count = db.session.scalar(
                select(func.count()).select_from(events_t).where(*conditions)) or 0
        db.session.commit()
        created += count
    return created


# --- send -------------------------------------------------------------------------------

def _pinned_connector(addresses: tuple[str, ...]):
    """http.client's connect hook, bound to the checked addresses (tried in order).

    The connection keeps the URL's host for the Host header and the TLS server name (and
    certificate check); only the TCP connection goes to an address that passed the check,
    so the name is never resolved a second time.
    """

    def create_connection(address, timeout, source_address=None):
        port = address[1]
        failure: OSError | None = None
        for ip in addresses:
            try:
                return socket.create_connection((ip, port), timeout, source_address)
            except TimeoutError:
                raise
            except OSError as exc:
                failure = exc
        raise failure or OSError("no address to connect to")

    return create_connection


def _tls_context() -> ssl.SSLContext:
    """The TLS settings of deliveries: the system's trusted CAs, host names checked."""
    return ssl.create_default_context()


def post(url: str, body: bytes, headers: dict[str, str],
         timeout: float) -> tuple[int | None, str | None]:
    """POST the body; returns (status code or None, error message or None for a 2xx).

    The URL's host is resolved and checked once (`addresses.check_url`) and the connection
    goes to a checked address; a host that now resolves to an internal address is refused
    without connecting. A redirect is an answer we do not follow: a failed attempt.
    """
    try:
        destination = check_url(url)
    except BlockedDestination as exc:
        return None, f"Not sent: {exc}"
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if destination.scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            destination.host, destination.port, timeout=timeout,
            context=_tls_context())
    else:
        connection = http.client.HTTPConnection(destination.host, destination.port,
                                                timeout=timeout)
    connection._create_connection = _pinned_connector(destination.addresses)
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        status = response.status
        if 200 <= status < 300:
            response.read(65536)
            return status, None
        try:
            detail = response.read(300).decode("utf-8", "replace").strip()
        except Exception:  # the error body is only a courtesy for the log
            detail = ""
        message = f"HTTP {status} {response.reason}".strip()
        return status, f"{message}: {detail[:200]}" if detail else message
    except TimeoutError:
        return None, f"Timed out after {timeout:g} s"
    except (OSError, http.client.HTTPException, ValueError) as exc:
        reason = exc.reason if isinstance(exc, ssl.SSLError) and exc.reason else exc
        return None, f"Connection failed: {reason}"
    finally:
        connection.close()


def sample_event(webhook_id: int, now: datetime) -> dict[str, Any]:
    """The body item of a test delivery."""
    return {
        "event_id": TEST_EVENT_ID, "action": "TEST", "segment_id": None,
        "segment_name": "Test event", "customer_segment_id": None, "member_id": None,
        "member_external_id": None, "source": "test",
        "cause": {"actor": "Beacon", "detail": f"Test event for webhook {webhook_id}"},
        "time": now.isoformat(timespec="milliseconds") + "Z",
    }


def _payloads(event_ids: list[int]) -> dict[int, dict[str, Any]]:
    if not event_ids:
        return {}
    members_t = Member.__table__
    # Plain rows, not ORM objects: a batch is read once and never changed.
    rows = db.session.execute(
        select(events_t, members_t.c.external_id.label("member_external_id"))
        .outerjoin(members_t, members_t.c.id == events_t.c.member_id)
        .where(events_t.c.id.in_(event_ids)))
    return {row.id: event_payload(row, row.member_external_id) for row in rows}


def _relaxed_commit() -> None:
    """PostgreSQL: this bookkeeping transaction need not wait for its WAL flush.

    Losing the last moment of delivery bookkeeping in a crash only means a batch is sent
    again, which at-least-once delivery allows; not waiting makes each batch much cheaper.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL synchronous_commit TO OFF"))


def _claim(which, now: datetime, lease: timedelta) -> list:
    """Reserve the due deliveries `which` selects for this worker (one UPDATE … RETURNING).

    Returns (id, event_id, attempts) rows in id order; a delivery another worker reserved in
    the meantime is no longer due and is not returned.
    """
    _relaxed_commit()
    rows = db.session.execute(
        update(deliveries_t)
        .where(which, deliveries_t.c.status.in_(DUE), deliveries_t.c.next_attempt_at <= now)
        .values(next_attempt_at=now + lease)
        .returning(deliveries_t.c.id, deliveries_t.c.event_id, deliveries_t.c.attempts)).all()
    db.session.commit()
    return sorted(rows, key=lambda row: row.id)


@dataclass(frozen=True)
class _Target:
    """What sending needs of a webhook, read once (rows expire at every commit)."""

    id: int
    url: str
    secret: str


def _record_outcome(rows: list[tuple[int, int]], now: datetime, status: int | None,
                    error: str | None, max_attempts: int, result: PassResult) -> None:
    """Set-based: one UPDATE per distinct attempt count, never one per delivery."""
    _relaxed_commit()
    by_attempts: dict[int, list[int]] = {}
    for delivery_id, attempts in rows:
        by_attempts.setdefault(attempts + 1, []).append(delivery_id)
    for attempts, ids in by_attempts.items():
        values: dict[str, Any] = {"attempts": attempts, "last_status_code": status}
        if error is None:
            values.update(status="delivered", last_error=None, delivered_at=now,
                          next_attempt_at=None)
            result.delivered += len(ids)
        elif attempts >= max_attempts:
            values.update(status="failed", last_error=error, next_attempt_at=None)
            result.failed += len(ids)
        else:
            values.update(status="retrying", last_error=error,
                          next_attempt_at=now + backoff(attempts))
            result.retrying += len(ids)
        db.session.execute(update(deliveries_t).where(deliveries_t.c.id.in_(ids))
                           .values(**values))
    db.session.commit()


def _lease() -> timedelta:
    return timedelta(seconds=float(_setting("WEBHOOK_TIMEOUT", DEFAULT_TIMEOUT)) * 2 + 60)


def _send_batch(target: _Target, rows: list, now: datetime, result: PassResult) -> bool:
    """POST one claimed batch and record the outcome on its deliveries; True when delivered."""
    timeout = float(_setting("WEBHOOK_TIMEOUT", DEFAULT_TIMEOUT))
    max_attempts = int(_setting("WEBHOOK_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS))
    payloads = _payloads([r.event_id for r in rows if r.event_id != TEST_EVENT_ID])
    items: list[dict[str, Any]] = []
    sendable: list[tuple[int, int]] = []
    for row in rows:
        payload = (sample_event(target.id, now) if row.event_id == TEST_EVENT_ID
                   else payloads.get(row.event_id))
        if payload is None:
            db.session.execute(update(deliveries_t).where(deliveries_t.c.id == row.id).values(
                status="failed", next_attempt_at=None,
                last_error=f"Event {row.event_id} no longer exists."))
            result.failed += 1
            continue
        items.append(payload)
        sendable.append((row.id, row.attempts))
    db.session.commit()  # no transaction stays open while we wait for the receiver
    if not sendable:
        return True
    body = json.dumps(items, separators=(",", ":")).encode()
    timestamp = unix_time(now)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: signature_header(target.secret, body, timestamp),
        "Beacon-Webhook-Id": str(target.id),
        "Beacon-Event-Count": str(len(items)),
    }
    status, error = post(target.url, body, headers, timeout)
    result.posts += 1
    _record_outcome(sendable, now, status, error, max_attempts, result)
    return error is None


def _send_webhook(webhook: Webhook, now: datetime, deadline: float | None,
                  result: PassResult) -> None:
    target = _Target(webhook.id, webhook.url, webhook.secret)
    batch_size = max(1, int(_setting("WEBHOOK_BATCH_SIZE", DEFAULT_BATCH_SIZE)))
    tests = list(db.session.scalars(select(WebhookDelivery.id).where(
        WebhookDelivery.webhook_id == target.id, WebhookDelivery.event_id == TEST_EVENT_ID,
        WebhookDelivery.status.in_(DUE), WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.id)))
    for test_id in tests:
        claimed = _claim(deliveries_t.c.id == test_id, now, _lease())
        if claimed:
            _send_batch(target, claimed, now, result)
    queue = (WebhookDelivery.webhook_id == target.id, WebhookDelivery.status.in_(DUE),
             WebhookDelivery.event_id != TEST_EVENT_ID)
    head = db.session.execute(select(WebhookDelivery.id, WebhookDelivery.next_attempt_at)
                              .where(*queue).order_by(WebhookDelivery.id).limit(1)).first()
    # The oldest undelivered event decides: while it waits for its retry, so does the rest.
    if head is None or head.next_attempt_at is None or head.next_attempt_at > now:
        return
    cursor = head.id - 1
    while deadline is None or time.monotonic() < deadline:
        batch = (select(WebhookDelivery.id)
                 .where(*queue, WebhookDelivery.id > cursor,
                        WebhookDelivery.next_attempt_at <= now)
                 .order_by(WebhookDelivery.id).limit(batch_size))
        rows = _claim(deliveries_t.c.id.in_(batch.scalar_subquery()), now, _lease())
        if not rows:
            return
        cursor = rows[-1].id
        if not _send_batch(target, rows, now, result):
            return


def send_due(now: datetime | None = None, webhook_id: int | None = None,
             deadline: float | None = None) -> PassResult:
    """Send every due delivery of the active webhooks, batched; records each outcome."""
    now = now or utcnow()
    result = PassResult()
    query = select(Webhook).where(Webhook.active.is_(True)).order_by(Webhook.id)
    if webhook_id is not None:
        query = query.where(Webhook.id == webhook_id)
    for webhook in db.session.scalars(query).all():
        if deadline is not None and time.monotonic() >= deadline:
            break
        _send_webhook(webhook, now, deadline, result)
    return result


def deliver(now: datetime | None = None, webhook_id: int | None = None,
            max_seconds: float | None = None) -> PassResult:
    """One pass: collect new events into deliveries, send what is due, prune the old log."""
    deadline = time.monotonic() + max_seconds if max_seconds else None
    created = collect(now, webhook_id)
    result = send_due(now, webhook_id, deadline)
    result.created = created
    if time.monotonic() - _last_prune[0] >= PRUNE_EVERY_SECONDS:
        _last_prune[0] = time.monotonic()
        result.pruned = prune(now)
    return result


# --- the log's retention ----------------------------------------------------------------

_last_prune = [-float(PRUNE_EVERY_SECONDS)]  # monotonic time of this process's last prune


def prune(now: datetime | None = None, days: int | None = None) -> int:
    """Delete delivered and failed deliveries older than the retention; commits; returns how many.

    The retention is `days`, else WEBHOOK_LOG_RETENTION_DAYS (default 30); 0 keeps the log
    forever. Waiting and retrying deliveries are never pruned, whatever their age: they are
    the queue, not the log. A delivered row ages from its delivery, a failed one from its
    creation (its last attempt is at most a day later, by the backoff).
    """
    now = now or utcnow()
    days = settings()["retention_days"] if days is None else days
    if days <= 0:
        return 0
    cutoff = now - timedelta(days=days)
    c = deliveries_t.c
    result = db.session.execute(delete(deliveries_t).where(or_(
        (c.status == "delivered") & (c.delivered_at < cutoff),
        (c.status == "failed") & (c.created_at < cutoff))))
    db.session.commit()
    return max(result.rowcount or 0, 0)


# --- triggering -------------------------------------------------------------------------

def deliver_job(webhook_id: int | None = None) -> dict[str, int]:
    """Background job: one delivery pass (at most a minute); frees the schedule slot first."""
    url = _setting("REDIS_URL", None)
    if url:
        try:
            _redis(url).delete(SCHEDULE_KEY)
        except Exception:  # Redis gone: the job still delivers, the next commit reschedules
            log.warning("could not clear the webhook schedule key", exc_info=True)
    started = time.monotonic()
    result = deliver(webhook_id=webhook_id, max_seconds=JOB_SECONDS)
    if url and time.monotonic() - started >= JOB_SECONDS:
        # Out of time with work left (a big upload): queue the next pass instead of
        # holding a worker for longer.
        try:
            schedule_after_commit()
        except Exception:
            log.warning("could not schedule the next webhook delivery pass", exc_info=True)
    return asdict(result)


def overdue_since(now: datetime | None = None,
                  grace: timedelta = timedelta(minutes=2)) -> datetime | None:
    """When the oldest delivery that should have been sent by now fell due (no worker?)."""
    now = now or utcnow()
    return db.session.scalar(
        select(func.min(deliveries_t.c.next_attempt_at))
        .select_from(deliveries_t.join(Webhook.__table__,
                                       Webhook.__table__.c.id == deliveries_t.c.webhook_id))
        .where(Webhook.__table__.c.active.is_(True), deliveries_t.c.status.in_(DUE),
               deliveries_t.c.next_attempt_at <= now - grace))


def retry_delivery(delivery: WebhookDelivery, *, actor: str,
                   now: datetime | None = None) -> None:
    """Make a delivery (and the queue waiting behind it) due now; audited and committed."""
    from webapp.services.audit import record

    now = now or utcnow()
    if delivery.status == "delivered":
        return
    if delivery.status == "failed":
        delivery.status = "retrying"
    delivery.next_attempt_at = now
    db.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == delivery.webhook_id,
               WebhookDelivery.status == "retrying", WebhookDelivery.next_attempt_at > now)
        .values(next_attempt_at=now).execution_options(synchronize_session=False))
    record(actor, "webhook.retry", "webhook", delivery.webhook_id,
           f"Retried delivery {delivery.id} (event {delivery.event_id}) now")
    db.session.commit()


def queue_test_event(webhook: Webhook, *, actor: str,
                     now: datetime | None = None) -> WebhookDelivery:
    """Queue a test delivery for the webhook (sent by the worker); audited and committed."""
    from webapp.services.audit import record

    now = now or utcnow()
    delivery = WebhookDelivery(webhook_id=webhook.id, event_id=TEST_EVENT_ID, status="pending",
                               attempts=0, next_attempt_at=now, created_at=now)
    db.session.add(delivery)
    record(actor, "webhook.test", "webhook", webhook.id,
           f"Sent a test event to webhook {webhook.id}")
    db.session.commit()
    return delivery


def start(webhook_id: int | None = None) -> str:
    """Hand a delivery pass to the background (RQ, a thread, or at once in tests)."""
    from webapp.jobs import enqueue

    return enqueue("webapp.services.webhook_delivery.deliver_job", webhook_id)


def _redis(url: str):
    from webapp.jobs import redis_client

    return redis_client(url, 2.0)


def schedule_after_commit() -> bool:
    """Enqueue one delivery job unless one is already waiting; True when enqueued."""
    url = _setting("REDIS_URL", None)
    if not url:
        return False
    if not _redis(url).set(SCHEDULE_KEY, "1", nx=True, ex=30):
        return False
    start()
    return True


def _after_commit(session: Session) -> None:
    if not session.info.pop(EVENTS_WRITTEN, False) or not has_app_context():
        return
    config = current_app.config
    # Tests (JOBS_SYNC) and setups without Redis deliver with `flask events deliver` instead.
    if not config["REDIS_URL"] or config["JOBS_SYNC"] or not config["WEBHOOKS_AUTO_DELIVER"]:
        return
    try:
        schedule_after_commit()
    except Exception:  # never fail the request that committed: the worker catches up
        current_app.logger.warning("could not schedule webhook delivery", exc_info=True)


def _after_rollback(session: Session) -> None:
    session.info.pop(EVENTS_WRITTEN, None)


def install_commit_hook() -> None:
    """Schedule a delivery job after each commit that wrote membership events (idempotent)."""
    if not event.contains(Session, "after_commit", _after_commit):
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_rollback", _after_rollback)
