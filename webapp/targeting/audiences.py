"""The audience types of offers (SPEC §2): each type's fields, validation and wording, in one
registry.

An :class:`AudienceType` holds its name, the short label the dashboard shows (``Age``), the
words that describe one configured audience (``18 to 25 years old``, ``in all of: VIPs``);
its ``fields`` (:class:`AudienceField`: each configuration key with its label, input kind,
bounds or choices), from which the dashboard builds the add form and the API its OpenAPI
schema, and ``form``/``choice``/``title``, which say which add form it shares and how that form
names it; its ``validate(configuration, segment_ids)``, which returns the normalized
configuration or raises :class:`AudienceDefinitionError` with the ``field`` it is about
(``configuration.minimum_age``) and the dashboard's ``words`` beside the API's message, so
forms and the API put the message by that field without reading its words; its
``evaluate(configuration, member, env, segments)``, which checks one member and returns
(passed, reasons node), with the ``refusal`` status an offer gets when it fails; and its
``reach(configuration)``, which says in plain values (criteria and segment sets) who passes, so
the services count an offer's reach in SQL without knowing the type.

The dashboard (:mod:`webapp.offers`), the API (:mod:`webapp.api.offers`, the OpenAPI document),
:mod:`webapp.targeting.visibility` and :mod:`webapp.services.offers` only read this registry;
adding an audience type is one ``register`` call here (and its tests). A field whose input kind
is new (not ``number``, ``segments`` or ``choice``) also needs that kind in the dashboard's form
builder (``webapp/offers/forms.py``, ``templates/offers/show.html``) and the OpenAPI schema
(``webapp/api/openapi.py``).
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

# Offer statuses (visible_status) when an audience fails (REFUSALS, below, lists every type's
# in registry order, which is their precedence).
AGE_RESTRICTED = "age_restricted"
MISSING_REQUIRED_SEGMENTS = "missing_required_segments"


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


#: Input kinds of audience fields: a whole number, several segment ids, one of the choices.
NUMBER = "number"
SEGMENT_IDS = "segments"
CHOICE = "choice"
INPUTS = (NUMBER, SEGMENT_IDS, CHOICE)


@dataclass(frozen=True, slots=True)
class AudienceField:
    """One key of an audience's configuration, as the add form and the API document show it.

    ``minimum`` is what validation enforces (the API documents it); ``form_maximum`` only bounds
    the dashboard's input (ages past 200 are typos there), ``example`` and ``range_words`` word
    its messages. ``choices`` are the values a ``choice`` field takes, as (value, words).
    """

    name: str
    label: str
    input: str
    hint: str = ""
    minimum: int | None = None
    form_maximum: int | None = None
    example: str = ""
    range_words: str = ""
    choices: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.input not in INPUTS:
            raise ValueError(f"audience field {self.name!r}: input is one of {INPUTS}")


Validate = Callable[[str, Mapping[str, Any], "Collection[int] | None"], dict[str, Any]]
Describe = Callable[[Mapping[str, Any], Mapping[int, str]], str]
Evaluate = Callable[[Mapping[str, Any], Mapping[str, Any], Env, Segments], tuple[bool, dict]]
ReachOf = Callable[[Mapping[str, Any]], Reach]


@dataclass(frozen=True, slots=True)
class AudienceType:
    """One audience type: label, fields, wording, validation, Python check and SQL reach.

    Types with the same ``form`` share one add form in the dashboard (its address is
    ``/offers/<id>/audiences/<form>``), titled by the first one's ``title``; when several share
    it, the form offers them by their ``choice`` words."""

    name: str
    label: str
    describe: Describe
    validate: Validate
    evaluate: Evaluate
    reach: ReachOf
    refusal: str
    fields: tuple[AudienceField, ...]
    form: str
    title: str
    choice: str = ""
    lead: str = ""  # the words before the names of the segments it lists ('in all of:')

    @property
    def configuration(self) -> str:
        """The configuration's keys, as the API documents them ({minimum_age, maximum_age})."""
        return "{" + ", ".join(f.name + (": [ids]" if f.input == SEGMENT_IDS else "")
                               for f in self.fields) + "}"

    def segment_ids(self, configuration: Mapping[str, Any]) -> list[int]:
        """The segment ids a configuration of this type names (its segment fields' values)."""
        return [sid for f in self.fields if f.input == SEGMENT_IDS
                for sid in (configuration.get(f.name) or [])]


#: Every audience type, by name, in the order the API documents them.
REGISTRY: dict[str, AudienceType] = {}


def register(kind: AudienceType) -> AudienceType:
    """Add an audience type to the registry (a name is registered once)."""
    if kind.name in REGISTRY:
        raise ValueError(f"audience type {kind.name!r} is registered twice")
    REGISTRY[kind.name] = kind
    return kind


def _fail(message: str, field: str = "configuration", words: str | None = None
          ) -> AudienceDefinitionError:
    return AudienceDefinitionError(message, field=field, words=words)


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
        raise _fail(f"{audience_type}: segments must list at least one segment id", field,
                    "Choose at least one segment.")
    seen: set[int] = set()
    for sid in ids:
        if not isinstance(sid, int) or isinstance(sid, bool):
            raise _fail(f"{audience_type}: segment ids are whole numbers, not {json.dumps(sid)}",
                        field, f"Segment ids are whole numbers, not {json.dumps(sid)}.")
        if sid in seen:
            raise _fail(f"{audience_type}: segment {sid} is listed twice", field,
                        f"Segment #{sid} is chosen twice.")
        seen.add(sid)
        if segment_ids is not None and sid not in segment_ids:
            raise _fail(f"{audience_type}: segment {sid} does not exist", field,
                        f"Segment #{sid} no longer exists; choose another.")
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


def _describe_segments(lead: str) -> Describe:
    def describe(configuration: Mapping[str, Any], names: Mapping[int, str]) -> str:
        ids = configuration.get("segments") or []
        return f"{lead} " + ", ".join(names.get(i, f"segment #{i}") for i in ids)
    return describe


def _age_field(key: str, example: str, hint: str) -> AudienceField:
    words = AGE_KEYS[key]
    return AudienceField(key, words, NUMBER, hint=hint, minimum=0, form_maximum=200,
                         example=example, range_words=f"{words} must be from 0 to 200 years.")


AGE_FIELDS = (_age_field("minimum_age", "18", "inclusive, from the birthday"),
              _age_field("maximum_age", "65", "inclusive, until the next birthday"))
SEGMENT_FIELDS = (AudienceField("segments", "Segments", SEGMENT_IDS),)

register(AudienceType(AGE_WITHIN, "Age", _describe_age, _validate_age, _evaluate_age,
                      _age_reach, AGE_RESTRICTED, AGE_FIELDS, form="age",
                      title="Add an age range"))
register(AudienceType(IN_ALL_SEGMENTS, "All segments", _describe_segments("in all of:"),
                      _validate_segments, _evaluate_segments(every=True), _all_segments_reach,
                      MISSING_REQUIRED_SEGMENTS, SEGMENT_FIELDS, form="segments",
                      title="Add segments", choice="in ALL of the chosen segments",
                      lead="in all of:"))
register(AudienceType(IN_ANY_SEGMENT, "Any segment", _describe_segments("in any of:"),
                      _validate_segments, _evaluate_segments(every=False), _any_segment_reach,
                      MISSING_REQUIRED_SEGMENTS, SEGMENT_FIELDS, form="segments",
                      title="Add segments", choice="in ANY of the chosen segments",
                      lead="in any of:"))

AUDIENCE_TYPES: tuple[str, ...] = tuple(REGISTRY)
#: Offer statuses (visible_status) when an audience fails, in precedence order.
REFUSALS: tuple[str, ...] = tuple(dict.fromkeys(kind.refusal for kind in REGISTRY.values()))


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


def forms() -> dict[str, tuple[AudienceType, ...]]:
    """The dashboard's add forms: each form's name and the types it offers, in registry order."""
    out: dict[str, list[AudienceType]] = {}
    for kind in REGISTRY.values():
        out.setdefault(kind.form, []).append(kind)
    return {name: tuple(kinds) for name, kinds in out.items()}


def segment_ids_of(audience_type: str, configuration: Mapping[str, Any]) -> list[int]:
    """The segment ids an audience names (none for an unknown type or a malformed one)."""
    kind = REGISTRY.get(audience_type)
    if kind is None or not isinstance(configuration, Mapping):
        return []
    return [sid for sid in kind.segment_ids(configuration) if isinstance(sid, int)]


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


def audience_lead(audience_type: str) -> str:
    """The words before the segments an audience lists ('in all of:'), or '' when it lists none."""
    kind = REGISTRY.get(audience_type)
    return kind.lead if kind else ""


def audience_label(audience_type: str) -> str:
    """The short label of an audience type ('Age'), or its name in words when unknown."""
    kind = REGISTRY.get(audience_type)
    return kind.label if kind else audience_type.replace("_", " ")
