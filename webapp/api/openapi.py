"""The OpenAPI 3.1 document of /api/v1, built from one table of operations.

Each operation names its view endpoint, so the summary and description come from the view's
docstring and a test checks that every API route is described. Request and response bodies
are JSON Schema (2020-12) under `components.schemas`; every error response is the JSON:API
error document.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from flask import current_app

from webapp.access import access
from webapp.api import bp
from webapp.api.jsonapi import respond
from webapp.api.pagination import DEFAULT_SIZE, MAX_SIZE
from webapp.targeting.audiences import (
    AUDIENCE_TYPES,
    NUMBER,
    REFUSALS,
    SEGMENT_IDS,
    AudienceField,
    AudienceType,
    configuration_doc,
)
from webapp.targeting.audiences import REGISTRY as AUDIENCES
from webapp.targeting.declared import TYPES as DECLARED_TYPES
from webapp.targeting.schema import OPERATORS, TIERS

MEDIA = "application/vnd.api+json"
TITLE = "Beacon API"
VERSION = "1.0.0"
LEVEL_WORDS = {"public": "no token", "read": "read (support, marketer, admin)",
               "write": "write (marketer, admin)", "admin": "admin"}


def ref(name: str) -> dict[str, str]:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema or null."""
    return {"anyOf": [schema, {"type": "null"}]}


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
BOOLEAN = {"type": "boolean"}
URI = {"type": "string", "format": "uri"}
MOMENT = {"type": "string", "description": "RFC 3339 time in UTC, e.g. 2026-11-22T09:30:00Z"}
#: A time the server reads (ISO 8601): an RFC 3339 date-time, or a date (midnight UTC).
WHEN = {"anyOf": [{"type": "string", "format": "date-time", "maxLength": 40},
                  {"type": "string", "format": "date"}],
        "description": "RFC 3339 time or date, e.g. 2026-12-01T09:00:00Z"}
#: The same in an attribute that may be empty: null or "" (none).
WHEN_OR_NONE = {"anyOf": [WHEN, {"const": ""}, {"type": "null"}]}
META = {"type": "object", "additionalProperties": True}
ANY: dict[str, Any] = {}
#: What every string of a request must match: the server refuses NUL characters (400), since
#: the databases cannot store them.
NO_NUL = "^[^\\u0000]*$"
#: Characters Python strips as spaces that a JSON Schema (ECMA) `\s` does not match.
PY_SPACES = "\\u001c-\\u001f\\u0085"
#: A string with something in it besides spaces (names, ids), and no NUL.
NOT_BLANK = f"^[^\\u0000]*[^\\s\\u0000{PY_SPACES}][^\\u0000]*$"
#: Whole numbers the server takes: 64 bits (beyond them, 422).
INT64 = {"minimum": -(2**63), "maximum": 2**63 - 1}
#: Any JSON value a request may carry where the document does not say more (free-form
#: objects such as custom_fields, unknown top-level members): the same limits, recursively.
JSON_VALUE = {"anyOf": [
    {"type": "null"}, {"type": "boolean"}, {"type": "number", **INT64},
    {"type": "string", "pattern": NO_NUL},
    {"type": "array", "items": {"$ref": "#/components/schemas/JsonValue"}},
    {"type": "object", "propertyNames": {"minLength": 1, "pattern": NO_NUL},
     "additionalProperties": {"$ref": "#/components/schemas/JsonValue"}}]}


def obj(properties: dict[str, Any], required: tuple[str, ...] = (), **extra: Any
        ) -> dict[str, Any]:
    """An object schema (pass additionalProperties=False where the server refuses others)."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    schema.update(extra)
    return schema


def array(items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An array schema."""
    return {"type": "array", "items": items, **extra}


def _field_schema(spec: AudienceField) -> dict[str, Any]:
    """The schema of one audience configuration key, by its input kind (as answers hold it)."""
    if spec.input == NUMBER:
        bounds = {} if spec.minimum is None else {"minimum": spec.minimum}
        return {**nullable({"type": "integer", **bounds}), "description": spec.label}
    if spec.input == SEGMENT_IDS:
        return array(INTEGER, minItems=1, description=f"{spec.label}: segment ids")
    return {"enum": [value for value, _ in spec.choices], "description": spec.label}


def configuration_schema_name(kind: AudienceType) -> str:
    """The component name of an audience type's configuration ('AgeWithinConfiguration')."""
    return kind.name.title().replace("_", "") + "Configuration"


def configuration_schema(kind: AudienceType) -> dict[str, Any]:
    """An audience type's configuration as answers hold it, from the registry's fields."""
    schema = obj({spec.name: _field_schema(spec) for spec in kind.fields},
                 tuple(spec.name for spec in kind.fields if spec.input != NUMBER))
    schema["description"] = f"{kind.name}: {kind.label}"
    return schema


#: What a request's audience configuration may say beyond the answers' shapes.
AUDIENCE_REQUEST_NOTE = (". A list of segments may name them by customer segment id too; "
                         "the answer holds their ids.")

IDENTIFIER_WORDS = {"members": "member id (external id or email accepted in requests)",
                    "segments": "segment id (customer segment id accepted in requests)",
                    "offers": "offer id", "audiences": "audience id"}


def identifier(type_name: str) -> dict[str, Any]:
    """A resource identifier schema of one type."""
    return obj({"type": {"const": type_name},
                "id": {"type": "string", "pattern": NOT_BLANK,
                       "description": IDENTIFIER_WORDS.get(type_name, "")}},
               ("type", "id"))


def reported(item: dict[str, Any]) -> dict[str, Any]:
    """An item of a bulk request: described by `item`, but any other value is taken too and
    reported in its result as `invalid` (the valid items are still applied, SPEC §6)."""
    return {"anyOf": [item, ref("JsonValue")],
            "description": "An item that does not match is not refused: its result is "
                           "`invalid`, with what is wrong."}


def resource(type_name: str, attributes: str, relationships: dict[str, Any] | None = None
             ) -> dict[str, Any]:
    """A resource object schema."""
    properties: dict[str, Any] = {"type": {"const": type_name}, "id": STRING,
                                  "attributes": ref(attributes),
                                  "links": obj({"self": URI})}
    if relationships:
        properties["relationships"] = obj(relationships)
    return obj(properties, ("type", "id", "attributes"))


def changed_resource(type_name: str, attributes: dict[str, Any]) -> dict[str, Any]:
    """A request document carrying the changed attributes of one resource (id optional)."""
    document = new_resource(type_name, attributes)
    document["properties"]["data"]["properties"]["id"] = {
        "type": "string", "description": "when given, the id in the URL"}
    return document


def replaced_resource(type_name: str, attributes: dict[str, Any], required: tuple[str, ...]
                      ) -> dict[str, Any]:
    """A request document stating a whole resource (PUT): required attributes, id optional."""
    document = new_resource(type_name, attributes, required)
    document["properties"]["data"]["properties"]["id"] = {
        "type": "string", "description": "when given, the id in the URL"}
    return document


def single(resource_name: str, **extra: Any) -> dict[str, Any]:
    """A document whose primary data is one resource."""
    properties = {"data": ref(resource_name), "links": ref("Links"), "meta": META}
    properties.update(extra)
    return obj(properties, ("data",))


def collection(resource_name: str, **extra: Any) -> dict[str, Any]:
    """A document whose primary data is a list of resources."""
    properties = {"data": array(ref(resource_name)), "links": ref("Links"), "meta": META}
    properties.update(extra)
    return obj(properties, ("data",))


def new_resource(type_name: str, attributes: dict[str, Any], required: tuple[str, ...] = (),
                 relationships: dict[str, Any] | None = None) -> dict[str, Any]:
    """A request document carrying one resource object to create (no id: Beacon assigns it)."""
    # The server refuses attributes it does not know (422), so the document closes the object.
    properties: dict[str, Any] = {"type": {"const": type_name},
                                  "attributes": obj(attributes, required,
                                                    additionalProperties=False)}
    needed: tuple[str, ...] = ("type", "attributes") if required else ("type",)
    if relationships:
        properties["relationships"] = obj(relationships, tuple(relationships))
        needed = (*needed, "relationships")
    else:
        properties["relationships"] = {"type": "object"}
    properties["meta"] = {"type": "object"}
    properties["links"] = {"type": "object"}
    return document_of(obj(properties, needed, additionalProperties=False))


def document_of(data: dict[str, Any]) -> dict[str, Any]:
    """A request document: `data` and JSON:API's optional members, nothing else."""
    return obj({"data": data, "meta": {"type": "object"}, "jsonapi": {"type": "object"},
                "links": {"type": "object"}}, ("data",), additionalProperties=False)


CRITERION = obj({
    "field": {"type": "string", "minLength": 1,
              "description": "tier, email, external_id, points, xp, coins, badges, birthday, "
                             "created_at, updated_at, age, custom_fields.<key>, segment (in / "
                             "not_in a list of segment ids or customer segment ids, stored as "
                             "ids), or an activity measure: activity.count, activity.sum, "
                             "activity.min, activity.max, activity.first, activity.last "
                             "(with `activity`)"},
    "operator": {"enum": list(OPERATORS)},
    "value": {"$ref": "#/components/schemas/JsonValue",
              "description": "Depends on field and operator; none for exists/not_exists; "
              "a list for in/not_in; dates ISO 8601 or {\"days_ago\": N}"},
    "case_insensitive": BOOLEAN,
    "activity": obj({
        "type": {"type": "string", "minLength": 1, "maxLength": 100,
                 "description": "the activity type measured, e.g. purchase"},
        "window": {"type": "object", "description": '{"days": N} (today and the N-1 days '
                   'before, whole days in the program time zone) or {"from": "YYYY-MM-DD", '
                   '"to": "YYYY-MM-DD"} (both days included); none: all time. Activities '
                   'dated after now are not counted.'},
        "where": {"type": "array", "maxItems": 10, "items": {"type": "object"},
                  "description": "criteria on properties.<name>, with the custom-field "
                  "operators; every one must hold for an activity to be measured"},
    }, ("type",), additionalProperties=False, description="for an activity.* field only: "
       "which activities are measured"),
}, ("field", "operator"), additionalProperties=False)

GROUP_EXAMPLE = {"any": [
    {"all": [{"field": "tier", "operator": "equals", "value": "gold"},
             {"field": "points", "operator": ">=", "value": 1000}]},
    {"all": [{"field": "custom_fields.vip", "operator": "equals", "value": True},
             {"field": "created_at", "operator": ">=", "value": {"days_ago": 90}}]}]}


def group_schema(items: dict[str, Any], level: int) -> dict[str, Any]:
    """A group at `level` (1 = directly in include or exclude): one key, all, any or none,
    holding a non-empty list of `items`."""
    words = {"all": "holds when every item holds", "any": "holds when at least one item holds",
             "none": "holds when no item holds"}
    schema: dict[str, Any] = {
        "oneOf": [obj({mode: array(items, minItems=1, description=f"{mode}: {words[mode]}")},
                      (mode,), additionalProperties=False) for mode in ("all", "any", "none")],
        "description": f"A group at depth {level} (groups nest at most 3 deep): exactly one of "
                       "all, any or none, holding criteria"
                       + (" and groups" if level < 3 else "") + ". An empty group is refused; "
                       "the per-segment criteria limits count the criteria in every group. In "
                       "exclude, a group that holds excludes the member."}
    if level == 1:
        schema["examples"] = [GROUP_EXAMPLE]
    return schema


MEMBER_WRITE = {
    "external_id": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": NOT_BLANK},
    "email": nullable({"type": "string", "maxLength": 320, "pattern":
                       f"^(?:|\\s*[^@\\s\\u0000{PY_SPACES}]+@[^@\\s\\u0000{PY_SPACES}]+\\."
                       f"[^@\\s\\u0000{PY_SPACES}]+\\s*)$"}),
    "birthday": nullable({"type": "string", "format": "date"}),
    "tier": {"type": "string", "description": "bronze, silver, gold or platinum (configurable)"},
    "points": {"type": "integer", "minimum": 0}, "xp": {"type": "integer", "minimum": 0},
    "coins": {"type": "integer", "minimum": 0},
    "badges": array({"type": "string", "minLength": 1, "maxLength": 200,
                     "pattern": NOT_BLANK}, uniqueItems=False),
    "custom_fields": {"type": "object", "propertyNames": {"minLength": 1, "pattern": NO_NUL}},
}
SEGMENT_WRITE = {
    "name": {"type": "string", "maxLength": 200, "pattern": NOT_BLANK},
    "description": {"type": "string", "maxLength": 10_000},
    "kind": {"enum": ["static", "dynamic"]},
    "customer_segment_id": nullable({
        "type": "string", "maxLength": 255,
        "pattern": "^\\s*(?:|[0-9]*[A-Za-z._:~-][A-Za-z0-9._:~-]*)\\s*$",
        "description": "your own unique id for the segment, usable in URLs in place of the "
                       "number: letters, digits and - _ . : ~ only, not all digits"}),
    "url": nullable({"type": "string", "maxLength": 2000, "pattern":
                     "^\\s*(?:|[Hh][Tt][Tt][Pp][Ss]?://[^\\s/$.?#][^\\s]*)\\s*$"}),
    "include": array(ref("CriteriaItem"), description="criteria and groups a member must all "
                     "meet (none: everyone)"),
    "exclude": array(ref("CriteriaItem"), description="criteria and groups any of which "
                     "excludes a member"),
    # Tabs, line breaks and other white space count as spaces (runs of them become one);
    # the other control characters and commas are refused.
    "tags": array({"type": "string", "maxLength": 40, "pattern":
                   "^[^,\\u0000-\\u0008\\u000e-\\u001b\\u007f-\\u0084\\u0086-\\u009f]*$"},
                  maxItems=20,
                  description="labels for organising segments: trimmed, runs of white space "
                              "made one space, lower-cased; no commas or control characters, "
                              "at most 40 characters each and 20 per segment"),
    "owner": nullable({"type": ["string", "integer"], "maxLength": 320,
                       "description": "the email (or the user id) of the Beacon user who "
                                      "owns the segment; one that names no user is refused "
                                      "(422); null: no owner"}),
}
CATALOG_WRITE = {
    "name": {"type": "string", "maxLength": 200, "pattern": NOT_BLANK},
    "external_id": nullable({"type": "string", "maxLength": 255}),
    "category": {"type": "string", "maxLength": 100},
    "description": {"type": "string", "maxLength": 20_000},
    "publish_at": WHEN_OR_NONE, "expire_at": WHEN_OR_NONE,
    "discontinued": BOOLEAN,
}
OFFER_WRITE = {
    **CATALOG_WRITE,
    "requires_activation": {"type": "boolean", "description": "members must activate the "
                            "offer before it is eligible; each activation allows one award"},
    "must_fulfill_within_days": nullable({
        "type": "integer", "minimum": 1, "maximum": 36_600,
        "description": "an activation lapses this many days after it was made unless the "
                       "offer awarded it; null for no deadline"}),
}
REWARD_WRITE = {**CATALOG_WRITE, "points": {"type": "integer", "minimum": 0}}
LIMIT_TYPES = ["global_activation", "membership_activation", "global_award_count",
               "membership_award_count"]
LIMIT_CONFIGURATION = obj({
    "limit": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
    "window": nullable({"type": "object", "description": 'membership kinds only: {"days": N} '
                        'for a rolling window of the last N days, or {"period": "day" | "week" '
                        '| "month" | "year"} for the calendar period in the program time zone '
                        "(weeks start on Monday); absent or null counts over all time"}),
}, ("limit",), description="A limit is reached when its count (over all members for global_*, "
   "over the member for membership_*, within the window) is at least `limit`. All the limits "
   "of one offer count the same thing: activations or awards.")
WEBHOOK_WRITE = {
    "url": URI, "description": STRING, "active": BOOLEAN,
    "secret": {"type": "string", "minLength": 16, "maxLength": 128, "pattern": "^[!-~]*$",
               "description": "printable ASCII without spaces"},
    "event_filter": obj({"actions": nullable(array({"enum": ["ADD", "REMOVE"]}, minItems=1)),
                         "segments": nullable(array({"type": ["integer", "string"]},
                                                    minItems=1))},
                        additionalProperties=False),
}
ATTRIBUTE_WRITE = {
    "key": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NOT_BLANK,
            "description": "a top-level key of members' custom_fields, any characters"},
    "value_type": {"enum": list(DECLARED_TYPES), "description": "string (text), number, "
                   "boolean, date (text YYYY-MM-DD) or list (of text)"},
    "allowed_values": nullable(array({"type": ["string", "number"]}, maxItems=200,
                                     description="values allowed (for string, number and "
                                     "the elements of list); null allows any")),
    "description": {"type": "string", "maxLength": 2000},
    "example": {"type": ["string", "number", "boolean", "array", "null"],
                "items": {"type": "string"}, "maxItems": 200,
                "description": "a value of the declared type (and allowed), or null"},
}
DECISION = {
    "visible_status": {"type": "string", "description": ", ".join((
        "visible", "global_limit", "member_limit", *REFUSALS, "reward_discontinued",
        "reward_expired"))},
    "eligible": BOOLEAN,
    "reason": {"type": "string", "description": "the deciding check, e.g. eligible, "
               "insufficient_points, offer_expired, activation_required"},
    "reasons": {"type": "object", "description": "the explanation tree: kind, label, passed, "
                "actual, expected, detail, children"},
}


DECISION_OFFER = {
    "must_activate": {"type": "boolean", "description": "offers: whether the offer requires "
                      "activation"},
    "activated": {"type": ["boolean", "null"], "description": "offers: whether the member "
                  "holds a usable activation; null when the offer does not require one"},
    "fulfillment_count": {"type": "integer", "minimum": 0,
                          "description": "offers: how many times the offer awarded the member"},
}


def _schemas(tiers: tuple[str, ...]) -> dict[str, Any]:
    """Every component schema (members' tiers as configured)."""
    member_write = {**MEMBER_WRITE, "tier": {"enum": list(tiers)}}
    member_attributes = obj({
        **MEMBER_WRITE, "external_id": STRING, "tier": STRING,
        "created_at": nullable(MOMENT), "updated_at": nullable(MOMENT)},
        ("external_id", "tier", "points", "xp", "coins", "badges", "custom_fields"))
    segment_attributes = obj({
        **SEGMENT_WRITE, "name": STRING, "size": {"type": "integer", "minimum": 0},
        "estimatedSize": {"type": "integer", "minimum": 0, "description": "the Monterosa "
                          "seed's name for size: the same exact count, not an estimate"},
        "version": INTEGER, "created_at": nullable(MOMENT), "updated_at": nullable(MOMENT),
        "updated_by": nullable(STRING),
        "archived": {"type": "boolean", "description": "an archived segment is out of the "
                     "dashboard's pickers and cannot be newly used; PATCH true to archive "
                     "(refused with 409 while it is used), false to restore"},
        "archived_at": nullable(MOMENT)}, ("name", "kind", "size", "include", "exclude"))
    offer_attributes = obj({**OFFER_WRITE, "created_at": nullable(MOMENT),
                            "updated_at": nullable(MOMENT)}, ("name", "discontinued"))
    reward_attributes = obj({**REWARD_WRITE, "created_at": nullable(MOMENT),
                             "updated_at": nullable(MOMENT)}, ("name", "points", "discontinued"))
    audience_attributes = obj({
        "audience_type": {"enum": list(AUDIENCE_TYPES)},
        "configuration": {"anyOf": [ref(configuration_schema_name(kind))
                                    for kind in AUDIENCES.values()],
                          "description": configuration_doc()},
        "created_at": nullable(MOMENT)}, ("audience_type", "configuration"))
    event_attributes = obj({
        "action": {"enum": ["ADD", "REMOVE"]}, "segment_id": INTEGER, "segment_name": STRING,
        "customer_segment_id": nullable(STRING), "member_id": STRING,
        "member_external_id": nullable(STRING),
        "source": {"enum": ["static_list", "upload", "api", "override", "rule",
                            "profile_change"]},
        "cause": {"type": "object", "description": "actor and what caused the change: upload "
                  "id, override id, changed fields, the API operation"},
        "time": nullable(MOMENT)}, ("action", "segment_id", "member_id", "source", "time"))
    webhook_attributes = obj({
        **WEBHOOK_WRITE, "url": STRING, "created_at": nullable(MOMENT),
        "last_event_id": INTEGER, "deliveries": {"type": "object"},
        "secret": {"type": "string", "description": "only in the creation response"}},
        ("url", "active", "event_filter"))
    item_result = obj({
        "index": INTEGER, "id": STRING, "member_id": STRING, "external_id": nullable(STRING),
        "member": STRING,
        "result": {"enum": ["added", "already_member", "removed", "not_member",
                            "unknown_member", "invalid", "applied", "unchanged", "created",
                            "updated", "recorded", "duplicate"]},
        "status": STRING, "detail": STRING, "effect": STRING,
        "errors": array(ref("Error")), "changed": array(STRING),
        "override": nullable({"type": "object"})}, ("index",))
    activity_item = obj({"type": {"const": "activities"}, "attributes": obj({
        "member": {"type": "string", "minLength": 1, "maxLength": 320, "pattern": NOT_BLANK,
                   "description": MEMBER_REF},
        "activity_type": {"type": "string", "minLength": 1, "maxLength": 100,
                          "pattern": NOT_BLANK,
                          "description": "e.g. purchase, visit, or any name you use"},
        "occurred_at": {"type": "string", "format": "date-time"},
        "amount": nullable({"type": "number", "description": "at most 4 decimal places"}),
        "properties": nullable({"type": "object", "description": "a JSON object, at most "
                                "8,000 bytes"}),
        "external_id": {"type": "string", "minLength": 1, "maxLength": 255,
                        "pattern": NOT_BLANK,
                        "description": "your id: a repeat is recognised, not counted twice"},
    }, ("member", "activity_type", "occurred_at", "external_id"), additionalProperties=False),
        "relationships": {"type": "object"}, "meta": {"type": "object"},
        "links": {"type": "object"}}, ("type", "attributes"), additionalProperties=False)
    # The member and the reward are each named by an attribute (the short form) or by a
    # relationship: one of the two is required.
    redemption_create = new_resource("redemptions", {
        "member": {"type": ["string", "integer"], "pattern": NOT_BLANK,
                   "description": MEMBER_REF + " (or the member relationship)"},
        "reward": {"type": ["string", "integer"], "pattern": NOT_BLANK,
                   "description": "reward id or external id (or the reward relationship)"},
        "external_id": nullable({"type": "string", "minLength": 1, "maxLength": 255,
                                 "pattern": NOT_BLANK,
                                 "description": "your id for this redemption: the same id "
                                                "again returns the first one (200)"})})
    data = redemption_create["properties"]["data"]
    data["properties"]["relationships"] = obj({
        "member": obj({"data": identifier("members")}, ("data",)),
        "reward": obj({"data": identifier("rewards")}, ("data",))})
    data["allOf"] = [{"anyOf": [
        {"properties": {"attributes": {"required": [name]}}, "required": ["attributes"]},
        {"properties": {"relationships": {"required": [name]}}, "required": ["relationships"]}]}
        for name in ("member", "reward")]
    activity_rels = {"member": obj({"data": identifier("members")}),
                     "offer": obj({"data": identifier("offers")})}
    schemas = {
        "LimitAttributes": obj({"limit_type": {"enum": LIMIT_TYPES},
                                "configuration": LIMIT_CONFIGURATION,
                                "created_at": nullable(MOMENT)},
                               ("limit_type", "configuration")),
        "Limit": resource("limits", "LimitAttributes",
                          {"offer": obj({"data": identifier("offers")})}),
        "LimitDocument": single("Limit"),
        "LimitCreate": new_resource("limits", {"limit_type": {"enum": LIMIT_TYPES},
                                               "configuration": LIMIT_CONFIGURATION},
                                    ("limit_type", "configuration"),
                                    {"offer": obj({"data": identifier("offers")}, ("data",))}),
        "ActivationAttributes": obj({"activated_at": MOMENT, "expires_at": nullable(MOMENT),
                                     "fulfilled_at": nullable(MOMENT)}, ("activated_at",)),
        "Activation": obj({"type": {"const": "activations"}, "id": STRING,
                           "attributes": ref("ActivationAttributes"),
                           "relationships": obj(activity_rels)}, ("type", "id", "attributes")),
        "ActivationDocument": single("Activation", meta=obj({"decision": ref("Decision")})),
        "ActivationCreate": new_resource("activations", {}),
        "FulfillmentAttributes": obj({"external_id": nullable(STRING),
                                      "fulfilled_at": MOMENT}, ("fulfilled_at",)),
        "Fulfillment": obj({"type": {"const": "fulfillments"}, "id": STRING,
                            "attributes": ref("FulfillmentAttributes"),
                            "relationships": obj({**activity_rels, "activation": obj({
                                "data": identifier("activations")})})},
                           ("type", "id", "attributes")),
        "FulfillmentDocument": single("Fulfillment", meta=obj({"decision": ref("Decision")})),
        "FulfillmentCreate": new_resource("fulfillments", {"external_id": nullable({
            "type": "string", "minLength": 1, "maxLength": 255, "pattern": NOT_BLANK,
            "description": "your id for this award: the same id again returns the first "
                           "award (200) instead of awarding twice; null or absent for none"})}),
        "RedemptionAttributes": obj({
            "reward_name": STRING, "points": {"type": "integer", "minimum": 0},
            "status": {"enum": ["redeemed", "cancelled"]}, "external_id": nullable(STRING),
            "created_at": MOMENT, "cancelled_at": nullable(MOMENT)},
            ("points", "status", "created_at")),
        "Redemption": resource("redemptions", "RedemptionAttributes", {
            "member": obj({"data": identifier("members")}),
            "reward": obj({"data": nullable(identifier("rewards"))})}),
        "RedemptionDocument": single("Redemption", meta=obj({"decision": ref("Decision")})),
        "RedemptionCreate": redemption_create,
        "RedemptionCancel": changed_resource("redemptions", {}),
        "Decision": obj({**DECISION, **DECISION_OFFER}, ("visible_status", "eligible",
                                                         "reasons")),
        "Error": obj({
            "status": STRING, "code": STRING, "title": STRING, "detail": STRING,
            "source": obj({"pointer": STRING, "parameter": STRING}),
            "meta": META}, ("status", "title", "detail")),
        "ErrorDocument": obj({"errors": array(ref("Error"), minItems=1)}, ("errors",)),
        "Links": obj({"self": URI, "next": URI, "related": URI}),
        "Criterion": CRITERION,
        "CriteriaItem": {"anyOf": [ref("Criterion"), ref("Group")],
                         "description": "a criterion, or a group of criteria and groups"},
        "Group": group_schema({"anyOf": [ref("Criterion"), ref("GroupLevel2")]}, 1),
        "GroupLevel2": group_schema({"anyOf": [ref("Criterion"), ref("GroupLevel3")]}, 2),
        "GroupLevel3": group_schema(ref("Criterion"), 3),
        "JsonValue": JSON_VALUE,
        "MemberAttributes": member_attributes,
        "Member": resource("members", "MemberAttributes"),
        "MemberDocument": single("Member"),
        "MemberCollection": collection("Member"),
        "MemberCreate": new_resource("members", member_write, ("external_id",)),
        "MemberUpdate": changed_resource("members", member_write),
        "MemberBatch": document_of(array(reported(obj({
            "type": {"const": "members"}, "attributes": obj(member_write, ("external_id",))},
            ("type", "attributes"))), maxItems=10_000)),
        "ActivityAttributes": obj({
            "member_id": STRING, "activity_type": STRING, "occurred_at": MOMENT,
            "amount": nullable({"type": "number"}), "properties": nullable({"type": "object"}),
            "external_id": STRING, "source": {"enum": ["api", "upload", "demo"]},
            "recorded_at": MOMENT}),
        "Activity": resource("activities", "ActivityAttributes"),
        "ActivityCollection": collection("Activity"),
        "ActivityRecord": document_of({"anyOf": [activity_item, array(
            reported(activity_item), maxItems=10_000)]}),
        "ActivityResults": obj({"meta": obj({
            "results": array(ref("ItemResult")), "counts": obj({
                "recorded": INTEGER, "duplicate": INTEGER, "invalid": INTEGER}),
            "membership_changes": array(obj({
                "segment_id": INTEGER, "added": array(STRING), "removed": array(STRING)}))},
            ("results", "counts"))}, ("meta",)),
        "MemberSearch": new_resource("member-searches", {
            "include": array(ref("CriteriaItem")), "exclude": array(ref("CriteriaItem"))}),
        "MemberSearchResult": collection("Member", meta=obj({
            "count": {"type": "integer", "minimum": 0}, "next_cursor": STRING}, ("count",))),
        "ItemResult": item_result,
        "ResultsDocument": obj({"meta": obj({
            "results": array(ref("ItemResult")), "counts": {"type": "object"},
            "size": INTEGER}, ("results",))}, ("meta",)),
        "SegmentAttributes": segment_attributes,
        "Segment": resource("segments", "SegmentAttributes",
                            {"members": obj({"links": obj({"self": URI}), "meta": META})}),
        "SegmentDocument": single("Segment"),
        "JobAttributes": obj({
            "kind": {"const": "segment_rules", "description": "a rule change of a segment"},
            "status": {"enum": ["queued", "running", "done", "failed", "interrupted"],
                       "description": "interrupted: the process applying it stopped; nothing "
                       "of it was applied"},
            "to_add": {"type": "integer", "minimum": 0, "description": "members joining "
                       "(estimated when the change was asked for)"},
            "to_remove": {"type": "integer", "minimum": 0, "description": "members leaving "
                          "(estimated when the change was asked for)"},
            "total": {"type": "integer", "minimum": 0},
            "done": {"type": "integer", "minimum": 0, "description": "members moved so far"},
            "percent": {"type": "integer", "minimum": 0, "maximum": 100},
            "definition": obj({"kind": {"enum": ["static", "dynamic"]},
                               "include": array(ref("Criterion")),
                               "exclude": array(ref("Criterion"))},
                              ("kind", "include", "exclude"),
                              description="the definition being applied"),
            "base_version": {"type": "integer", "description": "the segment version the "
                             "change was based on"},
            "result": nullable(obj({"size_before": INTEGER, "size": INTEGER,
                                    "version": INTEGER})),
            "error": nullable(STRING), "created_by": nullable(STRING),
            "created_at": nullable(MOMENT), "started_at": nullable(MOMENT),
            "finished_at": nullable(MOMENT)},
            ("kind", "status", "to_add", "to_remove", "total", "done", "percent",
             "definition", "base_version")),
        "Job": resource("jobs", "JobAttributes", {"segment": obj({
            "data": identifier("segments"), "links": obj({"related": URI})})}),
        "JobDocument": single("Job"),
        "SegmentCollection": collection("Segment"),
        "SegmentCreate": new_resource("segments", SEGMENT_WRITE, ("name", "kind")),
        "SegmentUpdate": changed_resource("segments", {**SEGMENT_WRITE, "version": INTEGER,
                                                       "archived": BOOLEAN}),
        "SegmentReplace": replaced_resource("segments", {**SEGMENT_WRITE, "version": INTEGER},
                                            ("name", "kind")),
        "MemberLinkage": obj({"data": array(identifier("members")), "links": ref("Links"),
                              "meta": META}, ("data",)),
        "MemberIdentifiers": document_of(array(reported(identifier("members")),
                                               maxItems=10_000)),
        "Override": obj({
            "type": {"const": "overrides"},
            "attributes": obj(additionalProperties=False, properties={
                "member": {"type": "string", "description": "member id, external id or email"},
                "user": {"type": "string", "description": "alias of member (the Village "
                         "seed's name); give one of the two"},
                "status": {"enum": ["add", "block", "reset"]},
                "user_status": {"enum": ["add", "block", "reset"], "description": "alias of "
                                "status (the Village seed's name); give one of the two"},
                "description": STRING, "reference_id": nullable(STRING),
                "metadata": nullable({"type": "object"}),
                "status_change_timestamp": nullable({
                    "type": ["integer", "string"],
                    "description": "Unix seconds or RFC 3339; now when absent"}),
                "expires_at": nullable({"type": ["integer", "string"]})},
                oneOf=[{"required": ["status"]}, {"required": ["user_status"]}]),
            "relationships": obj({"member": obj({"data": identifier("members")}, ("data",))}),
        }, ("type", "attributes")),
        "OverrideRequest": document_of({"anyOf": [ref("Override"),
                                                  array(ref("Override"), maxItems=10_000)]}),
        "OverrideAttributes": obj({
            "member_id": STRING, "member_external_id": nullable(STRING),
            "member_email": nullable(STRING), "status": {"enum": ["add", "block"]},
            "description": STRING, "reference_id": nullable(STRING), "metadata": META,
            "status_change_timestamp": nullable(MOMENT), "expires_at": nullable(MOMENT),
            "expired": {"type": "boolean", "description": "the expiry has passed: the "
                        "override no longer applies (listed until reset or replaced)"},
            "actor": nullable(STRING), "created_at": nullable(MOMENT)},
            ("member_id", "status", "status_change_timestamp", "expired")),
        "OverrideResource": resource("overrides", "OverrideAttributes", {
            "segment": obj({"data": identifier("segments"), "links": ref("Links")}),
            "member": obj({"data": identifier("members"), "links": ref("Links")})}),
        "OverrideCollection": collection("OverrideResource"),
        # Like the other bulk routes, an item that does not match is reported as `invalid`
        # in the results, not refused; the request's own shape and meta are refused (400).
        "SegmentMembershipsRequest": obj({
            "data": array(reported(obj({
                "type": {"const": "segment-memberships"},
                "attributes": obj({
                    "segment": {"type": ["string", "integer"],
                                "description": "a static segment's id or customer segment id"},
                    "action": {"enum": ["add", "remove"]},
                    "members": array({"type": "string", "description": MEMBER_REF},
                                     minItems=1, maxItems=100)},
                    ("segment", "action", "members"), additionalProperties=False)},
                ("type", "attributes"))),
                maxItems=100, description="one item per segment, at most 100 segments and "
                "100 different members per request (413 beyond)"),
            "meta": obj({"create_unknown_members": {
                "type": "boolean", "description": "create a member from an identity no member "
                "has (external id, and email when it is one) before adding it; false by "
                "default"}}, additionalProperties=False),
            "jsonapi": {"type": "object"}, "links": {"type": "object"}},
            ("data",), additionalProperties=False),
        "SegmentMembershipResult": obj({
            "index": {"type": "integer", "description": "the item of `data`"},
            "position": {"type": "integer", "description": "the member within the item"},
            "segment": {"type": "string", "description": "the segment as the item named it"},
            "segment_id": STRING, "id": {"type": "string", "description": "the identity given"},
            "member_id": STRING, "member_created": BOOLEAN,
            "result": {"enum": ["added", "already_member", "removed", "not_member",
                                "unknown_member", "invalid"]},
            "detail": STRING, "errors": array(ref("Error"))}, ("index", "result")),
        "SegmentMembershipsResults": obj({"meta": obj({
            "results": array(ref("SegmentMembershipResult")), "counts": {"type": "object"},
            "members_created": INTEGER,
            "segments": array(obj({"id": STRING, "customer_segment_id": nullable(STRING),
                                   "name": STRING, "size": INTEGER}, ("id", "size")))},
            ("results", "counts", "segments"))}, ("meta",)),
        "OfferAttributes": offer_attributes,
        "Offer": resource("offers", "OfferAttributes",
                          {"audiences": obj({"data": array(identifier("audiences"))}),
                           "limits": obj({"data": array(identifier("limits"))})}),
        "OfferDocument": single("Offer", included=array(
            {"anyOf": [ref("Audience"), ref("Limit")]})),
        "OfferCollection": collection("Offer", included=array(
            {"anyOf": [ref("Audience"), ref("Limit")]})),
        "OfferCreate": new_resource("offers", OFFER_WRITE, ("name",)),
        "OfferUpdate": changed_resource("offers", OFFER_WRITE),
        **{configuration_schema_name(kind): configuration_schema(kind)
           for kind in AUDIENCES.values()},
        "AudienceAttributes": audience_attributes,
        "Audience": resource("audiences", "AudienceAttributes",
                             {"offer": obj({"data": identifier("offers")})}),
        "AudienceDocument": single("Audience"),
        "AudienceCreate": new_resource(
            "audiences", {"audience_type": {"enum": list(AUDIENCE_TYPES)},
                          "configuration": {"type": "object", "description":
                                            configuration_doc() + AUDIENCE_REQUEST_NOTE}},
            ("audience_type", "configuration"),
            {"offer": obj({"data": identifier("offers")}, ("data",))}),
        "RewardAttributes": reward_attributes,
        "Reward": resource("rewards", "RewardAttributes",
                           {"required_segments": obj({"data": array(identifier("segments"))})}),
        "RewardDocument": single("Reward"),
        "RewardCollection": collection("Reward"),
        "RewardCreate": new_resource("rewards", REWARD_WRITE, ("name",)),
        "RewardUpdate": changed_resource("rewards", REWARD_WRITE),
        "SegmentLinkage": obj({"data": array(identifier("segments")), "links": ref("Links")},
                              ("data",)),
        "SegmentIdentifiers": document_of(array(identifier("segments"), maxItems=1000)),
        "DecoratedOffer": obj({"type": {"const": "offers"}, "id": STRING,
                               "attributes": obj({**OFFER_WRITE, **DECISION,
                                                  **DECISION_OFFER},
                                                 ("visible_status", "eligible", "reasons"))},
                              ("type", "id", "attributes")),
        "DecoratedOfferCollection": collection("DecoratedOffer"),
        "DecoratedOfferDocument": single("DecoratedOffer"),
        "DecoratedReward": obj({"type": {"const": "rewards"}, "id": STRING,
                                "attributes": obj({**REWARD_WRITE, **DECISION},
                                                  ("visible_status", "eligible", "reasons"))},
                               ("type", "id", "attributes")),
        "DecoratedRewardCollection": collection("DecoratedReward"),
        "DecoratedRewardDocument": single("DecoratedReward"),
        "EventAttributes": event_attributes,
        "Event": resource("membership-events", "EventAttributes", {
            "segment": obj({"data": identifier("segments")}),
            "member": obj({"data": identifier("members")})}),
        "EventCollection": collection("Event", meta=obj({"cursor": STRING, "more": BOOLEAN},
                                                        ("cursor", "more"))),
        "WebhookAttributes": webhook_attributes,
        "Webhook": resource("webhooks", "WebhookAttributes"),
        "WebhookDocument": single("Webhook"),
        "WebhookCollection": collection("Webhook"),
        "WebhookCreate": new_resource("webhooks", WEBHOOK_WRITE, ("url",)),
        "WebhookUpdate": changed_resource("webhooks", WEBHOOK_WRITE),
        "AttributeAttributes": obj({
            "key": STRING, "value_type": {"enum": list(DECLARED_TYPES)},
            "allowed_values": nullable(array({"type": ["string", "number"]})),
            "description": STRING,
            "example": {"description": "a typical value of the declared type (or null)"},
            "created_at": MOMENT, "updated_at": MOMENT, "updated_by": nullable(STRING),
            "members_with_value": {"type": "integer", "description": "one field's resource "
                                   "only: members whose custom field has a value (not null)"},
            "disagreeing": {"type": "integer", "description": "one field's resource only: "
                            "of those, values that do not fit the declaration"}},
            ("key", "value_type", "allowed_values", "description", "example")),
        "Attribute": resource("attributes", "AttributeAttributes"),
        "AttributeDocument": single("Attribute"),
        "AttributeCollection": collection("Attribute"),
        "AttributeCreate": new_resource("attributes", ATTRIBUTE_WRITE, ("key", "value_type")),
        "AttributeUpdate": changed_resource("attributes", ATTRIBUTE_WRITE),
        "TokenAttributes": obj({
            "name": STRING, "role": {"enum": ["admin", "marketer", "support"]},
            "prefix": STRING, "created_at": nullable(MOMENT), "last_used_at": nullable(MOMENT),
            "revoked_at": nullable(MOMENT), "created_by": nullable(STRING),
            "token": {"type": "string", "description": "the value, only in the creation "
                      "response: store it now"}}, ("name", "role")),
        "Token": obj({"type": {"const": "tokens"}, "id": STRING,
                      "attributes": ref("TokenAttributes")}, ("type", "id", "attributes")),
        "TokenDocument": single("Token"),
        "TokenCollection": collection("Token"),
        "TokenCreate": new_resource("tokens", {
            "name": {"type": "string", "maxLength": 120, "pattern": NOT_BLANK},
            "role": {"enum": ["admin", "marketer", "support"]}}, ("name", "role")),
    }
    # Request bodies (and the criteria they carry) with the server's limits on every value.
    for name in {op.body for op in OPERATIONS if op.body} | {"Criterion", "Override"}:
        schemas[name] = strict(schemas[name])
    return schemas


def query(name: str, description: str, schema: dict[str, Any] | None = None,
          max_length: int = 1000) -> dict[str, Any]:
    """A query parameter (text: at most `max_length` characters, as the server checks)."""
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": strict(schema or {"type": "string", "maxLength": max_length})}


def strict(schema: Any) -> Any:
    """A request schema with the limits the server applies to every value it reads.

    Strings get the no-NUL pattern (unless they have a pattern, format, enum or const), whole
    numbers the 64-bit range, and objects that do not close themselves take only such values
    (JsonValue), since the server refuses NUL characters and numbers beyond 64 bits anywhere in
    a request. Shared schema parts are copied, never changed in place.
    """
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict) or "$ref" in schema:
        return schema
    out = {key: strict(value) if key in ("items", "not", "propertyNames") else value
           for key, value in schema.items()}
    for key in ("anyOf", "oneOf", "allOf"):
        if key in out:
            out[key] = [strict(item) for item in out[key]]
    if isinstance(out.get("properties"), dict):
        out["properties"] = {name: strict(sub) for name, sub in out["properties"].items()}
    kinds = out.get("type")
    kinds = set(kinds) if isinstance(kinds, list) else {kinds}
    if "string" in kinds and not {"pattern", "format", "enum", "const"} & set(out):
        out["pattern"] = NO_NUL
    if kinds & {"integer", "number"}:
        out.setdefault("minimum", INT64["minimum"])
        out.setdefault("maximum", INT64["maximum"])
    if "object" in kinds and out.get("additionalProperties") is not False:
        out["additionalProperties"] = ref("JsonValue")
        out.setdefault("propertyNames", {"minLength": 1, "pattern": NO_NUL})
    return copy.deepcopy(out)


PAGE = [query("page[size]", f"items per page, default {DEFAULT_SIZE}, at most {MAX_SIZE}",
              {"type": "integer", "minimum": 1, "maximum": MAX_SIZE}),
        query("page[cursor]", "the cursor from the `next` link of the previous page")]


@dataclass
class Operation:
    """One route of the API as the document describes it."""

    method: str
    path: str
    endpoint: str
    tag: str
    ok: int
    response: str | None
    body: str | None = None
    params: list[dict[str, Any]] = field(default_factory=list)
    example: dict[str, Any] | None = None
    also: tuple[int, ...] = ()     # other success statuses (an idempotent replay's 200)
    accepted: str | None = None    # 202 with this document: the change runs as a job
    body_required: bool = True


MEMBER_REF = "member id, external id or email"
AS_OF = query("as_of", "a past moment (RFC 3339 with Z or an offset, e.g. "
              "2026-12-01T14:00:00Z): the decisions and reasons exactly as they were then, "
              "marked with the moment in meta.as_of; a moment before the history begins, "
              "beyond retention or in the future is refused (400)",
              {"type": "string", "format": "date-time", "maxLength": 64})
SEGMENT_REF = "segment id or customer segment id"

OPERATIONS: tuple[Operation, ...] = (
    Operation("get", "/members", "member_list", "Members", 200, "MemberCollection", params=[
        query("filter[email]", "exact email (case-insensitive)"),
        query("filter[external_id]", "exact external id"), *PAGE]),
    Operation("post", "/members", "member_create", "Members", 201, "MemberDocument",
              "MemberCreate", example={"data": {"type": "members", "attributes": {
                  "external_id": "U-1001", "email": "ana@example.com", "birthday": "1994-03-02",
                  "tier": "gold", "points": 1200, "badges": ["early_adopter"],
                  "custom_fields": {"city": "Lisbon"}}}}),
    Operation("get", "/members/{member_ref}", "member_get", "Members", 200, "MemberDocument"),
    Operation("patch", "/members/{member_ref}", "member_update", "Members", 200,
              "MemberDocument", "MemberUpdate", example={"data": {
                  "type": "members", "attributes": {"points": 1500, "tier": "platinum"}}}),
    Operation("delete", "/members/{member_ref}", "member_delete", "Members", 204, None),
    Operation("post", "/members/batch", "member_batch", "Members", 200, "ResultsDocument",
              "MemberBatch", example={"data": [
                  {"type": "members", "attributes": {"external_id": "U-1", "points": 10}},
                  {"type": "members", "attributes": {"external_id": "U-2", "tier": "silver"}}]}),
    Operation("post", "/members/search", "member_search", "Members", 200,
              "MemberSearchResult", "MemberSearch", params=list(PAGE), example={"data": {
                  "type": "member-searches", "attributes": {
                      "include": [{"field": "tier", "operator": "in",
                                   "value": ["gold", "platinum"]},
                                  {"field": "points", "operator": ">=", "value": 1000}],
                      "exclude": [{"field": "badges", "operator": "contains",
                                   "value": "banned"}]}}}),
    Operation("get", "/members/{member_ref}/offers", "member_offers", "Visibility", 200,
              "DecoratedOfferCollection", params=[AS_OF]),
    Operation("get", "/members/{member_ref}/rewards", "member_rewards", "Visibility", 200,
              "DecoratedRewardCollection", params=[AS_OF]),
    Operation("get", "/members/{member_ref}/offers/{offer_id}", "member_offer", "Visibility",
              200, "DecoratedOfferDocument", params=[AS_OF]),
    Operation("get", "/members/{member_ref}/rewards/{reward_id}", "member_reward",
              "Visibility", 200, "DecoratedRewardDocument", params=[AS_OF]),
    Operation("get", "/segments", "segment_list", "Segments", 200, "SegmentCollection", params=[
        query("filter[kind]", "static or dynamic", {"enum": ["static", "dynamic"]}),
        query("filter[customer_segment_id]", "exact customer segment id"),
        query("filter[tag]", "segments carrying this tag (compared lower-cased)"),
        query("filter[owner]", "segments owned by the user with this email"),
        query("filter[archived]", "true: only archived segments; false: only segments in use "
              "(left out: every segment)", {"enum": ["true", "false"]}), *PAGE,
        query("type", "alias of `filter[kind]` (the Monterosa seed's name); give one of the "
              "two: with both the answer is 400", {"enum": ["static", "dynamic"]}),
        query("limit", "alias of `page[size]` (the Monterosa seed's name); give one of the "
              "two: with both the answer is 400",
              {"type": "integer", "minimum": 1, "maximum": MAX_SIZE})]),
    Operation("post", "/segments", "segment_create", "Segments", 201, "SegmentDocument",
              "SegmentCreate", example={"data": {"type": "segments", "attributes": {
                  "name": "Engaged VIPs", "kind": "dynamic", "customer_segment_id": "SEG-42",
                  "include": [GROUP_EXAMPLE],
                  "exclude": [{"field": "custom_fields.test_account", "operator": "equals",
                               "value": True}]}}}),
    Operation("get", "/segments/{segment_ref}", "segment_get", "Segments", 200,
              "SegmentDocument"),
    Operation("patch", "/segments/{segment_ref}", "segment_update", "Segments", 200,
              "SegmentDocument", "SegmentUpdate", accepted="JobDocument", example={"data": {
                  "type": "segments", "attributes": {"description": "Gold and up",
                                                     "version": 1}}}),
    Operation("put", "/segments/{segment_ref}", "segment_replace", "Segments", 200,
              "SegmentDocument", "SegmentReplace", accepted="JobDocument", example={"data": {
                  "type": "segments", "attributes": {
                      "name": "Engaged VIPs", "kind": "dynamic",
                      "description": "Gold or platinum with 1,000+ points",
                      "include": [{"field": "tier", "operator": "in",
                                   "value": ["gold", "platinum"]},
                                  {"field": "points", "operator": ">=", "value": 1000}],
                      "exclude": [{"field": "customFields.test_account",
                                   "operator": "equals", "value": True}]}}}),
    Operation("delete", "/segments/{segment_ref}", "segment_delete", "Segments", 204, None),
    Operation("get", "/jobs/{job_id}", "job_get", "Jobs", 200, "JobDocument"),
    Operation("get", "/segments/{segment_ref}/relationships/members", "segment_members",
              "Segment members", 200, "MemberLinkage", params=list(PAGE)),
    Operation("get", "/segments/{segment_ref}/members.csv", "segment_members_csv",
              "Segment members", 200, "text/csv"),
    Operation("post", "/segments/{segment_ref}/relationships/members", "segment_members_add",
              "Segment members", 200, "ResultsDocument", "MemberIdentifiers", example={"data": [
                  {"type": "members", "id": "U-1001"},
                  {"type": "members", "id": "ana@example.com"}]}),
    Operation("delete", "/segments/{segment_ref}/relationships/members",
              "segment_members_remove", "Segment members", 200, "ResultsDocument",
              "MemberIdentifiers", example={"data": [{"type": "members", "id": "U-1001"}]}),
    Operation("get", "/segments/{segment_ref}/overrides", "segment_override_list",
              "Overrides", 200, "OverrideCollection", params=[
                  query("filter[member]", MEMBER_REF),
                  query("filter[status]", "add or block", {"enum": ["add", "block"]}),
                  query("filter[expired]", "true: only overrides whose expiry has passed; "
                        "false: only those that still apply", {"enum": ["true", "false"]}),
                  *PAGE]),
    Operation("post", "/segments/{segment_ref}/overrides", "segment_overrides", "Overrides",
              200, "ResultsDocument", "OverrideRequest", example={"data": [
                  {"type": "overrides", "attributes": {
                      "member": "U-1001", "status": "add", "reference_id": "TICKET-7",
                      "description": "VIP by contract", "metadata": {"agent": "sam"},
                      "status_change_timestamp": 1763800000}},
                  {"type": "overrides", "attributes": {
                      "user": "bob@example.com", "user_status": "block",
                      "description": "Developer test account"}}]}),
    Operation("post", "/segment-memberships", "segment_memberships", "Segment members", 200,
              "SegmentMembershipsResults", "SegmentMembershipsRequest", example={
                  "data": [
                      {"type": "segment-memberships", "attributes": {
                          "segment": "SEG12345", "action": "add",
                          "members": ["U-1001", "ana@example.com", "new-user-77"]}},
                      {"type": "segment-memberships", "attributes": {
                          "segment": 12, "action": "remove", "members": ["U-1001"]}}],
                  "meta": {"create_unknown_members": True}}),
    Operation("get", "/offers", "offer_list", "Offers", 200, "OfferCollection",
              params=list(PAGE)),
    Operation("post", "/offers", "offer_create", "Offers", 201, "OfferDocument", "OfferCreate",
              example={"data": {"type": "offers", "attributes": {
                  "name": "Double points weekend", "category": "points",
                  "publish_at": "2026-12-01T00:00:00Z"}}}),
    Operation("get", "/offers/{offer_id}", "offer_get", "Offers", 200, "OfferDocument"),
    Operation("patch", "/offers/{offer_id}", "offer_update", "Offers", 200, "OfferDocument",
              "OfferUpdate", example={"data": {"type": "offers",
                                               "attributes": {"discontinued": True}}}),
    Operation("delete", "/offers/{offer_id}", "offer_delete", "Offers", 204, None),
    Operation("post", "/audiences", "audience_create", "Offers", 201, "AudienceDocument",
              "AudienceCreate", example={"data": {
                  "type": "audiences",
                  "attributes": {"audience_type": "in_all_segments",
                                 "configuration": {"segments": [12, "SEG-42"]}},
                  "relationships": {"offer": {"data": {"type": "offers", "id": "7"}}}}}),
    Operation("delete", "/audiences/{audience_id}", "audience_delete", "Offers", 204, None),
    Operation("post", "/limits", "limit_create", "Offers", 201, "LimitDocument", "LimitCreate",
              example={"data": {
                  "type": "limits",
                  "attributes": {"limit_type": "membership_award_count",
                                 "configuration": {"limit": 3,
                                                   "window": {"period": "month"}}},
                  "relationships": {"offer": {"data": {"type": "offers", "id": "7"}}}}}),
    Operation("get", "/limits/{limit_id}", "limit_get", "Offers", 200, "LimitDocument"),
    Operation("delete", "/limits/{limit_id}", "limit_delete", "Offers", 204, None),
    Operation("post", "/members/{member_ref}/offers/{offer_id}/activation", "offer_activate",
              "Activity", 201, "ActivationDocument", "ActivationCreate", body_required=False,
              example={"data": {"type": "activations"}}),
    Operation("post", "/members/{member_ref}/offers/{offer_id}/fulfillments", "offer_fulfill",
              "Activity", 201, "FulfillmentDocument", "FulfillmentCreate", also=(200,),
              body_required=False, example={"data": {"type": "fulfillments", "attributes": {
                  "external_id": "order-88412"}}}),
    Operation("post", "/redemptions", "redemption_create", "Activity", 201,
              "RedemptionDocument", "RedemptionCreate", also=(200,), example={"data": {
                  "type": "redemptions", "attributes": {"external_id": "pos-5531"},
                  "relationships": {"member": {"data": {"type": "members", "id": "U-1001"}},
                                    "reward": {"data": {"type": "rewards", "id": "3"}}}}}),
    Operation("get", "/redemptions/{redemption_id}", "redemption_get", "Activity", 200,
              "RedemptionDocument"),
    Operation("patch", "/redemptions/{redemption_id}/cancel", "redemption_cancel", "Activity",
              200, "RedemptionDocument", "RedemptionCancel", body_required=False,
              example={"data": {"type": "redemptions", "id": "12"}}),
    Operation("get", "/rewards", "reward_list", "Rewards", 200, "RewardCollection",
              params=list(PAGE)),
    Operation("post", "/rewards", "reward_create", "Rewards", 201, "RewardDocument",
              "RewardCreate", example={"data": {"type": "rewards", "attributes": {
                  "name": "Free coffee", "points": 300, "category": "food"}}}),
    Operation("get", "/rewards/{reward_id}", "reward_get", "Rewards", 200, "RewardDocument"),
    Operation("patch", "/rewards/{reward_id}", "reward_update", "Rewards", 200,
              "RewardDocument", "RewardUpdate",
              example={"data": {"type": "rewards", "attributes": {"points": 250}}}),
    Operation("delete", "/rewards/{reward_id}", "reward_delete", "Rewards", 204, None),
    Operation("get", "/rewards/{reward_id}/relationships/required_segments",
              "reward_required_segments", "Rewards", 200, "SegmentLinkage"),
    Operation("post", "/rewards/{reward_id}/relationships/required_segments",
              "reward_required_segments_add", "Rewards", 200, "SegmentLinkage",
              "SegmentIdentifiers", example={"data": [{"type": "segments", "id": "12"}]}),
    Operation("patch", "/rewards/{reward_id}/relationships/required_segments",
              "reward_required_segments_replace", "Rewards", 200, "SegmentLinkage",
              "SegmentIdentifiers", example={"data": [{"type": "segments", "id": "SEG-42"}]}),
    Operation("delete", "/rewards/{reward_id}/relationships/required_segments",
              "reward_required_segments_remove", "Rewards", 200, "SegmentLinkage",
              "SegmentIdentifiers", example={"data": [{"type": "segments", "id": "12"}]}),
    Operation("get", "/events", "event_list", "Events", 200, "EventCollection", params=[
        query("filter[segment]", SEGMENT_REF),
        query("filter[member]", MEMBER_REF),
        query("filter[action]", "ADD or REMOVE", {"enum": ["ADD", "REMOVE"]}),
        query("filter[source]", "static_list, upload, api, override, rule or profile_change",
              {"enum": ["static_list", "upload", "api", "override", "rule", "profile_change"]}),
        query("filter[after]", "start after this event id", {"type": "string",
                                                               "pattern": "^[0-9]{1,18}$"}),
        query("filter[since]", "only events at or after this RFC 3339 time", WHEN), *PAGE]),
    Operation("get", "/webhooks", "webhook_list", "Webhooks", 200, "WebhookCollection"),
    Operation("post", "/webhooks", "webhook_create", "Webhooks", 201, "WebhookDocument",
              "WebhookCreate", example={"data": {"type": "webhooks", "attributes": {
                  "url": "https://crm.example.com/beacon-events",
                  "event_filter": {"actions": ["ADD", "REMOVE"], "segments": ["SEG-42"]}}}}),
    Operation("get", "/webhooks/{webhook_id}", "webhook_get", "Webhooks", 200,
              "WebhookDocument"),
    Operation("patch", "/webhooks/{webhook_id}", "webhook_update", "Webhooks", 200,
              "WebhookDocument", "WebhookUpdate",
              example={"data": {"type": "webhooks", "attributes": {"active": False}}}),
    Operation("delete", "/webhooks/{webhook_id}", "webhook_delete", "Webhooks", 204, None),
    Operation("get", "/attributes", "attribute_list", "Member fields", 200,
              "AttributeCollection"),
    Operation("post", "/attributes", "attribute_create", "Member fields", 201,
              "AttributeDocument", "AttributeCreate", example={"data": {
                  "type": "attributes", "attributes": {
                      "key": "Customer Type", "value_type": "string",
                      "allowed_values": ["retail", "business"],
                      "description": "Retail or business customer", "example": "retail"}}}),
    Operation("get", "/attributes/{attribute_ref}", "attribute_get", "Member fields", 200,
              "AttributeDocument"),
    Operation("patch", "/attributes/{attribute_ref}", "attribute_update", "Member fields", 200,
              "AttributeDocument", "AttributeUpdate", example={"data": {
                  "type": "attributes", "attributes": {
                      "allowed_values": ["retail", "business", "partner"]}}}),
    Operation("delete", "/attributes/{attribute_ref}", "attribute_delete", "Member fields",
              204, None),
    Operation("post", "/activities", "activities_record", "Activities", 200, "ActivityResults",
              "ActivityRecord", example={"data": [{"type": "activities", "attributes": {
                  "member": "U-1", "activity_type": "purchase",
                  "occurred_at": "2026-12-01T14:00:00Z", "amount": 4.5,
                  "properties": {"item": "coffee", "store": "Lisbon"},
                  "external_id": "order-1001"}}]}),
    Operation("get", "/members/{member_ref}/activities", "member_activities", "Activities",
              200, "ActivityCollection", params=[
                  query("filter[activity_type]", "only activities of this type"), *PAGE]),
    Operation("get", "/tokens", "token_list", "Tokens", 200, "TokenCollection"),
    Operation("post", "/tokens", "token_create", "Tokens", 201, "TokenDocument", "TokenCreate",
              example={"data": {"type": "tokens", "attributes": {"name": "crm-sync",
                                                                 "role": "marketer"}}}),
    Operation("delete", "/tokens/{token_id}", "token_revoke", "Tokens", 204, None),
    Operation("get", "/openapi.json", "openapi_document", "Reference", 200, None),
    Operation("get", "/docs", "docs", "Reference", 200, None),
)

PATH_PARAMETERS = {
    "member_ref": MEMBER_REF, "segment_ref": SEGMENT_REF,
    "offer_id": "offer id or external id", "reward_id": "reward id or external id",
    "audience_id": "audience id", "webhook_id": "webhook id", "token_id": "token id",
    "limit_id": "limit id", "redemption_id": "redemption id", "job_id": "job id",
    "attribute_ref": "declared field's id or key",
}
#: /members/batch and /members/search are routes of their own (POST only): GET, PATCH or DELETE
#: there is a 405, not a member lookup.
PATH_SCHEMAS = {"member_ref": {"type": "string", "minLength": 1,
                               "not": {"enum": ["batch", "search"]}}}
ERROR_TEXT = {
    "400": "Malformed request: bad JSON, a bad document shape or an unknown query parameter "
           "(source.pointer or source.parameter names it)",
    "401": "No valid API token", "403": "The token's role may not use this route",
    "404": "No such resource (in the path, or a related resource the body names)",
    "409": "Conflict: type or id mismatch, a taken unique value, a segment in use, a version "
           "conflict, or the wrong kind of segment",
    "405": "The path is /members/batch or /members/search, which only take POST",
    "413": "Too many items or too large a body", "415": f"The body is not {MEDIA}",
    "422": "Invalid attributes: each error's source.pointer names the attribute or criterion",
    "429": "Rate limit exceeded (see Retry-After)",
    "503": "The database is busy; retry after Retry-After",
}


def _error_codes(op: Operation) -> list[str]:
    codes = ["401", "403", "429", "503"]
    if op.method == "get":
        codes.append("400")
    if "{" in op.path:
        codes.append("404")
    if op.path == "/members/{member_ref}":
        codes.append("405")
    if op.body:
        codes += ["400", "404", "409", "413", "415", "422"]
    elif op.method == "delete":
        codes.append("409")
    return sorted(set(codes))


def _links(created: Operation) -> dict[str, Any]:
    """OpenAPI links from a create to the operations on the new resource (its `data.id`)."""
    base = created.path + "/{"
    links = {}
    for op in OPERATIONS:
        if op.path.startswith(base) and op.path.endswith("}") and op.path.count("{") == 1:
            name = op.path[len(base):-1]
            links[op.endpoint] = {"operationId": op.endpoint,
                                  "parameters": {name: "$response.body#/data/id"}}
    return links


def _operation(op: Operation, view: Any) -> dict[str, Any]:
    doc = (view.__doc__ or "").strip() if view else ""
    level = getattr(view, "access_level", "read")
    operation: dict[str, Any] = {
        "operationId": op.endpoint, "tags": [op.tag],
        "summary": doc.splitlines()[0] if doc else op.endpoint,
        "description": f"{doc}\n\nAccess: {LEVEL_WORDS[level]}.",
        "x-access": level,
    }
    parameters = [{"name": name, "in": "path", "required": True,
                   "description": PATH_PARAMETERS[name],
                   "schema": PATH_SCHEMAS.get(name, {"type": "string", "minLength": 1})}
                  for name in PATH_PARAMETERS if "{" + name + "}" in op.path]
    operation["parameters"] = parameters + op.params
    if level == "public" or op.endpoint == "docs":
        operation["security"] = [] if level == "public" else [{"bearerAuth": []},
                                                              {"sessionCookie": []}]
    if op.body:
        body: dict[str, Any] = {"schema": ref(op.body)}
        if op.example:
            body["example"] = op.example
        operation["requestBody"] = {"required": op.body_required, "content": {MEDIA: body}}
    responses: dict[str, Any] = {}
    if op.endpoint == "openapi_document":
        responses["200"] = {"description": "This document",
                            "content": {"application/json": {"schema": {"type": "object"}}}}
    elif op.endpoint == "docs":
        responses["200"] = {"description": "The API reference page (HTML)",
                            "content": {"text/html": {"schema": STRING}}}
    elif op.response == "text/csv":
        responses[str(op.ok)] = {
            "description": "CSV with a header row: member_id, external_id, email, why "
                           "(list, rule or override); streamed, so any size downloads",
            "content": {"text/csv": {"schema": STRING,
                                     "example": "member_id,external_id,email,why\r\n"
                                                "0b8f…,U-1001,ana@example.com,rule\r\n"}}}
    elif op.response is None:
        responses[str(op.ok)] = {"description": "Done; no content"}
    else:
        responses[str(op.ok)] = {"description": "OK",
                                 "content": {MEDIA: {"schema": ref(op.response)}}}
        for code in op.also:
            responses[str(code)] = {"description": "The same request again: the first "
                                    "result, unchanged",
                                    "content": {MEDIA: {"schema": ref(op.response)}}}
        if op.method == "post" and op.ok == 201:
            responses["201"]["links"] = _links(op)
        if op.accepted:
            responses["202"] = {
                "description": "Accepted: the new rules move more members than "
                               "SEGMENT_JOB_THRESHOLD, so they are applied by a background "
                               "job; until it is done the segment keeps its previous "
                               "definition and members. Follow the job at Location",
                "headers": {"Location": {"description": "the job (GET /jobs/{job_id})",
                                         "schema": URI}},
                "content": {MEDIA: {"schema": ref(op.accepted)}},
                "links": {"job_get": {"operationId": "job_get",
                                      "parameters": {"job_id": "$response.body#/data/id"}}}}
    if op.endpoint not in ("openapi_document", "docs"):
        for code in _error_codes(op):
            response: dict[str, Any] = {"description": ERROR_TEXT[code],
                                        "content": {MEDIA: {"schema": ref("ErrorDocument")}}}
            if code in ("429", "503"):
                response["headers"] = {"Retry-After": {
                    "description": "seconds to wait", "schema": {"type": "string"}}}
            responses[code] = response
    operation["responses"] = responses
    return operation


@lru_cache(maxsize=8)
def _build(server: str, rate_limit: str, batch: int, tiers: tuple[str, ...]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    views = current_app.view_functions
    for op in OPERATIONS:
        view = views.get(f"api.{op.endpoint}")
        paths.setdefault(op.path, {})[op.method] = _operation(op, view)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE, "version": VERSION,
            "description": (
                "Beacon's JSON:API for other systems: members, segments and their members, "
                "overrides, offers, audiences, limits, rewards, decorated visibility, "
                "activations, fulfillments and redemptions, the membership "
                f"event feed and webhooks. Send `Content-Type: {MEDIA}` with every body and "
                "`Authorization: Bearer <token>` with every request (admins create tokens in "
                "the dashboard, or `flask tokens create NAME --role ROLE`). Wherever a member "
                "is named, its id, external id or email is accepted; wherever a segment is "
                "named, its id or customer segment id. Lists are cursor-paginated: follow "
                f"`links.next`; `page[size]` is {DEFAULT_SIZE} by default, at most "
                f"{MAX_SIZE}. Bulk requests take up to {batch:,} items and report a result "
                f"per item. Each token may make {rate_limit}; beyond that the answer is 429 "
                "with Retry-After. Errors are JSON:API error objects whose `source.pointer` "
                "(into your request document) or `source.parameter` names what is wrong. "
                "Clients written for Hatch, CleverTap, Village or Monterosa: the API reference "
                "page maps each of their requests to Beacon's."),
        },
        "servers": [{"url": server}],
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "security": [{"bearerAuth": []}],
        "tags": [{"name": name} for name in dict.fromkeys(op.tag for op in OPERATIONS)],
        "paths": paths,
        "components": {
            "schemas": _schemas(tiers),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "An API token created by an admin"},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "session",
                                  "description": "A signed-in dashboard user"},
            },
        },
    }


def document(server: str = "/api/v1") -> dict[str, Any]:
    """The OpenAPI document (cached per server URL and limits)."""
    config = current_app.config
    tiers = tuple(config.get("TIERS") or TIERS)
    return _build(server, str(config.get("API_RATE_LIMIT", "1200 per minute")),
                  int(config.get("LIMIT_BATCH", 10_000)), tiers)


@bp.route("/openapi.json", methods=["GET"])
@access("public")
def openapi_document():
    """The OpenAPI 3.1 document describing every route of this API."""
    response = respond(document())
    response.mimetype = "application/json"
    return response
