"""The OpenAPI 3.1 document of /api/v1, built from one table of operations.

Each operation names its view endpoint, so the summary and description come from the view's
docstring and a test checks that every API route is described. Request and response bodies
are JSON Schema (2020-12) under `components.schemas`; every error response is the JSON:API
error document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from flask import current_app

from webapp.access import access
from webapp.api import bp
from webapp.api.jsonapi import respond
from webapp.api.pagination import DEFAULT_SIZE, MAX_SIZE
from webapp.targeting.schema import OPERATORS

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
META = {"type": "object", "additionalProperties": True}
ANY: dict[str, Any] = {}


def obj(properties: dict[str, Any], required: tuple[str, ...] = (), **extra: Any
        ) -> dict[str, Any]:
    """An object schema."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    schema.update(extra)
    return schema


def array(items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An array schema."""
    return {"type": "array", "items": items, **extra}


IDENTIFIER_WORDS = {"members": "member id (external id or email accepted in requests)",
                    "segments": "segment id (customer segment id accepted in requests)",
                    "offers": "offer id", "audiences": "audience id"}


def identifier(type_name: str) -> dict[str, Any]:
    """A resource identifier schema of one type."""
    return obj({"type": {"const": type_name},
                "id": {"type": "string", "description": IDENTIFIER_WORDS.get(type_name, "")}},
               ("type", "id"))


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
    properties: dict[str, Any] = {"type": {"const": type_name},
                                  "attributes": obj(attributes, required)}
    needed: tuple[str, ...] = ("type", "attributes") if required else ("type",)
    if relationships:
        properties["relationships"] = obj(relationships, tuple(relationships))
        needed = (*needed, "relationships")
    return obj({"data": obj(properties, needed)}, ("data",))


CRITERION = obj({
    "field": {"type": "string", "description": "tier, email, external_id, points, xp, coins, "
              "badges, birthday, created_at, updated_at, age, custom_fields.<key>, segment"},
    "operator": {"enum": list(OPERATORS)},
    "value": {"description": "Depends on field and operator; none for exists/not_exists; "
              "a list for in/not_in; dates ISO 8601 or {\"days_ago\": N}"},
    "case_insensitive": BOOLEAN,
}, ("field", "operator"))

MEMBER_WRITE = {
    "external_id": {"type": "string", "minLength": 1, "maxLength": 255},
    "email": nullable({"type": "string", "maxLength": 320}),
    "birthday": nullable({"type": "string", "format": "date"}),
    "tier": {"type": "string", "description": "bronze, silver, gold or platinum (configurable)"},
    "points": INTEGER, "xp": INTEGER, "coins": INTEGER,
    "badges": array(STRING),
    "custom_fields": {"type": "object"},
}
SEGMENT_WRITE = {
    "name": {"type": "string", "maxLength": 200},
    "description": STRING,
    "kind": {"enum": ["static", "dynamic"]},
    "customer_segment_id": nullable({
        "type": "string", "maxLength": 255,
        "description": "your own unique id for the segment, usable in URLs in place of the "
                       "number: letters, digits and - _ . : ~ only, not all digits"}),
    "url": nullable(STRING),
    "include": array(ref("Criterion")),
    "exclude": array(ref("Criterion")),
}
OFFER_WRITE = {
    "name": STRING, "external_id": nullable(STRING), "category": STRING,
    "description": STRING, "publish_at": nullable(STRING), "expire_at": nullable(STRING),
    "discontinued": BOOLEAN,
}
REWARD_WRITE = {**OFFER_WRITE, "points": {"type": "integer", "minimum": 0}}
WEBHOOK_WRITE = {
    "url": URI, "description": STRING, "active": BOOLEAN,
    "secret": {"type": "string", "minLength": 16, "maxLength": 128},
    "event_filter": obj({"actions": nullable(array({"enum": ["ADD", "REMOVE"]})),
                         "segments": nullable(array({"type": ["integer", "string"]}))}),
}
DECISION = {
    "visible_status": {"type": "string", "description": "visible, global_limit, member_limit, "
                       "age_restricted, missing_required_segments, reward_discontinued, "
                       "reward_expired"},
    "eligible": BOOLEAN,
    "reason": {"type": "string", "description": "the deciding check, e.g. eligible, "
               "insufficient_points, offer_expired"},
    "reasons": {"type": "object", "description": "the explanation tree: kind, label, passed, "
                "actual, expected, detail, children"},
}


def _schemas() -> dict[str, Any]:
    """Every component schema."""
    member_attributes = obj({
        **MEMBER_WRITE, "external_id": STRING, "tier": STRING,
        "created_at": nullable(MOMENT), "updated_at": nullable(MOMENT)},
        ("external_id", "tier", "points", "xp", "coins", "badges", "custom_fields"))
    segment_attributes = obj({
        **SEGMENT_WRITE, "name": STRING, "size": {"type": "integer", "minimum": 0},
        "version": INTEGER, "created_at": nullable(MOMENT), "updated_at": nullable(MOMENT),
        "updated_by": nullable(STRING)}, ("name", "kind", "size", "include", "exclude"))
    offer_attributes = obj({**OFFER_WRITE, "created_at": nullable(MOMENT),
                            "updated_at": nullable(MOMENT)}, ("name", "discontinued"))
    reward_attributes = obj({**REWARD_WRITE, "created_at": nullable(MOMENT),
                             "updated_at": nullable(MOMENT)}, ("name", "points", "discontinued"))
    audience_attributes = obj({
        "audience_type": {"enum": ["age_within", "in_all_segments", "in_any_segment"]},
        "configuration": {"type": "object", "description": "age_within: {minimum_age, "
                          "maximum_age}; in_all_segments / in_any_segment: {segments: [ids]}"},
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
                            "updated"]},
        "status": STRING, "detail": STRING, "effect": STRING,
        "errors": array(ref("Error")), "changed": array(STRING),
        "override": nullable({"type": "object"})}, ("index",))
    return {
        "Error": obj({
            "status": STRING, "code": STRING, "title": STRING, "detail": STRING,
            "source": obj({"pointer": STRING, "parameter": STRING}),
            "meta": META}, ("status", "title", "detail")),
        "ErrorDocument": obj({"errors": array(ref("Error"), minItems=1)}, ("errors",)),
        "Links": obj({"self": URI, "next": URI, "related": URI}),
        "Criterion": CRITERION,
        "MemberAttributes": member_attributes,
        "Member": resource("members", "MemberAttributes"),
        "MemberDocument": single("Member"),
        "MemberCollection": collection("Member"),
        "MemberCreate": new_resource("members", MEMBER_WRITE, ("external_id",)),
        "MemberUpdate": changed_resource("members", MEMBER_WRITE),
        "MemberBatch": obj({"data": array(obj({
            "type": {"const": "members"}, "attributes": obj(MEMBER_WRITE, ("external_id",))},
            ("type", "attributes")), maxItems=10_000)}, ("data",)),
        "MemberSearch": new_resource("member-searches", {
            "include": array(ref("Criterion")), "exclude": array(ref("Criterion"))}),
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
        "SegmentCollection": collection("Segment"),
        "SegmentCreate": new_resource("segments", SEGMENT_WRITE, ("name", "kind")),
        "SegmentUpdate": changed_resource("segments", {**SEGMENT_WRITE, "version": INTEGER}),
        "MemberLinkage": obj({"data": array(identifier("members")), "links": ref("Links"),
                              "meta": META}, ("data",)),
        "MemberIdentifiers": obj({"data": array(identifier("members"), maxItems=10_000)},
                                 ("data",)),
        "Override": obj({
            "type": {"const": "overrides"},
            "attributes": obj({
                "member": {"type": "string", "description": "member id, external id or email"},
                "status": {"enum": ["add", "block", "reset"]},
                "description": STRING, "reference_id": nullable(STRING),
                "metadata": nullable({"type": "object"}),
                "status_change_timestamp": nullable({
                    "type": ["integer", "string"],
                    "description": "Unix seconds or RFC 3339; now when absent"}),
                "expires_at": nullable({"type": ["integer", "string"]})}, ("status",)),
            "relationships": obj({"member": obj({"data": identifier("members")}, ("data",))}),
        }, ("type", "attributes")),
        "OverrideRequest": obj({"data": {"anyOf": [ref("Override"),
                                                   array(ref("Override"), maxItems=10_000)]}},
                               ("data",)),
        "OfferAttributes": offer_attributes,
        "Offer": resource("offers", "OfferAttributes",
                          {"audiences": obj({"data": array(identifier("audiences"))})}),
        "OfferDocument": single("Offer", included=array(ref("Audience"))),
        "OfferCollection": collection("Offer", included=array(ref("Audience"))),
        "OfferCreate": new_resource("offers", OFFER_WRITE, ("name",)),
        "OfferUpdate": changed_resource("offers", OFFER_WRITE),
        "AudienceAttributes": audience_attributes,
        "Audience": resource("audiences", "AudienceAttributes",
                             {"offer": obj({"data": identifier("offers")})}),
        "AudienceDocument": single("Audience"),
        "AudienceCreate": new_resource(
            "audiences", {"audience_type": {"enum": ["age_within", "in_all_segments",
                                                     "in_any_segment"]},
                          "configuration": {"type": "object"}},
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
        "SegmentIdentifiers": obj({"data": array(identifier("segments"), maxItems=1000)},
                                  ("data",)),
        "DecoratedOffer": obj({"type": {"const": "offers"}, "id": STRING,
                               "attributes": obj({**OFFER_WRITE, **DECISION},
                                                 ("visible_status", "eligible", "reasons"))},
                              ("type", "id", "attributes")),
        "DecoratedOfferCollection": collection("DecoratedOffer"),
        "DecoratedReward": obj({"type": {"const": "rewards"}, "id": STRING,
                                "attributes": obj({**REWARD_WRITE, **DECISION},
                                                  ("visible_status", "eligible", "reasons"))},
                               ("type", "id", "attributes")),
        "DecoratedRewardCollection": collection("DecoratedReward"),
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
            "name": {"type": "string", "maxLength": 120},
            "role": {"enum": ["admin", "marketer", "support"]}}, ("name", "role")),
    }


def query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """A query parameter."""
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or STRING}


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


MEMBER_REF = "member id, external id or email"
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
              "DecoratedOfferCollection"),
    Operation("get", "/members/{member_ref}/rewards", "member_rewards", "Visibility", 200,
              "DecoratedRewardCollection"),
    Operation("get", "/segments", "segment_list", "Segments", 200, "SegmentCollection", params=[
        query("filter[kind]", "static or dynamic", {"enum": ["static", "dynamic"]}),
        query("filter[customer_segment_id]", "exact customer segment id"), *PAGE]),
    Operation("post", "/segments", "segment_create", "Segments", 201, "SegmentDocument",
              "SegmentCreate", example={"data": {"type": "segments", "attributes": {
                  "name": "Engaged VIPs", "kind": "dynamic", "customer_segment_id": "SEG-42",
                  "include": [{"field": "tier", "operator": "in", "value": ["gold", "platinum"]},
                              {"field": "points", "operator": ">=", "value": 1000}],
                  "exclude": [{"field": "custom_fields.test_account", "operator": "equals",
                               "value": True}]}}}),
    Operation("get", "/segments/{segment_ref}", "segment_get", "Segments", 200,
              "SegmentDocument"),
    Operation("patch", "/segments/{segment_ref}", "segment_update", "Segments", 200,
              "SegmentDocument", "SegmentUpdate", example={"data": {
                  "type": "segments", "attributes": {"description": "Gold and up",
                                                     "version": 1}}}),
    Operation("delete", "/segments/{segment_ref}", "segment_delete", "Segments", 204, None),
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
    Operation("post", "/segments/{segment_ref}/overrides", "segment_overrides", "Overrides",
              200, "ResultsDocument", "OverrideRequest", example={"data": [
                  {"type": "overrides", "attributes": {
                      "member": "U-1001", "status": "add", "reference_id": "TICKET-7",
                      "description": "VIP by contract", "metadata": {"agent": "sam"},
                      "status_change_timestamp": 1763800000}},
                  {"type": "overrides", "attributes": {"member": "bob@example.com",
                                                       "status": "block"}}]}),
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
        query("filter[source]", "static_list, upload, api, override, rule or profile_change"),
        query("filter[after]", "start after this event id", {"type": "string",
                                                               "pattern": "^[0-9]{1,18}$"}),
        query("filter[since]", "only events at or after this RFC 3339 time"), *PAGE]),
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
}
ERROR_TEXT = {
    "400": "Malformed request: bad JSON, a bad document shape or an unknown query parameter "
           "(source.pointer or source.parameter names it)",
    "401": "No valid API token", "403": "The token's role may not use this route",
    "404": "No such resource (in the path, or a related resource the body names)",
    "409": "Conflict: type or id mismatch, a taken unique value, a segment in use, a version "
           "conflict, or the wrong kind of segment",
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
    if op.body:
        codes += ["400", "404", "409", "413", "415", "422"]
    elif op.method == "delete":
        codes.append("409")
    return sorted(set(codes))


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
                   "schema": {"type": "string", "minLength": 1}}
                  for name in PATH_PARAMETERS if "{" + name + "}" in op.path]
    operation["parameters"] = parameters + op.params
    if level == "public" or op.endpoint == "docs":
        operation["security"] = [] if level == "public" else [{"bearerAuth": []},
                                                              {"sessionCookie": []}]
    if op.body:
        body: dict[str, Any] = {"schema": ref(op.body)}
        if op.example:
            body["example"] = op.example
        operation["requestBody"] = {"required": True, "content": {MEDIA: body}}
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
def _build(server: str, rate_limit: str, batch: int) -> dict[str, Any]:
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
                "overrides, offers, audiences, rewards, decorated visibility, the membership "
                f"event feed and webhooks. Send `Content-Type: {MEDIA}` with every body and "
                "`Authorization: Bearer <token>` with every request (admins create tokens in "
                "the dashboard, or `flask tokens create NAME --role ROLE`). Wherever a member "
                "is named, its id, external id or email is accepted; wherever a segment is "
                "named, its id or customer segment id. Lists are cursor-paginated: follow "
                f"`links.next`; `page[size]` is {DEFAULT_SIZE} by default, at most "
                f"{MAX_SIZE}. Bulk requests take up to {batch:,} items and report a result "
                f"per item. Each token may make {rate_limit}; beyond that the answer is 429 "
                "with Retry-After. Errors are JSON:API error objects whose `source.pointer` "
                "(into your request document) or `source.parameter` names what is wrong."),
        },
        "servers": [{"url": server}],
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "security": [{"bearerAuth": []}],
        "tags": [{"name": name} for name in dict.fromkeys(op.tag for op in OPERATIONS)],
        "paths": paths,
        "components": {
            "schemas": _schemas(),
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
    return _build(server, str(config.get("API_RATE_LIMIT", "1200 per minute")),
                  int(config.get("LIMIT_BATCH", 10_000)))


@bp.route("/openapi.json", methods=["GET"])
@access("public")
def openapi_document():
    """The OpenAPI 3.1 document describing every route of this API."""
    response = respond(document())
    response.mimetype = "application/json"
    return response
