"""Offers and their audiences: create, change, delete, and the exact reach in the database.

The dashboard views and the JSON:API both call these functions; each one validates, writes its
audit entry and commits, or raises :class:`OfferError` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models import Audience, AudienceSegment, Member, Offer, Segment, SegmentMembership
from webapp.services.audit import record
from webapp.services.errors import Conflict, ServiceError
from webapp.services.rules import rules_condition
from webapp.targeting import AudienceDefinitionError, validate_audience
from webapp.targeting.audiences import (
    REGISTRY,
    SEGMENT_IDS,
    audience_reach,
    describe_audience,
    segment_ids_of,
)
from webapp.targeting.limits import (
    ACTIVATIONS,
    FULFILL_DAYS_RULE,
    LimitDefinitionError,
    counts,
    validate_fulfill_days,
)
from webapp.timeutil import parse_datetime, utcnow

OFFER_FIELDS = ("name", "external_id", "category", "description", "publish_at", "expire_at",
                "discontinued", "requires_activation", "must_fulfill_within_days")
MAX_ID = 2**63 - 1  # ids beyond 64 bits never reach the database (no such segment)
LIMITS = {"name": 200, "external_id": 255, "category": 100, "description": 20_000}


class OfferError(ServiceError):
    """A refused offer or audience change; `.errors` maps each field to what is wrong with it."""


# --- shared field parsing (rewards use the same rules) -----------------------------------------


def parse_text(data: Mapping[str, Any], key: str, errors: dict[str, str], *,
               required: bool = False, nullable: bool = False) -> Any:
    """A trimmed string field (None/empty allowed when nullable); records an error when bad."""
    value = data.get(key)
    if value is None:
        if required:
            errors[key] = "is required"
        return None if nullable else ""
    if not isinstance(value, str):
        errors[key] = "must be a string"
        return None
    value = value.strip()
    if "\x00" in value:
        errors[key] = "must not contain NUL characters"
        return None if nullable else ""
    if required and not value:
        errors[key] = "must not be blank"
    limit = LIMITS.get(key)
    if limit and len(value) > limit:
        errors[key] = f"is too long ({len(value):,} characters, at most {limit:,})"
    if nullable and not value:
        return None
    return value


def parse_moment(data: Mapping[str, Any], key: str, errors: dict[str, str]) -> datetime | None:
    """An optional date/datetime field as naive UTC (ISO 8601 text or a datetime)."""
    value = data.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return parse_datetime(value)
        except ValueError:
            pass
    errors[key] = "must be an ISO 8601 date or datetime, e.g. 2026-12-01T09:00:00Z"
    return None


def parse_flag(data: Mapping[str, Any], key: str, errors: dict[str, str]) -> bool:
    """A boolean field (true/false only)."""
    value = data.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        errors[key] = "must be true or false"
        return False
    return value


def check_window(publish_at: datetime | None, expire_at: datetime | None,
                 errors: dict[str, str]) -> None:
    """Publish must come before expire when both are given."""
    if publish_at and expire_at and publish_at >= expire_at and "expire_at" not in errors:
        errors["expire_at"] = "must be after the publish time"


def moment_text(value: datetime | None) -> str | None:
    """A stored naive-UTC datetime as ISO text for audit entries."""
    return value.isoformat() + "Z" if value else None


def parse_catalog_fields(data: Mapping[str, Any], item: Any, model: Any, kind: str,
                         errors: dict[str, str]) -> dict[str, Any]:
    """The fields offers and rewards share: name, category, description, external id
    (unique), publish/expire window and discontinued. Only given keys, unless creating."""
    creating = item is None
    values: dict[str, Any] = {}
    if creating or "name" in data:
        values["name"] = parse_text(data, "name", errors, required=True)
    for key in ("category", "description"):
        if creating or key in data:
            values[key] = parse_text(data, key, errors) or ""
    if creating or "external_id" in data:
        values["external_id"] = parse_text(data, "external_id", errors, nullable=True)
    for key in ("publish_at", "expire_at"):
        if creating or key in data:
            values[key] = parse_moment(data, key, errors)
    if creating or "discontinued" in data:
        values["discontinued"] = parse_flag(data, "discontinued", errors)
    publish = values.get("publish_at", None if creating else item.publish_at)
    expire = values.get("expire_at", None if creating else item.expire_at)
    check_window(publish, expire, errors)
    ext = values.get("external_id")
    if ext and "external_id" not in errors:
        clash = db.session.scalar(sa.select(model.id).where(model.external_id == ext))
        if clash is not None and (creating or clash != item.id):
            errors["external_id"] = Conflict(f"{ext!r} is already used by {kind} #{clash}")
    return values


# --- offers -------------------------------------------------------------------------------------


def offer_snapshot(offer: Offer) -> dict[str, Any]:
    """The offer's own fields as JSON, for audit before/after."""
    return {"name": offer.name, "external_id": offer.external_id, "category": offer.category,
            "description": offer.description, "publish_at": moment_text(offer.publish_at),
            "expire_at": moment_text(offer.expire_at), "discontinued": offer.discontinued,
            "requires_activation": bool(offer.requires_activation),
            "must_fulfill_within_days": offer.must_fulfill_within_days}


def _unknown(data: Mapping[str, Any], allowed: Sequence[str]) -> dict[str, str]:
    return {str(k): "is not an attribute of this resource" for k in data if k not in allowed}


def save_offer(data: Mapping[str, Any], *, offer: Offer | None = None, actor: str) -> Offer:
    """Create an offer, or change the given fields of an existing one; audits and commits."""
    errors = _unknown(data, OFFER_FIELDS)
    values = parse_catalog_fields(data, offer, Offer, "offer", errors)
    if offer is None or "requires_activation" in data:
        values["requires_activation"] = parse_flag(data, "requires_activation", errors)
    if offer is None or "must_fulfill_within_days" in data:
        try:
            values["must_fulfill_within_days"] = validate_fulfill_days(
                data.get("must_fulfill_within_days"))
        except LimitDefinitionError:
            errors["must_fulfill_within_days"] = FULFILL_DAYS_RULE
    if offer is not None and values.get("requires_activation") is False and any(
            counts(lim.limit_type) == ACTIVATIONS for lim in offer.limits):
        errors["requires_activation"] = ("cannot be switched off while the offer has a limit "
                                         "that counts activations (delete that limit first)")
    if errors:
        raise OfferError(errors)
    creating = offer is None
    before = None if creating else offer_snapshot(offer)
    if creating:
        offer = Offer()
        db.session.add(offer)
    return store_item(offer, values, kind="offer", before=before, snapshot=offer_snapshot,
                      error=OfferError, actor=actor)


def store_item(item: Any, values: Mapping[str, Any], *, kind: str,
               before: dict[str, Any] | None, snapshot: Callable[[Any], dict[str, Any]],
               error: Callable[[dict[str, str]], Exception], actor: str) -> Any:
    """Write validated values to a new (before is None) or existing offer/reward, audit the
    change (nothing when nothing changed) and commit; an external id clash raises `error`."""
    for key, value in values.items():
        setattr(item, key, value)
    item.updated_at = utcnow()
    try:
        db.session.flush()
    except IntegrityError as exc:
        db.session.rollback()
        raise error({"external_id": Conflict(f"is already used by another {kind}")}) from exc
    after = snapshot(item)
    if before is None:
        record(actor, f"{kind}.create", kind, item.id, f"Created {kind} {item.name}",
               None, after)
    elif before != after:
        record(actor, f"{kind}.update", kind, item.id, f"Changed {kind} {item.name}",
               before, after)
    db.session.commit()
    return item


def delete_offer(offer: Offer, *, actor: str) -> None:
    """Delete an offer and its audiences; audits and commits."""
    before = offer_snapshot(offer)
    before["audiences"] = [audience_snapshot(a) for a in offer.audiences]
    record(actor, "offer.delete", "offer", offer.id, f"Deleted offer {offer.name}", before, None)
    db.session.delete(offer)
    db.session.commit()


# --- audiences ----------------------------------------------------------------------------------


def audience_snapshot(audience: Audience) -> dict[str, Any]:
    """An audience as JSON, for audit before/after."""
    return {"id": audience.id, "audience_type": audience.audience_type,
            "configuration": dict(audience.configuration or {})}


def validated_audience(audience_type: Any, configuration: Any) -> dict[str, Any]:
    """SPEC §2 validation of one audience, segment ids checked against the database."""
    candidates = [v for v in segment_ids_of(audience_type, configuration)
                  if not isinstance(v, bool) and 0 < v <= MAX_ID]
    existing = set(db.session.scalars(sa.select(Segment.id).where(Segment.id.in_(candidates)))
                   ) if candidates else set()
    try:
        return validate_audience(audience_type, configuration, segment_ids=existing)
    except AudienceDefinitionError as exc:
        raise OfferError({exc.field: str(exc)}, words={exc.field: exc.words}) from exc


def add_audience(offer: Offer, audience_type: str, configuration: Mapping[str, Any], *,
                 actor: str) -> Audience:
    """Validate and add an audience to an offer (with its where-used links); audits, commits.

    A segment that is archived is refused (a new use of it)."""
    from webapp.services.segments import archived_among, archived_message

    config = validated_audience(audience_type, configuration)
    segment_ids = segment_ids_of(audience_type, config)
    archived = archived_among(segment_ids)
    if archived:
        field = _segment_field(audience_type)
        name = next(iter(archived.values()))
        raise OfferError({field: archived_message(name)},
                         words={field: archived_message(name, sentence=True)})
    audience = Audience(offer_id=offer.id, audience_type=audience_type, configuration=config)
    for sid in dict.fromkeys(segment_ids):
        audience.segment_links.append(AudienceSegment(segment_id=sid))
    db.session.add(audience)
    offer.updated_at = utcnow()
    db.session.flush()
    names = segment_names(segment_ids)
    record(actor, "audience.create", "offer", offer.id,
           f"Added audience to offer {offer.name}: "
           f"{describe_audience(audience_type, config, names)}",
           None, audience_snapshot(audience))
    db.session.commit()
    db.session.refresh(offer)
    return audience


def remove_audience(audience: Audience, *, actor: str) -> None:
    """Remove one audience from its offer; audits and commits."""
    offer = audience.offer
    names = segment_names(segment_ids_of(audience.audience_type, audience.configuration or {}))
    record(actor, "audience.delete", "offer", audience.offer_id,
           f"Removed audience from offer {offer.name}: "
           f"{describe_audience(audience.audience_type, audience.configuration or {}, names)}",
           audience_snapshot(audience), None)
    db.session.delete(audience)
    offer.updated_at = utcnow()
    db.session.commit()
    db.session.refresh(offer)


def _segment_field(audience_type: str) -> str:
    """The error key of an audience type's (first) segments field."""
    fields = [f.name for f in REGISTRY[audience_type].fields if f.input == SEGMENT_IDS]
    return f"configuration.{fields[0]}" if fields else "configuration"


def segment_names(ids: Sequence[int]) -> dict[int, str]:
    """Names of these segments by id (the words of audiences that name them)."""
    if not ids:
        return {}
    return dict(db.session.execute(sa.select(Segment.id, Segment.name).where(
        Segment.id.in_(list(ids)))).all())


# --- reach --------------------------------------------------------------------------------------


def criteria_condition(criteria: Sequence[Mapping[str, Any]],
                       now: datetime | None = None) -> sa.ColumnElement[bool]:
    """SQL over `members`: matches every criterion of an audience's reach (a member without
    the field, e.g. no birthday for an age, fails)."""
    return rules_condition({"kind": "dynamic", "include": list(criteria), "exclude": []},
                           now=now, memberships=False)


def in_segments_condition(segment_ids: Sequence[int]) -> sa.ColumnElement[bool]:
    """SQL over `members`: in any of the segments, by materialized membership."""
    sm = SegmentMembership.__table__
    ids = list(segment_ids)
    if not ids:
        return sa.false()
    inside = sm.c.segment_id == ids[0] if len(ids) == 1 else sm.c.segment_id.in_(ids)
    return Member.__table__.c.id.in_(sa.select(sm.c.member_id).where(inside))


def audiences_condition(audiences: Sequence[tuple[str, Mapping[str, Any]]],
                        now: datetime | None = None) -> sa.ColumnElement[bool]:
    """SQL over `members`: passes every audience (validated first; raises OfferError)."""
    parts: list[sa.ColumnElement[bool]] = []
    for audience_type, configuration in audiences:
        reach = audience_reach(audience_type, validated_audience(audience_type, configuration))
        if reach.criteria:
            parts.append(criteria_condition(reach.criteria, now))
        parts.extend(in_segments_condition(ids) for ids in reach.segment_sets)
    return sa.and_(sa.true(), *parts)


def offer_reach(audiences: Sequence[tuple[str, Mapping[str, Any]]], *,
                now: datetime | None = None) -> int:
    """How many members pass all these audiences (who would see the offer), counted in SQL.

    Each audience type says who passes it (`Reach`: criteria and segment sets). With segment
    sets the count is driven from the smallest set's membership rows (primary-key lookups for
    the others) instead of scanning every member."""
    reaches = [audience_reach(kind, validated_audience(kind, c)) for kind, c in audiences]
    criteria = [reach.criteria for reach in reaches if reach.criteria]
    sets = [list(ids) for reach in reaches for ids in reach.segment_sets]
    if not sets:
        query = sa.select(sa.func.count()).select_from(Member.__table__)
        for each in criteria:
            query = query.where(criteria_condition(each, now))
        return int(db.session.scalar(query) or 0)
    sizes = dict(db.session.execute(sa.select(Segment.id, Segment.size).where(
        Segment.id.in_({sid for ids in sets for sid in ids}))).all())
    sets.sort(key=lambda ids: sum(sizes.get(sid, 0) for sid in ids))
    query, base = segment_driven_count(sets)
    if criteria:
        conditions = [criteria_condition(each, now) for each in criteria]
        query = query.where(member_exists(base.c.member_id, *conditions))
    return int(db.session.scalar(query) or 0)


def segment_driven_count(sets: list[list[int]]) -> tuple[sa.Select, Any]:
    """count(*) over the members in any segment of every set, driven from the first set's
    membership rows (primary-key lookups for the other sets); returns (query, driver)."""
    sm = SegmentMembership.__table__
    first = sets[0]
    driver = (sa.select(sm.c.member_id).where(sm.c.segment_id.in_(first)).distinct()
              if len(first) > 1 else sa.select(sm.c.member_id).where(sm.c.segment_id == first[0]))
    base = driver.subquery()
    query = sa.select(sa.func.count()).select_from(base)
    for ids in sets[1:]:
        other = sm.alias()
        query = query.where(sa.exists().where(other.c.member_id == base.c.member_id,
                                              other.c.segment_id.in_(ids)))
    return query, base


def member_exists(member_id: Any, *conditions: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    """EXISTS a member with this id meeting the conditions (a per-row primary-key lookup, so
    the segment rows stay the driving side on SQLite too)."""
    members = Member.__table__
    return sa.exists().where(members.c.id == member_id, *conditions)


def member_count() -> int:
    """How many members there are (the reach of an offer without audiences)."""
    return int(db.session.scalar(sa.select(sa.func.count()).select_from(Member.__table__)) or 0)


# --- listing ------------------------------------------------------------------------------------

STATES = ("active", "scheduled", "expired", "discontinued")


def state_of(item: Any, now: datetime | None = None) -> str:
    """An offer's or reward's state: discontinued, scheduled, expired or active."""
    now = now or utcnow()
    if item.discontinued:
        return "discontinued"
    if item.publish_at is not None and now < item.publish_at:
        return "scheduled"
    if item.expire_at is not None and now >= item.expire_at:
        return "expired"
    return "active"


def state_condition(model: Any, state: str, now: datetime | None = None
                    ) -> sa.ColumnElement[bool]:
    """SQL filter for one state (the same rules as `state_of`) on Offer or Reward."""
    now = now or utcnow()
    live = model.discontinued.is_(False)
    if state == "discontinued":
        return model.discontinued.is_(True)
    if state == "scheduled":
        return sa.and_(live, model.publish_at.is_not(None), model.publish_at > now)
    started = sa.or_(model.publish_at.is_(None), model.publish_at <= now)
    if state == "expired":
        return sa.and_(live, started, model.expire_at.is_not(None), model.expire_at <= now)
    return sa.and_(live, started, sa.or_(model.expire_at.is_(None), model.expire_at > now))


def clean_query(text: str, limit: int = 200) -> str:
    """A search box's text, trimmed and without NUL characters (PostgreSQL refuses them)."""
    return text.replace("\x00", "").strip()[:limit]


def search_condition(model: Any, text: str) -> sa.ColumnElement[bool]:
    """Name, external id or category contains the text (case-insensitive)."""
    pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return sa.or_(*[sa.func.lower(col).like(pattern, escape="\\")
                    for col in (model.name, model.external_id, model.category)])


def segment_options(text: str, selected: Sequence[int] = (), limit: int = 50
                    ) -> tuple[list[Segment], list[Segment]]:
    """For a segment picker: the selected segments, and up to `limit` others that are not
    archived matching the text (name or customer segment id contains it, or the id is it)."""
    chosen = list(db.session.scalars(sa.select(Segment).where(
        Segment.id.in_(list(selected))).order_by(Segment.name))) if selected else []
    # Archived segments cannot be newly used, so they are not offered.
    query = sa.select(Segment).where(Segment.archived_at.is_(None)).order_by(
        Segment.name).limit(limit)
    text = clean_query(text)
    if text:
        pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace(
            "_", "\\_") + "%"
        conditions = [sa.func.lower(Segment.name).like(pattern, escape="\\"),
                      sa.func.lower(Segment.customer_segment_id).like(pattern, escape="\\")]
        if text.isdigit() and len(text) < 10:
            conditions.append(Segment.id == int(text))
        query = query.where(sa.or_(*conditions))
    if selected:
        query = query.where(Segment.id.not_in(list(selected)))
    return chosen, list(db.session.scalars(query))
