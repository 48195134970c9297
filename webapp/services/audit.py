"""The audit trail: append-only entries of who changed what."""

from __future__ import annotations

from typing import Any

from webapp.extensions import db
from webapp.models import AuditEntry


def record(actor: str, action: str, entity_type: str, entity_id: Any, summary: str,
           before: dict | None = None, after: dict | None = None) -> AuditEntry:
    """Add an audit entry to the current transaction (the caller commits)."""
    entry = AuditEntry(actor_label=actor, action=action, entity_type=entity_type,
                       entity_id=str(entity_id), summary=summary, before=before, after=after)
    db.session.add(entry)
    return entry


def diff(before: dict | None, after: dict | None) -> list[tuple[str, Any, Any]]:
    """The keys whose values differ, as (key, before, after) for readable display."""
    before, after = before or {}, after or {}
    keys = sorted(set(before) | set(after))
    return [(k, before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)]
