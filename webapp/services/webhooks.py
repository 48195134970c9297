"""Webhook subscriptions: create, update, delete and serialize, with validation and audit.

The dashboard (`webapp/webhooks/views.py`) and the JSON:API (`/api/v1/webhooks`) both call
these functions; neither validates on its own.

Contract:

- `create_webhook(data, *, actor) -> tuple[Webhook, str]` returns the new row and its secret.
  The secret is generated (``whsec_`` + 43 URL-safe characters) unless `data["secret"]` gives
  one; show it once (the API returns it only in the creation response:
  `serialize_webhook(webhook, include_secret=True)`; the dashboard shows it once after
  creation). The database keeps it in clear because signing needs it.
- `update_webhook(webhook, data, *, actor) -> Webhook` changes only the keys present in `data`.
- `rotate_secret(webhook, *, actor) -> str` replaces the secret and returns the new one.
- `delete_webhook(webhook, *, actor) -> None` deletes it with its delivery log.
- Every function validates first, changes nothing when `WebhookError` is raised, writes one
  audit entry (the secret never appears in it) and commits.
- `WebhookError.errors` maps an attribute path to a readable message, e.g.
  ``{"url": "...", "event_filter.segments": "..."}``; the API turns a key `a.b` into the JSON
  pointer ``/data/attributes/a/b``.

`data` keys (all optional on update; `url` required on create):

- `url`: an absolute http:// or https:// URL with a host, at most 2,000 characters, whose
  host is a public internet address (`webapp.services.webhook_addresses`: an internal host is
  refused unless WEBHOOK_ALLOWED_HOSTS allows it);
- `description`: text, at most 200 characters;
- `event_filter`: ``{"actions": ["ADD", "REMOVE"], "segments": [id or customer segment id]}``;
  a missing or null key means "all" (all actions, all segments); a given list must not be
  empty; segments are stored as segment ids;
- `active`: a boolean; a deactivated webhook gets no deliveries, and when it is activated again
  it starts from the events that happen after that moment (nothing is replayed);
- `secret`: 16 to 128 printable characters without spaces.

Read-only attributes that `serialize_webhook` returns (`created_at`, `deliveries`,
`last_event_id`) are ignored when given back; any other unknown key is refused.

A new webhook receives the events that happen after its creation, not the history.
`event_payload(event, external_id)` is the JSON shape of one membership event in a webhook
body; the events feed can use it too so both read the same.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select

from webapp.extensions import db
from webapp.models import MembershipEvent, Segment, Webhook, WebhookDelivery
from webapp.services.audit import record
from webapp.services.errors import BlockedHost, ServiceError
from webapp.services.webhook_addresses import BlockedDestination, check_url

ACTIONS = ("ADD", "REMOVE")
STATUSES = ("pending", "retrying", "delivered", "failed")
WRITABLE = ("url", "description", "event_filter", "active", "secret")
READ_ONLY = ("created_at", "deliveries", "last_event_id", "id")
MAX_URL = 2000
MAX_DESCRIPTION = 200
SECRET_PREFIX = "whsec_"


class WebhookError(ServiceError):
    """Refused webhook input; `.errors` maps an attribute path to what is wrong with it."""


def generate_secret() -> str:
    """A new random signing secret."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None


# --- validation -------------------------------------------------------------------------

def _check_url(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("Enter the URL that receives the events, e.g. https://example.com/hooks.")
    url = value.strip()
    if len(url) > MAX_URL:
        raise ValueError(f"Receiver URL must be at most {MAX_URL:,} characters "
                         f"({len(url):,} given).")
    if any(ch.isspace() for ch in url):
        raise ValueError("The URL must not contain spaces.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"This is not a valid URL ({exc}).") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("Only http:// and https:// URLs are accepted.")
    if not parts.hostname:
        raise ValueError("The URL needs a host name, e.g. https://example.com/hooks.")
    if port == 0:
        raise ValueError("The URL's port must be between 1 and 65535.")
    check_url(url)  # an internal host is refused here and again at every delivery
    return url


def _check_description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError("The description must be text.")
    value = value.strip()
    if len(value) > MAX_DESCRIPTION:
        raise ValueError(f"Description must be at most {MAX_DESCRIPTION:,} characters "
                         f"({len(value):,} given).")
    return value


def _check_active(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("Active must be true or false.")
    return value


def _check_secret(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("The secret must be text.")
    if not 16 <= len(value) <= 128:
        raise ValueError("The secret must be 16 to 128 characters long.")
    if not value.isprintable() or any(ch.isspace() for ch in value) or not value.isascii():
        raise ValueError("The secret must be printable ASCII without spaces.")
    return value


def _resolve_segment(identifier: Any) -> int | None:
    """A segment id from an id or a customer segment id, or None when there is none."""
    if isinstance(identifier, bool) or not isinstance(identifier, (int, str)):
        return None
    if isinstance(identifier, int):
        return identifier if db.session.get(Segment, identifier) is not None else None
    text = identifier.strip()
    if not text:
        return None
    if text.isdigit() and len(text) < 10:
        segment = db.session.get(Segment, int(text))
        if segment is not None:
            return segment.id
    return db.session.scalar(select(Segment.id).where(Segment.customer_segment_id == text))


def _check_filter(value: Any, errors: dict[str, str]) -> dict[str, list]:
    """The normalised filter; problems are added to `errors` under event_filter.*."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors["event_filter"] = ('The event filter must be an object such as '
                                  '{"actions": ["ADD"], "segments": [12]}.')
        return {}
    result: dict[str, list] = {}
    unknown = sorted(set(value) - {"actions", "segments"})
    if unknown:
        errors["event_filter"] = (f"Unknown filter key {unknown[0]!r}; "
                                  "use 'actions' and 'segments'.")
    actions = value.get("actions")
    if actions is not None:
        if not isinstance(actions, list) or not actions:
            errors["event_filter.actions"] = ("Actions must be a non-empty list of "
                                              '"ADD" and "REMOVE" (leave it out for both).')
        else:
            bad = [a for a in actions if a not in ACTIONS]
            if bad:
                errors["event_filter.actions"] = (f"Unknown action {bad[0]!r}; "
                                                  'use "ADD" or "REMOVE".')
            else:
                result["actions"] = [a for a in ACTIONS if a in actions]
    segments = value.get("segments")
    if segments is not None:
        if not isinstance(segments, list) or not segments:
            errors["event_filter.segments"] = ("Segments must be a non-empty list of segment "
                                               "ids or customer segment ids (leave it out "
                                               "for all segments).")
        else:
            ids: list[int] = []
            for item in segments:
                sid = _resolve_segment(item)
                if sid is None:
                    errors["event_filter.segments"] = f"No segment has the id {item!r}."
                    break
                if sid not in ids:
                    ids.append(sid)
            else:
                result["segments"] = ids
    return result


def _validate(data: Any, *, creating: bool) -> dict[str, Any]:
    """The cleaned values of the keys present in `data`; raises WebhookError."""
    if not isinstance(data, dict):
        raise WebhookError({"": "The webhook attributes must be an object."})
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for key in data:
        if key not in WRITABLE and key not in READ_ONLY:
            errors[str(key)] = (f"Unknown attribute {key!r}; webhooks have "
                                f"{', '.join(WRITABLE)}.")
    if creating and "url" not in data:
        errors["url"] = "Enter the URL that receives the events, e.g. https://example.com/hooks."
    checks = {"url": _check_url, "description": _check_description,
              "active": _check_active, "secret": _check_secret}
    for key, check in checks.items():
        if key in data:
            try:
                clean[key] = check(data[key])
            except BlockedDestination as exc:
                errors[key] = BlockedHost(exc)
            except ValueError as exc:
                errors[key] = str(exc)
    if "event_filter" in data:
        clean["event_filter"] = _check_filter(data["event_filter"], errors)
    if errors:
        raise WebhookError(errors)
    return clean


# --- changes ----------------------------------------------------------------------------

def _latest_event_id() -> int:
    return db.session.scalar(select(func.max(MembershipEvent.id))) or 0


def _audit_view(webhook: Webhook) -> dict[str, Any]:
    """What the audit trail keeps of a webhook (never the secret)."""
    return {"url": webhook.url, "description": webhook.description,
            "event_filter": dict(webhook.event_filter or {}), "active": bool(webhook.active)}


def create_webhook(data: dict, *, actor: str) -> tuple[Webhook, str]:
    """Validate and create a subscription; returns it and its secret (show the secret once)."""
    clean = _validate(data, creating=True)
    secret = clean.get("secret") or generate_secret()
    webhook = Webhook(url=clean["url"], secret=secret,
                      description=clean.get("description", ""),
                      event_filter=clean.get("event_filter", {}),
                      active=clean.get("active", True), last_event_id=_latest_event_id())
    db.session.add(webhook)
    db.session.flush()
    record(actor, "webhook.create", "webhook", webhook.id,
           f"Created webhook {webhook.id} to {webhook.url}", after=_audit_view(webhook))
    db.session.commit()
    return webhook, secret


def update_webhook(webhook: Webhook, data: dict, *, actor: str) -> Webhook:
    """Validate and apply the keys present in `data`; audited and committed."""
    clean = _validate(data, creating=False)
    before = _audit_view(webhook)
    if clean.get("active") and not webhook.active:
        # Reactivated: start from now; the events of the inactive period are not replayed.
        webhook.last_event_id = _latest_event_id()
    for key in ("url", "description", "event_filter", "active"):
        if key in clean:
            setattr(webhook, key, clean[key])
    secret_changed = "secret" in clean and clean["secret"] != webhook.secret
    if secret_changed:
        webhook.secret = clean["secret"]
    after = _audit_view(webhook)
    if before != after or secret_changed:
        if secret_changed:
            after = {**after, "secret": "changed"}
        record(actor, "webhook.update", "webhook", webhook.id,
               f"Updated webhook {webhook.id} to {webhook.url}", before=before, after=after)
    db.session.commit()
    return webhook


def rotate_secret(webhook: Webhook, *, actor: str) -> str:
    """Replace the signing secret with a new random one; returns it (show it once)."""
    webhook.secret = generate_secret()
    record(actor, "webhook.rotate_secret", "webhook", webhook.id,
           f"Rotated the secret of webhook {webhook.id}", after={"secret": "changed"})
    db.session.commit()
    return webhook.secret


def delete_webhook(webhook: Webhook, *, actor: str) -> None:
    """Delete a subscription and its delivery log; audited and committed."""
    before = _audit_view(webhook)
    webhook_id = webhook.id
    db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id))
    db.session.delete(webhook)
    record(actor, "webhook.delete", "webhook", webhook_id,
           f"Deleted webhook {webhook_id} to {before['url']}", before=before)
    db.session.commit()


# --- reading ----------------------------------------------------------------------------

def delivery_stats(webhook_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Per webhook: deliveries by status, last delivery time and last failure message."""
    stats: dict[int, dict[str, Any]] = {
        wid: {**{s: 0 for s in STATUSES}, "last_delivered_at": None, "last_error": None}
        for wid in webhook_ids}
    if not webhook_ids:
        return stats
    rows = db.session.execute(
        select(WebhookDelivery.webhook_id, WebhookDelivery.status, func.count(),
               func.max(WebhookDelivery.delivered_at))
        .where(WebhookDelivery.webhook_id.in_(webhook_ids))
        .group_by(WebhookDelivery.webhook_id, WebhookDelivery.status))
    for wid, status, count, delivered_at in rows:
        entry = stats[wid]
        entry[status] = count
        if delivered_at and (entry["last_delivered_at"] is None
                             or delivered_at > entry["last_delivered_at"]):
            entry["last_delivered_at"] = delivered_at
    last_errors = db.session.execute(
        select(WebhookDelivery.webhook_id, WebhookDelivery.last_error)
        .where(WebhookDelivery.id.in_(
            select(func.max(WebhookDelivery.id))
            .where(WebhookDelivery.webhook_id.in_(webhook_ids),
                   WebhookDelivery.status.in_(("retrying", "failed")))
            .group_by(WebhookDelivery.webhook_id))))
    for wid, message in last_errors:
        stats[wid]["last_error"] = message
    return stats


def serialize_webhook(webhook: Webhook, *, include_secret: bool = False,
                      stats: dict[str, Any] | None = None) -> dict[str, Any]:
    """The webhook's API attributes; the secret only when asked (the creation response)."""
    if stats is None:
        stats = delivery_stats([webhook.id])[webhook.id]
    event_filter = dict(webhook.event_filter or {})
    attributes: dict[str, Any] = {
        "url": webhook.url,
        "description": webhook.description or "",
        "event_filter": {"actions": event_filter.get("actions"),
                         "segments": event_filter.get("segments")},
        "active": bool(webhook.active),
        "created_at": _iso(webhook.created_at),
        "last_event_id": webhook.last_event_id,
        "deliveries": {
            "pending": stats["pending"], "retrying": stats["retrying"],
            "delivered": stats["delivered"], "failed": stats["failed"],
            "last_delivered_at": _iso(stats["last_delivered_at"]),
            "last_error": stats["last_error"],
        },
    }
    if include_secret:
        attributes["secret"] = webhook.secret
    return attributes


def event_payload(event: Any, external_id: str | None) -> dict[str, Any]:
    """One membership event as webhook bodies (and the events feed) carry it.

    `event` is a MembershipEvent or any row with its columns as attributes.
    """
    return {
        "event_id": event.id,
        "action": event.action,
        "segment_id": event.segment_id,
        "segment_name": event.segment_name,
        "customer_segment_id": event.customer_segment_id,
        "member_id": event.member_id,
        "member_external_id": external_id,
        "source": event.source,
        "cause": {"actor": event.actor_label, **dict(event.cause or {}),
                  **({"upload_id": event.upload_id} if event.upload_id else {}),
                  **({"override_id": event.override_id} if event.override_id else {})},
        "time": (event.created_at.isoformat(timespec="milliseconds") + "Z"
                 if event.created_at else None),
    }
