"""Members: create, update, delete, batch upsert and criteria search.

Every profile change re-evaluates the member's dynamic segments through the membership service
in the same transaction, so the ADD/REMOVE events of a change are recorded at once.

Deleting a member records a REMOVE event (source `api` or the caller's source, cause
`{"member_deleted": true}`) for every segment the member was in, before the row goes (its
memberships and overrides cascade): an event consumer following a segment sees the member
leave, exactly as for any other removal.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import Member, Segment, SegmentMembership
from webapp.services.attributes import Declared, check_write, declared
from webapp.services.audit import record
from webapp.services.errors import ServiceError
from webapp.services.membership import (
    Cause,
    apply_delta,
    hold_sqlite_write_lock,
    lock_segments,
    refresh_member,
    refresh_members,
)
from webapp.services.rules import rules_condition
from webapp.targeting.paths import key_problem
from webapp.timeutil import utcnow

FIELDS = ("external_id", "email", "birthday", "tier", "points", "xp", "coins", "badges",
          "custom_fields")
READ_ONLY = ("id", "created_at", "updated_at")
INT64 = (-(2**63), 2**63 - 1)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_BADGES = 500
MAX_CUSTOM_BYTES = 64 * 1024


class MemberError(ServiceError):
    """A refused member change; `.errors` maps each attribute to what is wrong with it."""


def _json_problem(value: Any, depth: int = 0) -> str | None:
    """Why a custom-field value cannot be stored and compared, or None."""
    if depth > 20:
        return "nests deeper than 20 levels"
    if value is None or isinstance(value, bool | str):
        return None
    if isinstance(value, int):
        return None if INT64[0] <= value <= INT64[1] else "has a number that does not fit 64 bits"
    if isinstance(value, float):
        return None if value == value and abs(value) != float("inf") else "is not finite"
    if isinstance(value, list):
        for item in value:
            problem = _json_problem(item, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return "has a key that is not a string"
            problem = key_problem(key)
            if problem:  # every other key can be named in a criterion (webapp.targeting.paths)
                return f"has a {problem}"
            problem = _json_problem(item, depth + 1)
            if problem:
                return problem
        return None
    return "is not a JSON value"


def clean_attributes(data: dict[str, Any], *, partial: bool,
                     registry: dict[str, Declared] | None = None) -> dict[str, Any]:
    """Validate and normalise member attributes; raises MemberError naming each bad one.

    Custom fields are also checked against the attribute registry (`registry`, read here when
    not given) when ATTRIBUTE_CHECK is `refuse`."""
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    for name in data:
        if name in READ_ONLY:
            errors[name] = f"{name} is read-only."
        elif name not in FIELDS:
            errors[name] = f"Unknown attribute {name!r}; members have {', '.join(FIELDS)}."
    if not partial and "external_id" not in data:
        errors["external_id"] = "external_id is required (the member's id in your system)."
    for name in FIELDS:
        if name not in data:
            continue
        value = data[name]
        try:
            out[name] = _clean(name, value)
        except ValueError as exc:
            errors[name] = str(exc)
    if "custom_fields" in out and "custom_fields" not in errors:
        refused = check_write(out["custom_fields"], registry)
        if refused:
            errors["custom_fields"] = refused
    if errors:
        raise MemberError(errors)
    return out


def _clean(name: str, value: Any) -> Any:
    """One attribute, normalised; raises ValueError with the message for the client."""
    if name == "external_id":
        if not isinstance(value, str) or not value.strip():
            raise ValueError("external_id is a non-empty string.")
        value = value.strip()
        if len(value) > 255:
            raise ValueError("external_id has at most 255 characters.")
        return value
    if name == "email":
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ValueError("email is a string or null.")
        value = value.strip().lower()
        if len(value) > 320 or not _EMAIL.match(value):
            raise ValueError(f"{value[:80]!r} is not an email address.")
        return value
    if name == "birthday":
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError("birthday is a date YYYY-MM-DD or null.")
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value} is not a calendar date.") from None
        if day > utcnow().date() or day.year < 1900:
            raise ValueError(f"birthday {value} is not between 1900-01-01 and today.")
        return day
    if name == "tier":
        tiers = current_app.config["TIERS"]
        if value not in tiers:
            raise ValueError(f"tier is one of {', '.join(tiers)}.")
        return value
    if name in ("points", "xp", "coins"):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{name} is a whole number.")
        if not INT64[0] <= value <= INT64[1]:
            raise ValueError(f"{name} does not fit 64 bits.")
        if value < 0:
            raise ValueError(f"{name} must be 0 or more ({value:,} given).")
        return value
    if name == "badges":
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(b, str) and b.strip()
                                                  for b in value):
            raise ValueError("badges is a list of badge ids (non-empty strings).")
        if len(value) > MAX_BADGES or any(len(b) > 200 for b in value):
            raise ValueError(f"badges holds at most {MAX_BADGES} ids of up to 200 characters.")
        return list(dict.fromkeys(b.strip() for b in value))
    if name == "custom_fields":
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError("custom_fields is a JSON object.")
        problem = _json_problem(value)
        if problem:
            raise ValueError(f"custom_fields {problem}.")
        import json

        if len(json.dumps(value)) > MAX_CUSTOM_BYTES:
            raise ValueError(f"custom_fields is larger than {MAX_CUSTOM_BYTES // 1024} KB.")
        return value
    raise ValueError(f"Unknown attribute {name!r}.")


def _check_unique(values: dict[str, Any], member: Member | None = None) -> None:
    """Refuse an external id or email another member already has (409)."""
    errors: dict[str, str] = {}
    for name in ("external_id", "email"):
        value = values.get(name)
        if value is None:
            continue
        column = Member.external_id if name == "external_id" else Member.email
        query = select(Member.id).where(column == value)
        if member is not None:
            query = query.where(Member.id != member.id)
        if db.session.scalar(query) is not None:
            errors[name] = f"Another member already has {name} {value!r}."
    if errors:
        raise MemberError(errors, status=409)


def _snapshot(member: Member) -> dict[str, Any]:
    attrs = member.attributes()
    attrs.pop("created_at", None)
    attrs.pop("updated_at", None)
    return attrs


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, date | datetime) else v)
            for k, v in values.items()}


def create_member(data: dict[str, Any], *, actor: str) -> Member:
    """Create a member from API attributes and place it in its dynamic segments (commits)."""
    values = clean_attributes(data, partial=False)
    _check_unique(values)
    member = Member(**values)
    db.session.add(member)
    db.session.flush()
    record(actor, "member.create", "member", member.id,
           f"Created member {member.external_id}", after=_jsonable(values))
    refresh_member(member, Cause("profile_change", actor,
                                 {"member_created": True, "fields": sorted(values)}))
    db.session.commit()
    return member


def _assign(member: Member, values: dict[str, Any]) -> list[str]:
    """Set changed attributes; returns the names of those that changed."""
    changed = []
    for name, value in values.items():
        if getattr(member, name) != value:
            setattr(member, name, value)
            changed.append(name)
    if changed:
        member.updated_at = utcnow()
    return changed


def update_member(member: Member, data: dict[str, Any], *, actor: str) -> list[str]:
    """Change a member's profile and re-evaluate its dynamic segments (commits).

    Returns the changed attribute names; an unchanged profile writes nothing.
    """
    values = clean_attributes(data, partial=True)
    _check_unique(values, member)
    before = _snapshot(member)
    changed = _assign(member, values)
    if not changed:
        return []
    after = _snapshot(member)
    record(actor, "member.update", "member", member.id,
           f"Updated member {member.external_id}: {', '.join(changed)}",
           before={k: before[k] for k in changed}, after={k: after[k] for k in changed})
    db.session.flush()
    refresh_member(member, Cause("profile_change", actor, {"fields": changed}))
    db.session.commit()
    return changed


def delete_member(member: Member, *, actor: str, source: str = "api") -> int:
    """Delete a member, recording a REMOVE event for each segment it was in (commits).

    Returns how many segments the member left.
    """
    segment_ids = _lock_segments_of(member)
    cause = Cause(source, actor, {"member_deleted": True, "external_id": member.external_id})
    for segment in db.session.scalars(select(Segment).where(Segment.id.in_(segment_ids))):
        apply_delta(segment, remove=[member.id], via="rule", cause=cause, audit=False,
                    cascade=False)
    record(actor, "member.delete", "member", member.id,
           f"Deleted member {member.external_id} (left {len(segment_ids)} segment(s))",
           before=_snapshot(member))
    db.session.delete(member)
    db.session.commit()
    return len(segment_ids)


def create_from_identities(identities: Sequence[str], *, actor: str, reason: str
                           ) -> tuple[dict[str, Member], dict[str, str]]:
    """Create a member for each unknown identity, as CleverTap creates a profile (no commit).

    The identity becomes the external id, and also the email when it is an email address.
    Returns the members by identity and, for identities that cannot name a member (too long,
    say), the reason. The new members are placed in their dynamic segments.
    """
    created: dict[str, Member] = {}
    refused: dict[str, str] = {}
    by_email: dict[str, Member] = {}
    for identity in identities:
        values = {"external_id": identity}
        if _EMAIL.match(identity.strip()):
            values["email"] = identity
        try:
            cleaned = clean_attributes(values, partial=False)
        except MemberError as exc:
            refused[identity] = "; ".join(exc.errors.values())
            continue
        email = cleaned.get("email")
        if email in by_email:  # Ana@x.com and ana@x.com are one person
            created[identity] = by_email[email]
            continue
        member = Member(**cleaned)
        db.session.add(member)
        created[identity] = member
        if email:
            by_email[email] = member
    if not created:
        return created, refused
    db.session.flush()
    new = list({m.id: m for m in created.values()}.values())
    for member in new:
        record(actor, "member.create", "member", member.id,
               f"Created member {member.external_id} ({reason})",
               after=_jsonable(_snapshot(member)))
    refresh_members(new, Cause("profile_change", actor, {"member_created": True,
                                                          "reason": reason}))
    return created, refused


def _lock_segments_of(member: Member) -> list[int]:
    """Lock the segments a member being deleted is in, then the member; returns their ids.

    Segments before members is the order every writer follows (an add holds the segment's
    lock when it takes the member's FOR KEY SHARE). Locking the member row FOR UPDATE then
    waits for adds of this member in flight; one that committed meanwhile shows up in the
    second read and its segment is locked too, so its row leaves with a REMOVE event
    instead of vanishing with the member.
    """
    postgres = db.session.get_bind().dialect.name == "postgresql"
    hold_sqlite_write_lock()
    if postgres:
        # Every segment first, not only the member's: an add of this member to a segment it
        # is not in yet holds that segment's lock while its foreign-key check waits for the
        # member row, so waiting for the member row while holding only some segments (and
        # then reaching for that one) could deadlock. Deleting a member is rare.
        lock_segments(db.session.scalars(select(Segment.id)).all(), dependents=False)
    locked: set[int] | None = None
    while True:
        segment_ids = set(db.session.scalars(select(SegmentMembership.segment_id).where(
            SegmentMembership.member_id == member.id)))
        if locked is not None and segment_ids <= locked:
            return sorted(segment_ids)
        lock_segments(segment_ids, dependents=False)
        locked = (locked or set()) | segment_ids
        if postgres:
            db.session.execute(select(Member.id).where(Member.id == member.id)
                               .with_for_update())


# --- batch upsert -----------------------------------------------------------------------------

@dataclass
class ItemResult:
    """What a batch did with one item."""

    index: int
    status: str  # created | updated | unchanged | invalid
    member_id: str | None = None
    external_id: str | None = None
    errors: dict[str, str] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)


def upsert_members(items: Sequence[dict[str, Any]], *, actor: str) -> list[ItemResult]:
    """Create or update members by external_id; a result per item, valid ones in one commit.

    An invalid item (bad attribute, an email another member has, an external id given twice)
    is skipped and reported; the others are applied together, then the changed members are
    re-evaluated against every dynamic segment in one pass.
    """
    results: list[ItemResult] = []
    cleaned: list[tuple[int, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    registry = declared()
    for index, data in enumerate(items):
        try:
            values = clean_attributes(data, partial=False, registry=registry)
        except MemberError as exc:
            results.append(ItemResult(index, "invalid", external_id=_ext(data), errors=exc.errors))
            continue
        ext = values["external_id"]
        if ext in seen:
            results.append(ItemResult(index, "invalid", external_id=ext, errors={
                "external_id": f"external_id {ext!r} is also item {seen[ext]} of this batch."}))
            continue
        seen[ext] = index
        cleaned.append((index, values))
        results.append(ItemResult(index, "pending", external_id=ext))
    existing = _load_by_external_id([v["external_id"] for _, v in cleaned])
    emails = _email_owners([v["email"] for _, v in cleaned if v.get("email")])
    claimed: dict[str, str] = {}
    touched: list[Member] = []
    new_members: list[Member] = []
    by_index = {r.index: r for r in results}
    placed: dict[int, Member] = {}
    for index, values in cleaned:
        result = by_index[index]
        member = existing.get(values["external_id"])
        email = values.get("email")
        if email:
            owner = emails.get(email, claimed.get(email))
            mine = member.id if member is not None else None
            if owner is not None and owner != mine and owner != f"new:{index}":
                result.status = "invalid"
                result.errors = {"email": f"Another member already has email {email!r}."}
                continue
            claimed[email] = mine or f"new:{index}"
        if member is None:
            member = Member(**values)
            db.session.add(member)
            new_members.append(member)
            result.status = "created"
            result.changed = sorted(values)
            touched.append(member)
        else:
            changed = _assign(member, values)
            result.status = "updated" if changed else "unchanged"
            result.changed = changed
            if changed:
                touched.append(member)
        placed[index] = member
    db.session.flush()
    for index, member in placed.items():
        by_index[index].member_id = member.id
    counts = defaultdict(int)
    for result in results:
        counts[result.status] += 1
    if touched:
        refresh_members(touched, Cause("profile_change", actor, {
            "batch": True, "created": counts["created"], "updated": counts["updated"]}))
    record(actor, "member.batch", "member", "batch",
           f"Batch upsert: {counts['created']} created, {counts['updated']} updated, "
           f"{counts['unchanged']} unchanged, {counts['invalid']} invalid",
           after=dict(counts))
    db.session.commit()
    return results


def _ext(data: Any) -> str | None:
    value = data.get("external_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def _load_by_external_id(external_ids: list[str]) -> dict[str, Member]:
    found: dict[str, Member] = {}
    for start in range(0, len(external_ids), 500):
        chunk = external_ids[start:start + 500]
        for member in db.session.scalars(select(Member).where(Member.external_id.in_(chunk))):
            found[member.external_id] = member
    return found


def _email_owners(emails: list[str]) -> dict[str, str]:
    owners: dict[str, str] = {}
    for start in range(0, len(emails), 500):
        chunk = emails[start:start + 500]
        for member_id, email in db.session.execute(
                select(Member.id, Member.email).where(Member.email.in_(chunk))):
            owners[email] = member_id
    return owners


# --- search -------------------------------------------------------------------------------------

def search_members(definition: dict[str, Any], *, limit: int, after: str | None = None,
                   now: datetime | None = None) -> tuple[int, list[Member]]:
    """Members matching criteria (SPEC §3), computed in the database: exact count and a page.

    `definition` holds `include` and `exclude` lists; raises SegmentDefinitionError for a
    criterion the core refuses. The page is ordered by member id, after `after` when given.
    """
    from webapp.services.membership import members_t
    from webapp.services.segments import resolve_segment_references
    from webapp.targeting import SegmentDefinitionError, parse_definition

    unknown: dict[str, str] = {}
    include, exclude = (resolve_segment_references(definition.get(group) or [], group, unknown)
                        for group in ("include", "exclude"))
    if unknown:
        raise SegmentDefinitionError(next(iter(unknown.values())))
    limit_criteria = current_app.config["LIMIT_CRITERIA"]
    parsed = parse_definition({"kind": "dynamic", "include": include, "exclude": exclude},
                              max_include=limit_criteria, max_exclude=limit_criteria)
    condition = rules_condition(parsed, now=now)
    count = db.session.scalar(select(func.count()).select_from(members_t).where(condition)) or 0
    query = select(Member).where(condition).order_by(Member.id).limit(limit)
    if after is not None:
        query = query.where(Member.id > after)
    return count, list(db.session.scalars(query))
