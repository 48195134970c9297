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

from webapp.bulk import one_of
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


def parse_moment(text: str, local: str | None = None) -> datetime:
    """An `as_of` value as naive UTC: RFC 3339 with Z or an offset, or (with `local`, a time
    zone) a date and time without one, read in that zone (the dashboard's picker); raises
    ReplayError if it is not a moment."""
    from webapp.targeting.values import parse_iso, to_utc_naive, zone

    try:
        parsed = parse_iso(text.strip())
    except (ValueError, AttributeError):
        parsed = None
    if not isinstance(parsed, datetime) or (parsed.tzinfo is None and local is None):
        raise ReplayError(f"as_of {text!r} is not a moment: give an RFC 3339 time with its "
                          "offset, e.g. 2026-12-01T14:00:00Z")
    return to_utc_naive(parsed, zone(local or "UTC"))


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


def catalog_version(moment: datetime) -> datetime | None:
    """When the catalog last changed at or before `moment` (None: never): the catalog of
    every moment up to the next change is the same, so this names it. One index probe per
    table (table_name, changed_at), however much history there is."""
    latest = [sa.select(H.c.changed_at).where(H.c.table_name == table, H.c.changed_at <= moment)
              .order_by(H.c.changed_at.desc()).limit(1).scalar_subquery()
              for table in CATALOG_TABLES]
    row = db.session.execute(sa.select(*latest)).one()
    return max((at for at in row if at is not None), default=None)


_CATALOGS: dict[tuple[Any, datetime | None], Any] = {}


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
            a.offer_id.in_(ids), a.activated_at <= moment).group_by(a.offer_id)).all())
        awards = dict(db.session.execute(sa.select(f.offer_id, sa.func.count()).where(
            f.offer_id.in_(ids), f.fulfilled_at <= moment).group_by(f.offer_id)).all())
        for offer_id in ids:
            if offer_id in acts or offer_id in awards:
                rows.append(("g", offer_id, None, None, None, acts.get(offer_id, 0),
                             awards.get(offer_id, 0)))
    return rows


def explainer_at(member_id: str, moment: datetime, *, usage: bool = True) -> Any:
    """A `decisions.Explainer` for the member as at `moment` (the catalog, the member's
    attributes, lists, overrides, activities and offer usage of then); ReplayError when the
    moment cannot be replayed or the member did not exist then. Without `usage` the offer
    usage is left out (rewards do not read it; the live route reads it for offers only)."""
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
    used = usage_from_rows(usage_rows_at(member_id, catalog.global_limited(), moment)) \
        if usage and catalog.offers else {}
    return Explainer(member=SimpleNamespace(id=member_id), catalog=catalog, now=moment,
                     tz=program_timezone(), attributes=attributes,
                     facts=_facts(catalog.segments, on_list, overrides), usage=used)


def decorated_at(member_id: str, kind: str, render: Callable, moment: datetime
                 ) -> tuple[bytes, int]:
    """Every offer or reward decided for the member as at `moment`, rendered as the live
    route renders them (see `decisions.decorated`)."""
    ex = explainer_at(member_id, moment, usage=kind == "offers")
    ex.direct = ex.catalog.direct_for(kind)
    if kind == "offers":
        pairs = [(o, ex.offer(o, serialized=True)) for o in ex.catalog.offers]
    else:
        pairs = [(r, ex.reward(r, serialized=True)) for r in ex.catalog.rewards]
    return render(ex.catalog, pairs), len(pairs)


# --- what changed between two moments ----------------------------------------------------------

_ENTITY = {"segments": "segment", "offers": "offer", "rewards": "reward",
           "audiences": "audience", "offer_limits": "limit"}
_QUIET = {"updated_at", "created_at", "size", "version", "updated_by_id", "updated_by_label"}


def _words(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"{value:,}"
    if value is None:
        return "nothing"
    if isinstance(value, list | dict):
        import json
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _diff(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[str]:
    """'points 950 → 1,020' for every field that changed (timestamps left out)."""
    before, after = before or {}, after or {}
    return [f"{k} {_words(before.get(k))} → {_words(after.get(k))}"
            for k in sorted(set(before) | set(after))
            if k not in _QUIET and before.get(k) != after.get(k)]


def _actor(entity: str, key: str, at: datetime) -> str | None:
    """Who made a catalog change: the audit entry of that entity closest to the moment."""
    from webapp.models import AuditEntry

    row = db.session.execute(sa.select(AuditEntry.actor_label).where(
        AuditEntry.entity_type == entity, AuditEntry.entity_id == key,
        AuditEntry.created_at.between(at - timedelta(seconds=5), at + timedelta(seconds=5))
    ).order_by(sa.func.abs(sa.func.julianday(AuditEntry.created_at) - sa.func.julianday(at))
               if db.session.get_bind().dialect.name == "sqlite" else
               sa.func.abs(sa.extract("epoch", AuditEntry.created_at - at))).limit(1)).first()
    return row.actor_label if row is not None and row.actor_label else None


def _history_changes(start: datetime, end: datetime, *, member_id: str | None = None,
                     tables: Iterable[str]) -> list[dict[str, Any]]:
    """Each version of these tables' rows in (start, end], with the version before it: two
    statements however many versions (each version's predecessor found through the
    (table, row key, id) index, then the predecessors' rows)."""
    previous = sa.alias(H, "previous")
    prev_id = sa.select(previous.c.id).where(
        previous.c.table_name == H.c.table_name, previous.c.row_key == H.c.row_key,
        previous.c.id < H.c.id).order_by(previous.c.id.desc()).limit(1).scalar_subquery()
    rows = db.session.execute(sa.select(H.c.id, H.c.table_name, H.c.row_key, H.c.op, H.c.data,
                                        H.c.changed_at, prev_id.label("prev_id")).where(
        H.c.table_name.in_(list(tables)), H.c.changed_at > start, H.c.changed_at <= end,
        *([H.c.member_id == member_id] if member_id is not None else [])).order_by(H.c.id)
    ).all()
    versions = {row.id: (row.op, row.data) for row in rows}
    missing = sorted({row.prev_id for row in rows} - set(versions) - {None})
    if missing:
        versions.update((id_, (op, data)) for id_, op, data in db.session.execute(
            sa.select(H.c.id, H.c.op, H.c.data).where(one_of(H.c.id, missing))))
    out = []
    for row in rows:
        prev = versions.get(row.prev_id)
        before = prev[1] if prev is not None and prev[0] != "D" else None
        out.append({"table": row.table_name, "key": row.row_key, "op": row.op,
                    "before": before, "after": row.data, "at": row.changed_at})
    return out


def changes_between(member_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Every offer and reward whose decision for the member differs between two moments, with
    the changes in between that can have made it differ, in order: the member's attribute
    changes, activities and usage, and the changes of the item itself, its audiences, limits
    or required segments, of the segments it reaches, of the member's overrides and list
    entries in them. Each change has `at`, `what`, `actor` (when known) and `link`."""
    if start > end:
        start, end = end, start
    before, after = explainer_at(member_id, start), explainer_at(member_id, end)
    member_changes = _member_changes(member_id, start, end)
    catalog_changes = _history_changes(start, end, tables=CATALOG_TABLES)
    out = []
    for kind in ("offer", "reward"):
        was = {item.id: (item, d) for item, d in (
            before.offers() if kind == "offer" else before.rewards())}
        now = {item.id: (item, d) for item, d in (
            after.offers() if kind == "offer" else after.rewards())}
        for item_id in sorted(set(was) | set(now)):
            old, new = was.get(item_id), now.get(item_id)
            key = lambda d: None if d is None else (d[1].visible_status, d[1].eligible)  # noqa: E731
            if key(old) == key(new):
                continue
            reach = _reach(kind, item_id, before.catalog) | _reach(kind, item_id, after.catalog)
            relevant = [c for c in catalog_changes if _touches(c, kind, item_id, reach)]
            changes = sorted([*member_changes(reach, item_id if kind == "offer" else -1),
                              *(_catalog_change(c) for c in relevant),
                              *_window_changes(kind, (new or old)[0], start, end)],
                             key=lambda c: c["at"])
            out.append({"kind": kind, "id": item_id, "name": (new or old)[0].name,
                        "before": old[1] if old else None, "after": new[1] if new else None,
                        "changes": changes})
    return out


def _window_changes(kind: str, item: Any, start: datetime, end: datetime
                    ) -> list[dict[str, Any]]:
    """Time alone: the item's publication or expiry falling between the two moments."""
    out = []
    for when, verb in ((item.publish_at, "published"), (item.expire_at, "expired")):
        if when is not None and start < when <= end:
            out.append({"at": when, "source": "time", "what": f"{kind} {item.name} {verb}",
                        "actor": None, "link": None})
    return out


def _reach(kind: str, item_id: int, catalog: Any) -> set[int]:
    """The segments an offer's audiences or a reward's required segments reach."""
    direct = (catalog.offer_segments.get(item_id, []) if kind == "offer"
              else catalog.required.get(item_id, []))
    return {sid for sid in catalog.segments if sid in direct} | _closure(direct, catalog)


def _closure(ids: Iterable[int], catalog: Any) -> set[int]:
    from webapp.targeting.visibility import compiled_refs

    found: set[int] = set()
    todo = [i for i in ids if i in catalog.segments]
    while todo:
        sid = todo.pop()
        if sid in found:
            continue
        found.add(sid)
        todo.extend(r for r in compiled_refs(catalog.segments[sid]) if r in catalog.segments)
    return found


def _touches(change: Mapping[str, Any], kind: str, item_id: int, reach: set[int]) -> bool:
    table, row = change["table"], change["after"] or change["before"] or {}
    if table == "segments":
        return int(change["key"]) in reach
    if kind == "offer":
        return (table == "offers" and int(change["key"]) == item_id) or (
            table in ("audiences", "offer_limits") and row.get("offer_id") == item_id)
    return (table == "rewards" and int(change["key"]) == item_id) or (
        table == "reward_required_segments" and row.get("reward_id") == item_id)


def _catalog_change(c: Mapping[str, Any]) -> dict[str, Any]:
    entity = _ENTITY.get(c["table"], "required segment")
    row = c["after"] or c["before"] or {}
    name = row.get("name") or (f"of offer #{row['offer_id']}" if "offer_id" in row else
                               f"of reward #{row.get('reward_id')}")
    verb = {"I": "created", "D": "deleted"}.get(c["op"])
    if c["table"] == "reward_required_segments":
        requires = "now requires" if c["op"] == "I" else "no longer requires"
        what = f"reward #{row.get('reward_id')} {requires} segment #{row.get('segment_id')}"
    elif verb:
        what = f"{entity} {name} {verb}"
    else:
        what = f"{entity} {name}: " + "; ".join(_diff(c["before"], c["after"]))
    link = {"segments": "/segments/{}", "offers": "/offers/{}", "rewards": "/rewards/{}"}.get(
        c["table"])
    return {"at": c["at"], "source": entity, "what": what,
            "actor": _actor(entity, c["key"], c["at"]) if entity in ("segment", "offer",
                                                                     "reward") else None,
            "link": link.format(c["key"]) if link else None}


def _member_changes(member_id: str, start: datetime, end: datetime
                    ) -> Callable[[set[int]], list[dict[str, Any]]]:
    """The member's own changes in (start, end]; a function of the segments an item reaches
    (overrides and list entries count only in those)."""
    from webapp.models import Activity

    own: list[dict[str, Any]] = []
    for c in _history_changes(start, end, member_id=member_id, tables=("members",)):
        parts = _diff(c["before"], c["after"]) if c["op"] == "U" else [
            "member created" if c["op"] == "I" else "member deleted"]
        if parts:
            own.append({"at": c["at"], "source": "profile", "what": "; ".join(parts),
                        "actor": _actor("member", member_id, c["at"]),
                        "link": f"/members/{member_id}"})
    a = Activity.__table__.c
    for kind, occurred, amount, recorded, source in db.session.execute(sa.select(
            a.type, a.occurred_at, a.amount_e4, a.recorded_at, a.source).where(
            a.member_id == member_id, a.recorded_at > start, a.recorded_at <= end)):
        from webapp.targeting.behaviour import from_e4
        shown = "" if amount is None else f" of {_words(from_e4(amount))}"
        own.append({"at": recorded, "source": "activity", "actor": None,
                    "what": f"{kind}{shown} on {_iso(occurred)} recorded ({source})",
                    "link": f"/members/{member_id}/activities"})
    usage = []
    act, ful = OfferActivation.__table__.c, OfferFulfillment.__table__.c
    for offer_id, at in db.session.execute(sa.select(act.offer_id, act.activated_at).where(
            act.member_id == member_id, act.activated_at > start, act.activated_at <= end)):
        usage.append({"at": at, "source": "activation", "what": f"activated offer #{offer_id}",
                      "actor": None, "link": f"/members/{member_id}/offers/{offer_id}",
                      "offer": offer_id})
    for offer_id, at in db.session.execute(sa.select(ful.offer_id, ful.fulfilled_at).where(
            ful.member_id == member_id, ful.fulfilled_at > start, ful.fulfilled_at <= end)):
        usage.append({"at": at, "source": "award", "what": f"awarded offer #{offer_id}",
                      "actor": None, "link": f"/members/{member_id}/offers/{offer_id}",
                      "offer": offer_id})
    overrides = []
    for c in _history_changes(start, end, member_id=member_id, tables=("overrides",)):
        row = c["after"] or c["before"] or {}
        status = row.get("status") if c["op"] != "D" else "reset"
        overrides.append({"at": c["at"], "source": "override", "segment": row.get("segment_id"),
                          "what": f"override {status} in segment #{row.get('segment_id')}"
                                  + (f" ({row.get('description')})" if row.get("description")
                                     else ""),
                          "actor": row.get("actor_label") or None,
                          "link": f"/segments/{row.get('segment_id')}/overrides"})
    e = MembershipEvent.__table__.c
    lists = [{"at": at, "source": source, "segment": sid, "actor": actor or None,
              "what": f"{'added to' if action == 'ADD' else 'removed from'} list {name} "
                      f"({source.replace('_', ' ')}"
                      + (f", upload #{upload}" if upload else "") + ")",
              "link": f"/segments/{sid}"}
             for sid, name, action, source, actor, upload, at in db.session.execute(sa.select(
                 e.segment_id, e.segment_name, e.action, e.source, e.actor_label, e.upload_id,
                 e.created_at).where(e.member_id == member_id, e.created_at > start,
                                     e.created_at <= end,
                                     e.source.in_(("static_list", "upload", "api"))))]

    def for_item(reach: set[int], offer_id: int | None = None) -> list[dict[str, Any]]:
        return [*own, *(u for u in usage if offer_id is None or u["offer"] == offer_id),
                *(o for o in overrides if o["segment"] in reach),
                *(x for x in lists if x["segment"] in reach)]
    return for_item


# --- retention -------------------------------------------------------------------------------


def prune(days: int, now: datetime | None = None) -> int:
    """Drop the history older than `days` days (no commit): of each row, the versions before
    the cutoff except the last one (which the moments after the cutoff still read), and that
    one too when it is a delete; the history then begins at the cutoff. Returns how many
    versions went."""
    if days < 1:
        raise ReplayError("keep at least 1 day of history")
    now = now or utcnow()
    cutoff = now - timedelta(days=days)
    old = sa.and_(H.c.changed_at <= cutoff)
    last = sa.select(sa.func.max(H.c.id)).where(old).group_by(H.c.table_name, H.c.row_key)
    gone = db.session.execute(sa.delete(H).where(old, H.c.id.not_in(last))).rowcount
    gone += db.session.execute(sa.delete(H).where(old, H.c.op == "D")).rowcount
    meta = db.session.get(HistoryMeta, 1)
    if meta is None:
        db.session.add(HistoryMeta(id=1, begins_at=cutoff))
    elif meta.begins_at < cutoff:
        meta.begins_at = cutoff
    return gone


__all__ = ["ReplayError", "prune", "catalog_at", "check_moment", "decorated_at", "explainer_at",
           "history_begins", "member_at", "parse_moment", "rows_at", "changes_between"]
