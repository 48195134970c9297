"""Which offers and rewards one member sees, and why: the database edge of the targeting core.

This is the one place that loads the facts a decision needs (offers with their audiences,
rewards with their required segments, the definitions of every segment they reference and of
the segments those reference, the member's list entries and overrides) in a handful of
queries, and hands them to the pure core (`evaluate_offer`, `evaluate_reward`). Segment
membership is evaluated live from those facts, so a what-if profile (`attributes`) changes
dynamic memberships exactly as the rules say, while lists and overrides stay as stored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app

from webapp.extensions import db
from webapp.models import (
    Audience,
    Member,
    Offer,
    Override,
    Reward,
    RewardRequiredSegment,
    Segment,
    SegmentMembership,
)
from webapp.targeting import (
    AudienceDefinitionError,
    Decision,
    SegmentDefinitionError,
    SegmentFacts,
    evaluate_offer,
    evaluate_reward,
    segment_membership,
)
from webapp.targeting.engine import node
from webapp.targeting.visibility import compiled_refs
from webapp.timeutil import utcnow

INVALID_CONFIGURATION = "invalid_configuration"


def _tz() -> str:
    return current_app.config.get("TIMEZONE", "UTC")


def _moment(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value else None


def offer_data(offer: Offer) -> dict[str, Any]:
    """An offer as the core reads it."""
    return {"id": offer.id, "name": offer.name, "external_id": offer.external_id,
            "discontinued": offer.discontinued, "publish_at": offer.publish_at,
            "expire_at": offer.expire_at}


def reward_data(reward: Reward) -> dict[str, Any]:
    """A reward as the core reads it."""
    return {"id": reward.id, "name": reward.name, "external_id": reward.external_id,
            "discontinued": reward.discontinued, "publish_at": reward.publish_at,
            "expire_at": reward.expire_at, "points": reward.points}


def segments_closure(segment_ids: Iterable[int]) -> dict[int, Segment]:
    """The segments with these ids and every segment their `segment` criteria reach."""
    loaded: dict[int, Segment] = {}
    wanted = set(segment_ids)
    while wanted:
        for segment in db.session.scalars(sa.select(Segment).where(
                Segment.id.in_(sorted(wanted)))):
            loaded[segment.id] = segment
        found = set(loaded)
        refs: set[int] = set()
        for sid in wanted & found:
            seg = loaded[sid]
            refs |= compiled_refs(SegmentFacts(id=seg.id, name=seg.name, kind=seg.kind,
                                               definition=seg.definition()))
        wanted = refs - found - wanted
    return loaded


def override_fact(override: Override) -> dict[str, Any]:
    """An override as the core's SegmentFacts carries it (and the explainer shows it)."""
    return {"id": override.id, "status": override.status, "description": override.description,
            "actor": override.actor_label or None, "at": _moment(override.status_change_timestamp),
            "expires_at": _moment(override.expires_at), "reference_id": override.reference_id}


def member_facts(member_id: str, segments: Mapping[int, Segment]) -> dict[int, SegmentFacts]:
    """SegmentFacts of one member for the given segments (two queries: list rows, overrides)."""
    if not segments:
        return {}
    static_ids = [sid for sid, s in segments.items() if s.kind == "static"]
    on_list: set[int] = set()
    if static_ids:
        on_list = set(db.session.scalars(sa.select(SegmentMembership.segment_id).where(
            SegmentMembership.member_id == member_id,
            SegmentMembership.segment_id.in_(static_ids))))
    overrides = {o.segment_id: override_fact(o) for o in db.session.scalars(
        sa.select(Override).where(Override.member_id == member_id,
                                  Override.segment_id.in_(list(segments))))}
    return {sid: SegmentFacts(id=sid, name=s.name, kind=s.kind, definition=s.definition(),
                              on_list=sid in on_list, override=overrides.get(sid))
            for sid, s in segments.items()}


def _attributes(member: Member, attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    attrs = member.attributes()
    if attributes:
        attrs.update(attributes)
    return attrs


def _refused(kind: str, name: str, message: str) -> Decision:
    """A decision for a configuration the core refuses (never a crash on the page)."""
    tree = node(kind, f"{kind} {name}", False, None, None,
                f"cannot be evaluated: {message}")
    return Decision(visible_status="missing_required_segments", eligible=False,
                    reason=INVALID_CONFIGURATION, explanation=tree)


@dataclass
class Catalog:
    """Everything the decisions need besides the member: loaded once per request."""

    offers: list[Offer]
    audiences: dict[int, list[dict[str, Any]]]
    rewards: list[Reward]
    required: dict[int, list[int]]
    segments: dict[int, Segment]
    direct: set[int]
    offer_segments: dict[int, list[int]]


def load_catalog(*, offer_ids: list[int] | None = None, reward_ids: list[int] | None = None,
                 offers: bool = True, rewards: bool = True, rows: bool = False) -> Catalog:
    """Offers with audiences, rewards with required segments, and the segments they reach.

    With `rows`, offers and rewards are plain result rows with the same attribute names
    instead of ORM objects (several times cheaper for the hundreds a member page lists)."""
    offer_rows: list[Offer] = []
    audiences: dict[int, list[dict[str, Any]]] = defaultdict(list)
    offer_segments: dict[int, list[int]] = defaultdict(list)
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
    reward_rows: list[Reward] = []
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
                   direct=referenced, offer_segments=dict(offer_segments))


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
    _results: dict[int, tuple[bool, dict[str, Any]]] | None = None
    _resolved: dict[int, SegmentFacts] | None = None

    def _segments(self) -> tuple[dict[int, tuple[bool, dict[str, Any]]], dict[int, SegmentFacts]]:
        if self._results is None or self._resolved is None:
            results: dict[int, tuple[bool, dict[str, Any]]] = {}
            tz = self.tz
            for sid in sorted(self.catalog.direct):
                if sid not in self.facts:
                    continue
                try:
                    got = segment_membership(sid, self.attributes, self.facts, now=self.now,
                                             tz=tz)
                except (SegmentDefinitionError, AudienceDefinitionError):
                    continue  # decided the slow way below, which reports the problem
                results[sid] = (got.matched, got.explanation)
            self._results = results
            self._resolved = {sid: SegmentFacts(id=sid, name=self.facts[sid].name,
                                                kind="static", on_list=matched)
                              for sid, (matched, _) in results.items()}
        return self._results, self._resolved

    def _fast(self, ids: Iterable[int]) -> bool:
        results, _ = self._segments()
        return all(sid in results for sid in ids) if ids else True

    def offer(self, offer: Offer) -> Decision:
        """The decision for one offer of the catalog."""
        audiences = self.catalog.audiences.get(offer.id, [])
        ids = self.catalog.offer_segments.get(offer.id, ())
        try:
            if not self._fast(ids):
                return evaluate_offer(offer_data(offer), audiences, self.attributes, self.facts,
                                      now=self.now, tz=self.tz)
            results, resolved = self._segments()
            decision = evaluate_offer(offer_data(offer), audiences, self.attributes, resolved,
                                      now=self.now, tz=self.tz)
        except (SegmentDefinitionError, AudienceDefinitionError) as exc:
            return _refused("offer", offer.name, str(exc))
        nodes = [n for n in decision.explanation["children"] if n["kind"] == "audience"]
        for audience, n in zip(audiences, nodes, strict=False):
            if audience["audience_type"] != "age_within":
                n["children"] = [results[sid][1]
                                 for sid in _segment_ids(audience["configuration"])]
        return decision

    def reward(self, reward: Reward) -> Decision:
        """The decision for one reward of the catalog."""
        ids = self.catalog.required.get(reward.id, [])
        try:
            if not self._fast(ids):
                return evaluate_reward(reward_data(reward), ids, self.attributes, self.facts,
                                       now=self.now, tz=self.tz)
            results, resolved = self._segments()
            decision = evaluate_reward(reward_data(reward), ids, self.attributes, resolved,
                                       now=self.now, tz=self.tz)
        except (SegmentDefinitionError, AudienceDefinitionError) as exc:
            return _refused("reward", reward.name, str(exc))
        if ids:
            for n in decision.explanation["children"]:
                if n["kind"] == "required_segments":
                    n["children"] = [results[sid][1] for sid in ids]
        return decision

    def offers(self) -> list[tuple[Offer, Decision]]:
        """Every offer of the catalog with its decision."""
        return [(o, self.offer(o)) for o in self.catalog.offers]

    def rewards(self) -> list[tuple[Reward, Decision]]:
        """Every reward of the catalog with its decision."""
        return [(r, self.reward(r)) for r in self.catalog.rewards]


def _segment_ids(configuration: Any) -> list[int]:
    if isinstance(configuration, Mapping) and isinstance(configuration.get("segments"), list):
        return [v for v in configuration["segments"] if isinstance(v, int)]
    return []


def explainer(member: Member, catalog: Catalog, *, now: datetime | None = None,
              attributes: Mapping[str, Any] | None = None) -> Explainer:
    """An Explainer for one member over a catalog (loads the member's facts: two queries)."""
    return Explainer(member=member, catalog=catalog, now=now or utcnow(), tz=_tz(),
                     attributes=_attributes(member, attributes),
                     facts=member_facts(member.id, catalog.segments))


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
        for child in n.get("children") or []:
            got = walk(child, where)
            if got:
                found.extend(got)
        if not found:
            found = _own_miss(n, where)
        if n.get("kind") == "segment":
            memo[key] = found or None
        return found or None

    return list(dict.fromkeys(walk(tree, "") or []))


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
