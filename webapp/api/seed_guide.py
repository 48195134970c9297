""""Coming from Hatch / CleverTap / Village / Monterosa": each seed system's request mapped to
Beacon's, shown on the API reference page.

Each row names Beacon's route by method and OpenAPI path, so a test checks that every row
points at a route the OpenAPI document describes (the page cannot promise a route that is
not there).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mapping:
    """One seed request and the Beacon request that does the same."""

    seed: str
    method: str
    path: str
    request: str
    notes: str = ""


@dataclass(frozen=True)
class SeedSystem:
    """A seed system, what its documents describe, and its requests mapped."""

    name: str
    anchor: str
    summary: str
    mappings: tuple[Mapping, ...]


SEED_SYSTEMS: tuple[SeedSystem, ...] = (
    SeedSystem("Hatch", "from-hatch", "Custom segments applied to memberships, offers (audiences) "
               "and rewards (required segments). Hatch's JSON:API documents work as they are; "
               "a membership is a Beacon member.", (
        Mapping("Create Segment", "post", "/segments",
                '{"data": {"type": "segments", "attributes": {"name": "gold-tier", "kind": '
                '"static", "customer_segment_id": "ad629e56-cafb-487e-9d88-93ee0e2147ea"}}}',
                "`kind` is required: a Hatch custom segment is a `static` list. Beacon assigns "
                "a number as the id; keep your own (a UUID is fine) as `customer_segment_id` "
                "and use it wherever Hatch takes the segment id."),
        Mapping("Add members to a segment", "post",
                "/segments/{segment_ref}/relationships/members",
                '{"data": [{"type": "members", "id": "U-1001"}]}',
                "A member is named by member id, external id or email; the answer has a result "
                "per member (`added`, `already_member`, `unknown_member`…)."),
        Mapping("Remove members from a segment", "delete",
                "/segments/{segment_ref}/relationships/members",
                '{"data": [{"type": "members", "id": "U-1001"}]}'),
        Mapping("Create Audience (age_within, in_all_segments, in_any_segment)", "post",
                "/audiences", "Hatch's payload unchanged: "
                '{"data": {"type": "audiences", "attributes": {"audience_type": '
                '"in_all_segments", "configuration": {"segments": ["ad629e56-…", '
                '"86d2ba4a-…"]}}, "relationships": {"offer": {"data": {"type": "offers", '
                '"id": "d7aa712d-…"}}}}}',
                "Segments by id or customer segment id; the offer by id or external id."),
        Mapping("Add required segments (reward)", "post",
                "/rewards/{reward_id}/relationships/required_segments",
                '{"data": [{"type": "segments", "id": "ad629e56-…"}]}'),
        Mapping("Remove required segments (reward)", "delete",
                "/rewards/{reward_id}/relationships/required_segments",
                '{"data": [{"type": "segments", "id": "ad629e56-…"}]}'),
        Mapping("Membership Offers", "get", "/members/{member_ref}/offers", "",
                "Each offer carries `visible_status`, `eligible` and the `reasons` tree "
                "(why it is or is not visible)."),
        Mapping("List Membership Rewards", "get", "/members/{member_ref}/rewards", "",
                "`visible_status` reads `missing_required_segments` when the member is not in "
                "every required segment, with `eligible: false`."),
    )),
    SeedSystem("CleverTap", "from-clevertap", "API segments: created with a Customer Segment "
               "ID, then updated by adding and removing users by identity, with a system "
               "event for every membership change.", (
        Mapping("Create Segment API (name, optional Customer Segment ID)", "post", "/segments",
                '{"data": {"type": "segments", "attributes": {"name": "Gold Users", "kind": '
                '"static", "customer_segment_id": "SEG12345"}}}',
                "`kind` is required (`static` for an API segment). The answer's `id` is the "
                "Segment ID; the customer segment id works in its place in every URL."),
        Mapping("Update Segment API (add or remove users by identity; up to 100 segments and "
                "100 profiles; creates unknown users)", "post", "/segment-memberships",
                '{"data": [{"type": "segment-memberships", "attributes": {"segment": '
                '"SEG12345", "action": "add", "members": ["U-1001", "ana@example.com"]}}], '
                '"meta": {"create_unknown_members": true}}',
                "A result per (segment, member). Creating unknown members happens only when "
                "`meta.create_unknown_members` is true (CleverTap always creates): the identity "
                "becomes the external id, and the email when it is one. One transaction; more "
                "than 100 segments or profiles is refused whole (413)."),
        Mapping("Segment Membership Change system event (Action, Segment Name, Segment ID, "
                "Customer_Segment_ID)", "get", "/events",
                "?filter[segment]=SEG12345",
                "Each event has `action` (ADD/REMOVE), `segment_name`, `segment_id` and "
                "`customer_segment_id`; to be pushed instead of polling, subscribe with "
                "POST /webhooks."),
        Mapping("Delete a segment (later updates fail)", "delete", "/segments/{segment_ref}",
                "", "Refused with 409 `segment_in_use` while an offer, reward or segment uses "
                "it; after a delete, requests naming it answer 404."),
        Mapping("Reachability numbers", "get", "/segments/{segment_ref}", "",
                "`size` is the exact member count, current after every change."),
    )),
    SeedSystem("Village", "from-village", "The Segments API adds, blocks or resets a user's "
               "segment status over the rules: Beacon's overrides.", (
        Mapping("POST /networks/YOUR_NETWORK_ID/segments {user, segment_id, user_status, "
                "metadata, reference_id, status_change_timestamp, description}", "post",
                "/segments/{segment_ref}/overrides",
                '{"data": {"type": "overrides", "attributes": {"user": "dev@example.com", '
                '"user_status": "add", "metadata": {"source": "signup"}, "reference_id": '
                '"REF-1", "status_change_timestamp": 1700000000, "description": "Developer '
                'Test Account"}}}',
                "`segment_id` moves into the URL (id or customer segment id); there is no "
                "network id. `user`/`user_status` are accepted as written (or `member`/"
                "`status`). Overrides apply to rule-managed (dynamic) segments and need an "
                "admin token; `data` may be a list to set many at once."),
        Mapping("(read back) a user's add/block status", "get",
                "/segments/{segment_ref}/overrides",
                "?filter[member]=dev@example.com&filter[status]=add&filter[expired]=false",
                "Lists the overrides with reference id, metadata, status-change timestamp and "
                "description; a reset override is gone from the list (its history is kept)."),
    )),
    SeedSystem("Monterosa", "from-monterosa", "Segments with include and exclude criteria, "
               "static or dynamic, with an estimated size.", (
        Mapping("GET /v1/segments?limit=…&type=static|dynamic", "get", "/segments",
                "?limit=50&type=dynamic",
                "`limit` and `type` are aliases of `page[size]` and `filter[kind]`. Lists are "
                "cursor-paginated: follow `links.next`."),
        Mapping("POST /v1/segments (include/exclude, customFields.*, createdAt, url)", "post",
                "/segments",
                '{"data": {"type": "segments", "attributes": {"name": "Engaged VIPs", "kind": '
                '"dynamic", "include": [{"field": "tier", "operator": "in", "value": '
                '["gold", "platinum"]}], "exclude": [{"field": "customFields.test", '
                '"operator": "equals", "value": true}]}}}',
                "The seed's camelCase fields are accepted and stored in snake_case. Include "
                "criteria must all match; a member matching any exclude criterion is out."),
        Mapping("GET /v1/segments/{segmentId}", "get", "/segments/{segment_ref}", "",
                "`estimatedSize` is there, equal to `size`: Beacon's count is exact and "
                "current, not refreshed every few hours."),
        Mapping("PUT /v1/segments/{segmentId}", "put", "/segments/{segment_ref}",
                '{"data": {"type": "segments", "attributes": {"name": "Engaged VIPs", "kind": '
                '"dynamic", "include": […]}}}',
                "Replaces the segment whole: `name` and `kind` are required, omitted criteria, "
                "description and url are cleared (the customer segment id is kept). PATCH "
                "changes only what it names."),
        Mapping("DELETE /v1/segments/{segmentId}", "delete", "/segments/{segment_ref}", "",
                "Monterosa deletes a segment still used by campaigns; Beacon refuses (409 "
                "`segment_in_use`, listing the offers, rewards and segments using it)."),
        Mapping("Reference segments in rule conditions (Campaigns / Rules APIs)", "post",
                "/segments",
                '{"data": {"type": "segments", "attributes": {"name": "VIPs not in test", '
                '"kind": "dynamic", "include": [{"field": "segment", "operator": "in", '
                '"value": ["SEG-42"]}]}}}',
                "A `segment` criterion names segments by id or customer segment id and "
                "stores the ids; Beacon's offers and rewards use segments through audiences "
                "and required segments."),
        Mapping("Audience API search (exact counts)", "post", "/members/search",
                '{"data": {"type": "member-searches", "attributes": {"include": […], '
                '"exclude": […]}}}', "The exact `meta.count` and the first page of members."),
    )),
)
