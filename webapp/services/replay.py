"""As-of decisions: which offers and rewards a member saw at a past moment, and why, replayed
from history exactly as they were computed then.

What a decision reads, and where its past comes from:

* the member's attributes, the catalog (offers with audiences and limits, rewards with
  required segments, the segment definitions they reach) and the member's overrides: every
  version of their rows, written by database triggers in the changing transaction
  (`row_history`, migration 0017_history), the latest version at or before the moment;
* the static lists the member was on: the membership events (each list change writes one,
  and they replay to the rows);
* the member's activations, awards and activities, and the counts of the globally limited
  offers: their own timestamps (activated, fulfilled, recorded at or before the moment).

The decisions are then made by the same core, at that moment, so replaying the present gives
the live answer byte for byte. A moment before the history begins (`history_meta`), beyond the
retention (HISTORY_RETENTION_DAYS, default: keep everything) or in the future is refused with
a message, never guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from flask import current_app

from webapp.extensions import db
from webapp.models import (
    Audience,
    HistoryMeta,
    Member,
    MembershipEvent,
    Offer,
    OfferActivation,
    OfferFulfillment,
    OfferLimit,
    Override,
    Reward,
    RewardRequiredSegment,
    RowHistory,
    Segment,
    member_attributes,
)
from webapp.services.errors import ServiceError
from webapp.targeting import SegmentFacts
from webapp.timeutil import utcnow

H = RowHistory.__table__
CATALOG_TABLES = ("segments", "offers", "audiences", "offer_limits", "rewards",
                  "reward_required_segments")
MODELS = {"members": Member, "segments": Segment, "offers": Offer, "audiences": Audience,
          "offer_limits": OfferLimit, "rewards": Reward,
          "reward_required_segments": RewardRequiredSegment, "overrides": Override}


class ReplayError(ServiceError):
    """A moment that cannot be replayed (before the history, beyond retention, the future)."""


def parse_moment(text: str) -> datetime:
    """An `as_of` value (RFC 3339, with Z or an offset) as naive UTC; ReplayError if not one."""
    from webapp.targeting.values import parse_iso, to_utc_naive, zone

    try:
        parsed = parse_iso(text.strip())
    except (ValueError, AttributeError):
        parsed = None
    if not isinstance(parsed, datetime) or parsed.tzinfo is None:
        raise ReplayError(f"as_of {text!r} is not a moment: give an RFC 3339 time with its "
                          "offset, e.g. 2026-12-01T14:00:00Z")
    return to_utc_naive(parsed, zone("UTC"))


def history_begins() -> datetime:
    """When the history begins: answers before it would be guesses."""
    got = db.session.scalar(sa.select(HistoryMeta.begins_at).where(HistoryMeta.id == 1))
    return got or utcnow()


def retention_start(now: datetime) -> datetime | None:
    """The oldest moment kept (HISTORY_RETENTION_DAYS back from now), None: everything kept."""
    days = current_app.config.get("HISTORY_RETENTION_DAYS")
    return None if not days else now - timedelta(days=int(days))


def check_moment(moment: datetime, now: datetime | None = None) -> None:
    """Refuse a moment that has no exact answer; see the module docstring."""
    now = now or utcnow()
    begins = history_begins()
    if moment > now:
        raise ReplayError(f"as_of {_iso(moment)} is in the future; the latest moment is now "
                          f"({_iso(now)})")
    if moment < begins:
        raise ReplayError(f"as_of {_iso(moment)} is before the history begins "
                          f"({_iso(begins)}); no answer from before then is exact")
    start = retention_start(now)
    if start is not None and moment < start:
        raise ReplayError(f"as_of {_iso(moment)} is beyond the history's retention "
                          f"({current_app.config['HISTORY_RETENTION_DAYS']} days: kept from "
                          f"{_iso(start)})")


def _iso(moment: datetime) -> str:
    return moment.isoformat() + "Z"


# --- rows as they were -------------------------------------------------------------------------


def _decoder(table: str) -> Callable[[Mapping[str, Any]], SimpleNamespace]:
    """Turn a stored row (JSON) back into the values the live loaders read."""
    columns = MODELS[table].__table__.c
    kinds: dict[str, Callable[[Any], Any]] = {}
    for column in columns:
        t = column.type
        if isinstance(t, sa.DateTime):
            kinds[column.key] = _datetime
        elif isinstance(t, sa.Date):
            kinds[column.key] = _date
        elif isinstance(t, sa.Boolean):
            kinds[column.key] = _bool
        elif isinstance(t, sa.Integer | sa.BigInteger):
            kinds[column.key] = _int
    names = {c.name: c.key for c in columns}

    def decode(data: Mapping[str, Any]) -> SimpleNamespace:
        values = {}
        for name, key in names.items():
            value = data.get(name)
            convert = kinds.get(key)
            values[key] = value if value is None or convert is None else convert(value)
        return SimpleNamespace(**values)
    return decode


def _datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _bool(value: Any) -> bool:
    return bool(value)


def _int(value: Any) -> int:
    return int(value)


def rows_at(table: str, moment: datetime, *, member_id: str | None = None
            ) -> list[SimpleNamespace]:
    """The rows of a tracked table as they were at `moment` (deleted ones left out)."""
    last = sa.select(sa.func.max(H.c.id)).where(H.c.table_name == table,
                                                H.c.changed_at <= moment)
    if member_id is not None:
        last = last.where(H.c.member_id == member_id)
    last = last.group_by(H.c.row_key)
    decode = _decoder(table)
    return [decode(data) for op, data in db.session.execute(
        sa.select(H.c.op, H.c.data).where(H.c.id.in_(last))) if op != "D"]


def member_at(member_id: str, moment: datetime) -> dict[str, Any] | None:
    """The member's attributes at `moment` (None: not a member then)."""
    row = db.session.execute(sa.select(H.c.op, H.c.data).where(
        H.c.member_id == member_id, H.c.table_name == "members", H.c.changed_at <= moment
    ).order_by(H.c.id.desc()).limit(1)).first()
    if row is None or row.op == "D":
        return None
    return member_attributes(_decoder("members")(row.data))


# --- the catalog as it was -----------------------------------------------------------------------


def catalog_version(moment: datetime) -> int:
    """The last change of the catalog at or before `moment` (its history row id)."""
    return db.session.scalar(sa.select(sa.func.max(H.c.id)).where(
        H.c.table_name.in_(CATALOG_TABLES), H.c.changed_at <= moment)) or 0


_CATALOGS: dict[tuple[Any, int], Any] = {}


def catalog_at(moment: datetime) -> Any:
    """The catalog (as `decisions.Catalog`) as it was at `moment`, ordered as the live loader
    orders it; kept per catalog version (a few, per process)."""
    from webapp.services.decisions import Catalog, _segment_ids

    key = (db.engine.url, catalog_version(moment))
    got = _CATALOGS.get(key)
    if got is not None:
        return got
    offers = sorted(rows_at("offers", moment), key=lambda o: (o.name, o.id))
    audiences: dict[int, list[dict[str, Any]]] = {}
    offer_segments: dict[int, list[int]] = {}
    referenced: set[int] = set()
    for a in sorted(rows_at("audiences", moment), key=lambda a: a.id):
        config = a.configuration or {}
        audiences.setdefault(a.offer_id, []).append(
            {"audience_type": a.audience_type, "configuration": config})
        ids = _segment_ids(config)
        if ids:
            offer_segments.setdefault(a.offer_id, []).extend(ids)
            referenced.update(ids)
    limits: dict[int, list[dict[str, Any]]] = {}
    for lim in sorted(rows_at("offer_limits", moment), key=lambda x: x.id):
        limits.setdefault(lim.offer_id, []).append({
            "id": lim.id, "limit_type": lim.limit_type, "configuration": lim.configuration or {}})
    rewards = sorted(rows_at("rewards", moment), key=lambda r: (r.name, r.id))
    required: dict[int, list[int]] = {}
    for link in sorted(rows_at("reward_required_segments", moment),
                       key=lambda x: x.segment_id):
        required.setdefault(link.reward_id, []).append(link.segment_id)
        referenced.add(link.segment_id)
    segments = _segments_closure(referenced, {s.id: s for s in rows_at("segments", moment)})
    catalog = Catalog(offers=offers, audiences=audiences, rewards=rewards, required=required,
                      segments=segments, direct=referenced, offer_segments=offer_segments,
                      limits=limits, token=f"as-of:{key[1]}")
    if len(_CATALOGS) > 8:
        _CATALOGS.clear()
    _CATALOGS[key] = catalog
    return catalog


def _segments_closure(wanted: set[int], rows: Mapping[int, Any]) -> dict[int, SegmentFacts]:
    from webapp.targeting.visibility import compiled_refs

    loaded: dict[int, SegmentFacts] = {}
    wanted = set(wanted)
    while wanted:
        for sid in sorted(wanted):
            s = rows.get(sid)
            if s is not None:
                loaded[sid] = SegmentFacts(id=sid, name=s.name, kind=s.kind, definition={
                    "kind": s.kind, "include": list(s.include or []),
                    "exclude": list(s.exclude or [])})
        refs: set[int] = set()
        for sid in wanted & set(loaded):
            refs |= compiled_refs(loaded[sid])
        wanted = refs - set(loaded) - wanted
    return loaded


# --- the member's facts as they were -------------------------------------------------------------


def member_rows_at(member_id: str, segments: Mapping[int, SegmentFacts], moment: datetime
                   ) -> tuple[set[int], dict[int, dict[str, Any]]]:
    """`decisions.member_rows` at `moment`: the static lists the member was on (from the
    membership events) and the member's overrides then (from their versions)."""
    from webapp.services.decisions import override_fact

    static = sorted(sid for sid, f in segments.items() if f.kind == "static")
    on_list: set[int] = set()
    if static:
        e = MembershipEvent.__table__.c
        last = sa.select(sa.func.max(e.id)).where(
            e.member_id == member_id, e.segment_id.in_(static), e.created_at <= moment
        ).group_by(e.segment_id)
        on_list = {sid for sid, action in db.session.execute(sa.select(
            e.segment_id, e.action).where(e.id.in_(last))) if action == "ADD"}
    overrides = {o.segment_id: override_fact(o)
                 for o in rows_at("overrides", moment, member_id=member_id)
                 if o.segment_id in segments}
    return on_list, overrides


def usage_rows_at(member_id: str, global_ids: Iterable[int], moment: datetime) -> list[tuple]:
    """`offer_usage.usage_rows` at `moment` (activations, awards; global counts)."""
    a = OfferActivation.__table__.c
    f = OfferFulfillment.__table__.c
    rows: list[tuple] = []
    for offer_id, activated, expires, fulfilled in db.session.execute(sa.select(
            a.offer_id, a.activated_at, a.expires_at, a.fulfilled_at).where(
            a.member_id == member_id, a.activated_at <= moment)):
        rows.append(("a", offer_id, activated, expires,
                     fulfilled if fulfilled is not None and fulfilled <= moment else None,
                     None, None))
    for offer_id, fulfilled in db.session.execute(sa.select(f.offer_id, f.fulfilled_at).where(
            f.member_id == member_id, f.fulfilled_at <= moment)):
        rows.append(("f", offer_id, fulfilled, None, None, None, None))
    ids = sorted(global_ids)
    if ids:
        acts = dict(db.session.execute(sa.select(a.offer_id, sa.func.count()).where(
            a.offer_id.in_(ids), a.activated_at <= moment).group_by(a.offer_id)).tuples())
        awards = dict(db.session.execute(sa.select(f.offer_id, sa.func.count()).where(
            f.offer_id.in_(ids), f.fulfilled_at <= moment).group_by(f.offer_id)).tuples())
        for offer_id in ids:
            if offer_id in acts or offer_id in awards:
                rows.append(("g", offer_id, None, None, None, acts.get(offer_id, 0),
                             awards.get(offer_id, 0)))
    return rows


def decorated_at(member_id: str, kind: str, render: Callable, moment: datetime
                 ) -> tuple[bytes, int]:
    """Every offer or reward decided for the member as at `moment`, rendered as the live
    route renders them (see `decisions.decorated`); ReplayError when the moment cannot be
    replayed or the member did not exist then."""
    from webapp.services import activities
    from webapp.services.decisions import Explainer, _facts, catalog_activity_criteria
    from webapp.services.offer_usage import usage_from_rows
    from webapp.services.rules import program_timezone

    check_moment(moment)
    attributes = member_at(member_id, moment)
    if attributes is None:
        raise ReplayError(f"member {member_id} did not exist at {_iso(moment)}")
    catalog = catalog_at(moment)
    on_list, overrides = member_rows_at(member_id, catalog.segments, moment)
    criteria = catalog_activity_criteria(catalog)
    if criteria:
        attributes["activities"] = tuple(activities.load(
            [member_id], criteria, moment, recorded_by=moment)[member_id])
    usage = {}
    if kind == "offers":
        usage = usage_from_rows(usage_rows_at(member_id, catalog.global_limited(), moment))
    member = SimpleNamespace(id=member_id)
    ex = Explainer(member=member, catalog=catalog, now=moment, tz=program_timezone(),
                   attributes=attributes, facts=_facts(catalog.segments, on_list, overrides),
                   direct=catalog.direct_for(kind), usage=usage)
    if kind == "offers":
        pairs = [(o, ex.offer(o, serialized=True)) for o in catalog.offers]
    else:
        pairs = [(r, ex.reward(r, serialized=True)) for r in catalog.rewards]
    return render(catalog, pairs), len(pairs)


__all__ = ["ReplayError", "catalog_at", "check_moment", "decorated_at", "history_begins",
           "member_at", "parse_moment", "rows_at"]
