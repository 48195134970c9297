"""Rewards and their required segments (a to-many relationship) over the API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from webapp.access import access
from webapp.api import bp
from webapp.api.errors import ApiError, validation_error
from webapp.api.jsonapi import (
    actor_label,
    attributes_of,
    check_query,
    identifier_list,
    link,
    no_content,
    read_document,
    resource_object,
    respond,
    self_link,
)
from webapp.api.offers import CATALOG_NULLABLE, int_id
from webapp.api.pagination import (
    PAGE_PARAMS,
    keyset_page,
)
from webapp.api.serializers import reward_resource, segment_identifier
from webapp.extensions import db
from webapp.models import Reward
from webapp.services.lookup import find_segment

REWARD_ATTRIBUTES = ("name", "external_id", "category", "description", "points", "publish_at",
                     "expire_at", "discontinued")
READ_ONLY = ("created_at", "updated_at")
MAX_REQUIRED = 1000


def reward_or_404(reward_id: str) -> Reward:
    """The reward with this id (or external id); 404 otherwise."""
    reward = None
    number = int_id(reward_id)
    if number is not None:
        reward = db.session.get(Reward, number)
    if reward is None and "\x00" not in reward_id:
        reward = db.session.scalar(select(Reward).where(Reward.external_id == reward_id))
    if reward is None:
        raise ApiError(404, "reward_not_found", f"No reward has the id {reward_id!r}.",
                       title="Not found")
    return reward


@bp.route("/rewards", methods=["GET"])
@access("read")
def reward_list():
    """List rewards by id (cursor pagination) with their required segments."""
    check_query(PAGE_PARAMS)
    rows, links = keyset_page(
        select(Reward).options(selectinload(Reward.required_segments)), Reward.id)
    return respond({"data": [reward_resource(r) for r in rows], "links": links})


@bp.route("/rewards", methods=["POST"])
@access("write")
def reward_create():
    """Create a reward (require segments with its required_segments relationship)."""
    from webapp.services.rewards import RewardError, save_reward

    data = resource_object(read_document(), "rewards", creating=True)
    attributes = attributes_of(data, REWARD_ATTRIBUTES, read_only=READ_ONLY,
                               nullable=CATALOG_NULLABLE)
    try:
        reward = save_reward(attributes, actor=actor_label())
    except RewardError as exc:
        raise validation_error(exc.errors) from None
    return respond({"data": reward_resource(reward)}, 201,
                   {"Location": link("api.reward_get", reward_id=reward.id)})


@bp.route("/rewards/<reward_id>", methods=["GET"])
@access("read")
def reward_get(reward_id: str):
    """One reward by id or external id."""
    check_query(())
    return respond({"data": reward_resource(reward_or_404(reward_id)),
                    "links": {"self": self_link()}})


@bp.route("/rewards/<reward_id>", methods=["PATCH"])
@access("write")
def reward_update(reward_id: str):
    """Change the given attributes of a reward."""
    from webapp.services.rewards import RewardError, save_reward

    reward = reward_or_404(reward_id)
    data = resource_object(read_document(), "rewards")
    if "id" in data and str(data["id"]) not in (str(reward.id), reward_id):
        raise ApiError(409, "id_mismatch", "The resource id does not match the URL.",
                       pointer="/data/id")
    attributes = attributes_of(data, REWARD_ATTRIBUTES, read_only=READ_ONLY,
                               nullable=CATALOG_NULLABLE)
    try:
        reward = save_reward(attributes, reward=reward, actor=actor_label())
    except RewardError as exc:
        raise validation_error(exc.errors) from None
    return respond({"data": reward_resource(reward)})


@bp.route("/rewards/<reward_id>", methods=["DELETE"])
@access("admin")
def reward_delete(reward_id: str):
    """Delete a reward."""
    from webapp.services.rewards import delete_reward

    delete_reward(reward_or_404(reward_id), actor=actor_label())
    return no_content()


def _linkage(reward: Reward) -> dict[str, Any]:
    return {"data": [segment_identifier(s.id) for s in reward.required_segments],
            "links": {"self": link("api.reward_required_segments", reward_id=reward.id),
                      "related": link("api.reward_get", reward_id=reward.id)}}


@bp.route("/rewards/<reward_id>/relationships/required_segments", methods=["GET"])
@access("read")
def reward_required_segments(reward_id: str):
    """The segments a member must all be in to see this reward."""
    check_query(())
    return respond(_linkage(reward_or_404(reward_id)))


def _segment_ids(document: dict) -> list[int]:
    """The segment ids named by a to-many request (id or customer segment id); 404 if unknown."""
    items = identifier_list(document, limit=MAX_REQUIRED)
    ids: list[int] = []
    for index, item in enumerate(items):
        pointer = f"/data/{index}"
        if not isinstance(item, dict) or item.get("type") != "segments":
            raise ApiError(409 if isinstance(item, dict) and "type" in item else 400,
                           "invalid_identifier", 'Each item is {"type": "segments", "id": ...}.',
                           pointer=pointer)
        ref = item.get("id")
        if isinstance(ref, int) and not isinstance(ref, bool):
            ref = str(ref)
        if not isinstance(ref, str) or not ref.strip() or "\x00" in ref:
            raise ApiError(422, "invalid_id", "The id is a segment id or customer segment id.",
                           pointer=f"{pointer}/id")
        segment = find_segment(ref)
        if segment is None:
            raise ApiError(404, "segment_not_found", f"No segment has the id or customer "
                           f"segment id {ref!r}; nothing was changed.", title="Not found",
                           pointer=f"{pointer}/id")
        ids.append(segment.id)
    return ids


def _change(reward_id: str, mode: str):
    from webapp.services.rewards import RewardError, change_required_segments

    reward = reward_or_404(reward_id)
    ids = _segment_ids(read_document())
    check_query(())
    try:
        reward = change_required_segments(reward, ids, mode=mode, actor=actor_label())
    except RewardError as exc:
        raise validation_error({"": "; ".join(exc.errors.values())}, base="/data") from None
    return respond(_linkage(reward))


@bp.route("/rewards/<reward_id>/relationships/required_segments", methods=["POST"])
@access("write")
def reward_required_segments_add(reward_id: str):
    """Require more segments (already required ones are left as they are)."""
    return _change(reward_id, "add")


@bp.route("/rewards/<reward_id>/relationships/required_segments", methods=["PATCH"])
@access("write")
def reward_required_segments_replace(reward_id: str):
    """Replace the whole list of required segments (an empty list requires none)."""
    return _change(reward_id, "replace")


@bp.route("/rewards/<reward_id>/relationships/required_segments", methods=["DELETE"])
@access("write")
def reward_required_segments_remove(reward_id: str):
    """Stop requiring the given segments."""
    return _change(reward_id, "remove")
