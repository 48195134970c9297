"""The audience types of offers (SPEC §2): each type's validation and wording, in one registry.

An :class:`AudienceType` holds its name, the short label the dashboard shows (``Age``), the
words that describe one configured audience (``18 to 25 years old``, ``in all of: VIPs``), its
``validate(configuration, segment_ids)``, which returns the normalized configuration or raises
:class:`AudienceDefinitionError` with the ``field`` it is about (``configuration.minimum_age``),
so forms and the API put the message by that field without reading its words; its
``evaluate(configuration, member, env, segments)``, which checks one member and returns
(passed, reasons node), with the ``refusal`` status an offer gets when it fails; and its
``reach(configuration)``, which says in plain values (criteria and segment sets) who passes, so
the services count an offer's reach in SQL without knowing the type.

:mod:`webapp.targeting.visibility` and :mod:`webapp.services.offers` only read this registry;
adding an audience type is one ``register`` call here (and its tests).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from webapp.targeting.env import Env
from webapp.targeting.errors import AudienceDefinitionError
from webapp.targeting.gaps import _plural
from webapp.targeting.result import node
from webapp.targeting.values import age_on, anniversary, member_date

AGE_WITHIN = "age_within"
IN_ALL_SEGMENTS = "in_all_segments"
IN_ANY_SEGMENT = "in_any_segment"

# Offer statuses (visible_status) when an audience fails, in precedence order.
AGE_RESTRICTED = "age_restricted"
MISSING_REQUIRED_SEGMENTS = "missing_required_segments"
REFUSALS = (AGE_RESTRICTED, MISSING_REQUIRED_SEGMENTS)


class Segments(Protocol):
    """Live segment membership of the member being checked (visibility's evaluator)."""

    names: Mapping[int, str]

    def evaluate(self, segment_id: int) -> tuple[bool, Any]:
        """(matched, explanation) of the member in one segment."""
        ...


@dataclass(frozen=True, slots=True)
class Reach:
    """Who passes an audience, as plain values the services compile to SQL.

    A member passes when they match every criterion (segment-definition criteria over the
    member's fields) and are in at least one segment of every set (materialized membership).
    """

    criteria: tuple[Mapping[str, Any], ...] = ()
    segment_sets: tuple[tuple[int, ...], ...] = ()


Validate = Callable[[str, Mapping[str, Any], "Collection[int] | None"], dict[str, Any]]
Describe = Callable[[Mapping[str, Any], Mapping[int, str]], str]
Evaluate = Callable[[Mapping[str, Any], Mapping[str, Any], Env, Segments], tuple[bool, dict]]
ReachOf = Callable[[Mapping[str, Any]], Reach]


@dataclass(frozen=True, slots=True)
class AudienceType:
    """One audience type: label, wording, validation, Python check and SQL reach."""

    name: str
    label: str
    describe: Describe
    validate: Validate
    evaluate: Evaluate
    reach: ReachOf
    refusal: str
    configuration: str  # the configuration's keys, as the API documents them


#: Every audience type, by name, in the order the API documents them.
REGISTRY: dict[str, AudienceType] = {}


def register(kind: AudienceType) -> AudienceType:
    """Add an audience type to the registry (a name is registered once)."""
    if kind.name in REGISTRY:
        raise ValueError(f"audience type {kind.name!r} is registered twice")
    REGISTRY[kind.name] = kind
    return kind


def _fail(message: str, field: str = "configuration") -> AudienceDefinitionError:
    return AudienceDefinitionError(message, field=field)


def _unknown_keys(audience_type: str, configuration: Mapping[str, Any], allowed: set[str],
                  hint: str) -> None:
    unknown = set(configuration) - allowed
    if unknown:
        raise _fail(f"{audience_type}: unknown key {', '.join(sorted(map(str, unknown)))} "
                    f"({hint})")


# --- age_within ---------------------------------------------------------------------------------


AGE_KEYS = {"minimum_age": "Minimum age", "maximum_age": "Maximum age"}


def _validate_age(audience_type: str, configuration: Mapping[str, Any],
                  segment_ids: Collection[int] | None) -> dict[str, Any]:
    """The one check of an age audience, worded as the dashboard shows it (its form calls it)."""
    _unknown_keys(audience_type, configuration, set(AGE_KEYS),
                  "give minimum_age and/or maximum_age")
    out: dict[str, Any] = {}
    for key, words in AGE_KEYS.items():
        v = configuration.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise _fail(f"{words} must be a whole number of years, 0 or more, or empty.",
                        f"configuration.{key}")
        out[key] = v
    lo, hi = out["minimum_age"], out["maximum_age"]
    if lo is None and hi is None:
        raise _fail("Give a minimum age, a maximum age, or both.", "configuration.minimum_age")
    if lo is not None and hi is not None and lo > hi:
        raise _fail(f"The minimum age ({lo}) is above the maximum age ({hi}).",
                    "configuration.minimum_age")
    return out


def _describe_age(configuration: Mapping[str, Any], names: Mapping[int, str]) -> str:
    lo, hi = configuration.get("minimum_age"), configuration.get("maximum_age")
    if lo is not None and hi is not None:
        return f"{lo} to {hi} years old"
    return f"{lo} years old or older" if lo is not None else f"{hi} years old or younger"


def _evaluate_age(config: Mapping[str, Any], member: Mapping[str, Any], env: Env,
                  segments: Segments) -> tuple[bool, dict]:
    lo, hi = config.get("minimum_age"), config.get("maximum_age")
    if lo is not None and hi is not None:
        label = f"age {lo} to {hi}"
    elif lo is not None:
        label = f"age at least {lo}"
    else:
        label = f"age at most {hi}"
    raw = member.get("birthday")
    birthday = member_date(raw) if raw is not None else None
    if birthday is None:
        return False, node("audience", label, False, None, dict(config), "has no birthday")
    age = age_on(birthday, env.today)
    gap = None
    if lo is not None and age < lo:
        when = anniversary(birthday, lo)
        gap = (f"turns {lo} in {_plural((when - env.today).days, 'day')}" if when
               else f"must be {lo} or older")
    elif hi is not None and age > hi:
        gap = f"is {_plural(age - hi, 'year')} too old"
    return gap is None, node("audience", label, gap is None, age, dict(config), gap)


def _age_reach(config: Mapping[str, Any]) -> Reach:
    criteria = []
    if config.get("minimum_age") is not None:
        criteria.append({"field": "age", "operator": ">=", "value": config["minimum_age"]})
    if config.get("maximum_age") is not None:
        criteria.append({"field": "age", "operator": "<=", "value": config["maximum_age"]})
    return Reach(criteria=tuple(criteria))


# --- in_all_segments / in_any_segment -----------------------------------------------------------


def _validate_segments(audience_type: str, configuration: Mapping[str, Any],
                       segment_ids: Collection[int] | None) -> dict[str, Any]:
    _unknown_keys(audience_type, configuration, {"segments"}, "give segments")
    ids = configuration.get("segments")
    field = "configuration.segments"
    if not isinstance(ids, list) or not ids:
        raise _fail(f"{audience_type}: segments must list at least one segment id", field)
    seen: set[int] = set()
    for sid in ids:
        if not isinstance(sid, int) or isinstance(sid, bool):
            raise _fail(f"{audience_type}: segment ids are whole numbers, not {json.dumps(sid)}",
                        field)
        if sid in seen:
            raise _fail(f"{audience_type}: segment {sid} is listed twice", field)
        seen.add(sid)
        if segment_ids is not None and sid not in segment_ids:
            raise _fail(f"{audience_type}: segment {sid} does not exist", field)
    return {"segments": list(ids)}


def segments_check(ids: Sequence[int], segments: Segments, *, every: bool
                   ) -> tuple[bool, dict]:
    """Whether the member is in every (or any) of the segments, with the reasons node."""
    results = [segments.evaluate(sid) for sid in ids]
    names = [segments.names.get(sid, f"#{sid}") for sid in ids]
    if every:
        passed = all(r[0] for r in results)
        label = "in all of the segments " + ", ".join(names)
    else:
        passed = any(r[0] for r in results)
        label = "in any of the segments " + ", ".join(names)
    missing = [n for n, r in zip(names, results, strict=True) if not r[0]]
    gap = None if passed else "not in " + ", ".join(missing)
    return passed, node("audience", label, passed, [sid for sid, r in zip(ids, results,
                        strict=True) if r[0]], list(ids), gap, [r[1] for r in results])


def _evaluate_segments(every: bool) -> Evaluate:
    def evaluate(config: Mapping[str, Any], member: Mapping[str, Any], env: Env,
                 segments: Segments) -> tuple[bool, dict]:
        return segments_check(config["segments"], segments, every=every)
    return evaluate


def _all_segments_reach(config: Mapping[str, Any]) -> Reach:
    return Reach(segment_sets=tuple((sid,) for sid in dict.fromkeys(config["segments"])))


def _any_segment_reach(config: Mapping[str, Any]) -> Reach:
    return Reach(segment_sets=(tuple(config["segments"]),))


def _describe_segments(words: str) -> Describe:
    def describe(configuration: Mapping[str, Any], names: Mapping[int, str]) -> str:
        ids = configuration.get("segments") or []
        return words + ", ".join(names.get(i, f"segment #{i}") for i in ids)
    return describe


register(AudienceType(AGE_WITHIN, "Age", _describe_age, _validate_age, _evaluate_age,
                      _age_reach, AGE_RESTRICTED, "{minimum_age, maximum_age}"))
register(AudienceType(IN_ALL_SEGMENTS, "All segments", _describe_segments("in all of: "),
                      _validate_segments, _evaluate_segments(every=True), _all_segments_reach,
                      MISSING_REQUIRED_SEGMENTS, "{segments: [ids]}"))
register(AudienceType(IN_ANY_SEGMENT, "Any segment", _describe_segments("in any of: "),
                      _validate_segments, _evaluate_segments(every=False), _any_segment_reach,
                      MISSING_REQUIRED_SEGMENTS, "{segments: [ids]}"))

AUDIENCE_TYPES: tuple[str, ...] = tuple(REGISTRY)


def validate_audience(audience_type: Any, configuration: Any, *,
                      segment_ids: Collection[int] | None = None) -> dict[str, Any]:
    """Check an audience against SPEC §2 and return its normalized configuration."""
    kind = REGISTRY.get(audience_type) if isinstance(audience_type, str) else None
    if kind is None:
        raise _fail(f"audience_type must be one of {', '.join(AUDIENCE_TYPES)}, not "
                    f"{audience_type!r}", "audience_type")
    if not isinstance(configuration, Mapping):
        raise _fail(f"{audience_type}: configuration must be an object")
    return kind.validate(audience_type, configuration, segment_ids)


def evaluate_audience(audience_type: str, configuration: Mapping[str, Any],
                      member: Mapping[str, Any], env: Env, segments: Segments
                      ) -> tuple[bool, dict]:
    """Whether a member passes one (validated) audience, with the reasons node."""
    return REGISTRY[audience_type].evaluate(configuration, member, env, segments)


def audience_reach(audience_type: str, configuration: Mapping[str, Any]) -> Reach:
    """Who passes one (validated) audience, as criteria and segment sets (see :class:`Reach`)."""
    return REGISTRY[audience_type].reach(configuration)


def configuration_doc() -> str:
    """Each type's configuration keys, as the API documents them (types alike share a line)."""
    names: dict[str, list[str]] = {}
    for kind in REGISTRY.values():
        names.setdefault(kind.configuration, []).append(kind.name)
    return "; ".join(f"{' / '.join(kinds)}: {keys}" for keys, kinds in names.items())


def describe_audience(audience_type: str, configuration: Mapping[str, Any],
                      names: Mapping[int, str] | None = None) -> str:
    """Plain words for an audience: '18 to 25 years old', 'in all of: VIPs, Londoners'
    (shown after the type's label, "Age", so the words do not repeat it)."""
    kind = REGISTRY.get(audience_type)
    if kind is None:
        return audience_label(audience_type)
    return kind.describe(configuration, names or {})


def audience_label(audience_type: str) -> str:
    """The short label of an audience type ('Age'), or its name in words when unknown."""
    kind = REGISTRY.get(audience_type)
    return kind.label if kind else audience_type.replace("_", " ")
