"""Which offers and rewards one member sees, and why: the database edge of the targeting core.

This is the one place that loads the facts a decision needs (offers with their audiences,
rewards with their required segments, the definitions of every segment they reference and of
the segments those reference, the member's list entries and overrides) in a handful of
queries, and hands them to the pure core (`evaluate_offer`, `evaluate_reward`). Segment
membership is evaluated live from those facts, so a what-if profile (`attributes`) changes
dynamic memberships exactly as the rules say, while lists and overrides stay as stored.
"""

from __future__ import annotations

import json
import threading
from bisect import bisect_right
from collections import OrderedDict, defaultdict, namedtuple
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from flask import current_app

from webapp.extensions import db
from webapp.models import (
    Audience,
    CatalogVersion,
    Member,
    Offer,
    OfferLimit,
    Override,
    Reward,
    RewardRequiredSegment,
    Segment,
    SegmentMembership,
    member_attributes,
)
from webapp.services import activities
from webapp.services.rules import program_timezone
from webapp.targeting import (
    AudienceDefinitionError,
    Decision,
    SegmentDefinitionError,
    SegmentFacts,
    evaluate_offer,
    evaluate_reward,
    raw_criteria,
    segment_membership,
)
from webapp.targeting.audiences import validate_audience
from webapp.targeting.behaviour import next_change
from webapp.targeting.env import make_env
from webapp.targeting.limits import Usage, is_global, next_usage_change
from webapp.targeting.result import node
from webapp.targeting.values import member_datetime
from webapp.targeting.visibility import compiled_refs
from webapp.timeutil import utcnow

INVALID_CONFIGURATION = "invalid_configuration"


def _moment(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value else None


def offer_data(offer: Offer) -> dict[str, Any]:
    """An offer as the core reads it."""
    return {"id": offer.id, "name": offer.name, "external_id": offer.external_id,
            "discontinued": offer.discontinued, "publish_at": offer.publish_at,
            "expire_at": offer.expire_at,
            "requires_activation": bool(offer.requires_activation),
            "must_fulfill_within_days": offer.must_fulfill_within_days}


def reward_data(reward: Reward) -> dict[str, Any]:
    """A reward as the core reads it."""
    return {"id": reward.id, "name": reward.name, "external_id": reward.external_id,
            "discontinued": reward.discontinued, "publish_at": reward.publish_at,
            "expire_at": reward.expire_at, "points": reward.points}


def segments_closure(segment_ids: Iterable[int]) -> dict[int, SegmentFacts]:
    """The definitions (as SegmentFacts without member facts) of the segments with these ids
    and of every segment their `segment` criteria reach."""
    loaded: dict[int, SegmentFacts] = {}
    wanted = set(segment_ids)
    columns = (Segment.id, Segment.name, Segment.kind, Segment.include, Segment.exclude)
    while wanted:
        for sid, name, kind, include, exclude in db.session.execute(
                sa.select(*columns).where(Segment.id.in_(sorted(wanted)))):
            loaded[sid] = SegmentFacts(id=sid, name=name, kind=kind, definition={
                "kind": kind, "include": list(include or []), "exclude": list(exclude or [])})
        found = set(loaded)
        refs: set[int] = set()
        for sid in wanted & found:
            refs |= compiled_refs(loaded[sid])
        wanted = refs - found - wanted
    return loaded


def override_fact(override: Any) -> dict[str, Any]:
    """An override as the core's SegmentFacts carries it (and the explainer shows it)."""
    return {"id": override.id, "status": override.status, "description": override.description,
            "actor": override.actor_label or None, "at": _moment(override.status_change_timestamp),
            "expires_at": _moment(override.expires_at), "reference_id": override.reference_id}


_OVERRIDE_COLUMNS = (Override.segment_id, Override.id, Override.status, Override.description,
                     Override.actor_label, Override.status_change_timestamp, Override.expires_at,
                     Override.reference_id)
# One round trip for both: the member's overrides (first, so the columns keep their types)
# and the segments whose materialized rows name the member (the lists among them).
_MEMBER_ROWS = sa.union_all(
    sa.select(sa.literal_column("'override'").label("source"), *_OVERRIDE_COLUMNS).where(
        Override.member_id == sa.bindparam("member_id")),
    sa.select(sa.literal_column("'row'"), SegmentMembership.segment_id,
              *[sa.null()] * (len(_OVERRIDE_COLUMNS) - 1)).where(
        SegmentMembership.member_id == sa.bindparam("member_id")))


def member_rows(member_id: str, segments: Mapping[int, SegmentFacts]
                ) -> tuple[set[int], dict[int, dict[str, Any]]]:
    """The static segments (of these) whose list has the member, and the member's overrides
    in them (one query over two indexed lookups)."""
    if not segments:
        return set(), {}
    return _sorted_rows(
        db.session.connection().execute(_MEMBER_ROWS, {"member_id": member_id}), segments)


def _sorted_rows(rows: Iterable[Any], segments: Mapping[int, SegmentFacts]
                 ) -> tuple[set[int], dict[int, dict[str, Any]]]:
    """`member_rows` from rows of `_MEMBER_ROWS` (source, segment_id, the override's columns)."""
    on_list: set[int] = set()
    overrides: dict[int, dict[str, Any]] = {}
    for row in rows:
        facts = segments.get(row.segment_id)
        if facts is None:
            continue
        if row.source == "override":
            overrides[row.segment_id] = override_fact(row)
        elif facts.kind == "static":
            on_list.add(row.segment_id)
    return on_list, overrides


def member_facts(member_id: str, segments: Mapping[int, SegmentFacts]
                 ) -> dict[int, SegmentFacts]:
    """SegmentFacts of one member for the given segments (one query: list rows, overrides)."""
    return _facts(segments, *member_rows(member_id, segments))


def _facts(segments: Mapping[int, SegmentFacts], on_list: set[int],
           overrides: Mapping[int, dict[str, Any]]) -> dict[int, SegmentFacts]:
    return {sid: SegmentFacts(id=sid, name=s.name, kind=s.kind, definition=s.definition,
                              on_list=sid in on_list, override=overrides.get(sid))
            for sid, s in segments.items()}


def _attributes(member: Member, attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    attrs = member.attributes()
    if attributes:
        attrs.update(attributes)
    return attrs


def _refused(kind: str, name: str, message: str, **offer_fields: Any) -> Decision:
    """A decision for a configuration the core refuses (never a crash on the page);
    `offer_fields`: an offer's must_activate, activated and fulfillment_count."""
    tree = node(kind, f"{kind} {name}", False, None, None,
                f"cannot be evaluated: {message}")
    return Decision(visible_status="missing_required_segments", eligible=False,
                    reason=INVALID_CONFIGURATION, explanation=tree, **offer_fields)


@dataclass
class Catalog:
    """Everything the decisions need besides the member.

    A catalog of plain rows for the whole program is kept per process (`cached_catalog`) and
    shared by requests until the catalog version token changes; one of ORM objects or for
    some offers/rewards only is loaded per call. `compiled` caches the compiled definitions of
    `segments`, `memo` whatever the readers derive from the catalog alone."""

    offers: list[Any]
    audiences: dict[int, list[dict[str, Any]]]
    rewards: list[Any]
    required: dict[int, list[int]]
    segments: dict[int, SegmentFacts]
    direct: set[int]
    offer_segments: dict[int, list[int]]
    limits: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    token: str | None = None
    compiled: dict[int, Any] = field(default_factory=dict)
    memo: dict[Any, Any] = field(default_factory=dict)

    def memoized(self, key: Any, make: Callable[[], Any]) -> Any:
        """`make()`, kept in `memo` when the catalog is shared (it has a version token)."""
        if self.token is None:
            return make()
        got = self.memo.get(key, _MISSING)
        if got is _MISSING:
            got = self.memo[key] = make()
        return got

    def offer_data(self, offer: Any) -> dict[str, Any]:
        """`offer_data` of one of the catalog's offers (memoized for a shared catalog)."""
        return self.memoized(("offer_data", offer.id), lambda: offer_data(offer))

    def reward_data(self, reward: Any) -> dict[str, Any]:
        """`reward_data` of one of the catalog's rewards (memoized for a shared catalog)."""
        return self.memoized(("reward_data", reward.id), lambda: reward_data(reward))

    def validated_audiences(self, offer_id: int) -> list[dict[str, Any]] | None:
        """An offer's audiences with the configurations `validate_audience` returns (None
        when one is refused: the core then refuses it again, with its message)."""

        def validate() -> list[dict[str, Any]] | None:
            try:
                return [{"audience_type": a["audience_type"], "configuration": validate_audience(
                    a["audience_type"], a["configuration"])}
                    for a in self.audiences.get(offer_id, [])]
            except AudienceDefinitionError:
                return None

        return self.memoized(("audiences", offer_id), validate)

    def global_limited(self) -> list[int]:
        """The offers with a global limit, sorted (their counts over all members are read)."""
        return self.memoized("global_limited", lambda: sorted(
            offer_id for offer_id, limits in self.limits.items()
            if any(is_global(lim["limit_type"]) for lim in limits)))

    def direct_for(self, kind: str) -> set[int]:
        """The segments the offers (`kind` "offers") or the rewards name directly."""
        lists = self.offer_segments if kind == "offers" else self.required
        return self.memoized(("direct", kind),
                              lambda: {sid for ids in lists.values() for sid in ids})


_MISSING = object()


def load_catalog(*, offer_ids: list[int] | None = None, reward_ids: list[int] | None = None,
                 offers: bool = True, rewards: bool = True, rows: bool = False) -> Catalog:
    """Offers with audiences, rewards with required segments, and the segments they reach.

    With `rows`, offers and rewards are plain result rows with the same attribute names
    instead of ORM objects (several times cheaper for the hundreds a member page lists);
    the whole catalog of rows is then the process's shared one (`cached_catalog`)."""
    if rows and offer_ids is None and reward_ids is None and offers and rewards:
        return cached_catalog()
    return _load_catalog(offer_ids=offer_ids, reward_ids=reward_ids, offers=offers,
                         rewards=rewards, rows=rows)


def _load_catalog(*, offer_ids: list[int] | None = None, reward_ids: list[int] | None = None,
                  offers: bool = True, rewards: bool = True, rows: bool = False) -> Catalog:
    offer_rows: list[Any] = []
    audiences: dict[int, list[dict[str, Any]]] = defaultdict(list)
    offer_segments: dict[int, list[int]] = defaultdict(list)
    limits: dict[int, list[dict[str, Any]]] = defaultdict(list)
    referenced: set[int] = set()
    if offers:
        q = (sa.select(*Offer.__table__.c) if rows else sa.select(Offer)).order_by(
            Offer.name, Offer.id)
        aq = sa.select(Audience.offer_id, Audience.audience_type, Audience.configuration
                       ).order_by(Audience.id)
        if offer_ids is not None:
            q = q.where(Offer.id.in_(offer_ids))
            aq = aq.where(Audience.offer_id.in_(offer_ids))
        offer_rows = list(db.session.execute(q) if rows else db.session.scalars(q))
        for offer_id, audience_type, configuration in db.session.execute(aq):
            config = configuration or {}
            audiences[offer_id].append({"audience_type": audience_type,
                                        "configuration": config})
            ids = _segment_ids(config)
            if ids:
                offer_segments[offer_id].extend(ids)
                referenced.update(ids)
        lq = sa.select(OfferLimit.offer_id, OfferLimit.id, OfferLimit.limit_type,
                       OfferLimit.configuration).order_by(OfferLimit.id)
        if offer_ids is not None:
            lq = lq.where(OfferLimit.offer_id.in_(offer_ids))
        for offer_id, limit_id, limit_type, configuration in db.session.execute(lq):
            limits[offer_id].append({"id": limit_id, "limit_type": limit_type,
                                     "configuration": configuration or {}})
    reward_rows: list[Any] = []
    required: dict[int, list[int]] = defaultdict(list)
    if rewards:
        q = (sa.select(*Reward.__table__.c) if rows else sa.select(Reward)).order_by(
            Reward.name, Reward.id)
        rq = sa.select(RewardRequiredSegment.reward_id, RewardRequiredSegment.segment_id
                       ).order_by(RewardRequiredSegment.segment_id)
        if reward_ids is not None:
            q = q.where(Reward.id.in_(reward_ids))
            rq = rq.where(RewardRequiredSegment.reward_id.in_(reward_ids))
        reward_rows = list(db.session.execute(q) if rows else db.session.scalars(q))
        for reward_id, segment_id in db.session.execute(rq):
            required[reward_id].append(segment_id)
            referenced.add(segment_id)
    return Catalog(offers=offer_rows, audiences=dict(audiences), rewards=reward_rows,
                   required=dict(required), segments=segments_closure(referenced),
                   direct=referenced, offer_segments=dict(offer_segments),
                   limits=dict(limits))


# --- the shared catalog -------------------------------------------------------------------------

_TOKEN = sa.select(CatalogVersion.token).where(CatalogVersion.id == 1)
_CATALOGS: dict[Any, Catalog] = {}
_CATALOG_LOCK = threading.Lock()


def catalog_token() -> str | None:
    """The catalog version token: database triggers replace it (in the writing transaction)
    whenever an offer, audience, reward, required segment or segment definition changes
    (migration 0002_visibility). None if its row is missing: nothing is then shared."""
    token = db.session.connection().execute(_TOKEN).scalar()
    return None if token is None else str(token)


def _database_key() -> Any:
    """Which database a shared catalog or cached answer belongs to (its URL, hashable)."""
    return db.engine.url


def cached_catalog() -> Catalog:
    """The whole catalog as plain rows, shared by this process's requests.

    The version token is read before the catalog, so a change racing with the load can only
    leave a newer catalog under an older token (reloaded at the next request), never an older
    catalog under a newer token."""
    return catalog_for(catalog_token())


def catalog_for(token: str | None) -> Catalog:
    """The shared catalog for a version token read just before (see `cached_catalog`): the
    one kept if it has that token, else loaded now and kept; an unshared one for no token."""
    if token is None:
        return _load_catalog(rows=True)
    key = _database_key()
    got = _CATALOGS.get(key)
    if got is not None and got.token == token:
        return got
    catalog = _load_catalog(rows=True)
    catalog.token = token
    with _CATALOG_LOCK:
        _CATALOGS[key] = catalog
    return catalog


@dataclass
class Explainer:
    """Decisions for one member over a loaded catalog (optionally with a what-if profile).

    Every segment the catalog names is evaluated once per member (`segment_membership`, with
    its full explanation); each offer and reward is then decided by the core over those
    results, and the segments' explanations are put back into its tree. The decisions are
    exactly those of `evaluate_offer`/`evaluate_reward` over the full facts (a test holds
    this), without re-evaluating the same segments for each of hundreds of offers.
    """

    member: Member
    catalog: Catalog
    now: datetime
    attributes: dict[str, Any]
    facts: dict[int, SegmentFacts]
    tz: str = "UTC"
    _results: dict[int, tuple[bool, Any]] | None = None
    _serialized: dict[int, tuple[bool, Any]] | None = None
    _names: dict[int, str] | None = None
    direct: set[int] | None = None  # the segments to evaluate (default: all the catalog names)
    usage: dict[int, Usage] = field(default_factory=dict)  # the member's, per offer id

    def names(self) -> dict[int, str]:
        """The names of the facts' segments by id (computed once)."""
        if self._names is None:
            self._names = {sid: f.name for sid, f in self.facts.items()}
        return self._names

    def _segments(self, serialized: bool = False) -> dict[int, tuple[bool, Any]]:
        """Every segment the catalog names directly, evaluated once: (matched, explanation),
        with the explanation serialized (an orjson Fragment) when asked and possible."""
        if self._results is None:
            results: dict[int, tuple[bool, Any]] = {}
            tz = self.tz
            compiled = self.catalog.compiled
            for sid in sorted(self.catalog.direct if self.direct is None else self.direct):
                if sid not in self.facts:
                    continue
                try:
                    got = segment_membership(sid, self.attributes, self.facts, now=self.now,
                                             tz=tz, compiled=compiled)
                except (SegmentDefinitionError, AudienceDefinitionError):
                    continue  # decided the slow way below, which reports the problem
                results[sid] = (got.matched, got.explanation)
            self._results = results
        if not serialized:
            return self._results
        if self._serialized is None:
            self._serialized = _fragments(self._results) or self._results
        return self._serialized

    def _fast(self, ids: Iterable[int]) -> bool:
        results = self._segments()
        return all(sid in results for sid in ids) if ids else True

    def offer(self, offer: Any, *, serialized: bool = False) -> Decision:
        """The decision for one offer of the catalog (`serialized`: the segments' subtrees
        in the tree are orjson Fragments, each serialized once per member)."""
        validated = self.catalog.validated_audiences(offer.id)
        audiences = (self.catalog.audiences.get(offer.id, []) if validated is None
                     else validated)
        ids = self.catalog.offer_segments.get(offer.id, ())
        try:
            results = self._segments(serialized) if self._fast(ids) else None
            return evaluate_offer(self.catalog.offer_data(offer), audiences, self.attributes,
                                  self.facts, now=self.now, tz=self.tz, results=results,
                                  validated=validated is not None, names=self.names(),
                                  limits=self.catalog.limits.get(offer.id, ()),
                                  usage=self.usage.get(offer.id))
        except (SegmentDefinitionError, AudienceDefinitionError) as exc:
            use = self.usage.get(offer.id) or _NO_USAGE
            required = bool(offer.requires_activation)
            return _refused("offer", offer.name, str(exc), must_activate=required,
                            activated=(use.current_activation(self.now) is not None)
                            if required else None,
                            fulfillment_count=use.fulfillment_count(self.now))

    def reward(self, reward: Any, *, serialized: bool = False) -> Decision:
        """The decision for one reward of the catalog (`serialized` as for `offer`)."""
        ids = self.catalog.required.get(reward.id, [])
        try:
            results = self._segments(serialized) if self._fast(ids) else None
            return evaluate_reward(self.catalog.reward_data(reward), ids, self.attributes,
                                   self.facts, now=self.now, tz=self.tz, results=results,
                                   names=self.names())
        except (SegmentDefinitionError, AudienceDefinitionError) as exc:
            return _refused("reward", reward.name, str(exc))

    def offers(self) -> list[tuple[Any, Decision]]:
        """Every offer of the catalog with its decision."""
        return [(o, self.offer(o)) for o in self.catalog.offers]

    def rewards(self) -> list[tuple[Any, Decision]]:
        """Every reward of the catalog with its decision."""
        return [(r, self.reward(r)) for r in self.catalog.rewards]


def _segment_ids(configuration: Any) -> list[int]:
    if isinstance(configuration, Mapping) and isinstance(configuration.get("segments"), list):
        return [v for v in configuration["segments"] if isinstance(v, int)]
    return []


def explainer(member: Member, catalog: Catalog, *, now: datetime | None = None,
              attributes: Mapping[str, Any] | None = None) -> Explainer:
    """An Explainer for one member over a catalog (loads the member's facts and, with
    offers, the member's activity)."""
    from webapp.services.offer_usage import member_usage

    usage = member_usage(member.id, offer_ids=None if catalog.token is not None else
                         [o.id for o in catalog.offers], global_ids=catalog.global_limited()
                         ) if catalog.offers else {}
    now = now or utcnow()
    return Explainer(member=member, catalog=catalog, now=now, tz=program_timezone(),
                     attributes=with_activities(catalog, member.id,
                                                _attributes(member, attributes), now),
                     facts=member_facts(member.id, catalog.segments), usage=usage)


def catalog_activity_criteria(catalog: Catalog) -> list[Any]:
    """The activity criteria of the catalog's segments (computed once per catalog)."""
    return catalog.memoized("activity_criteria", lambda: activities.activity_criteria(
        f.definition for f in catalog.segments.values()))


def with_activities(catalog: Catalog, member_id: str, attributes: dict[str, Any],
                    now: datetime) -> dict[str, Any]:
    """The member's attributes with the activities the catalog's segments read (as the core
    reads them, `attributes["activities"]`); unchanged when no segment reads any."""
    return activities.attach_for(attributes, member_id, catalog_activity_criteria(catalog), now)


def member_offers(member: Member, *, now: datetime | None = None,
                  attributes: Mapping[str, Any] | None = None) -> list[tuple[Offer, Decision]]:
    """Every offer with its decision for this member (attributes: a what-if profile; nothing
    is saved)."""
    return explainer(member, load_catalog(rewards=False), now=now,
                     attributes=attributes).offers()


def member_rewards(member: Member, *, now: datetime | None = None,
                   attributes: Mapping[str, Any] | None = None) -> list[tuple[Reward, Decision]]:
    """Every reward with its decision for this member (attributes: a what-if profile)."""
    return explainer(member, load_catalog(offers=False), now=now,
                     attributes=attributes).rewards()


def offer_decision(member: Member, offer: Offer, *, now: datetime | None = None,
                   attributes: Mapping[str, Any] | None = None) -> Decision:
    """The decision for one offer and one member."""
    catalog = load_catalog(offer_ids=[offer.id], rewards=False)
    return explainer(member, catalog, now=now, attributes=attributes).offer(offer)


def reward_decision(member: Member, reward: Reward, *, now: datetime | None = None,
                    attributes: Mapping[str, Any] | None = None) -> Decision:
    """The decision for one reward and one member."""
    catalog = load_catalog(reward_ids=[reward.id], offers=False)
    return explainer(member, catalog, now=now, attributes=attributes).reward(reward)


# --- serializing decisions ----------------------------------------------------------------------


def dumps(value: Any) -> bytes:
    """Compact JSON bytes (orjson; the standard library for what orjson refuses, such as
    integers beyond 64 bits). Datetimes are written with `str`, as the API always did."""
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_PASSTHROUGH_DATETIME)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                          default=str).encode()


def _fragments(results: Mapping[int, tuple[bool, Any]]) -> dict[int, tuple[bool, Any]] | None:
    """Segment results with each explanation serialized once, or None if one needs the
    fallback serializer (which cannot embed fragments)."""
    out = {}
    for sid, (matched, tree) in results.items():
        try:
            out[sid] = (matched, orjson.Fragment(orjson.dumps(
                tree, default=str, option=orjson.OPT_PASSTHROUGH_DATETIME)))
        except orjson.JSONEncodeError:
            return None
    return out


# --- decorated results, cached per member -------------------------------------------------------

DEFAULT_CACHE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Entry:
    parts: tuple[bytes, ...]  # the rendered data, split where the evaluation moment goes
    count: int
    valid_until: datetime     # the first instant the answer may differ
    size: int


class ResultCache:
    """Rendered decisions per (catalog, member inputs), least recently used first out,
    bounded in bytes; one per process, shared by its threads."""

    def __init__(self) -> None:
        self._entries: OrderedDict[Any, _Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Any, now: datetime) -> _Entry | None:
        """The entry for `key` if it still holds at `now`."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or not now < entry.valid_until:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: Any, entry: _Entry, limit: int) -> None:
        """Keep `entry`, dropping the least recently used beyond `limit` bytes."""
        if entry.size > limit // 4:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            self._entries[key] = entry
            self._bytes += entry.size
            while self._bytes > limit and self._entries:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.size

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)


RESULTS = ResultCache()

Render = Callable[[Catalog, list[tuple[Any, Decision]]], bytes]
#: What `member_inputs` reads: the catalog version token, the member's `_MEMBER_ROWS` rows
#: and the member's activity rows (as `usage_rows` gives them).
Inputs = tuple[str | None, list[Any], list[tuple]]


_MEMBERS = Member.__table__
#: A member's columns read along with the inputs (`member_and_inputs`), as attributes.
MemberColumns = namedtuple("MemberColumns", [c.name for c in _MEMBERS.c])


def _inputs_statement(usage: bool, member: bool) -> sa.CompoundSelect:
    """One statement for what keys a decorated answer: the member's list rows and overrides
    (`_MEMBER_ROWS`), with `usage` the member's activity and the global counts
    (`usage_query`), the catalog version token and, with `member`, the member's columns (the
    member whose id is `member_id`).

    One flat UNION ALL of those statements' parts (SQLite runs a UNION of subqueries several
    times slower), each padded with NULLs to one layout: source, segment or offer id, the
    override's columns, the activity's (t1, t2, t3, n1, n2), the token, then the member's
    columns. Only the first part's NULLs carry types: its types are the result's, and
    PostgreSQL resolves the types of a UNION pair by pair from the left."""
    from webapp.services.offer_usage import usage_query

    rows = [s.selected_columns for s in _MEMBER_ROWS.selects]
    pad = len(rows[0]) - 2
    # the activity's moments as the driver gives them (text on SQLite), as in usage_rows
    times = [sa.type_coerce(sa.cast(sa.null(), sa.DateTime), sa.String).label(f"t{n}")
             for n in (1, 2, 3)]
    counts = [sa.cast(sa.null(), sa.BigInteger).label(f"n{n}") for n in (1, 2)]
    token = sa.cast(sa.null(), CatalogVersion.token.type).label("token")
    members = [sa.cast(sa.null(), c.type).label(f"member_{c.name}")
               for c in _MEMBERS.c] if member else []
    after = [sa.null()] * len(members)
    first, *others = _MEMBER_ROWS.selects
    parts = [first.with_only_columns(*rows[0], *times, *counts, token, *members)]
    parts += [s.with_only_columns(*s.selected_columns, *[sa.null()] * 6, *after)
              for s in others]
    if usage:
        for part in usage_query().selects:
            source, offer_id, *activity = part.selected_columns
            parts.append(part.with_only_columns(source, offer_id, *[sa.null()] * pad,
                                                *activity, sa.null(), *after))
    parts.append(sa.select(sa.literal_column("'token'"), *[sa.null()] * (pad + 6),
                           CatalogVersion.token, *after).where(CatalogVersion.id == 1))
    if member:
        parts.append(sa.select(sa.literal_column("'member'"), *[sa.null()] * (pad + 7),
                               *_MEMBERS.c).where(_MEMBERS.c.id == sa.bindparam("member_id")))
    return sa.union_all(*parts)


_INPUTS = {(usage, member): _inputs_statement(usage, member)
           for usage in (False, True) for member in (False, True)}
_ROW_SOURCES = frozenset(("override", "row"))
_TOKEN_AT = len(_INPUTS[(False, False)].selected_columns) - 1


def member_inputs(connection: sa.Connection, member_id: str, *, usage: bool) -> Inputs:
    """The catalog version token, the member's rows of `_MEMBER_ROWS` and, with `usage`, the
    rows `usage_rows` reads for every offer, in one round trip on `connection`."""
    return _read_inputs(connection, member_id, usage, False)[1]


def member_and_inputs(connection: sa.Connection, member_id: str, *, usage: bool
                      ) -> tuple[MemberColumns | None, Inputs]:
    """The columns of the member with this id (None when there is none) and `member_inputs`,
    in one round trip on `connection`."""
    return _read_inputs(connection, member_id, usage, True)


def _read_inputs(connection: sa.Connection, member_id: str, usage: bool, member: bool
                 ) -> tuple[MemberColumns | None, Inputs]:
    token = found = None
    rows: list[Any] = []
    activity: list[tuple] = []
    for row in connection.execute(_INPUTS[(usage, member)], {"member_id": member_id}).all():
        source = row[0]
        if source in _ROW_SOURCES:
            rows.append(row)
        elif source == "token":
            token = row[_TOKEN_AT]
        elif source == "member":
            found = MemberColumns._make(row[_TOKEN_AT + 1:])
        else:
            activity.append((source, row[1], *row[_TOKEN_AT - 5:_TOKEN_AT]))
    return found, ((None if token is None else str(token)), rows, activity)


def _reader() -> sa.Connection:
    """A connection of its own for a few reads. On PostgreSQL it runs them without a
    transaction: each statement sees what is committed when it starts, as in the default READ
    COMMITTED transaction, without the round trips of BEGIN and ROLLBACK. SQLite's driver
    begins no transaction for reads anyway (and its isolation setting costs a statement)."""
    connection = db.engine.connect()
    if connection.dialect.name == "sqlite":
        return connection
    return connection.execution_options(isolation_level="AUTOCOMMIT")


def decorated_for(reference: str, kind: str, render: Render, *, now: datetime | None = None
                  ) -> tuple[Any, bytes, int] | None:
    """`decorated` for the member named by member id, external id or email (None when no
    member has it), everything it reads besides the catalog on a connection of its own (no
    ORM session; the API's busiest read): a reference that is a member's id in one
    statement with the cache key's inputs, any other in two (`member_row`, then those)."""
    from webapp.services.lookup import member_id_reference, member_row

    now = now or utcnow()
    usage = kind == "offers"
    with _reader() as connection:
        member = None
        member_id = member_id_reference(reference)
        if member_id is not None:
            member, inputs = member_and_inputs(connection, member_id, usage=usage)
        if member is None:
            member = member_row(reference, connection)
            if member is None:
                return None
            inputs = member_inputs(connection, member.id, usage=usage)
        # the member's activities the catalog's segments read, on the same connection
        criteria = catalog_activity_criteria(catalog_for(inputs[0]))
        acts = tuple(activities.load([member.id], criteria, now, connection=connection)[
            member.id]) if criteria else None
    return member, *decorated(member, kind, render, now=now, inputs=inputs,
                              member_activities=acts)


def decorated(member: Member | sa.Row, kind: str, render: Render, *,
              now: datetime | None = None, inputs: Inputs | None = None,
              member_activities: tuple | None = None) -> tuple[bytes, int]:
    """Every offer (`kind` "offers") or reward ("rewards") of the catalog decided for this
    member and rendered by `render`, with how many there are.

    The rendered bytes are kept per process, keyed by everything they are computed from: the
    catalog version token, the program time zone, the member's attributes, the static lists
    (of the catalog's segments) the member is on and the member's overrides in them, and for
    offers the member's activity and the global counts. An entry is served only before the
    first instant the answer could change with time alone (`valid_until`); the evaluation
    moment each decision shows is put back at serving time. The token and the member's facts
    (`inputs`, read by `member_inputs` when not given) are read before the decisions are
    computed from them, so a concurrent change can only leave an entry that nobody's key
    reaches any more. The cache holds at most VISIBILITY_CACHE_BYTES (64 MiB by default; 0
    switches it off). `member_activities`: the member's activities the catalog's segments
    read, when the caller read them with the inputs."""
    now = now or utcnow()
    tz = program_timezone()
    if inputs is None:
        inputs = member_inputs(db.session.connection(), member.id, usage=kind == "offers")
    token, rows, activity = inputs
    catalog = catalog_for(token)
    on_list, overrides = _sorted_rows(rows, catalog.segments)
    if member_activities is not None:  # read by the caller with the inputs
        attributes = {**member_attributes(member), "activities": member_activities}
    else:
        attributes = with_activities(catalog, member.id, member_attributes(member), now)
    limit = int(current_app.config.get("VISIBILITY_CACHE_BYTES", DEFAULT_CACHE_BYTES))
    key = None
    if catalog.token is not None and limit > 0:
        key = (_database_key(), catalog.token, kind, tz, member.id,
               *_member_key(attributes, on_list, overrides, activity))
        entry = RESULTS.get(key, now)
        if entry is not None:
            return _moment_json(now).join(entry.parts), entry.count
    usage: dict[int, Usage] = {}
    if activity:
        from webapp.services.offer_usage import usage_from_rows

        usage = usage_from_rows(activity)
    ex = Explainer(member=member, catalog=catalog, now=now, tz=tz, attributes=attributes,
                   facts=_facts(catalog.segments, on_list, overrides),
                   direct=catalog.direct_for(kind), usage=usage)
    if kind == "offers":
        pairs = [(o, ex.offer(o, serialized=True)) for o in catalog.offers]
    else:
        pairs = [(r, ex.reward(r, serialized=True)) for r in catalog.rewards]
    body = render(catalog, pairs)
    if key is not None:
        windows = sum(1 for _, d in pairs if any(
            n.get("kind") == "window" for n in d.explanation.get("children") or ()))
        parts = body.split(_moment_json(now))
        # Every window node shows the moment; any other occurrence (a member's value that
        # happens to be the same text) would be replaced too, so such a result is not kept.
        valid_until = valid_until_for(catalog, kind, attributes, overrides, now, tz,
                                      usage=usage)
        if len(parts) == windows + 1 and valid_until > now:
            RESULTS.put(key, _Entry(tuple(parts), len(pairs), valid_until, len(body)), limit)
    return body, len(pairs)


def _member_key(attributes: Mapping[str, Any], on_list: set[int],
                overrides: Mapping[int, Mapping[str, Any]], activity: list[tuple]) -> tuple:
    """The member's part of a cached answer's key, equal exactly when the inputs are: the
    attributes as JSON (their lists and objects are not hashable, and JSON tells 1 from
    1.0 and true), the rest as tuples of the rows' typed values (one type per column)."""
    return (json.dumps(attributes, separators=(",", ":"), default=repr), tuple(sorted(on_list)),
            tuple((sid, tuple(fact.items())) for sid, fact in sorted(overrides.items())),
            tuple(activity))


def _moment_json(now: datetime) -> bytes:
    return orjson.dumps(now.isoformat())


def valid_until_for(catalog: Catalog, kind: str, attributes: Mapping[str, Any],
                    overrides: Mapping[int, Mapping[str, Any]], now: datetime, tz: str,
                    usage: Mapping[int, Usage] | None = None) -> datetime:
    """The first instant after `now` at which the decisions of this kind for a member with
    these attributes and overrides may change although nothing stored changed: the next
    midnight in the program time zone (ages, "turns 18 in 37 days", relative dates), the next
    publish or expiry of an offer or reward, the expiry of one of the member's overrides, and
    for a relative datetime criterion ({"days_ago": N} on created_at/updated_at) when it flips
    or its "joined 3 days too early" text moves on; for offers, when a limit's window moves
    on (a calendar period's end, an activity leaving a rolling window) or the member's
    activation lapses."""
    env = make_env(now, tz)
    midnight = datetime.combine(env.today + timedelta(days=1), time(), tzinfo=env.tz)
    until = midnight.astimezone(UTC).replace(tzinfo=None)
    items = catalog.offers if kind == "offers" else catalog.rewards
    bounds = catalog.memoized(("bounds", kind), lambda: sorted({m for item in items for m in (
        _instant(item.publish_at), _instant(item.expire_at)) if m is not None}))
    at = bisect_right(bounds, now)
    if at < len(bounds):
        until = min(until, bounds[at])
    for fact in overrides.values():
        expires = _instant(fact.get("expires_at"))
        if expires is not None and expires > now:
            until = min(until, expires)
    if kind == "offers":
        # a superset of what any offer's decision reads: every activity moment counts
        every = {"requires_activation": True}
        for offer_id in set(catalog.limits) | set(usage or ()):
            changes = next_usage_change(catalog.limits.get(offer_id, ()), every,
                                        (usage or {}).get(offer_id) or _NO_USAGE, now, tz)
            if changes is not None and changes > now:
                until = min(until, changes)
    acts = attributes.get("activities")
    if acts is not None:
        changes = next_change(catalog_activity_criteria(catalog), acts, now, env.today, env.tz)
        if changes is not None:
            until = min(until, changes)
    for field_name, days in _relative_criteria(catalog):
        value = attributes.get(field_name)
        moment = member_datetime(value) if value is not None else None
        if moment is not None:
            until = min(until, _relative_boundary(moment, days, now))
    return until


def _instant(value: Any) -> datetime | None:
    return None if value is None else member_datetime(value)


_DATETIME_FIELDS = ("created_at", "updated_at")
_NO_USAGE = Usage()


def _relative_criteria(catalog: Catalog) -> list[tuple[str, int]]:
    """(field, N) of every {"days_ago": N} criterion on a datetime field in the catalog's
    segments (a superset of those a member's decisions read)."""

    def find() -> list[tuple[str, int]]:
        found = set()
        for facts in catalog.segments.values():
            for c in raw_criteria([*(facts.definition.get("include") or ()),
                                   *(facts.definition.get("exclude") or ())]):
                value = c.get("value") if isinstance(c, Mapping) else None
                if (isinstance(value, Mapping) and c.get("field") in _DATETIME_FIELDS
                        and isinstance(value.get("days_ago"), int)):
                    found.add((c["field"], value["days_ago"]))
        return sorted(found)

    return catalog.memoized("relative", find)

_US = timedelta(microseconds=1)
_UNITS_US = (86_400_000_000, 3_600_000_000, 60_000_000, 1_000_000)


def _unit(distance_us: int) -> int:
    """The rounding unit of the core's duration texts (days, hours, minutes, seconds)."""
    for unit in _UNITS_US:
        if distance_us >= unit:
            return unit
    return _UNITS_US[-1]


def _relative_boundary(moment: datetime, days: int, now: datetime) -> datetime:
    """When a criterion comparing `moment` with "N days ago" next changes its outcome or its
    gap text (which rounds the distance up to whole days, hours, minutes or seconds)."""
    distance = (now - timedelta(days=days) - moment) // _US  # grows with time
    if distance < 0:
        remaining = -distance
        unit = _unit(remaining)
        lower = (-(-remaining // unit) - 1) * unit  # where the rounded-up text drops
        return now + timedelta(microseconds=remaining - lower)
    unit = _unit(distance)
    if distance % unit == 0:
        return now  # exactly on a step: the text moves at once
    return now + timedelta(microseconds=(distance // unit + 1) * unit - distance)


# --- reading a decision -------------------------------------------------------------------------


def _override_text(n: Mapping[str, Any]) -> str:
    facts = n.get("expected") if isinstance(n.get("expected"), Mapping) else {}
    verb = "blocked by override" if n.get("actual") == "block" else "added by override"
    parts = [verb]
    if facts.get("description"):
        parts[0] += f": {facts['description']}"
    who = [str(x) for x in (facts.get("actor"), (facts.get("at") or "")[:10]) if x]
    if who:
        parts.append("(" + ", ".join(who) + ")")
    return " ".join(parts)


def _value_text(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_value_text(v) for v in value) + "]" if value else "none"
    if isinstance(value, int | float):
        return f"{value:,}"
    return str(value)


def near_misses(tree: Mapping[str, Any], memo: dict[int, list[str] | None] | None = None
                ) -> list[str]:
    """What stands between the member and passing, in words: the deepest failed checks
    ("VIPs: needs 120 more points", "turns 18 in 37 days", "blocked by override: reason").

    `memo` may be shared across the decisions of one member: their trees share the segments'
    subtrees, which are then read once."""
    memo = {} if memo is None else memo

    def walk(n: Mapping[str, Any], where: str) -> list[str] | None:
        if n.get("passed"):
            return None
        key = id(n)
        if key in memo and n.get("kind") == "segment":
            return memo[key]
        if n.get("kind") == "segment":
            where = str(n.get("label") or "").removeprefix("segment ")
        found: list[str] = []
        for child in n.get("children") or [] if _wants_branches(n) else []:
            got = walk(child, where)
            if got:
                found.extend(got)
        if not found:
            found = _own_miss(n, where)
        if n.get("kind") == "segment":
            memo[key] = found or None
        return found or None

    return list(dict.fromkeys(walk(tree, "") or []))


def _wants_branches(n: Mapping[str, Any]) -> bool:
    """Whether a failed node passes when its children pass: every node but a `none` group and
    a group in exclude (their branches that hold are what is in the way, see `_own_miss`)."""
    if n.get("kind") != "group":
        return True
    excluding = str(n.get("label") or "").startswith("excluded when ")
    return (n.get("expected") == "none") is excluding


def _own_miss(n: Mapping[str, Any], where: str) -> list[str]:
    prefix = f"{where}: " if where else ""
    kind = n.get("kind")
    if kind == "override":
        return [prefix + _override_text(n)]
    if n.get("gap") and kind not in ("offer", "reward", "segment"):
        return [prefix + str(n["gap"]) if kind == "criterion" else str(n["gap"])]
    if kind == "criterion":
        return [f"{prefix}{n.get('label')} (has {_value_text(n.get('actual'))})"]
    if kind == "list":
        return [f"{prefix}{n.get('label')}"]
    if kind == "group":
        # A group fails with no failing branch when what holds is in the way: a `none`
        # group, or a group in exclude. Those branches are the near misses.
        held = [f"{prefix}{c.get('label')} (it must not)" for c in n.get("children") or []
                if c.get("passed")]
        return held or [f"{prefix}{n.get('label')}"]
    if kind == "window":
        window = n.get("expected") if isinstance(n.get("expected"), Mapping) else {}
        publish, expire = window.get("publish_at"), window.get("expire_at")
        if publish and str(n.get("actual") or "") < str(publish):
            return [f"not published until {_short_moment(publish)}"]
        if expire:
            return [f"expired on {_short_moment(expire)}"]
        return [str(n.get("label"))]
    if kind == "status":
        return [str(n.get("label"))]
    return []


def _short_moment(text: Any) -> str:
    return str(text)[:16].replace("T", " ") + " UTC"
