"""The audience types of offers (SPEC §2): each type's validation and wording, in one registry.

An :class:`AudienceType` holds its name, the short label the dashboard shows (``Age``), the
words that describe one configured audience (``18 to 25 years old``, ``in all of: VIPs``) and its
``validate(configuration, segment_ids)``, which returns the normalized configuration or raises
:class:`AudienceDefinitionError` with the ``field`` it is about (``configuration.minimum_age``),
so forms and the API put the message by that field without reading its words.

How a member is checked against an audience is in :mod:`webapp.targeting.visibility`; how the
reach of an audience is counted in the database is in :mod:`webapp.services.offers`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from webapp.targeting.errors import AudienceDefinitionError

AGE_WITHIN = "age_within"
IN_ALL_SEGMENTS = "in_all_segments"
IN_ANY_SEGMENT = "in_any_segment"

Validate = Callable[[str, Mapping[str, Any], "Collection[int] | None"], dict[str, Any]]
Describe = Callable[[Mapping[str, Any], Mapping[int, str]], str]


@dataclass(frozen=True, slots=True)
class AudienceType:
    """One audience type: its label, how one audience of it reads, and its validation."""

    name: str
    label: str
    describe: Describe
    validate: Validate


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


def _describe_segments(words: str) -> Describe:
    def describe(configuration: Mapping[str, Any], names: Mapping[int, str]) -> str:
        ids = configuration.get("segments") or []
        return words + ", ".join(names.get(i, f"segment #{i}") for i in ids)
    return describe


register(AudienceType(AGE_WITHIN, "Age", _describe_age, _validate_age))
register(AudienceType(IN_ALL_SEGMENTS, "All segments", _describe_segments("in all of: "),
                      _validate_segments))
register(AudienceType(IN_ANY_SEGMENT, "Any segment", _describe_segments("in any of: "),
                      _validate_segments))

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
