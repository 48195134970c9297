"""Offer and reward visibility for one member (SPEC §4), with the full tree of checks.

Segment membership is evaluated live from :class:`SegmentFacts` (definition, whether the member
is on the static list, the member's override), recursively for `segment` criteria. The tree is
offer/reward -> audience or required segments -> segment -> override / list / criterion, with
nodes as described in :mod:`webapp.targeting.result`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from webapp.targeting.audiences import (
    MISSING_REQUIRED_SEGMENTS,
    REFUSALS,
    REGISTRY,
    segments_check,
    validate_audience,
)
from webapp.targeting.compiler import CompiledDefinition, compile_definition
from webapp.targeting.criteria import raw_criteria
from webapp.targeting.env import Env, make_env
from webapp.targeting.errors import SegmentDefinitionError
from webapp.targeting.limits import NO_USAGE, Usage, activation_node, is_global, limit_node
from webapp.targeting.result import SegmentResult, explain_membership, node
from webapp.targeting.values import member_datetime

# visible_status values, in precedence order.
GLOBAL_LIMIT = "global_limit"
MEMBER_LIMIT = "member_limit"
# (a failed audience gives its type's refusal, e.g. age_restricted, missing_required_segments:
# webapp.targeting.audiences.REFUSALS, in precedence order)
VISIBLE = "visible"
REWARD_DISCONTINUED = "reward_discontinued"
REWARD_EXPIRED = "reward_expired"
# reasons beyond the status
ELIGIBLE = "eligible"
INSUFFICIENT_POINTS = "insufficient_points"
OFFER_DISCONTINUED = "offer_discontinued"
OFFER_NOT_PUBLISHED = "offer_not_published"
OFFER_EXPIRED = "offer_expired"
ACTIVATION_REQUIRED = "activation_required"


@dataclass(frozen=True, slots=True)
class SegmentFacts:
    """What membership in one segment depends on, for one member.

    `definition` holds `include`/`exclude`; `override` is None or a mapping with `status`
    ("add"/"block") and optionally `description`, `actor`, `at`, `expires_at`.
    """

    id: int
    name: str
    kind: str
    definition: Mapping[str, Any] = field(default_factory=dict)
    on_list: bool = False
    override: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """A visibility decision: status, eligibility, the reason code and the tree of checks."""

    visible_status: str
    eligible: bool
    reason: str
    explanation: dict[str, Any]
    # offers only (None for rewards): whether it requires activation, whether the member
    # holds a current activation (None when not required), how often it awarded the member
    must_activate: bool | None = None
    activated: bool | None = None
    fulfillment_count: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The decision as JSON-serializable data (`reasons` is the tree)."""
        out = {"visible_status": self.visible_status, "eligible": self.eligible,
               "reason": self.reason, "reasons": self.explanation}
        if self.must_activate is not None:
            out.update(must_activate=self.must_activate, activated=self.activated,
                       fulfillment_count=self.fulfillment_count)
        return out


# --- live membership ----------------------------------------------------------------------------

_COMPILED: dict[str, CompiledDefinition] = {}


def _compiled(facts: SegmentFacts, names: dict[int, str]) -> CompiledDefinition:
    include = list(facts.definition.get("include") or [])
    exclude = list(facts.definition.get("exclude") or [])
    raw = {"kind": facts.kind, "include": include, "exclude": exclude}
    # Without criteria the names cannot matter (they only label `segment` criteria).
    key = (f"{facts.kind!r}:no criteria" if not include and not exclude else
           json.dumps([raw, sorted(names.items())], sort_keys=True, default=str))
    got = _COMPILED.get(key)
    if got is None:
        if len(_COMPILED) > 4096:
            _COMPILED.clear()
        got = _COMPILED[key] = compile_definition(raw, names)
    return got


def _moment(value: Any) -> datetime | None:
    if value is None:
        return None
    return member_datetime(value)


def _override_active(override: Mapping[str, Any] | None, now: datetime) -> bool:
    if not override or override.get("status") not in ("add", "block"):
        return False
    expires = _moment(override.get("expires_at"))
    return expires is None or expires > now


class _Membership:
    """Evaluates segments for one member from their facts, memoized, refusing cycles."""

    def __init__(self, member: Mapping[str, Any], segments: Mapping[int, SegmentFacts],
                 env: Env, compiled: dict[int, CompiledDefinition] | None = None,
                 names: dict[int, str] | None = None) -> None:
        self.member = member
        self.segments = segments
        self.base = env
        self.memo: dict[int, tuple[bool, dict[str, Any]]] = {}
        self.stack: list[int] = []
        self.names = ({sid: f.name for sid, f in segments.items()} if names is None
                      else names)
        self.compiled = compiled
        self.known: Mapping[int, tuple[bool, Any]] = {}

    def evaluate(self, sid: int) -> tuple[bool, dict[str, Any]]:
        got = self.memo.get(sid)
        if got is not None:
            return got
        got = self.known.get(sid)
        if got is not None:
            return got
        facts = self.segments.get(sid)
        if facts is None:
            result = (False, node("segment", f"segment #{sid} (unknown)", False))
            self.memo[sid] = result
            return result
        if sid in self.stack:
            cycle = self.stack[self.stack.index(sid):] + [sid]
            raise SegmentDefinitionError("segment criteria form a cycle: " + " -> ".join(
                f"{self.names.get(i, '?')} (#{i})" for i in cycle))
        self.stack.append(sid)
        try:
            compiled = self.compiled.get(sid) if self.compiled is not None else None
            if compiled is None:
                compiled = _compiled(facts, {i: self.names[i] for i in
                                             compiled_refs(facts) if i in self.names})
                if self.compiled is not None:
                    self.compiled[sid] = compiled
            env = Env(now=self.base.now, tz=self.base.tz, today=self.base.today,
                      in_segment=lambda i: self.evaluate(i)[0],
                      explain_segment=lambda i: self.evaluate(i)[1])
            override = facts.override if _override_active(facts.override, env.now) else None
            status = override.get("status") if override else None
            override_node = None
            if override:
                who = override.get("actor")
                why = override.get("description")
                text = "blocked by override" if status == "block" else "added by override"
                if why:
                    text += f": {why}"
                if who:
                    text += f" (by {who})"
                override_node = node("override", text, status == "add", actual=status,
                                     expected=_jsonable_override(override))
            result = explain_membership(
                compiled, dict(self.member), env, on_list=facts.on_list, override=status,
                label=f"segment {facts.name}", override_node=override_node)
        finally:
            self.stack.pop()
        self.memo[sid] = result
        return result


def compiled_refs(facts: SegmentFacts) -> set[int]:
    """Segment ids a facts' definition names in `segment` criteria (without validating)."""
    out: set[int] = set()
    for group in ("include", "exclude"):
        for c in raw_criteria(facts.definition.get(group) or []):
            if isinstance(c, Mapping) and c.get("field") == "segment" and isinstance(
                    c.get("value"), list):
                out.update(v for v in c["value"] if isinstance(v, int))
    return out


def _jsonable_override(override: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in override.items():
        out[str(k)] = v.isoformat() if isinstance(v, datetime | date) else v
    return out


def segment_membership(segment_id: int, member: Mapping[str, Any],
                       segments: Mapping[int, SegmentFacts], *, now: datetime | None = None,
                       tz: str | tzinfo = "UTC",
                       compiled: dict[int, CompiledDefinition] | None = None) -> SegmentResult:
    """Live effective membership of a member in one segment, from the facts, with explanation.

    `compiled` is a cache of compiled definitions by segment id, filled as segments are
    evaluated; share it only between calls whose facts carry the same definitions and names."""
    matched, tree = _Membership(member, segments, make_env(now, tz), compiled
                                ).evaluate(segment_id)
    return SegmentResult(matched=matched, explanation=tree)


# --- offers and rewards ----------------------------------------------------------------------


def _window_node(item: Mapping[str, Any], now: datetime, what: str) -> tuple[str | None, dict]:
    publish = _moment(item.get("publish_at"))
    expire = _moment(item.get("expire_at"))
    problem = None
    if publish is not None and now < publish:
        problem, label = "not_published", f"{what} is published from {publish.isoformat()}"
    elif expire is not None and now >= expire:
        problem, label = "expired", f"{what} expired at {expire.isoformat()}"
    else:
        label = f"{what} is inside its publish window"
    expected = {"publish_at": publish.isoformat() if publish else None,
                "expire_at": expire.isoformat() if expire else None}
    return problem, node("window", label, problem is None, actual=now.isoformat(),
                         expected=expected)


def evaluate_offer(offer: Mapping[str, Any], audiences: Sequence[Mapping[str, Any]],
                   member: Mapping[str, Any], segments: Mapping[int, SegmentFacts], *,
                   now: datetime | None = None, tz: str | tzinfo = "UTC",
                   results: Mapping[int, tuple[bool, Any]] | None = None,
                   validated: bool = False,
                   names: dict[int, str] | None = None,
                   limits: Sequence[Mapping[str, Any]] = (),
                   usage: Usage | None = None) -> Decision:
    """Visibility and eligibility of one offer for one member (SPEC §4, §8).

    `limits`: the offer's limits as {limit_type, configuration} (validated); `usage`: what
    the member (and all members, for the global kinds) did with the offer.

    `results`: segments already evaluated for this member over the same facts and moment
    (`segment_membership`), as (matched, explanation); they are used as they are.
    `names`: the segments' names by id, when the caller has them already.
    `validated`: the audiences' configurations are already those `validate_audience`
    returned for them."""
    env = make_env(now, tz)
    ms = _Membership(member, segments, env, names=names)
    if results:
        ms.known = results
    children: list[dict[str, Any]] = []
    refused: set[str] = set()
    for audience in audiences:
        kind = audience.get("audience_type")
        config = (audience["configuration"] if validated else
                  validate_audience(kind, audience.get("configuration")))
        audience_type = REGISTRY[kind]
        ok, n = audience_type.evaluate(config, member, env, ms)
        if not ok:
            refused.add(audience_type.refusal)
        children.append(n)
    usage = usage or NO_USAGE
    global_hit = member_hit = False
    limit_nodes = []
    for limit in limits:
        reached, n = limit_node(limit, usage, env.now, env.tz)
        if reached and is_global(limit["limit_type"]):
            global_hit = True
        elif reached:
            member_hit = True
        limit_nodes.append(n)
    if global_hit:
        status = GLOBAL_LIMIT
    elif member_hit:
        status = MEMBER_LIMIT
    else:
        status = next((r for r in REFUSALS if r in refused), VISIBLE)
    discontinued = bool(offer.get("discontinued"))
    window_problem, window = _window_node(offer, env.now, "offer")
    checks = [node("status", "offer is discontinued" if discontinued else "offer is active",
                   not discontinued, discontinued, False), window]
    must_activate = bool(offer.get("requires_activation"))
    activated: bool | None = None
    if must_activate:
        activated, n = activation_node(offer, usage, env.now, env.tz)
        checks.append(n)
    if status != VISIBLE:
        reason = status
    elif discontinued:
        reason = OFFER_DISCONTINUED
    elif window_problem == "not_published":
        reason = OFFER_NOT_PUBLISHED
    elif window_problem == "expired":
        reason = OFFER_EXPIRED
    elif must_activate and not activated:
        reason = ACTIVATION_REQUIRED
    else:
        reason = ELIGIBLE
    eligible = reason == ELIGIBLE
    if not audiences:
        children.append(node("audience", "no audiences: visible to every member", True))
    name = offer.get("name") or offer.get("external_id") or offer.get("id") or ""
    tree = node("offer", f"offer {name}".strip(), eligible, status, VISIBLE,
                None if eligible else reason.replace("_", " "),
                checks + limit_nodes + children)
    return Decision(visible_status=status, eligible=eligible, reason=reason, explanation=tree,
                    must_activate=must_activate, activated=activated,
                    fulfillment_count=usage.fulfillment_count(env.now))


def evaluate_reward(reward: Mapping[str, Any], required_segment_ids: Sequence[int],
                    member: Mapping[str, Any], segments: Mapping[int, SegmentFacts], *,
                    now: datetime | None = None, tz: str | tzinfo = "UTC",
                    results: Mapping[int, tuple[bool, Any]] | None = None,
                    names: dict[int, str] | None = None) -> Decision:
    """Visibility and eligibility of one reward for one member (SPEC §4).

    `results`: segments already evaluated for this member over the same facts and moment
    (`segment_membership`), as (matched, explanation); they are used as they are.
    `names`: the segments' names by id, when the caller has them already."""
    env = make_env(now, tz)
    ms = _Membership(member, segments, env, names=names)
    if results:
        ms.known = results
    discontinued = bool(reward.get("discontinued"))
    window_problem, window = _window_node(reward, env.now, "reward")
    children = [node("status", "reward is discontinued" if discontinued else "reward is active",
                     not discontinued, discontinued, False), window]
    ids = list(required_segment_ids)
    if ids:
        seg_ok, seg_node = segments_check(ids, ms, every=True)
        seg_node["kind"] = "required_segments"
    else:
        seg_ok = True
        seg_node = node("required_segments", "no required segments", True)
    children.append(seg_node)
    cost = reward.get("points") or 0
    balance = member.get("points")
    balance = balance if isinstance(balance, int | float) and not isinstance(balance, bool) else 0
    short = cost - balance
    points_ok = short <= 0
    children.append(node("points", f"points at least {cost:,} (the reward's cost)", points_ok,
                         balance, cost, None if points_ok else f"needs {short:,} more points"))
    if discontinued:
        status = REWARD_DISCONTINUED
    elif window_problem is not None:
        status = REWARD_EXPIRED
    elif not seg_ok:
        status = MISSING_REQUIRED_SEGMENTS
    else:
        status = VISIBLE
    if status != VISIBLE:
        reason = status
    elif not points_ok:
        reason = INSUFFICIENT_POINTS
    else:
        reason = ELIGIBLE
    eligible = reason == ELIGIBLE
    name = reward.get("name") or reward.get("external_id") or reward.get("id") or ""
    gap = None if eligible else (f"needs {short:,} more points" if reason == INSUFFICIENT_POINTS
                                 else reason.replace("_", " "))
    tree = node("reward", f"reward {name}".strip(), eligible, status, VISIBLE, gap, children)
    return Decision(visible_status=status, eligible=eligible, reason=reason, explanation=tree)


def now_utc() -> datetime:
    """The current time as naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)
