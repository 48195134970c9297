"""Overrides: pin a member into (add) or out of (block) a rule-managed segment.

Effective membership (SPEC §3): a `block` override puts the member out, an `add` override puts
them in, otherwise the rules decide. An override whose `expires_at` has passed no longer applies;
it stays in the table (shown as expired) until it is reset or replaced.

Every change writes the `Override` row, an append-only `OverrideHistory` line, an audit entry
and — only when effective membership changes — the ADD/REMOVE through
`webapp.services.membership.apply_delta` with the override as cause, all in one transaction.
`set_override`, `reset_override` and `bulk_reset` commit; `apply_expiries` does not (its caller,
`flask segments refresh`, commits once after also refreshing the rules).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models import Member, Override, OverrideHistory, Segment
from webapp.services import activities
from webapp.services.audit import record
from webapp.services.errors import ServiceError
from webapp.services.membership import Cause, apply_delta, current_member_ids, lock_segments
from webapp.services.rules import program_timezone
from webapp.timeutil import utcnow

STATUSES = ("add", "block")
ACTIONS = ("add", "block", "reset", "expire")
MAX_REFERENCE_ID = 255
# The reason's limit, the same as the form's textarea (maxlength) and the API's.
MAX_DESCRIPTION = 2000
MAX_METADATA_KEYS = 50
# A status-change time a little ahead of the server clock is tolerated (clock skew).
FUTURE_TOLERANCE = timedelta(minutes=5)


class OverrideError(ServiceError):
    """An override request that is refused; the message says what is wrong, and `.errors`
    keys it by the attribute it is about ("" when it is about the whole request)."""

    def __init__(self, message: str, field: str = "", status: int = 422) -> None:
        super().__init__({field: message}, status, text=message)


@dataclass
class OverrideOutcome:
    """What an override operation did, in words a person reads."""

    changed: bool
    message: str
    override: Override | None
    effect: str


@dataclass(frozen=True)
class Effect:
    """The rule result, the current membership and what an override status would make it."""

    rules_in: bool
    currently_in: bool
    status: str | None
    effective_in: bool
    sentence: str

    @property
    def changes_membership(self) -> bool:
        """Whether applying this status moves the member in or out."""
        return self.effective_in != self.currently_in


# --- Reading -------------------------------------------------------------------------------

def is_expired(override: Override, now: datetime | None = None) -> bool:
    """Whether the override's expiry has passed (it no longer applies)."""
    return override.expires_at is not None and override.expires_at <= (now or utcnow())


def in_words(value: bool) -> str:
    """'in' or 'out'."""
    return "in" if value else "out"


def effect_sentence(rules_in: bool, status: str | None, *, note: bool = True) -> str:
    """The plain sentence: 'the rules say out; the override says in'."""
    rules = f"the rules say {in_words(rules_in)}"
    if status is None:
        return f"{rules}; no override applies, so the member is {in_words(rules_in)}"
    says = in_words(status == "add")
    sentence = f"{rules}; the override says {says}"
    if note and (status == "add") == rules_in:
        sentence += " (no change today; it holds if the rules or the member change)"
    return sentence


def rules_say_in(segment: Segment, member: Member, now: datetime | None = None, *,
                 memberships: set[int] | None = None) -> bool:
    """What the segment's rules alone say about the member (overrides ignored).
    `memberships`: the segments the member is in, when the caller read them already."""
    from webapp.targeting import SegmentDefinitionError, matches

    try:
        definition = segment.definition()
        now = now or utcnow()
        attributes = activities.attach(member.attributes(), member.id, [definition], now)
        if memberships is None:
            memberships = _member_segments(member.id)
        return matches(definition, attributes, now=now, memberships=memberships,
                       tz=program_timezone())
    except (SegmentDefinitionError, ValueError) as exc:
        raise OverrideError(f"The rules of segment {segment.name} cannot be evaluated "
                            f"({exc}); fix the segment first.") from exc


def preview(segment: Segment, member: Member, status: str | None,
            now: datetime | None = None) -> Effect:
    """The effect of setting `status` (or None for reset) without changing anything."""
    if status is not None and status not in STATUSES:
        raise OverrideError(f"Unknown override status {status!r}: use add, block or reset.",
                            "status")
    rules_in = rules_say_in(segment, member, now)
    currently_in = bool(current_member_ids(segment.id, [member.id]))
    effective_in = rules_in if status is None else status == "add"
    return Effect(rules_in, currently_in, status, effective_in,
                  effect_sentence(rules_in, status))


def current_effect(override: Override, now: datetime | None = None) -> Effect:
    """The effect of an existing override as it stands (an expired one no longer applies)."""
    status = None if is_expired(override, now) else override.status
    return preview(override.segment, override.member, status, now)


def find_override(segment: Segment, member: Member) -> Override | None:
    """The override of this (segment, member) pair, expired or not."""
    return db.session.scalar(select(Override).where(
        Override.segment_id == segment.id, Override.member_id == member.id))


def member_label(member: Member) -> str:
    """How a member is named in messages: external id, then email."""
    return member.external_id or member.email or member.id


# --- Writing -------------------------------------------------------------------------------

def set_override(segment: Segment, member: Member, status: str, *, description: str,
                 reference_id: str | None = None, metadata: dict | None = None,
                 status_change_timestamp: datetime | None = None,
                 expires_at: datetime | None = None, actor: str, actor_id: int | None = None,
                 require_reason: bool = True) -> OverrideOutcome:
    """Pin a member into (add) or out of (block) a dynamic segment; commits.

    Setting the status an active override already has changes nothing and says so. `status`
    "reset" is accepted and means `reset_override`.
    """
    if status == "reset":
        return reset_override(segment, member, actor=actor, actor_id=actor_id,
                              description=description or "")
    now = utcnow()
    description = _text(description, "reason")
    reference_id = _text(reference_id, "reference id") or None
    metadata = _valid_metadata(metadata)
    _check_request(segment, status, description, reference_id, status_change_timestamp,
                   expires_at, now, require_reason)
    _lock(segment, member)
    existing = find_override(segment, member)
    name = member_label(member)
    if existing is not None and existing.status == status and not is_expired(existing, now):
        return OverrideOutcome(
            changed=False,
            message=f"{name} is already {_status_words(status)} {segment.name}; nothing changed.",
            override=existing, effect=current_effect(existing, now).sentence)
    try:
        if existing is not None and is_expired(existing, now) and not existing.expired_applied_at:
            # Replacing an expiry nobody applied yet: record it so the history has no gap.
            existing.expired_applied_at = now
            _history(existing, "expire", actor, now, description="Expired before being replaced.")
        before = _snapshot(existing) if existing is not None else None
        override = existing or Override(segment_id=segment.id, member_id=member.id)
        override.status = status
        override.description = description
        override.reference_id = reference_id
        override.metadata_ = metadata
        override.status_change_timestamp = status_change_timestamp or now
        override.expires_at = expires_at
        override.expired_applied_at = None
        override.actor_id = actor_id
        override.actor_label = actor
        override.created_at = now
        if existing is None:
            db.session.add(override)
        db.session.flush()
        _history(override, status, actor, now)
        rules_in = rules_say_in(segment, member, now)
        effect = effect_sentence(rules_in, status)
        record(actor, f"override.{status}", "override", _entity_id(segment, member),
               f"{'Pinned' if status == 'add' else 'Blocked'} {name} "
               f"{'into' if status == 'add' else 'out of'} {segment.name}: {description or '—'}",
               before=before, after=_snapshot(override))
        moved = _apply(segment, member, status == "add", "override", actor, override.id,
                       {"action": status, "reason": description, "reference_id": reference_id},
                       now)
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise OverrideError("Someone else changed this override at the same moment; "
                            "reload the page and try again.") from exc
    except Exception:
        db.session.rollback()
        raise
    verb = "pinned into" if status == "add" else "blocked from"
    message = f"{name} is now {verb} {segment.name}."
    if moved:
        message += f" They {'joined' if status == 'add' else 'left'} the segment."
    return OverrideOutcome(changed=True, message=message, override=override, effect=effect)


def reset_override(segment: Segment, member: Member, *, actor: str, actor_id: int | None = None,
                   description: str = "") -> OverrideOutcome:
    """Remove a member's override of a segment and restore the rule result; commits."""
    now = utcnow()
    _check_reason_length((description or "").strip())
    _lock(segment, member)
    existing = find_override(segment, member)
    name = member_label(member)
    if existing is None:
        rules_in = rules_say_in(segment, member, now) if segment.kind == "dynamic" else False
        return OverrideOutcome(
            changed=False,
            message=f"{name} has no override in {segment.name}; nothing to reset.",
            override=None, effect=effect_sentence(rules_in, None))
    try:
        moved, effect = _reset(existing, actor=actor, description=description, now=now)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    message = f"Reset the override of {name} in {segment.name}; the rules decide again."
    if moved:
        message += f" They {'joined' if effect.rules_in else 'left'} the segment."
    return OverrideOutcome(changed=True, message=message, override=None,
                           effect=effect.sentence)


def bulk_reset(override_ids: Iterable[int], *, actor: str, actor_id: int | None = None) -> int:
    """Reset many overrides at once (one history line and audit entry each); commits.

    Returns how many were reset; ids that no longer exist are skipped.
    """
    ids = sorted({int(i) for i in override_ids if 0 < int(i) < 2**31})
    if not ids:
        return 0
    now = utcnow()
    count = 0
    lock_segments(db.session.scalars(select(Override.segment_id).where(
        Override.id.in_(ids))).all())
    try:
        for override in db.session.scalars(
                select(Override).where(Override.id.in_(ids)).order_by(Override.id)):
            _reset(override, actor=actor, description="Bulk reset from the review page",
                   now=now)
            count += 1
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return count


def apply_expiries(actor: str, now: datetime | None = None) -> int:
    """Apply overrides whose expiry has passed (history 'expire', rule result restored).

    Does NOT commit: the caller commits (`flask segments refresh` does, once, after the rule
    refresh). Returns how many overrides expired.
    """
    now = now or utcnow()
    due_now = (Override.expires_at.is_not(None), Override.expires_at <= now,
               Override.expired_applied_at.is_(None))
    lock_segments(db.session.scalars(select(Override.segment_id).where(*due_now)).all())
    # Read after the lock: another writer may have reset or replaced some meanwhile.
    due = list(db.session.scalars(select(Override).where(*due_now).order_by(Override.id)
                                  .execution_options(populate_existing=True)))
    for override in due:
        segment, member = override.segment, override.member
        override.expired_applied_at = now
        _history(override, "expire", actor, now, description=override.description)
        record(actor, "override.expire", "override", _entity_id(segment, member),
               f"Override ({override.status}) of {member_label(member)} in {segment.name} "
               f"expired at {override.expires_at:%Y-%m-%d %H:%M} UTC",
               before=_snapshot(override), after=None)
        if segment.kind == "dynamic":
            _apply(segment, member, rules_say_in(segment, member, now), "rule", actor,
                   override.id, {"action": "expire", "expired_status": override.status,
                                 "reason": override.description}, now)
    return len(due)


# --- Internals -----------------------------------------------------------------------------

def _lock(segment: Segment, member: Member) -> None:
    """Take the segment's write lock, then re-read the member (webapp.membership).

    Overrides of one segment are then changed one at a time, and the rules are evaluated
    against the member's profile as the last profile change committed it.
    """
    lock_segments([segment.id])
    db.session.refresh(member)


def _reset(override: Override, *, actor: str, description: str, now: datetime
           ) -> tuple[bool, Effect]:
    """Delete one override, keep its history, restore the rule result (no commit)."""
    segment, member = override.segment, override.member
    before = _snapshot(override)
    lifted = f"the {override.status} override" + (
        f" ({override.description})" if override.description else "")
    note = _text(description, "reason")
    _history(override, "reset", actor, now,
             description=f"{note} — lifted {lifted}" if note else f"Lifted {lifted}")
    override_id, old_status = override.id, override.status
    record(actor, "override.reset", "override", _entity_id(segment, member),
           f"Reset the override ({old_status}) of {member_label(member)} in {segment.name}"
           + (f": {description.strip()}" if description.strip() else ""),
           before=before, after=None)
    db.session.delete(override)
    db.session.flush()
    rules_in = rules_say_in(segment, member, now) if segment.kind == "dynamic" else False
    moved = False
    if segment.kind == "dynamic":
        moved = _apply(segment, member, rules_in, "rule", actor, override_id,
                       {"action": "reset", "reset_status": old_status,
                        "reason": description.strip()}, now)
    effect = Effect(rules_in, rules_in, None, rules_in, effect_sentence(rules_in, None))
    return moved, effect


def _apply(segment: Segment, member: Member, want_in: bool, via: str, actor: str,
           override_id: int, detail: dict[str, Any], now: datetime) -> bool:
    """Make the member's membership match `want_in`, then the segments that depend on it."""
    cause = Cause("override", actor, {k: v for k, v in detail.items() if v not in (None, "")},
                  override_id=override_id)
    if want_in:
        delta = apply_delta(segment, add=[member.id], via=via, cause=cause, retag=True)
    else:
        delta = apply_delta(segment, remove=[member.id], via=via, cause=cause)
    return delta.changed


def _check_request(segment: Segment, status: str, description: str, reference_id: str | None,
                   status_change_timestamp: datetime | None, expires_at: datetime | None,
                   now: datetime, require_reason: bool) -> None:
    """Refuse what cannot be an override, before anything is written."""
    if status not in STATUSES:
        raise OverrideError(f"Unknown override status {status!r}: use add, block or reset.",
                            "status")
    if segment.kind != "dynamic":
        raise OverrideError(
            f"Overrides apply to rule-managed (dynamic) segments; edit the list of static "
            f"segment {segment.name} instead.")
    if require_reason and not description:
        raise OverrideError("Reason is required: say why this member is pinned in or out.",
                            "description")
    if reference_id is not None and len(reference_id) > MAX_REFERENCE_ID:
        raise OverrideError(f"Reference id must be at most {MAX_REFERENCE_ID:,} characters "
                            f"({len(reference_id):,} given).", "reference_id")
    _check_reason_length(description)
    if status_change_timestamp is not None and status_change_timestamp > now + FUTURE_TOLERANCE:
        raise OverrideError("The status-change time is in the future; an override applies as "
                            "soon as it is saved, so give the current or a past time.",
                            "status_change_timestamp")
    if expires_at is not None:
        if expires_at <= now:
            raise OverrideError("The expiry is in the past; give a future time, or none.",
                                "expires_at")
        if status_change_timestamp is not None and expires_at <= status_change_timestamp:
            raise OverrideError("The expiry must come after the status-change time.",
                                "expires_at")


def reason_too_long(description: str | None) -> str | None:
    """The refusal for a reason over MAX_DESCRIPTION characters, or None."""
    length = len(description or "")
    if length <= MAX_DESCRIPTION:
        return None
    return (f"Reason must be at most {MAX_DESCRIPTION:,} characters ({length:,} given). "
            "Shorten it, and put long details in the reference id's ticket.")


def _check_reason_length(description: str | None) -> None:
    message = reason_too_long(description)
    if message:
        raise OverrideError(message, "description")


def _valid_metadata(metadata: Any) -> dict[str, Any]:
    """Metadata is a JSON object of at most MAX_METADATA_KEYS keys."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise OverrideError("Metadata must be an object of key/value pairs.", "metadata")
    if len(metadata) > MAX_METADATA_KEYS:
        raise OverrideError(f"Metadata has {len(metadata)} keys; at most "
                            f"{MAX_METADATA_KEYS} are allowed.", "metadata")
    for key in metadata:
        if not isinstance(key, str) or not key.strip():
            raise OverrideError("Every metadata key must be a non-empty text.", "metadata")
    try:
        text = json.dumps(metadata)
    except (TypeError, ValueError) as exc:
        raise OverrideError("Metadata values must be plain JSON values.", "metadata") from exc
    if "\\u0000" in text:
        raise OverrideError("Metadata contains a NUL character, which cannot be stored.",
                            "metadata")
    return dict(metadata)


_FIELDS = {"reason": "description", "reference id": "reference_id"}


def _text(value: str | None, what: str) -> str:
    """Stripped text; NUL characters (which PostgreSQL cannot store) are refused."""
    text = (value or "").strip()
    if "\x00" in text:
        raise OverrideError(f"The {what} contains a NUL character, which cannot be stored.",
                            _FIELDS.get(what, ""))
    return text


def _history(override: Override, action: str, actor: str, now: datetime,
             description: str | None = None) -> OverrideHistory:
    """Append one history line for this override."""
    line = OverrideHistory(
        segment_id=override.segment_id, segment_name=override.segment.name,
        member_id=override.member_id, action=action,
        description=override.description if description is None else description,
        reference_id=override.reference_id, metadata_=dict(override.metadata_ or {}),
        status_change_timestamp=override.status_change_timestamp if action in STATUSES else now,
        expires_at=override.expires_at, actor_label=actor, created_at=now)
    db.session.add(line)
    return line


def _snapshot(override: Override) -> dict[str, Any]:
    """The override as a readable before/after for the audit diff."""
    return {
        "status": override.status, "reason": override.description,
        "reference_id": override.reference_id, "metadata": dict(override.metadata_ or {}),
        "status_change_timestamp": _iso(override.status_change_timestamp),
        "expires_at": _iso(override.expires_at), "by": override.actor_label,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None


def _entity_id(segment: Segment, member: Member) -> str:
    return f"{segment.id}/{member.id}"


def _status_words(status: str) -> str:
    return "pinned into" if status == "add" else "blocked from"


def _member_segments(member_id: str) -> set[int]:
    from webapp.services.membership import segment_ids_of

    return segment_ids_of(member_id)





__all__ = [
    "ACTIONS", "STATUSES", "Effect", "OverrideError", "OverrideOutcome", "apply_expiries",
    "bulk_reset", "current_effect", "effect_sentence", "find_override", "is_expired",
    "member_label", "preview", "reset_override", "rules_say_in", "set_override",
]
